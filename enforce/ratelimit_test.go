package enforce_test

import (
	"context"
	"errors"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/agentid/agentid/aip"
	"github.com/agentid/agentid/enforce"
	"github.com/agentid/agentid/store"
	"github.com/agentid/agentid/store/memory"
)

type clock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *clock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.now }
func (c *clock) advance(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

// downStore is a rate-limit store that cannot be reached until it is fixed.
type downStore struct {
	memory.RateLimiter
	down atomic.Bool
}

func (d *downStore) Allow(ctx context.Context, key string, limit int, per time.Duration, now time.Time) (bool, error) {
	if d.down.Load() {
		return false, errors.New("connection refused")
	}
	return d.RateLimiter.Allow(ctx, key, limit, per, now)
}

func coreWith(t *testing.T, yaml string, limits store.RateLimiter, clk *clock) *enforce.Core {
	t.Helper()
	return newCore(t, yaml, func(c *enforce.Config) { c.RateLimits, c.Now = limits, clk.Now })
}

const limitedPolicy = `apiVersion: aip.io/v1alpha2
kind: AgentPolicy
metadata: {name: limited}
spec:
  mode: MODE
  tool_rules:
    - tool: t
      rate_limit: 2/minute
      allow_args: {a: "^x$"}
    - tool: u
      rate_limit: 2/minute
`

func limited(mode string) string { return strings.Replace(limitedPolicy, "MODE", mode, 1) }

// outcome decides one call and returns the answer's code, 0 when forwarded.
func outcome(t *testing.T, c *enforce.Core, s *enforce.Session, id int, tool, args string) int {
	t.Helper()
	v := c.FromClient(context.Background(), s, call(id, tool, args))
	if v.ToServer != nil {
		return 0
	}
	return errorCode(t, v.ToClient)
}

func TestRateLimits(t *testing.T) {
	t0 := time.Date(2026, 1, 24, 10, 30, 0, 0, time.UTC)
	t.Run("the call after the limit within the period is refused, and allowed once the period has passed", func(t *testing.T) {
		clk := &clock{now: t0}
		c := coreWith(t, limited("enforce"), nil, clk)
		s := enforce.NewSession()
		for i, tc := range []struct {
			at   time.Duration
			want int
		}{{0, 0}, {time.Second, 0}, {time.Second, aip.CodeRateLimited}, {57 * time.Second, aip.CodeRateLimited},
			{time.Second, 0}, {time.Second, 0}, {time.Second, aip.CodeRateLimited}} {
			clk.advance(tc.at)
			if got := outcome(t, c, s, 100+i, "u", `{}`); got != tc.want {
				t.Fatalf("call %d: code %d, want %d", i, got, tc.want)
			}
		}
	})
	t.Run("rate limits are enforced in monitor mode", func(t *testing.T) {
		c := coreWith(t, limited("monitor"), nil, &clock{now: t0})
		s := enforce.NewSession()
		outcome(t, c, s, 1, "u", `{}`)
		outcome(t, c, s, 2, "u", `{}`)
		v := c.FromClient(context.Background(), s, call(3, "u", `{}`))
		if v.ToServer != nil || errorCode(t, v.ToClient) != aip.CodeRateLimited || v.Audit[0].Decision != aip.AuditRateLimited {
			t.Fatalf("monitor mode let a rate-limited call through: %+v", v)
		}
	})
	t.Run("calls blocked by a later check still spend quota", func(t *testing.T) {
		c := coreWith(t, limited("enforce"), nil, &clock{now: t0})
		s := enforce.NewSession()
		outcome(t, c, s, 1, "t", `{"a":"bad"}`)
		outcome(t, c, s, 2, "t", `{"a":"bad"}`)
		if got := outcome(t, c, s, 3, "t", `{"a":"x"}`); got != aip.CodeRateLimited {
			t.Fatalf("third call: %d", got)
		}
	})
	t.Run("the limit is counted per normalized tool name, shared by every session", func(t *testing.T) {
		c := coreWith(t, limited("enforce"), nil, &clock{now: t0})
		outcome(t, c, enforce.NewSession(), 1, "U", `{}`)
		outcome(t, c, enforce.NewSession(), 2, "\u200bu", `{}`)
		if got := outcome(t, c, enforce.NewSession(), 3, "u", `{}`); got != aip.CodeRateLimited {
			t.Fatalf("variant names and other sessions did not share the quota: %d", got)
		}
		if got := outcome(t, c, enforce.NewSession(), 4, "t", `{"a":"x"}`); got != 0 {
			t.Fatalf("another tool has its own quota: %d", got)
		}
	})
	t.Run("two cores sharing a store share the limit", func(t *testing.T) {
		shared := memory.NewRateLimiter()
		clk := &clock{now: t0}
		a, b := coreWith(t, limited("enforce"), shared, clk), coreWith(t, limited("enforce"), shared, clk)
		outcome(t, a, enforce.NewSession(), 1, "u", `{}`)
		outcome(t, b, enforce.NewSession(), 1, "u", `{}`)
		if got := outcome(t, a, enforce.NewSession(), 2, "u", `{}`); got != aip.CodeRateLimited {
			t.Fatalf("replicas counted separately: %d", got)
		}
	})
}

const failoverPolicy = `apiVersion: aip.io/v1alpha2
kind: AgentPolicy
metadata: {name: failover}
spec:
  tool_rules:
    - tool: u
      rate_limit: 1/minute
    - tool: v
      rate_limit: 1/minute
  server:
    FAILOVER
`

func TestRateLimitStoreFailureAppliesFailoverMode(t *testing.T) {
	t0 := time.Date(2026, 1, 24, 10, 30, 0, 0, time.UTC)
	cases := []struct {
		name     string
		failover string
		calls    []string // tools called in order while the store is down
		want     []int
	}{
		{"fail_closed refuses with -32001 validation_unavailable", "failover_mode: fail_closed",
			[]string{"u"}, []int{aip.CodeForbidden}},
		{"unset failover_mode is fail_closed", "listen: 127.0.0.1:8080",
			[]string{"u"}, []int{aip.CodeForbidden}},
		{"fail_open lets calls through uncounted", "failover_mode: fail_open",
			[]string{"u", "u", "u"}, []int{0, 0, 0}},
		{"fail_open stops after max_requests", "failover_mode: fail_open\n    fail_open_constraints: {max_requests: 2}",
			[]string{"u", "v", "u"}, []int{0, 0, aip.CodeForbidden}},
		{"fail_open only for allowed_tools", "failover_mode: fail_open\n    fail_open_constraints: {allowed_tools: [u]}",
			[]string{"u", "v"}, []int{0, aip.CodeForbidden}},
		{"local_policy counts in this process", "failover_mode: local_policy",
			[]string{"u", "u", "v"}, []int{0, aip.CodeRateLimited, 0}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			st := &downStore{RateLimiter: *memory.NewRateLimiter()}
			st.down.Store(true)
			c := coreWith(t, strings.Replace(failoverPolicy, "FAILOVER", tc.failover, 1), st, &clock{now: t0})
			s := enforce.NewSession()
			for i, tool := range tc.calls {
				v := c.FromClient(context.Background(), s, call(i+1, tool, `{}`))
				got := 0
				if v.ToServer == nil {
					got = errorCode(t, v.ToClient)
				}
				if got != tc.want[i] {
					t.Fatalf("call %d (%s): code %d, want %d (%s)", i+1, tool, got, tc.want[i], v.ToClient)
				}
				if got == aip.CodeForbidden && !strings.Contains(string(v.ToClient), "validation_unavailable") {
					t.Fatalf("refusal does not say validation_unavailable: %s", v.ToClient)
				}
				if len(v.Audit) == 0 {
					t.Fatalf("call %d: a call decided without the store was not audited", i+1)
				}
			}
		})
	}
}

func TestFailOpenEndsWhenTheStoreRecovers(t *testing.T) {
	st := &downStore{RateLimiter: *memory.NewRateLimiter()}
	st.down.Store(true)
	c := coreWith(t, strings.Replace(failoverPolicy, "FAILOVER", "failover_mode: fail_open\n    fail_open_constraints: {max_requests: 1}", 1), st, &clock{now: time.Now()})
	s := enforce.NewSession()
	if got := outcome(t, c, s, 1, "u", `{}`); got != 0 {
		t.Fatalf("first fail-open call: %d", got)
	}
	if got := outcome(t, c, s, 2, "u", `{}`); got != aip.CodeForbidden {
		t.Fatalf("over max_requests: %d", got)
	}
	st.down.Store(false)
	if got := outcome(t, c, s, 3, "v", `{}`); got != 0 {
		t.Fatalf("store back: %d", got)
	}
	st.down.Store(true)
	if got := outcome(t, c, s, 4, "v", `{}`); got != 0 {
		t.Fatalf("a new outage starts a new max_requests count: %d", got)
	}
}
