package postgres

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// migrationLock is the advisory lock key the migrations hold ("agentid"
// in ASCII), so that replicas starting at once migrate one at a time.
const migrationLock int64 = 0x6167656e746964

// migrations[i] takes the schema from version i to i+1. UNLOGGED in a
// migration is written as {{unlogged}}, replaced by "UNLOGGED " or "".
// Released migrations are never edited: a change is a new migration.
var migrations = []string{
	// 1: the four kinds of state and the rate-limit function.
	`
CREATE {{unlogged}}TABLE agentid_nonces (
	nonce      text PRIMARY KEY,
	expires_at timestamptz NOT NULL
);
CREATE INDEX agentid_nonces_expires_at ON agentid_nonces (expires_at);

-- Never UNLOGGED: see the package documentation.
CREATE TABLE agentid_revocations (
	kind       text NOT NULL CHECK (kind IN ('session', 'token')),
	id         text NOT NULL,
	revoked_at timestamptz NOT NULL,
	expires_at timestamptz NOT NULL,
	PRIMARY KEY (kind, id)
);
CREATE INDEX agentid_revocations_expires_at ON agentid_revocations (expires_at);

CREATE {{unlogged}}TABLE agentid_issued (
	kind       text NOT NULL CHECK (kind IN ('session', 'token')),
	id         text NOT NULL,
	expires_at timestamptz NOT NULL,
	PRIMARY KEY (kind, id)
);
CREATE INDEX agentid_issued_expires_at ON agentid_issued (expires_at);

-- One row per rate-limit key: the limit it counts for, the latest time
-- seen (µs since the epoch, on the callers' clock), and its ring of
-- accepted calls: the calls numbered head to tail-1 are counted, call k
-- in slot k % lim of agentid_rate_calls. It has no index on expires_at,
-- unlike the other tables: every call updates the row, and without an
-- index on a changed column the update is HOT (no new index entries), so
-- a busy key does not bloat its index. The pruner scans the table, which
-- holds one row per key.
CREATE {{unlogged}}TABLE agentid_rate_limits (
	key        text PRIMARY KEY,
	lim        integer NOT NULL,
	per_us     bigint NOT NULL,
	latest_us  bigint NOT NULL,
	head       bigint NOT NULL,
	tail       bigint NOT NULL,
	expires_at timestamptz NOT NULL
) WITH (fillfactor = 70);

-- The ring slots, at most lim per key, overwritten in place (HOT again).
CREATE {{unlogged}}TABLE agentid_rate_calls (
	key   text NOT NULL REFERENCES agentid_rate_limits ON DELETE CASCADE,
	slot  integer NOT NULL,
	at_us bigint NOT NULL,
	PRIMARY KEY (key, slot)
) WITH (fillfactor = 70);

-- agentid_rate_allow records a call of key at now_us and reports whether it
-- is within lim calls in any window of per_us: the sliding log, in one
-- round trip. The key's row, locked FOR UPDATE, serializes its calls; each
-- accepted call leaves the ring once, so a call costs O(1) amortized.
CREATE FUNCTION agentid_rate_allow(p_key text, p_lim integer, p_per_us bigint, p_now_us bigint, p_keep interval)
RETURNS boolean LANGUAGE plpgsql AS $$
DECLARE
	s       agentid_rate_limits%ROWTYPE;
	v_now   bigint := p_now_us;
	v_at    bigint;
	v_allow boolean;
BEGIN
	INSERT INTO agentid_rate_limits (key, lim, per_us, latest_us, head, tail, expires_at)
	VALUES (p_key, p_lim, p_per_us, p_now_us, 0, 0, now() + p_keep)
	ON CONFLICT (key) DO NOTHING;
	SELECT * INTO STRICT s FROM agentid_rate_limits WHERE key = p_key FOR UPDATE;
	IF s.lim <> p_lim OR s.per_us <> p_per_us OR s.expires_at <= now() THEN
		-- Another limit, or state left from long ago: count afresh.
		DELETE FROM agentid_rate_calls WHERE key = p_key;
		s.head := 0;
		s.tail := 0;
		s.latest_us := p_now_us;
	END IF;
	-- Time that goes backwards counts as the latest time seen.
	IF s.latest_us > v_now THEN
		v_now := s.latest_us;
	END IF;
	-- Calls at or before now - per have left the window (now - per, now].
	IF s.latest_us <= v_now - p_per_us THEN
		s.head := s.tail; -- all of them, without reading the ring
	ELSE
		WHILE s.head < s.tail LOOP
			SELECT at_us INTO STRICT v_at FROM agentid_rate_calls WHERE key = p_key AND slot = (s.head % p_lim)::integer;
			EXIT WHEN v_at > v_now - p_per_us;
			s.head := s.head + 1;
		END LOOP;
	END IF;
	v_allow := s.tail - s.head < p_lim;
	IF v_allow THEN
		INSERT INTO agentid_rate_calls (key, slot, at_us) VALUES (p_key, (s.tail % p_lim)::integer, v_now)
		ON CONFLICT (key, slot) DO UPDATE SET at_us = EXCLUDED.at_us;
		s.tail := s.tail + 1;
	END IF;
	UPDATE agentid_rate_limits
	SET lim = p_lim, per_us = p_per_us, latest_us = v_now, head = s.head, tail = s.tail, expires_at = now() + p_keep
	WHERE key = p_key;
	RETURN v_allow;
END
$$;
`,
}

// SchemaVersion is the schema version this build creates and expects: the
// number of migrations.
const SchemaVersion = 1

// migrate brings the schema to SchemaVersion in one transaction, holding
// the migration lock so that concurrent starts of several replicas apply
// each migration once.
func migrate(ctx context.Context, pool *pgxpool.Pool, unlogged bool) error {
	tx, err := pool.Begin(ctx)
	if err != nil {
		return err
	}
	defer tx.Rollback(context.WithoutCancel(ctx))
	if _, err := tx.Exec(ctx, "SELECT pg_advisory_xact_lock($1)", migrationLock); err != nil {
		return fmt.Errorf("taking the migration lock: %w", err)
	}
	if _, err := tx.Exec(ctx, "CREATE TABLE IF NOT EXISTS agentid_schema (version integer NOT NULL)"); err != nil {
		return err
	}
	version := 0
	err = tx.QueryRow(ctx, "SELECT version FROM agentid_schema").Scan(&version)
	switch {
	case errors.Is(err, pgx.ErrNoRows):
		if _, err := tx.Exec(ctx, "INSERT INTO agentid_schema (version) VALUES (0)"); err != nil {
			return err
		}
	case err != nil:
		return err
	}
	if version > SchemaVersion {
		return fmt.Errorf("the schema is at version %d, newer than this build's %d: upgrade agentid", version, SchemaVersion)
	}
	if version == SchemaVersion {
		return nil // nothing to write: let the rollback end the transaction
	}
	kw := ""
	if unlogged {
		kw = "UNLOGGED "
	}
	for v := version; v < SchemaVersion; v++ {
		if _, err := tx.Exec(ctx, strings.ReplaceAll(migrations[v], "{{unlogged}}", kw)); err != nil {
			return fmt.Errorf("migrating the schema to version %d: %w", v+1, err)
		}
	}
	if _, err := tx.Exec(ctx, "UPDATE agentid_schema SET version = $1", SchemaVersion); err != nil {
		return err
	}
	return tx.Commit(ctx)
}
