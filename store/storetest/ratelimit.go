package storetest

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/agentid/agentid/store"
)

// TestRateLimiter runs the store.RateLimiter contract against the stores
// newStore returns. Time comes only from the calls' now argument, so the
// suite never sleeps, for shared stores too.
func TestRateLimiter(t *testing.T, newStore func(t *testing.T) store.RateLimiter, o Options) {
	ctx := context.Background()
	t0 := time.Date(2026, 1, 24, 10, 30, 0, 0, time.UTC)
	open := func(t *testing.T) store.RateLimiter {
		s := newStore(t)
		t.Cleanup(func() { s.Close() })
		return s
	}
	allow := func(t *testing.T, s store.RateLimiter, key string, limit int, per time.Duration, at time.Time) bool {
		t.Helper()
		ok, err := s.Allow(ctx, key, limit, per, at)
		if err != nil {
			t.Fatalf("Allow(%q, %d, %v, %v): %v", key, limit, per, at, err)
		}
		return ok
	}

	t.Run("exactly N calls in any window of one period", func(t *testing.T) {
		s := open(t)
		key := uniqueNonce(t)
		for i, tc := range []struct {
			at   time.Duration
			want bool
		}{
			{0, true}, {10 * time.Second, true}, {20 * time.Second, true},
			{30 * time.Second, false}, // 4th within a minute
			{59*time.Second + 999*time.Millisecond, false},
			{60 * time.Second, true},  // the call at 0 has left the window
			{61 * time.Second, false}, // calls at 10s, 20s, 60s still in it
			{70 * time.Second, true},  // 10s has left
			{80 * time.Second, true},  // 20s has left
			{81 * time.Second, false},
		} {
			if got := allow(t, s, key, 3, time.Minute, t0.Add(tc.at)); got != tc.want {
				t.Fatalf("call %d at +%v: %v, want %v", i, tc.at, got, tc.want)
			}
		}
	})

	t.Run("refused calls are not counted", func(t *testing.T) {
		s := open(t)
		key := uniqueNonce(t)
		allow(t, s, key, 1, time.Minute, t0)
		for i := range 10 {
			if allow(t, s, key, 1, time.Minute, t0.Add(time.Duration(i)*time.Second)) {
				t.Fatal("call over the limit allowed")
			}
		}
		if !allow(t, s, key, 1, time.Minute, t0.Add(time.Minute)) {
			t.Fatal("refused calls kept the client locked out")
		}
	})

	t.Run("time going backwards counts as the latest time", func(t *testing.T) {
		s := open(t)
		key := uniqueNonce(t)
		if !allow(t, s, key, 1, time.Second, t0) {
			t.Fatal("first call refused")
		}
		if allow(t, s, key, 1, time.Second, t0.Add(-time.Hour)) {
			t.Fatal("a call from the past escaped the window")
		}
		if !allow(t, s, key, 1, time.Second, t0.Add(time.Second)) {
			t.Fatal("call after the window refused")
		}
	})

	t.Run("a call from the past is recorded at the latest time", func(t *testing.T) {
		s := open(t)
		key := uniqueNonce(t)
		// Were the second call recorded at its own time, an hour ago, it
		// would have left the window by the third and let it through.
		for i, tc := range []struct {
			at   time.Duration
			want bool
		}{
			{0, true}, {-time.Hour, true}, {500 * time.Millisecond, false}, {time.Second, true},
		} {
			if got := allow(t, s, key, 2, time.Second, t0.Add(tc.at)); got != tc.want {
				t.Fatalf("call %d at %+v: %v, want %v", i, tc.at, got, tc.want)
			}
		}
	})

	t.Run("keys are counted separately", func(t *testing.T) {
		s := open(t)
		a, b := uniqueNonce(t), uniqueNonce(t)
		if !allow(t, s, a, 1, time.Hour, t0) || !allow(t, s, b, 1, time.Hour, t0) || allow(t, s, a, 1, time.Hour, t0) {
			t.Fatal("one key's calls were counted against another")
		}
	})

	t.Run("a changed limit starts counting afresh", func(t *testing.T) {
		s := open(t)
		key := uniqueNonce(t)
		allow(t, s, key, 1, time.Hour, t0)
		if !allow(t, s, key, 2, time.Hour, t0) {
			t.Fatal("the old limit's count carried over to a new limit")
		}
	})

	t.Run("large counts never exceed the limit", func(t *testing.T) {
		s := open(t)
		key := uniqueNonce(t)
		const n = 10000
		// Spread 3n calls evenly over 3 s and check every 1 s window.
		var accepted []time.Duration
		for i := range 3 * n {
			at := time.Duration(i) * time.Second / n
			if allow(t, s, key, n, time.Second, t0.Add(at)) {
				accepted = append(accepted, at)
			}
		}
		lo := 0
		for hi := range accepted {
			for accepted[hi]-accepted[lo] >= time.Second {
				lo++
			}
			if hi-lo+1 > n {
				t.Fatalf("%d calls accepted in the window ending %v", hi-lo+1, accepted[hi])
			}
		}
		// A store may be conservative, but most of the offered calls pass.
		if len(accepted) < 2*n {
			t.Fatalf("accepted only %d of %d calls", len(accepted), 3*n)
		}
	})

	t.Run("exactly N of many concurrent calls are allowed", func(t *testing.T) {
		s := open(t)
		key := uniqueNonce(t)
		workers := o.Concurrency
		if workers <= 0 {
			workers = 1000
		}
		const limit = 10
		var allowed atomic.Int32
		var wg sync.WaitGroup
		start := make(chan struct{})
		for range workers {
			wg.Go(func() {
				<-start
				ok, err := s.Allow(ctx, key, limit, time.Hour, t0)
				if err != nil {
					t.Error(err)
				}
				if ok {
					allowed.Add(1)
				}
			})
		}
		close(start)
		wg.Wait()
		if got := allowed.Load(); got != limit {
			t.Fatalf("%d of %d concurrent calls allowed, want %d", got, workers, limit)
		}
	})

	t.Run("invalid arguments are errors, never allowed", func(t *testing.T) {
		s := open(t)
		for _, tc := range []struct {
			key   string
			limit int
			per   time.Duration
			want  error
		}{
			{"", 1, time.Second, store.ErrEmptyKey},
			{"k", 0, time.Second, store.ErrInvalidLimit},
			{"k", 1, 0, store.ErrInvalidLimit},
			{"k", -1, -time.Second, store.ErrInvalidLimit},
		} {
			ok, err := s.Allow(ctx, tc.key, tc.limit, tc.per, t0)
			if ok || !errors.Is(err, tc.want) {
				t.Errorf("Allow(%q, %d, %v) = %v, %v; want false, %v", tc.key, tc.limit, tc.per, ok, err, tc.want)
			}
		}
	})

	t.Run("a cancelled context is an error", func(t *testing.T) {
		s := open(t)
		cctx, cancel := context.WithCancel(ctx)
		cancel()
		if ok, err := s.Allow(cctx, uniqueNonce(t), 1, time.Second, t0); ok || err == nil {
			t.Fatalf("Allow with a cancelled context = %v, %v", ok, err)
		}
	})

	t.Run("closed store", func(t *testing.T) {
		s := newStore(t)
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
		if ok, err := s.Allow(ctx, uniqueNonce(t), 1, time.Second, t0); ok || !errors.Is(err, store.ErrClosed) {
			t.Fatalf("Allow after Close = %v, %v; want ErrClosed", ok, err)
		}
	})
}
