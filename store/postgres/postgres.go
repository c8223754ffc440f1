package postgres

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/agentid/agentid/store"
)

const (
	// DefaultTimeout is the deadline of each call when the URL sets none.
	DefaultTimeout = 2 * time.Second
	// DefaultPruneInterval is how often expired rows are deleted when the
	// URL sets no prune_interval.
	DefaultPruneInterval = time.Minute
	// PruneBatch is the most rows one pruning statement deletes, so that a
	// large backlog never holds locks or bloats one transaction for long.
	PruneBatch = 1000
)

// Store is a store.Backend on one PostgreSQL database, safe for
// concurrent use.
type Store struct {
	pool     *pgxpool.Pool
	timeout  time.Duration
	closed   atomic.Bool
	stop     context.CancelFunc
	pruneErr atomic.Value // the last pruning error, for LastPruneError
	wg       sync.WaitGroup
}

var _ store.Backend = (*Store)(nil)

// Open connects to the PostgreSQL database at rawURL (see the package
// documentation for the URL), creates or migrates the schema, and starts
// the pruner.
func Open(ctx context.Context, rawURL string) (*Store, error) {
	u, err := url.Parse(rawURL)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err // the URL itself may hold a password
		}
		return nil, fmt.Errorf("store/postgres: parsing the URL: %w", err)
	}
	if u.Scheme != "postgres" && u.Scheme != "postgresql" {
		return nil, fmt.Errorf("store/postgres: URL scheme %q, want postgres or postgresql", u.Scheme)
	}
	s := &Store{timeout: DefaultTimeout}
	prune := DefaultPruneInterval
	unlogged := false
	// pgx sends query options it does not know to the server as settings:
	// this package's own are taken out first.
	q := u.Query()
	for name, parse := range map[string]func(string) error{
		"timeout": func(v string) error {
			d, err := time.ParseDuration(v)
			if err != nil || d <= 0 {
				return errors.New("want a positive duration such as 2s")
			}
			s.timeout = d
			return nil
		},
		"prune_interval": func(v string) error {
			d, err := time.ParseDuration(v)
			if err != nil || d < 0 {
				return errors.New("want a duration such as 1m, or 0 for none")
			}
			prune = d
			return nil
		},
		"unlogged": func(v string) error {
			b, err := strconv.ParseBool(v)
			if err != nil {
				return errors.New("want true or false")
			}
			unlogged = b
			return nil
		},
	} {
		if !q.Has(name) {
			continue
		}
		if err := parse(q.Get(name)); err != nil {
			return nil, fmt.Errorf("store/postgres: %s=%q: %v", name, q.Get(name), err)
		}
		q.Del(name)
	}
	u.RawQuery = q.Encode()
	cfg, err := pgxpool.ParseConfig(u.String())
	if err != nil {
		return nil, fmt.Errorf("store/postgres: %w", err)
	}
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("store/postgres: %w", err)
	}
	s.pool = pool
	mctx, cancel := context.WithTimeout(ctx, max(s.timeout, 30*time.Second))
	defer cancel()
	if err := migrate(mctx, pool, unlogged); err != nil {
		pool.Close()
		return nil, fmt.Errorf("store/postgres: schema: %w", err)
	}
	bg, stop := context.WithCancel(context.Background())
	s.stop = stop
	if prune > 0 {
		s.wg.Go(func() { s.pruneEvery(bg, prune) })
	}
	return s, nil
}

// call prepares the context of one operation: ErrClosed after Close, the
// caller's own error when it is already done, else a deadline.
func (s *Store) call(ctx context.Context) (context.Context, context.CancelFunc, error) {
	if s.closed.Load() {
		return nil, nil, fmt.Errorf("store/postgres: %w", store.ErrClosed)
	}
	if err := ctx.Err(); err != nil {
		return nil, nil, fmt.Errorf("store/postgres: %w", err)
	}
	ctx, cancel := context.WithTimeout(ctx, s.timeout)
	return ctx, cancel, nil
}

func (s *Store) wrap(op string, err error) error {
	if s.closed.Load() {
		return fmt.Errorf("store/postgres: %s: %w", op, store.ErrClosed)
	}
	return fmt.Errorf("store/postgres: %s: %w", op, err)
}

func checkKey(key string, ttl time.Duration) error {
	if err := store.CheckKey(key, ttl); err != nil {
		return fmt.Errorf("store/postgres: %w", err)
	}
	return nil
}

func checkLimit(key string, limit int, per time.Duration) error {
	if err := store.CheckLimit(key, limit, per); err != nil {
		return fmt.Errorf("store/postgres: %w", err)
	}
	return nil
}

// micros rounds d up to whole microseconds, PostgreSQL's finest interval.
func micros(d time.Duration) int64 {
	return int64((d + time.Microsecond - 1) / time.Microsecond)
}

// CheckAndRecord implements store.NonceStore.
func (s *Store) CheckAndRecord(ctx context.Context, nonce string, ttl time.Duration) (bool, error) {
	if err := checkKey(nonce, ttl); err != nil {
		return false, err
	}
	ctx, cancel, err := s.call(ctx)
	if err != nil {
		return false, err
	}
	defer cancel()
	var fresh bool
	err = s.pool.QueryRow(ctx, `
INSERT INTO agentid_nonces AS n (nonce, expires_at) VALUES ($1, now() + $2 * interval '1 microsecond')
ON CONFLICT (nonce) DO UPDATE SET expires_at = EXCLUDED.expires_at WHERE n.expires_at <= now()
RETURNING true`, nonce, micros(ttl)).Scan(&fresh)
	switch {
	case err == nil:
		return fresh, nil
	case errors.Is(err, pgx.ErrNoRows): // an unexpired row: a replay
		return false, nil
	default:
		return false, s.wrap("check nonce", err)
	}
}

func (s *Store) revoke(ctx context.Context, kind, key string, at time.Time, ttl time.Duration) error {
	if err := checkKey(key, ttl); err != nil {
		return err
	}
	ctx, cancel, err := s.call(ctx)
	if err != nil {
		return err
	}
	defer cancel()
	_, err = s.pool.Exec(ctx, `
INSERT INTO agentid_revocations AS r (kind, id, revoked_at, expires_at)
VALUES ($1, $2, $3, now() + $4 * interval '1 microsecond')
ON CONFLICT (kind, id) DO UPDATE SET
	revoked_at = CASE WHEN r.expires_at > now() THEN LEAST(r.revoked_at, EXCLUDED.revoked_at) ELSE EXCLUDED.revoked_at END,
	expires_at = GREATEST(r.expires_at, EXCLUDED.expires_at)`, kind, key, at, micros(ttl))
	if err != nil {
		return s.wrap("revoke", err)
	}
	return nil
}

func (s *Store) revoked(ctx context.Context, kind, key string) (time.Time, bool, error) {
	ctx, cancel, err := s.call(ctx)
	if err != nil {
		return time.Time{}, false, err
	}
	defer cancel()
	var at time.Time
	err = s.pool.QueryRow(ctx, `
SELECT revoked_at FROM agentid_revocations WHERE kind = $1 AND id = $2 AND expires_at > now()`, kind, key).Scan(&at)
	switch {
	case err == nil:
		return at.UTC(), true, nil
	case errors.Is(err, pgx.ErrNoRows):
		return time.Time{}, false, nil
	default:
		return time.Time{}, false, s.wrap("read revocation", err)
	}
}

// RevokeSession implements store.RevocationStore.
func (s *Store) RevokeSession(ctx context.Context, id string, at time.Time, ttl time.Duration) error {
	return s.revoke(ctx, "session", id, at, ttl)
}

// RevokeToken implements store.RevocationStore.
func (s *Store) RevokeToken(ctx context.Context, nonce string, at time.Time, ttl time.Duration) error {
	return s.revoke(ctx, "token", nonce, at, ttl)
}

// SessionRevoked implements store.RevocationStore.
func (s *Store) SessionRevoked(ctx context.Context, id string) (time.Time, bool, error) {
	return s.revoked(ctx, "session", id)
}

// TokenRevoked implements store.RevocationStore.
func (s *Store) TokenRevoked(ctx context.Context, nonce string) (time.Time, bool, error) {
	return s.revoked(ctx, "token", nonce)
}

func (s *Store) record(ctx context.Context, kind, key string, ttl time.Duration) error {
	if err := checkKey(key, ttl); err != nil {
		return err
	}
	ctx, cancel, err := s.call(ctx)
	if err != nil {
		return err
	}
	defer cancel()
	_, err = s.pool.Exec(ctx, `
INSERT INTO agentid_issued AS i (kind, id, expires_at) VALUES ($1, $2, now() + $3 * interval '1 microsecond')
ON CONFLICT (kind, id) DO UPDATE SET expires_at = GREATEST(i.expires_at, EXCLUDED.expires_at)`, kind, key, micros(ttl))
	if err != nil {
		return s.wrap("record", err)
	}
	return nil
}

func (s *Store) known(ctx context.Context, kind, key string) (bool, error) {
	ctx, cancel, err := s.call(ctx)
	if err != nil {
		return false, err
	}
	defer cancel()
	var ok bool
	err = s.pool.QueryRow(ctx, `
SELECT EXISTS (SELECT 1 FROM agentid_issued WHERE kind = $1 AND id = $2 AND expires_at > now())`, kind, key).Scan(&ok)
	if err != nil {
		return false, s.wrap("read registry", err)
	}
	return ok, nil
}

// RecordSession implements store.Registry.
func (s *Store) RecordSession(ctx context.Context, id string, ttl time.Duration) error {
	return s.record(ctx, "session", id, ttl)
}

// RecordToken implements store.Registry.
func (s *Store) RecordToken(ctx context.Context, nonce string, ttl time.Duration) error {
	return s.record(ctx, "token", nonce, ttl)
}

// SessionKnown implements store.Registry.
func (s *Store) SessionKnown(ctx context.Context, id string) (bool, error) {
	return s.known(ctx, "session", id)
}

// TokenKnown implements store.Registry.
func (s *Store) TokenKnown(ctx context.Context, nonce string) (bool, error) {
	return s.known(ctx, "token", nonce)
}

// rateKeyMargin keeps a key's state a little longer than its period, for
// callers whose clock runs slightly behind the server's.
const rateKeyMargin = time.Second

// Allow implements store.RateLimiter.
func (s *Store) Allow(ctx context.Context, key string, limit int, per time.Duration, now time.Time) (bool, error) {
	if err := checkLimit(key, limit, per); err != nil {
		return false, err
	}
	ctx, cancel, err := s.call(ctx)
	if err != nil {
		return false, err
	}
	defer cancel()
	var ok bool
	err = s.pool.QueryRow(ctx, "SELECT agentid_rate_allow($1, $2, $3, $4, $5 * interval '1 microsecond')",
		key, min(limit, 1<<31-1), max(per.Microseconds(), 1), now.UnixMicro(), micros(per+rateKeyMargin)).Scan(&ok)
	if err != nil {
		return false, s.wrap("rate limit", err)
	}
	return ok, nil
}

// Ping implements store.Backend.
func (s *Store) Ping(ctx context.Context) error {
	ctx, cancel, err := s.call(ctx)
	if err != nil {
		return err
	}
	defer cancel()
	if err := s.pool.Ping(ctx); err != nil {
		return s.wrap("ping", err)
	}
	return nil
}

// Unlogged reports whether the nonce table is UNLOGGED (chosen when the
// tables were created, by whichever replica created them).
func (s *Store) Unlogged(ctx context.Context) (bool, error) {
	ctx, cancel, err := s.call(ctx)
	if err != nil {
		return false, err
	}
	defer cancel()
	var p string
	if err := s.pool.QueryRow(ctx, "SELECT relpersistence::text FROM pg_class WHERE oid = 'agentid_nonces'::regclass").Scan(&p); err != nil {
		return false, s.wrap("table persistence", err)
	}
	return p == "u", nil
}

// Close implements store.Backend: it stops the pruner and closes the pool.
// Calls after Close return store.ErrClosed.
func (s *Store) Close() error {
	if s.closed.Swap(true) {
		return nil
	}
	s.stop()
	s.wg.Wait()
	s.pool.Close()
	return nil
}
