package storetest

import (
	"context"
	"testing"
	"time"

	"github.com/agentid/agentid/store"
)

// testTokenChecker is the contract of store.TokenChecker, run by
// TestBackend for a backend that implements it: it must read as the
// separate calls it replaces would.
func testTokenChecker(t *testing.T, open func(t *testing.T, c *Clock) store.Backend) {
	ctx := context.Background()
	s := open(t, NewClock(start))
	t.Cleanup(func() { _ = s.Close() })
	tc, ok := s.(store.TokenChecker)
	if !ok {
		t.Skip("the backend does not implement store.TokenChecker")
	}
	ttl := time.Hour
	at := start.Add(-time.Minute)

	t.Run("a fresh token is recorded once", func(t *testing.T) {
		session, nonce := uniqueNonce(t), uniqueNonce(t)
		r, err := tc.CheckToken(ctx, session, nonce, true, ttl)
		if err != nil || !r.Fresh || r.SessionRevoked || r.TokenRevoked {
			t.Fatalf("first check = %+v, %v; want fresh", r, err)
		}
		r, err = tc.CheckToken(ctx, session, nonce, true, ttl)
		if err != nil || r.Fresh {
			t.Fatalf("second check = %+v, %v; want not fresh", r, err)
		}
		if fresh, err := s.CheckAndRecord(ctx, nonce, ttl); err != nil || fresh {
			t.Fatalf("CheckAndRecord after CheckToken = %v, %v; want the nonce recorded", fresh, err)
		}
	})
	t.Run("without record nothing is recorded", func(t *testing.T) {
		nonce := uniqueNonce(t)
		if r, err := tc.CheckToken(ctx, uniqueNonce(t), nonce, false, ttl); err != nil || r.Fresh {
			t.Fatalf("check without record = %+v, %v", r, err)
		}
		if fresh, err := s.CheckAndRecord(ctx, nonce, ttl); err != nil || !fresh {
			t.Fatalf("the nonce was recorded without record: %v, %v", fresh, err)
		}
	})
	for _, kind := range []string{"session", "token"} {
		t.Run("a revoked "+kind+" is reported and its nonce not recorded", func(t *testing.T) {
			session, nonce := uniqueNonce(t), uniqueNonce(t)
			var err error
			if kind == "session" {
				err = s.RevokeSession(ctx, session, at, ttl)
			} else {
				err = s.RevokeToken(ctx, nonce, at, ttl)
			}
			if err != nil {
				t.Fatal(err)
			}
			r, err := tc.CheckToken(ctx, session, nonce, true, ttl)
			if err != nil || r.Fresh {
				t.Fatalf("check = %+v, %v", r, err)
			}
			revoked, when := r.SessionRevoked, r.SessionRevokedAt
			if kind == "token" {
				revoked, when = r.TokenRevoked, r.TokenRevokedAt
			}
			if !revoked || !sameMillis(when, at) {
				t.Fatalf("check = %+v, want the %s revoked at %v", r, kind, at)
			}
			if fresh, err := s.CheckAndRecord(ctx, nonce, ttl); err != nil || !fresh {
				t.Fatalf("a revoked token's nonce was recorded: %v, %v", fresh, err)
			}
		})
	}
	t.Run("after Close it fails", func(t *testing.T) {
		s2 := open(t, NewClock(start))
		_ = s2.Close()
		if _, err := s2.(store.TokenChecker).CheckToken(ctx, uniqueNonce(t), uniqueNonce(t), true, ttl); err == nil {
			t.Fatal("CheckToken after Close: want an error")
		}
	})
}
