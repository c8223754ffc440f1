package alert_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/agentid/agentid/alert"
	"github.com/agentid/agentid/enforce"
	"github.com/agentid/agentid/policy"
)

type downLimiter struct{}

func (downLimiter) Allow(context.Context, string, int, time.Duration, time.Time) (bool, error) {
	return false, errors.New("store down")
}
func (downLimiter) Close() error { return nil }

func TestFailOpenPostsTheAlertWebhookOncePerOutage(t *testing.T) {
	got := make(chan alert.Body, 4)
	hook := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var b alert.Body
		raw, _ := io.ReadAll(r.Body)
		if r.Header.Get("Content-Type") != "application/json" || json.Unmarshal(raw, &b) != nil {
			t.Errorf("webhook got %q", raw)
		}
		got <- b
	}))
	defer hook.Close()
	doc := `apiVersion: aip.io/v1alpha2
kind: AgentPolicy
metadata: {name: alerting}
spec:
  allowed_tools: [echo]
  tool_rules:
    - tool: echo
      rate_limit: "5/minute"
  server:
    failover_mode: fail_open
    fail_open_constraints:
      alert_webhook: "` + hook.URL + `/hook"
`
	p, _, err := policy.Parse([]byte(doc))
	if err != nil {
		t.Fatal(err)
	}
	compiled, err := enforce.Compile(p, enforce.LoadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	poster := alert.New(nil)
	c, err := enforce.New(enforce.Config{Policy: compiled, RateLimits: downLimiter{}, OnFailOpen: poster.FailOpen})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	for i := 0; i < 3; i++ {
		res := c.Check(context.Background(), enforce.Call{Tool: "echo", Arguments: []byte(`{}`)})
		if res.Decision != "allow" {
			t.Fatalf("fail_open refused call %d: %+v", i, res)
		}
	}
	select {
	case b := <-got:
		if b.Event != "fail_open" || b.Tool != "echo" || !strings.Contains(b.Unavailable, "rate-limit") || len(b.PolicyHash) != 64 {
			t.Fatalf("alert %+v", b)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("no alert posted")
	}
	select {
	case b := <-got:
		t.Fatalf("a second alert in one outage: %+v", b)
	case <-time.After(200 * time.Millisecond):
	}
}

func TestPostRefusesAPlainHTTPWebhookOffLoopback(t *testing.T) {
	err := alert.New(nil).Post(context.Background(), enforce.FailOpenAlert{Webhook: "http://alerts.example.com/hook"})
	if err == nil {
		t.Fatal("posted over plain HTTP to a remote host")
	}
}
