package storetest

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/agentid/agentid/store"
)

// TestBackend runs every contract of the package against the backends open
// returns (NonceStore, RevocationStore, RateLimiter, Registry), and the
// Backend's own: Ping, and that the four kinds of state do not see one
// another. open returns a fresh backend for each subtest; the suite closes
// it. A backend that cannot take the clock ignores it and sets o.RealTime.
func TestBackend(t *testing.T, open func(t *testing.T, c *Clock) store.Backend, o Options) {
	t.Run("NonceStore", func(t *testing.T) {
		TestNonceStore(t, func(t *testing.T, c *Clock) store.NonceStore { return open(t, c) }, o)
	})
	t.Run("RevocationStore", func(t *testing.T) {
		TestRevocationStore(t, func(t *testing.T, c *Clock) store.RevocationStore { return open(t, c) }, o)
	})
	t.Run("RateLimiter", func(t *testing.T) {
		TestRateLimiter(t, func(t *testing.T) store.RateLimiter { return open(t, NewClock(start)) }, o)
	})
	t.Run("Registry", func(t *testing.T) {
		TestRegistry(t, func(t *testing.T, c *Clock) store.Registry { return open(t, c) }, o)
	})

	t.Run("TokenChecker", func(t *testing.T) { testTokenChecker(t, open) })

	ctx := context.Background()
	t.Run("Ping", func(t *testing.T) {
		s := open(t, NewClock(start))
		if err := s.Ping(ctx); err != nil {
			t.Fatalf("Ping: %v", err)
		}
		cctx, cancel := context.WithCancel(ctx)
		cancel()
		if err := s.Ping(cctx); err == nil {
			t.Error("Ping with a canceled context: want an error")
		}
		if err := s.Close(); err != nil {
			t.Fatalf("Close: %v", err)
		}
		if err := s.Ping(ctx); !errors.Is(err, store.ErrClosed) {
			t.Errorf("Ping after Close: %v, want store.ErrClosed", err)
		}
	})
	t.Run("NamespacesAreSeparate", func(t *testing.T) {
		s := open(t, NewClock(start))
		t.Cleanup(func() { _ = s.Close() })
		ttl := time.Hour
		// Each kind of state is written under the same string in turn; every
		// other kind must still read as empty for it.
		for _, write := range []struct {
			name string
			do   func(k string) error
		}{
			{"nonce", func(k string) error { _, err := s.CheckAndRecord(ctx, k, ttl); return err }},
			{"revoked session", func(k string) error { return s.RevokeSession(ctx, k, start, ttl) }},
			{"revoked token", func(k string) error { return s.RevokeToken(ctx, k, start, ttl) }},
			{"issued session", func(k string) error { return s.RecordSession(ctx, k, ttl) }},
			{"issued token", func(k string) error { return s.RecordToken(ctx, k, ttl) }},
			{"rate-limit key", func(k string) error { _, err := s.Allow(ctx, k, 1, ttl, start); return err }},
		} {
			k := uniqueNonce(t)
			if err := write.do(k); err != nil {
				t.Fatalf("writing %s: %v", write.name, err)
			}
			check := map[string]bool{}
			if write.name != "nonce" {
				// The check records the nonce; k is not used again.
				fresh, err := s.CheckAndRecord(ctx, k, ttl)
				check["nonce fresh"] = err == nil && fresh
			}
			if write.name != "revoked session" {
				_, ok, err := s.SessionRevoked(ctx, k)
				check["session not revoked"] = err == nil && !ok
			}
			if write.name != "revoked token" {
				_, ok, err := s.TokenRevoked(ctx, k)
				check["token not revoked"] = err == nil && !ok
			}
			if write.name != "issued session" {
				ok, err := s.SessionKnown(ctx, k)
				check["session unknown"] = err == nil && !ok
			}
			if write.name != "issued token" {
				ok, err := s.TokenKnown(ctx, k)
				check["token unknown"] = err == nil && !ok
			}
			if write.name != "rate-limit key" {
				ok, err := s.Allow(ctx, k, 1, ttl, start)
				check["rate limit unspent"] = err == nil && ok
			}
			for what, ok := range check {
				if !ok {
					t.Errorf("after writing a %s under %q: want %s", write.name, k, what)
				}
			}
		}
	})
}
