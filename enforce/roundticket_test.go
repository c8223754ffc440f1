package enforce_test

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/agentid/agentid/aip"
	"github.com/agentid/agentid/enforce"
	"github.com/agentid/agentid/store/memory"
)

// A proxy that decides through a validation server (`agentid proxy
// --server`) presents the server's round ticket with the retry of a
// multi-round-trip call, so that the call spends one rate-limit unit at the
// server, as it does in a proxy that decides alone.

// serverRemote is a validation server reached in process: its core's Check.
type serverRemote struct{ server *enforce.Core }

func (r serverRemote) Check(ctx context.Context, call enforce.Call) (enforce.Check, error) {
	return r.server.Check(ctx, call), nil
}

func (serverRemote) Token(context.Context) (enforce.RemoteToken, error) {
	return enforce.RemoteToken{}, errors.New("no tokens here")
}

const permissiveLocal = `apiVersion: aip.io/v1alpha2
kind: AgentPolicy
metadata: {name: local}
spec:
  allowed_tools: [run, echo, write_file, deploy]
`

func TestThroughAServerTheRoundsOfOneCallSpendOneUnit(t *testing.T) {
	clk := &clock{now: time.Unix(1_800_000_000, 0)}
	srv := roundsCore(t, "enforce", clk)
	proxy := newCore(t, permissiveLocal, func(c *enforce.Config) { c.Now = clk.Now; c.Remote = serverRemote{srv} })
	ls := `{"cmd":"ls"}`
	newConversation(t, proxy, clk).run([]round{
		{tool: "run", args: ls, answer: inputRequired("s1")},
		{tool: "run", args: ls, params: retry("s1"), answer: inputRequired("s2")},
		{tool: "run", args: ls, params: retry("s2")},
		// The call's one unit is spent: a new call is limited.
		{tool: "run", args: ls, want: aip.CodeRateLimited},
	})
	// A retry the server answered without a ticket (a round of a call the
	// proxy never saw) is a new call there.
	newConversation(t, proxy, clk).run([]round{
		{tool: "run", args: ls, params: retry("unknown"), want: aip.CodeRateLimited},
	})
}

// checkRun asks c to decide the run tool with args, presenting ticket.
func checkRun(c *enforce.Core, args, ticket string) enforce.Check {
	return c.Check(context.Background(), enforce.Call{Tool: "run", Arguments: json.RawMessage(args), Round: ticket, Rounds: true})
}

func TestARoundTicketIsHonouredOnceForTheSameCall(t *testing.T) {
	ls := `{"cmd":"ls"}`
	first := func(t *testing.T) (*enforce.Core, *clock, string) {
		clk := &clock{now: time.Unix(1_800_000_000, 0)}
		c := roundsCore(t, "enforce", clk)
		r := checkRun(c, ls, "")
		if r.Decision != aip.DecisionAllow || r.Round == "" {
			t.Fatalf("first round: %+v", r)
		}
		return c, clk, r.Round
	}
	t.Run("the retry with the ticket spends no unit", func(t *testing.T) {
		c, _, ticket := first(t)
		r := checkRun(c, ls, ticket)
		if r.Decision != aip.DecisionAllow || r.Round == "" || r.Round == ticket {
			t.Fatalf("retry: %+v", r)
		}
		if !hasEvent(r, enforce.EventRoundContinued) {
			t.Fatalf("the retry is not audited as a continued round: %+v", r.Audit)
		}
		// And the next round continues with the new ticket.
		if r := checkRun(c, ls, r.Round); r.Decision != aip.DecisionAllow {
			t.Fatalf("third round: %+v", r)
		}
	})
	same := func(s string) string { return s }
	for _, tc := range []struct {
		name    string
		ticket  func(string) string
		useOnce bool // the ticket is used once before
		change  func(*testing.T, *enforce.Core, *clock)
	}{
		{name: "a ticket used once already", ticket: same, useOnce: true},
		{name: "a forged MAC", ticket: func(s string) string { return flip(s, len(s)-10) }},
		{name: "the MAC's trailing bits changed", ticket: func(s string) string { return s[:len(s)-1] + string(s[len(s)-1]^1) }},
		{name: "a forged payload", ticket: func(s string) string { return flip(s, strings.IndexByte(s, '.')+20) }},
		{name: "no ticket at all", ticket: func(string) string { return "r1.garbage" }},
		{name: "another version", ticket: func(s string) string { return "r2." + strings.TrimPrefix(s, "r1.") }},
		{name: "an expired ticket", ticket: same, change: func(_ *testing.T, _ *enforce.Core, clk *clock) {
			clk.advance(enforce.RoundTTL + time.Second)
		}},
		{name: "a ticket of the policy before a reload", ticket: same, change: func(t *testing.T, c *enforce.Core, _ *clock) {
			if err := c.SetPolicy(compile(t, strings.Replace(strings.Replace(roundsPolicy, "MODE", "enforce", 1), "tool: echo", "tool: echo2", 1))); err != nil {
				t.Fatal(err)
			}
		}},
	} {
		t.Run(tc.name+" is a new call", func(t *testing.T) {
			c, clk, ticket := first(t)
			if tc.useOnce {
				if r := checkRun(c, ls, ticket); r.Decision != aip.DecisionAllow {
					t.Fatalf("first use: %+v", r)
				}
			}
			if tc.change != nil {
				tc.change(t, c, clk)
			}
			// A new call: the hour's one unit is spent (the rate limit's
			// state outlives the reload and the clock moved less than the
			// hour).
			if r := checkRun(c, ls, tc.ticket(ticket)); r.Code != aip.CodeRateLimited || hasEvent(r, enforce.EventRoundContinued) {
				t.Fatalf("got %+v, want the rate limit of a new call", r)
			}
		})
	}
	for _, tc := range []struct{ name, tool, args, reason string }{
		{"other arguments", "run", `{"cmd":"rm -rf /"}`, "Retry changes the arguments of the call it continues"},
		{"another tool", "echo", ls, "Retry names another tool than the call it continues"},
	} {
		t.Run("a ticket presented with "+tc.name+" is refused", func(t *testing.T) {
			c, _, ticket := first(t)
			r := c.Check(context.Background(), enforce.Call{Tool: tc.tool, Arguments: json.RawMessage(tc.args), Round: ticket, Rounds: true})
			if r.Code != aip.CodeForbidden || r.Reason != tc.reason || !hasEvent(r, enforce.EventRoundMismatch) {
				t.Fatalf("got %+v", r)
			}
		})
	}
}

func TestReplicasSharingTheRoundKeyHonourEachOthersTickets(t *testing.T) {
	clk := &clock{now: time.Unix(1_800_000_000, 0)}
	key, nonces, limits := enforce.NewRoundKey(), memory.NewNonceStore(memory.Options{Now: clk.Now}), memory.NewRateLimiter()
	t.Cleanup(func() { nonces.Close(); limits.Close() })
	replica := func(key []byte) *enforce.Core {
		return newCore(t, strings.Replace(roundsPolicy, "MODE", "enforce", 1), func(c *enforce.Config) {
			c.Now, c.RoundKey, c.RateLimits, c.Identity.Nonces = clk.Now, key, limits, nonces
		})
	}
	a, b, other := replica(key), replica(key), replica(enforce.NewRoundKey())
	ls := `{"cmd":"ls"}`
	ticket := checkRun(a, ls, "").Round
	if r := checkRun(other, ls, ticket); r.Code != aip.CodeRateLimited {
		t.Fatalf("a replica with another key honoured the ticket: %+v", r)
	}
	if r := checkRun(b, ls, ticket); r.Decision != aip.DecisionAllow {
		t.Fatalf("a replica with the same key: %+v", r)
	}
	if r := checkRun(a, ls, ticket); r.Code != aip.CodeRateLimited {
		t.Fatalf("the ticket was honoured twice across replicas: %+v", r)
	}
}

func TestTheRoundTicketsOfOneCallEnd(t *testing.T) {
	clk := &clock{now: time.Unix(1_800_000_000, 0)}
	c := roundsCore(t, "enforce", clk)
	ticket := checkRun(c, `{}`, "").Round
	for round := 2; round <= enforce.MaxRoundsPerCall; round++ {
		r := checkRun(c, `{}`, ticket)
		if r.Decision != aip.DecisionAllow {
			t.Fatalf("round %d: %+v", round, r)
		}
		ticket = r.Round
	}
	if ticket != "" {
		t.Fatalf("round %d still has a ticket", enforce.MaxRoundsPerCall)
	}
}

func TestConfigRefusesAShortRoundKey(t *testing.T) {
	p := compile(t, strings.Replace(roundsPolicy, "MODE", "enforce", 1))
	if _, err := enforce.New(enforce.Config{Policy: p, RoundKey: make([]byte, 16)}); err == nil {
		t.Fatal("a 16-byte round key was accepted")
	}
}

func hasEvent(r enforce.Check, event string) bool {
	for _, rec := range r.Audit {
		if rec.Event == event {
			return true
		}
	}
	return false
}

// flip changes the base64url character at i to another one.
func flip(s string, i int) string {
	c := byte('A')
	if s[i] == 'A' {
		c = 'B'
	}
	return s[:i] + string(c) + s[i+1:]
}

func TestATicketIsIssuedOnlyToCallersThatCarryRounds(t *testing.T) {
	clk := &clock{now: time.Unix(1_800_000_000, 0)}
	c := roundsCore(t, "enforce", clk)
	if r := c.Check(context.Background(), enforce.Call{Tool: "echo", Arguments: json.RawMessage(`{}`)}); r.Decision != aip.DecisionAllow || r.Round != "" {
		t.Fatalf("a caller without rounds: %+v", r)
	}
	if r := c.Check(context.Background(), enforce.Call{Tool: "echo", Arguments: json.RawMessage(`{}`), Rounds: true}); r.Round == "" {
		t.Fatalf("a caller with rounds got no ticket: %+v", r)
	}
}
