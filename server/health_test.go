package server_test

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/agentid/agentid/server"
)

func TestHealthAsksTheStoreAtMostOnceASecondHoweverOftenItIsAsked(t *testing.T) {
	clock := &testClock{t: time.Unix(1_800_000_000, 0)}
	var pings atomic.Int64
	var down atomic.Bool
	ping := func(context.Context) error {
		pings.Add(1)
		if down.Load() {
			return errors.New("store down")
		}
		return nil
	}
	ts := newTestServer(t, server.Config{Ping: ping, Now: clock.Now}, basePolicy)
	// /health is public: a flood of it must not become a flood of store
	// round trips that the validation requests then wait behind.
	var wg sync.WaitGroup
	for range 32 {
		wg.Go(func() {
			if r := ts.do(t, "GET", "/health", ""); r.status != 200 {
				t.Errorf("health: %d %s", r.status, r.raw)
			}
		})
	}
	wg.Wait()
	if n := pings.Load(); n != 1 {
		t.Fatalf("32 health checks in one second pinged the store %d times, want 1", n)
	}
	down.Store(true)
	clock.advance(time.Second)
	if r := ts.do(t, "GET", "/health", ""); r.status != 503 || r.body["store"] != "unavailable" {
		t.Fatalf("a second later, with the store down: %d %s", r.status, r.raw)
	}
	down.Store(false)
	if r := ts.do(t, "GET", "/health", ""); r.status != 503 {
		t.Fatalf("within the same second the last answer stands: %d %s", r.status, r.raw)
	}
	clock.advance(time.Second)
	if r := ts.do(t, "GET", "/health", ""); r.status != 200 || r.body["store"] != "ok" {
		t.Fatalf("the store back: %d %s", r.status, r.raw)
	}
	if n := pings.Load(); n != 3 {
		t.Fatalf("pinged %d times, want 3", n)
	}
}
