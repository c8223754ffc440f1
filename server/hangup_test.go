package server_test

import (
	"context"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/agentid/agentid/enforce"
	"github.com/agentid/agentid/server"
)

// gateStore is a rate-limit store that answers once released, or fails
// when the caller's context ends first.
type gateStore struct {
	entered, release chan struct{}
	done             chan error
}

func (g gateStore) Allow(ctx context.Context, _ string, _ int, _ time.Duration, _ time.Time) (bool, error) {
	g.entered <- struct{}{}
	select {
	case <-g.release:
		g.done <- nil
		return true, nil
	case <-ctx.Done():
		g.done <- ctx.Err()
		return false, ctx.Err()
	}
}
func (gateStore) Close() error { return nil }

func TestAClientThatHangsUpDoesNotLookLikeAStoreOutage(t *testing.T) {
	g := gateStore{entered: make(chan struct{}, 1), release: make(chan struct{}), done: make(chan error, 1)}
	var alerts atomic.Int64
	policy := strings.Replace(basePolicy, "  tool_rules:", "  server:\n    timeout: 5s\n    failover_mode: fail_open\n    fail_open_constraints: {allowed_tools: [limited]}\n  tool_rules:", 1)
	ts := newTestServer(t, server.Config{RateLimits: g, OnFailOpen: func(enforce.FailOpenAlert) { alerts.Add(1) }}, policy)

	ctx, cancel := context.WithCancel(context.Background())
	req, _ := http.NewRequestWithContext(ctx, "POST", ts.url+"/v1/validate", strings.NewReader(`{"tool":"limited","arguments":{}}`))
	req.Header.Set("Content-Type", "application/json")
	go func() {
		if resp, err := http.DefaultClient.Do(req); err == nil {
			resp.Body.Close()
		}
	}()
	<-g.entered
	cancel() // the client hangs up while the store is asked
	time.Sleep(100 * time.Millisecond)
	close(g.release)
	if err := <-g.done; err != nil {
		t.Fatalf("the store call was cut short by the client's hang-up: %v", err)
	}
	if n := alerts.Load(); n != 0 {
		t.Fatalf("a hang-up raised %d fail_open alerts", n)
	}
	m := ts.do(t, "GET", "/metrics", "")
	if !strings.Contains(m.raw, "aip_fail_open_requests_total 0") {
		t.Fatalf("a hang-up counted as a fail_open request")
	}
}
