package postgres

import (
	"context"
	"time"
)

// pruneStatements delete one batch of expired rows each. FOR UPDATE SKIP
// LOCKED leaves rows another replica's pruner (or a caller) holds to it.
// Deleting a rate limit's row deletes its calls (ON DELETE CASCADE).
var pruneStatements = []struct{ table, sql string }{
	{"agentid_nonces", `DELETE FROM agentid_nonces WHERE nonce IN (
	SELECT nonce FROM agentid_nonces WHERE expires_at <= now() LIMIT $1 FOR UPDATE SKIP LOCKED)`},
	{"agentid_revocations", `DELETE FROM agentid_revocations WHERE (kind, id) IN (
	SELECT kind, id FROM agentid_revocations WHERE expires_at <= now() LIMIT $1 FOR UPDATE SKIP LOCKED)`},
	{"agentid_issued", `DELETE FROM agentid_issued WHERE (kind, id) IN (
	SELECT kind, id FROM agentid_issued WHERE expires_at <= now() LIMIT $1 FOR UPDATE SKIP LOCKED)`},
	{"agentid_rate_limits", `DELETE FROM agentid_rate_limits WHERE key IN (
	SELECT key FROM agentid_rate_limits WHERE expires_at <= now() LIMIT $1 FOR UPDATE SKIP LOCKED)`},
}

// Prune deletes the expired rows of every table now, in batches of
// PruneBatch, and returns how many it deleted. Reads already ignore expired
// rows: pruning only reclaims space. Each batch has the store's timeout.
func (s *Store) Prune(ctx context.Context) (int64, error) {
	var total int64
	for _, p := range pruneStatements {
		for {
			cctx, cancel, err := s.call(ctx)
			if err != nil {
				return total, err
			}
			tag, err := s.pool.Exec(cctx, p.sql, PruneBatch)
			cancel()
			if err != nil {
				return total, s.wrap("prune "+p.table, err)
			}
			total += tag.RowsAffected()
			if tag.RowsAffected() < PruneBatch {
				break
			}
		}
	}
	return total, nil
}

// pruneEvery prunes every interval until ctx ends. A failed round (the
// server is down) is kept for LastPruneError and retried at the next tick.
func (s *Store) pruneEvery(ctx context.Context, interval time.Duration) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		_, err := s.Prune(ctx)
		if ctx.Err() != nil {
			return
		}
		msg := ""
		if err != nil {
			msg = err.Error()
		}
		s.pruneErr.Store(msg)
	}
}

// LastPruneError returns the error of the pruner's last round, or "" when
// it succeeded (or has not run yet), for health reporting.
func (s *Store) LastPruneError() string {
	v, _ := s.pruneErr.Load().(string)
	return v
}
