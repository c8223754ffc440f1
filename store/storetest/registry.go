package storetest

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/agentid/agentid/store"
)

// TestRegistry runs the store.Registry contract. newStore returns a fresh
// store for each subtest; the suite closes it.
func TestRegistry(t *testing.T, newStore func(t *testing.T, c *Clock) store.Registry, o Options) {
	run := func(name string, f func(t *testing.T, e env, s store.Registry)) {
		t.Run(name, func(t *testing.T) {
			c := NewClock(start)
			s := newStore(t, c)
			t.Cleanup(func() { _ = s.Close() })
			f(t, env{t: t, clock: c, o: o}, s)
		})
	}
	ctx := context.Background()
	mustKnown := func(t *testing.T, what string, known func(context.Context, string) (bool, error), id string, want bool) {
		t.Helper()
		got, err := known(ctx, id)
		if err != nil {
			t.Fatalf("%s(%q): %v", what, id, err)
		}
		if got != want {
			t.Fatalf("%s(%q) = %v, want %v", what, id, got, want)
		}
	}

	run("UnknownInitially", func(t *testing.T, e env, s store.Registry) {
		id := uniqueNonce(t)
		mustKnown(t, "SessionKnown", s.SessionKnown, id, false)
		mustKnown(t, "TokenKnown", s.TokenKnown, id, false)
	})
	run("RecordSession", func(t *testing.T, e env, s store.Registry) {
		id := uniqueNonce(t)
		if err := s.RecordSession(ctx, id, e.ttl()); err != nil {
			t.Fatalf("RecordSession: %v", err)
		}
		mustKnown(t, "SessionKnown", s.SessionKnown, id, true)
		mustKnown(t, "TokenKnown (same string, other namespace)", s.TokenKnown, id, false)
		mustKnown(t, "SessionKnown (unrelated id)", s.SessionKnown, uniqueNonce(t), false)
	})
	run("RecordToken", func(t *testing.T, e env, s store.Registry) {
		n := uniqueNonce(t)
		if err := s.RecordToken(ctx, n, e.ttl()); err != nil {
			t.Fatalf("RecordToken: %v", err)
		}
		mustKnown(t, "TokenKnown", s.TokenKnown, n, true)
		mustKnown(t, "SessionKnown (same string, other namespace)", s.SessionKnown, n, false)
	})
	run("ExpiresAfterTTL", func(t *testing.T, e env, s store.Registry) {
		id, n := uniqueNonce(t), uniqueNonce(t)
		if err := s.RecordSession(ctx, id, e.ttl()); err != nil {
			t.Fatal(err)
		}
		if err := s.RecordToken(ctx, n, e.ttl()); err != nil {
			t.Fatal(err)
		}
		e.advance(e.ttl() / 2)
		mustKnown(t, "SessionKnown before its ttl", s.SessionKnown, id, true)
		e.advance(e.ttl())
		mustKnown(t, "SessionKnown after its ttl", s.SessionKnown, id, false)
		mustKnown(t, "TokenKnown after its ttl", s.TokenKnown, n, false)
	})
	run("RecordAgainKeepsLaterExpiry", func(t *testing.T, e env, s store.Registry) {
		id := uniqueNonce(t)
		if err := s.RecordSession(ctx, id, e.ttl()); err != nil {
			t.Fatal(err)
		}
		if err := s.RecordSession(ctx, id, e.ttl()/10); err != nil {
			t.Fatal(err)
		}
		e.advance(e.ttl() / 2)
		mustKnown(t, "SessionKnown after a shorter second record", s.SessionKnown, id, true)
		// And the other way round: a longer second record extends it.
		n := uniqueNonce(t)
		if err := s.RecordToken(ctx, n, e.ttl()/10); err != nil {
			t.Fatal(err)
		}
		if err := s.RecordToken(ctx, n, e.ttl()); err != nil {
			t.Fatal(err)
		}
		e.advance(e.ttl() / 4)
		mustKnown(t, "TokenKnown after a longer second record", s.TokenKnown, n, true)
	})
	run("RejectsBadArguments", func(t *testing.T, e env, s store.Registry) {
		for name, err := range map[string]error{
			"RecordSession with an empty id":    s.RecordSession(ctx, "", e.ttl()),
			"RecordToken with an empty nonce":   s.RecordToken(ctx, "", e.ttl()),
			"RecordSession with ttl 0":          s.RecordSession(ctx, uniqueNonce(t), 0),
			"RecordToken with a negative ttl":   s.RecordToken(ctx, uniqueNonce(t), -time.Second),
			"RecordSession with a negative ttl": s.RecordSession(ctx, uniqueNonce(t), -time.Nanosecond),
		} {
			if err == nil {
				t.Errorf("%s: want an error", name)
			}
		}
	})
	run("CanceledContext", func(t *testing.T, e env, s store.Registry) {
		cctx, cancel := context.WithCancel(ctx)
		cancel()
		id := uniqueNonce(t)
		if err := s.RecordSession(ctx, id, e.ttl()); err != nil {
			t.Fatal(err)
		}
		if ok, err := s.SessionKnown(cctx, id); err == nil || ok {
			t.Errorf("SessionKnown with a canceled context = %v, %v; want an error, not known", ok, err)
		}
		if err := s.RecordToken(cctx, uniqueNonce(t), e.ttl()); err == nil {
			t.Error("RecordToken with a canceled context: want an error")
		}
	})
	run("ConcurrentUse", func(t *testing.T, e env, s store.Registry) {
		base := uniqueNonce(t)
		var wg sync.WaitGroup
		for i := range 100 {
			wg.Go(func() { _ = s.RecordToken(ctx, fmt.Sprintf("%s-%d", base, i), e.retain()) })
			wg.Go(func() { _, _ = s.TokenKnown(ctx, fmt.Sprintf("%s-%d", base, i)) })
		}
		wg.Wait()
		for i := range 100 {
			if ok, err := s.TokenKnown(ctx, fmt.Sprintf("%s-%d", base, i)); !ok || err != nil {
				t.Fatalf("token %d not known after concurrent recording: %v", i, err)
			}
		}
	})
	run("Close", func(t *testing.T, e env, s store.Registry) {
		if err := s.Close(); err != nil {
			t.Fatalf("Close: %v", err)
		}
		if err := s.RecordSession(ctx, uniqueNonce(t), e.ttl()); !errors.Is(err, store.ErrClosed) {
			t.Errorf("RecordSession after Close: %v, want store.ErrClosed", err)
		}
		if ok, err := s.TokenKnown(ctx, uniqueNonce(t)); !errors.Is(err, store.ErrClosed) || ok {
			t.Errorf("TokenKnown after Close: %v, %v; want store.ErrClosed", ok, err)
		}
	})
}
