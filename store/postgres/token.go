package postgres

import (
	"context"
	"time"

	"github.com/agentid/agentid/store"
)

// CheckToken implements store.TokenChecker in one statement: the token's
// two revocation lookups and, when neither finds a record and record is
// set, the nonce insert of CheckAndRecord.
func (s *Store) CheckToken(ctx context.Context, session, nonce string, record bool, ttl time.Duration) (store.TokenCheck, error) {
	var tc store.TokenCheck
	if err := checkKey(session, ttl); err != nil {
		return tc, err
	}
	if err := checkKey(nonce, ttl); err != nil {
		return tc, err
	}
	ctx, cancel, err := s.call(ctx)
	if err != nil {
		return tc, err
	}
	defer cancel()
	var sessionAt, tokenAt *time.Time
	err = s.pool.QueryRow(ctx, `
WITH rs AS (SELECT revoked_at FROM agentid_revocations WHERE kind = 'session' AND id = $1 AND expires_at > now()),
     rt AS (SELECT revoked_at FROM agentid_revocations WHERE kind = 'token' AND id = $2 AND expires_at > now()),
     ins AS (
	INSERT INTO agentid_nonces AS n (nonce, expires_at)
	SELECT $2, now() + $3 * interval '1 microsecond'
	WHERE $4 AND NOT EXISTS (SELECT 1 FROM rs) AND NOT EXISTS (SELECT 1 FROM rt)
	ON CONFLICT (nonce) DO UPDATE SET expires_at = EXCLUDED.expires_at WHERE n.expires_at <= now()
	RETURNING true AS fresh)
SELECT (SELECT revoked_at FROM rs), (SELECT revoked_at FROM rt), COALESCE((SELECT fresh FROM ins), false)`,
		session, nonce, micros(ttl), record).Scan(&sessionAt, &tokenAt, &tc.Fresh)
	if err != nil {
		return store.TokenCheck{}, s.wrap("check token", err)
	}
	if sessionAt != nil {
		tc.SessionRevoked, tc.SessionRevokedAt = true, sessionAt.UTC()
	}
	if tokenAt != nil {
		tc.TokenRevoked, tc.TokenRevokedAt = true, tokenAt.UTC()
	}
	return tc, nil
}
