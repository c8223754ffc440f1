package storetest

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/agentid/agentid/store"
)

// Server is a real store server a fault test can stop and start again on
// the same address (testenv.Server).
type Server interface {
	Stop() error
	Start() error
}

// OutageOptions adapts TestOutage to a store.
type OutageOptions struct {
	// Durable says the server keeps its data across a clean restart
	// (PostgreSQL with logged tables; not Redis without persistence): a
	// revocation and a nonce recorded before the outage must still hold
	// after it.
	Durable bool
	// CallTimeout is each call's deadline during the test; 500ms when zero.
	CallTimeout time.Duration
	// Recovery bounds how long the store may take to answer again after
	// the server is back; 20s when zero.
	Recovery time.Duration
}

// TestOutage stops srv while goroutines keep calling CheckAndRecord and
// Allow on s, then starts it again. It requires that no call reports a
// fresh nonce or an allowed call together with an error, that no call
// outlives its context's deadline by much, that calls fail while the
// server is down, and that the same s answers again once the server is
// back, without being reopened. The suite does not close s.
func TestOutage(t *testing.T, s store.Backend, srv Server, o OutageOptions) {
	if o.CallTimeout <= 0 {
		o.CallTimeout = 500 * time.Millisecond
	}
	if o.Recovery <= 0 {
		o.Recovery = 20 * time.Second
	}
	// A call may overrun its deadline by scheduling on a loaded machine
	// (and the race detector), not by waiting for a dead server.
	const slack = 2 * time.Second
	ctx := context.Background()
	ttl := time.Hour
	before := uniqueNonce(t)
	mustFresh(t, s, before, ttl, true)
	at := time.Now().Truncate(time.Millisecond)
	if err := s.RevokeSession(ctx, before, at, ttl); err != nil {
		t.Fatalf("RevokeSession before the outage: %v", err)
	}

	var (
		stop                atomic.Bool
		ok, failed, hangs   atomic.Int64
		wrongOnError        atomic.Int64
		wg                  sync.WaitGroup
		firstErr, firstHang atomic.Value
	)
	call := func(f func(ctx context.Context) (bool, error)) {
		cctx, cancel := context.WithTimeout(ctx, o.CallTimeout)
		defer cancel()
		began := time.Now()
		yes, err := f(cctx)
		if took := time.Since(began); took > o.CallTimeout+slack {
			hangs.Add(1)
			firstHang.CompareAndSwap(nil, fmt.Sprintf("a call took %v with a deadline of %v (err %v)", took, o.CallTimeout, err))
		}
		switch {
		case err != nil && yes:
			wrongOnError.Add(1)
		case err != nil:
			failed.Add(1)
			firstErr.CompareAndSwap(nil, err.Error())
		default:
			ok.Add(1)
		}
	}
	base := uniqueNonce(t)
	for w := range 8 {
		wg.Go(func() {
			for i := 0; !stop.Load(); i++ {
				k := fmt.Sprintf("%s-%d-%d", base, w, i)
				call(func(ctx context.Context) (bool, error) { return s.CheckAndRecord(ctx, k, ttl) })
				call(func(ctx context.Context) (bool, error) { return s.Allow(ctx, k, 1000, time.Minute, time.Now()) })
			}
		})
	}
	defer func() { stop.Store(true); wg.Wait() }()

	time.Sleep(200 * time.Millisecond)
	if ok.Load() == 0 {
		t.Fatal("no call succeeded before the outage")
	}
	if err := srv.Stop(); err != nil {
		t.Fatalf("stopping the server: %v", err)
	}
	failedBefore := failed.Load()
	time.Sleep(time.Second)
	if failed.Load() == failedBefore {
		t.Error("no call failed while the server was down")
	}
	// Direct calls while down: errors, never fresh, allowed or known.
	cctx, cancel := context.WithTimeout(ctx, o.CallTimeout)
	if fresh, err := s.CheckAndRecord(cctx, uniqueNonce(t), ttl); err == nil || fresh {
		t.Errorf("CheckAndRecord while the server is down = %v, %v; want an error, not fresh", fresh, err)
	}
	if allowed, err := s.Allow(cctx, uniqueNonce(t), 10, time.Minute, time.Now()); err == nil || allowed {
		t.Errorf("Allow while the server is down = %v, %v; want an error, not allowed", allowed, err)
	}
	if _, revoked, err := s.SessionRevoked(cctx, before); err == nil || revoked {
		t.Errorf("SessionRevoked while the server is down = %v, %v; want an error", revoked, err)
	}
	if err := s.Ping(cctx); err == nil {
		t.Error("Ping while the server is down: want an error")
	}
	cancel()

	if err := srv.Start(); err != nil {
		t.Fatalf("starting the server again: %v", err)
	}
	deadline := time.Now().Add(o.Recovery)
	for {
		cctx, cancel := context.WithTimeout(ctx, o.CallTimeout)
		fresh, err := s.CheckAndRecord(cctx, uniqueNonce(t), ttl)
		cancel()
		if err == nil && fresh {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the store did not recover within %v of the server's restart: %v", o.Recovery, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
	okAfter := ok.Load()
	time.Sleep(200 * time.Millisecond)
	stop.Store(true)
	wg.Wait()
	if ok.Load() == okAfter {
		t.Error("the load's calls did not succeed again after recovery")
	}
	if n := wrongOnError.Load(); n > 0 {
		t.Errorf("%d calls returned fresh or allowed together with an error", n)
	}
	if n := hangs.Load(); n > 0 {
		t.Errorf("%d calls outlived their deadline: %v", n, firstHang.Load())
	}
	t.Logf("%d calls succeeded, %d failed during the outage (first error: %v)", ok.Load(), failed.Load(), firstErr.Load())

	if o.Durable {
		got, revoked, err := s.SessionRevoked(ctx, before)
		if err != nil || !revoked || !sameMillis(got, at) {
			t.Errorf("revocation after the restart: %v, %v, %v; want revoked at %v", got, revoked, err, at)
		}
		mustFresh(t, s, before, ttl, false)
	}
}

// TestReplicas checks the shared-store promise across independent Store
// values on one server, as separate replicas hold them: open returns a new
// one (its own connection pool) each call; the suite closes them.
func TestReplicas(t *testing.T, open func(t *testing.T) store.Backend, replicas int) {
	ctx := context.Background()
	rs := make([]store.Backend, replicas)
	for i := range rs {
		rs[i] = open(t)
		t.Cleanup(func() { _ = rs[i].Close() })
	}
	race := func(n int, f func(s store.Backend) (bool, error)) (yes, errs int64) {
		var y, e atomic.Int64
		var wg sync.WaitGroup
		gate := make(chan struct{})
		for i := range n {
			wg.Go(func() {
				<-gate
				ok, err := f(rs[i%replicas])
				if err != nil {
					e.Add(1)
				} else if ok {
					y.Add(1)
				}
			})
		}
		close(gate)
		wg.Wait()
		return y.Load(), e.Load()
	}

	t.Run("one nonce checked 1000 times across replicas is fresh once", func(t *testing.T) {
		n := uniqueNonce(t)
		fresh, errs := race(1000, func(s store.Backend) (bool, error) { return s.CheckAndRecord(ctx, n, time.Minute) })
		if fresh != 1 || errs != 0 {
			t.Fatalf("%d fresh, %d errors; want exactly 1 fresh, 0 errors", fresh, errs)
		}
	})
	t.Run("5 per minute across replicas allows 5 of 100 concurrent calls", func(t *testing.T) {
		key := uniqueNonce(t)
		now := time.Now()
		allowed, errs := race(100, func(s store.Backend) (bool, error) { return s.Allow(ctx, key, 5, time.Minute, now) })
		if allowed != 5 || errs != 0 {
			t.Fatalf("%d allowed, %d errors; want exactly 5 allowed, 0 errors", allowed, errs)
		}
	})
	t.Run("a revocation and a registration on one replica hold on the others", func(t *testing.T) {
		id := uniqueNonce(t)
		at := time.Now().Truncate(time.Millisecond)
		if err := rs[0].RevokeSession(ctx, id, at, time.Minute); err != nil {
			t.Fatal(err)
		}
		if err := rs[0].RecordToken(ctx, id, time.Minute); err != nil {
			t.Fatal(err)
		}
		for i, s := range rs[1:] {
			if got, ok, err := s.SessionRevoked(ctx, id); err != nil || !ok || !sameMillis(got, at) {
				t.Errorf("replica %d: SessionRevoked = %v, %v, %v", i+1, got, ok, err)
			}
			if ok, err := s.TokenKnown(ctx, id); err != nil || !ok {
				t.Errorf("replica %d: TokenKnown = %v, %v", i+1, ok, err)
			}
		}
	})
}
