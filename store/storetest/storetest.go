// Package storetest is the contract test suite for store.NonceStore,
// store.RevocationStore and store.RateLimiter. It is written once and run
// against every implementation (memory here; Redis and PostgreSQL in their packages):
//
//	func TestContract(t *testing.T) {
//		storetest.TestNonceStore(t, func(t *testing.T, c *storetest.Clock) store.NonceStore {
//			return memory.NewNonceStore(memory.Options{Now: c.Now})
//		}, storetest.Options{})
//	}
//
// A store that can take an injected clock must use the Clock it is given, so
// that expiry tests advance time without sleeping. A store whose expiry is
// decided elsewhere (a Redis or PostgreSQL server) sets Options.RealTime; the
// expiry tests then use one-second TTLs and sleep.
package storetest

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/agentid/agentid/store"
)

// Clock is a fake clock, safe for concurrent use.
type Clock struct {
	mu  sync.Mutex
	now time.Time
}

// NewClock returns a clock set to t.
func NewClock(t time.Time) *Clock { return &Clock{now: t} }

// Now returns the clock's time.
func (c *Clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

// Advance moves the clock forward by d.
func (c *Clock) Advance(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

// Options adapts the suite to an implementation.
type Options struct {
	// RealTime says the store ignores the injected clock: expiry tests
	// sleep real time (about 1.5 s each) instead of advancing it.
	RealTime bool
	// Concurrency is the number of goroutines racing on one nonce; 1000
	// when zero.
	Concurrency int
}

type env struct {
	t     *testing.T
	clock *Clock
	o     Options
}

// ttl returns the record lifetime used by expiry tests. On a real server
// it is short, since those tests sleep through it, but long enough that a
// loaded machine does not expire a record before the test looks at it.
func (e env) ttl() time.Duration {
	if e.o.RealTime {
		return 2 * time.Second
	}
	return 5 * time.Minute
}

// retain is the lifetime of records that a test must not see expire: the
// concurrency tests, whose thousand calls take seconds on a loaded machine,
// after which a record with ttl() would legitimately be fresh again.
func (e env) retain() time.Duration { return time.Hour }

// advance lets time pass by d: on the fake clock, or by sleeping.
func (e env) advance(d time.Duration) {
	if e.o.RealTime {
		time.Sleep(d)
		return
	}
	e.clock.Advance(d)
}

// start is the fake clock's initial time, chosen off any round boundary.
var start = time.Date(2026, 1, 24, 10, 30, 0, 123_000_000, time.UTC)

// TestNonceStore runs the NonceStore contract. newStore returns a fresh,
// empty store for each subtest; the suite closes it.
func TestNonceStore(t *testing.T, newStore func(t *testing.T, c *Clock) store.NonceStore, o Options) {
	if o.Concurrency == 0 {
		o.Concurrency = 1000
	}
	run := func(name string, f func(t *testing.T, e env, s store.NonceStore)) {
		t.Run(name, func(t *testing.T) {
			c := NewClock(start)
			s := newStore(t, c)
			t.Cleanup(func() { _ = s.Close() })
			f(t, env{t: t, clock: c, o: o}, s)
		})
	}
	ctx := context.Background()

	run("FirstFreshThenReplay", func(t *testing.T, e env, s store.NonceStore) {
		n := uniqueNonce(t)
		mustFresh(t, s, n, e.ttl(), true)
		mustFresh(t, s, n, e.ttl(), false)
		mustFresh(t, s, n, e.ttl(), false)
	})
	run("DistinctNoncesIndependent", func(t *testing.T, e env, s store.NonceStore) {
		a, b := uniqueNonce(t), uniqueNonce(t)
		mustFresh(t, s, a, e.ttl(), true)
		mustFresh(t, s, b, e.ttl(), true)
		mustFresh(t, s, a, e.ttl(), false)
		mustFresh(t, s, b, e.ttl(), false)
	})
	run("CaseSensitive", func(t *testing.T, e env, s store.NonceStore) {
		n := "abcdef" + uniqueNonce(t)
		mustFresh(t, s, n, e.ttl(), true)
		mustFresh(t, s, "ABCDEF"+n[6:], e.ttl(), true)
	})
	run("ReplayWithinTTL", func(t *testing.T, e env, s store.NonceStore) {
		n := uniqueNonce(t)
		mustFresh(t, s, n, e.ttl(), true)
		e.advance(e.ttl() / 2)
		mustFresh(t, s, n, e.ttl(), false)
	})
	run("ExpiresAfterTTL", func(t *testing.T, e env, s store.NonceStore) {
		n := uniqueNonce(t)
		mustFresh(t, s, n, e.ttl(), true)
		e.advance(e.ttl() + e.ttl()/2)
		mustFresh(t, s, n, e.ttl(), true)
		mustFresh(t, s, n, e.ttl(), false)
	})
	run("RejectsBadArguments", func(t *testing.T, e env, s store.NonceStore) {
		if _, err := s.CheckAndRecord(ctx, "", e.ttl()); err == nil {
			t.Error("empty nonce: want an error")
		}
		for _, ttl := range []time.Duration{0, -time.Second} {
			if fresh, err := s.CheckAndRecord(ctx, uniqueNonce(t), ttl); err == nil || fresh {
				t.Errorf("ttl %v: got fresh=%v err=%v, want an error", ttl, fresh, err)
			}
		}
	})
	run("CanceledContext", func(t *testing.T, e env, s store.NonceStore) {
		cctx, cancel := context.WithCancel(ctx)
		cancel()
		if fresh, err := s.CheckAndRecord(cctx, uniqueNonce(t), e.ttl()); err == nil || fresh {
			t.Errorf("canceled context: got fresh=%v err=%v, want an error and not fresh", fresh, err)
		}
	})
	run("ConcurrentSameNonceExactlyOneFresh", func(t *testing.T, e env, s store.NonceStore) {
		n := uniqueNonce(t)
		var fresh, errs atomic.Int64
		var wg sync.WaitGroup
		gate := make(chan struct{})
		for range e.o.Concurrency {
			wg.Add(1)
			go func() {
				defer wg.Done()
				<-gate
				ok, err := s.CheckAndRecord(ctx, n, e.retain())
				if err != nil {
					errs.Add(1)
				} else if ok {
					fresh.Add(1)
				}
			}()
		}
		close(gate)
		wg.Wait()
		if errs.Load() != 0 || fresh.Load() != 1 {
			t.Fatalf("%d goroutines on one nonce: %d fresh, %d errors; want exactly 1 fresh, 0 errors", e.o.Concurrency, fresh.Load(), errs.Load())
		}
	})
	run("ConcurrentDistinctNoncesAllFresh", func(t *testing.T, e env, s store.NonceStore) {
		base := uniqueNonce(t)
		const n = 200
		var fresh atomic.Int64
		var wg sync.WaitGroup
		for i := range n {
			wg.Add(1)
			go func() {
				defer wg.Done()
				if ok, err := s.CheckAndRecord(ctx, fmt.Sprintf("%s-%d", base, i), e.retain()); err == nil && ok {
					fresh.Add(1)
				}
			}()
		}
		wg.Wait()
		if fresh.Load() != n {
			t.Fatalf("%d distinct nonces: %d fresh", n, fresh.Load())
		}
	})
	run("Close", func(t *testing.T, e env, s store.NonceStore) {
		if err := s.Close(); err != nil {
			t.Fatalf("Close: %v", err)
		}
		if fresh, err := s.CheckAndRecord(ctx, uniqueNonce(t), e.ttl()); !errors.Is(err, store.ErrClosed) || fresh {
			t.Errorf("after Close: got fresh=%v err=%v, want store.ErrClosed", fresh, err)
		}
	})
}

// TestRevocationStore runs the RevocationStore contract. newStore returns a
// fresh, empty store for each subtest; the suite closes it.
func TestRevocationStore(t *testing.T, newStore func(t *testing.T, c *Clock) store.RevocationStore, o Options) {
	run := func(name string, f func(t *testing.T, e env, s store.RevocationStore)) {
		t.Run(name, func(t *testing.T) {
			c := NewClock(start)
			s := newStore(t, c)
			t.Cleanup(func() { _ = s.Close() })
			f(t, env{t: t, clock: c, o: o}, s)
		})
	}
	ctx := context.Background()
	at := start.Add(-time.Minute).Truncate(time.Millisecond)

	run("NotRevokedInitially", func(t *testing.T, e env, s store.RevocationStore) {
		id := uniqueNonce(t)
		if _, ok, err := s.SessionRevoked(ctx, id); ok || err != nil {
			t.Errorf("SessionRevoked on empty store: ok=%v err=%v", ok, err)
		}
		if _, ok, err := s.TokenRevoked(ctx, id); ok || err != nil {
			t.Errorf("TokenRevoked on empty store: ok=%v err=%v", ok, err)
		}
	})
	run("RevokeSession", func(t *testing.T, e env, s store.RevocationStore) {
		id := uniqueNonce(t)
		if err := s.RevokeSession(ctx, id, at, e.ttl()); err != nil {
			t.Fatalf("RevokeSession: %v", err)
		}
		got, ok, err := s.SessionRevoked(ctx, id)
		if err != nil || !ok || !sameMillis(got, at) {
			t.Fatalf("SessionRevoked = %v, %v, %v; want %v, true, nil", got, ok, err, at)
		}
		if _, ok, _ := s.TokenRevoked(ctx, id); ok {
			t.Error("revoking a session revoked the token with the same string: namespaces must be separate")
		}
		if _, ok, _ := s.SessionRevoked(ctx, uniqueNonce(t)); ok {
			t.Error("an unrelated session is revoked")
		}
	})
	run("RevokeToken", func(t *testing.T, e env, s store.RevocationStore) {
		n := uniqueNonce(t)
		if err := s.RevokeToken(ctx, n, at, e.ttl()); err != nil {
			t.Fatalf("RevokeToken: %v", err)
		}
		got, ok, err := s.TokenRevoked(ctx, n)
		if err != nil || !ok || !sameMillis(got, at) {
			t.Fatalf("TokenRevoked = %v, %v, %v; want %v, true, nil", got, ok, err, at)
		}
		if _, ok, _ := s.SessionRevoked(ctx, n); ok {
			t.Error("revoking a token revoked the session with the same string: namespaces must be separate")
		}
	})
	run("RevokeAgainKeepsEarliestTime", func(t *testing.T, e env, s store.RevocationStore) {
		id := uniqueNonce(t)
		if err := s.RevokeSession(ctx, id, at, e.ttl()); err != nil {
			t.Fatal(err)
		}
		if err := s.RevokeSession(ctx, id, at.Add(30*time.Second), e.ttl()); err != nil {
			t.Fatal(err)
		}
		if got, ok, err := s.SessionRevoked(ctx, id); err != nil || !ok || !sameMillis(got, at) {
			t.Fatalf("SessionRevoked = %v, %v, %v; want the first revocation time %v", got, ok, err, at)
		}
	})
	run("ExpiresAfterTTL", func(t *testing.T, e env, s store.RevocationStore) {
		id, n := uniqueNonce(t), uniqueNonce(t)
		if err := s.RevokeSession(ctx, id, at, e.ttl()); err != nil {
			t.Fatal(err)
		}
		if err := s.RevokeToken(ctx, n, at, e.ttl()); err != nil {
			t.Fatal(err)
		}
		e.advance(e.ttl() / 2)
		if _, ok, _ := s.SessionRevoked(ctx, id); !ok {
			t.Fatal("session revocation expired before its ttl")
		}
		e.advance(e.ttl())
		if _, ok, err := s.SessionRevoked(ctx, id); ok || err != nil {
			t.Errorf("session revocation after its ttl: ok=%v err=%v", ok, err)
		}
		if _, ok, err := s.TokenRevoked(ctx, n); ok || err != nil {
			t.Errorf("token revocation after its ttl: ok=%v err=%v", ok, err)
		}
	})
	run("ReRevokeExtendsRetention", func(t *testing.T, e env, s store.RevocationStore) {
		id := uniqueNonce(t)
		if err := s.RevokeSession(ctx, id, at, e.ttl()); err != nil {
			t.Fatal(err)
		}
		e.advance(e.ttl() / 2)
		if err := s.RevokeSession(ctx, id, at, e.ttl()); err != nil {
			t.Fatal(err)
		}
		// Past the first expiry (ttl) by ttl/8, and before the second
		// (1.5 ttl) by 3/8 ttl: a late wake-up on a loaded machine, with
		// RealTime, moves the check away from the first expiry, and has
		// most of the margin before the second.
		e.advance(e.ttl() * 5 / 8)
		if _, ok, _ := s.SessionRevoked(ctx, id); !ok {
			t.Fatal("revoking again did not extend the retention")
		}
	})
	run("RejectsBadArguments", func(t *testing.T, e env, s store.RevocationStore) {
		if err := s.RevokeSession(ctx, "", at, e.ttl()); err == nil {
			t.Error("RevokeSession with an empty id: want an error")
		}
		if err := s.RevokeToken(ctx, "", at, e.ttl()); err == nil {
			t.Error("RevokeToken with an empty nonce: want an error")
		}
		if err := s.RevokeSession(ctx, uniqueNonce(t), at, 0); err == nil {
			t.Error("RevokeSession with ttl 0: want an error")
		}
		if err := s.RevokeToken(ctx, uniqueNonce(t), at, -time.Second); err == nil {
			t.Error("RevokeToken with a negative ttl: want an error")
		}
	})
	run("ConcurrentUse", func(t *testing.T, e env, s store.RevocationStore) {
		base := uniqueNonce(t)
		var wg sync.WaitGroup
		for i := range 100 {
			wg.Add(2)
			go func() {
				defer wg.Done()
				_ = s.RevokeSession(ctx, fmt.Sprintf("%s-%d", base, i), at, e.retain())
			}()
			go func() {
				defer wg.Done()
				_, _, _ = s.SessionRevoked(ctx, fmt.Sprintf("%s-%d", base, i))
			}()
		}
		wg.Wait()
		for i := range 100 {
			if _, ok, err := s.SessionRevoked(ctx, fmt.Sprintf("%s-%d", base, i)); !ok || err != nil {
				t.Fatalf("session %d not revoked after concurrent revocation: %v", i, err)
			}
		}
	})
	run("Close", func(t *testing.T, e env, s store.RevocationStore) {
		if err := s.Close(); err != nil {
			t.Fatalf("Close: %v", err)
		}
		if err := s.RevokeSession(ctx, uniqueNonce(t), at, e.ttl()); !errors.Is(err, store.ErrClosed) {
			t.Errorf("RevokeSession after Close: %v, want store.ErrClosed", err)
		}
		if _, ok, err := s.SessionRevoked(ctx, uniqueNonce(t)); !errors.Is(err, store.ErrClosed) || ok {
			t.Errorf("SessionRevoked after Close: ok=%v err=%v, want store.ErrClosed", ok, err)
		}
	})
}

func mustFresh(t *testing.T, s store.NonceStore, nonce string, ttl time.Duration, want bool) {
	t.Helper()
	got, err := s.CheckAndRecord(context.Background(), nonce, ttl)
	if err != nil {
		t.Fatalf("CheckAndRecord(%q): %v", nonce, err)
	}
	if got != want {
		t.Fatalf("CheckAndRecord(%q) fresh = %v, want %v", nonce, got, want)
	}
}

var seq atomic.Int64

// uniqueNonce returns a key no other test in this process uses, so that
// shared stores (one Redis database for every subtest) do not interfere.
func uniqueNonce(t *testing.T) string {
	return fmt.Sprintf("storetest-%d-%d", time.Now().UnixNano(), seq.Add(1))
}

func sameMillis(a, b time.Time) bool {
	d := a.Sub(b)
	return d > -time.Millisecond && d < time.Millisecond
}
