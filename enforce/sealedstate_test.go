package enforce_test

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/agentid/agentid/aip"
	"github.com/agentid/agentid/approve"
	"github.com/agentid/agentid/enforce"
	"github.com/agentid/agentid/identity"
)

// Over HTTP in the 2026-07-28 era every request is a conversation of its
// own (NewRequestSession), so the rounds of one multi-round-trip call are
// bound through the request state: the core seals what the client receives
// and opens it when the retry comes back.

// oneRequest decides line in a conversation of its own, sent by session
// (an AIP session id, "" for none), and, when it is forwarded, the server's
// result. It returns the verdict on the request and the result the client
// received ("" when not forwarded).
func oneRequest(t *testing.T, c *enforce.Core, session, line, result string) (enforce.Verdict, string) {
	t.Helper()
	ctx := context.Background()
	s := enforce.NewRequestSession()
	caller := enforce.Caller{}
	if session != "" {
		caller.Token = &identity.Claims{SessionID: session, AgentID: "agent", ExpiresAt: time.Now().Add(time.Hour)}
	}
	v := c.FromCaller(ctx, s, []byte(line), caller)
	if v.Approval != nil {
		v = c.Resolve(v.Approval, approve.Approved)
	}
	if v.ToServer == nil {
		return v, ""
	}
	var sent struct {
		ID json.RawMessage `json:"id"`
	}
	json.Unmarshal(v.ToServer, &sent)
	resp := c.FromServer(ctx, s, []byte(`{"jsonrpc":"2.0","id":`+string(sent.ID)+`,"result":`+result+`}`))
	if resp.ToClient == nil {
		t.Fatalf("the server's answer did not reach the client")
	}
	var got struct {
		Result json.RawMessage `json:"result"`
	}
	json.Unmarshal(resp.ToClient, &got)
	return v, string(got.Result)
}

// stateOf is the requestState of a result the client received.
func stateOf(t *testing.T, result string) string {
	t.Helper()
	var r struct {
		RequestState *string `json:"requestState"`
	}
	if err := json.Unmarshal([]byte(result), &r); err != nil || r.RequestState == nil {
		t.Fatalf("no requestState in %s", result)
	}
	return *r.RequestState
}

func runCall(id int, tool, args, extra string) string {
	p := `{"name":` + quote(tool) + `,"arguments":` + args
	if extra != "" {
		p += "," + extra
	}
	return `{"jsonrpc":"2.0","id":` + itoa(id) + `,"method":"tools/call","params":` + p + `}}`
}

func forwardedParams(t *testing.T, v enforce.Verdict) map[string]json.RawMessage {
	t.Helper()
	var m struct {
		Params map[string]json.RawMessage `json:"params"`
	}
	if err := json.Unmarshal(v.ToServer, &m); err != nil {
		t.Fatal(err)
	}
	return m.Params
}

func TestRoundsOutsideASessionShareTheFirstDecisionThroughTheSealedState(t *testing.T) {
	clk := &clock{now: time.Unix(1_800_000_000, 0)}
	c := roundsCore(t, "enforce", clk)
	ls := `{"cmd":"ls"}`
	_, res := oneRequest(t, c, "sess-a", runCall(1, "run", ls, ""), inputRequired("server-state-1"))
	env := stateOf(t, res)
	if !strings.HasPrefix(env, "agentid.rs1.") || strings.Contains(res, "server-state-1") {
		t.Fatalf("the client received the server's state unsealed: %s", res)
	}
	v, res := oneRequest(t, c, "sess-a", runCall(2, "run", ls, retry(env)), inputRequired(""))
	if v.ToServer == nil {
		t.Fatalf("the retry was not forwarded: %s", v.ToClient)
	}
	if got := string(forwardedParams(t, v)["requestState"]); got != `"server-state-1"` {
		t.Fatalf("the server got requestState %s, want its own", got)
	}
	if !hasRecordEvent(v, enforce.EventRoundContinued) {
		t.Fatalf("the retry is not a continued round: %+v", v.Audit)
	}
	// The server's second result had no state: the client still gets an
	// envelope, and the server then gets no state at all.
	v, _ = oneRequest(t, c, "sess-a", runCall(3, "run", ls, retry(stateOf(t, res))), completeResult)
	if v.ToServer == nil {
		t.Fatalf("the third round was not forwarded: %s", v.ToClient)
	}
	if _, has := forwardedParams(t, v)["requestState"]; has {
		t.Fatalf("the server got a state it never sent: %s", v.ToServer)
	}
	// One unit for the three rounds: a new call is limited.
	if v, _ := oneRequest(t, c, "sess-a", runCall(4, "run", ls, ""), completeResult); v.ToServer != nil || errorCode(t, v.ToClient) != aip.CodeRateLimited {
		t.Fatalf("a new call after the rounds: forwarded %s, answered %s", v.ToServer, v.ToClient)
	}
}

func TestASealedStateIsHonouredOnceForTheSameCallAndCaller(t *testing.T) {
	ls := `{"cmd":"ls"}`
	first := func(t *testing.T) (*enforce.Core, *clock, string) {
		clk := &clock{now: time.Unix(1_800_000_000, 0)}
		c := roundsCore(t, "enforce", clk)
		_, res := oneRequest(t, c, "sess-a", runCall(1, "run", ls, ""), inputRequired("s1"))
		return c, clk, stateOf(t, res)
	}
	newCall := func(t *testing.T, v enforce.Verdict) {
		t.Helper()
		if v.ToServer != nil || errorCode(t, v.ToClient) != aip.CodeRateLimited {
			t.Fatalf("forwarded %s, answered %s; want the rate limit of a new call", v.ToServer, v.ToClient)
		}
	}
	t.Run("a used envelope is a new call", func(t *testing.T) {
		c, _, env := first(t)
		if v, _ := oneRequest(t, c, "sess-a", runCall(2, "run", ls, retry(env)), completeResult); v.ToServer == nil {
			t.Fatalf("first use: %s", v.ToClient)
		}
		v, _ := oneRequest(t, c, "sess-a", runCall(3, "run", ls, retry(env)), completeResult)
		newCall(t, v)
	})
	t.Run("another caller's envelope is a new call", func(t *testing.T) {
		c, _, env := first(t)
		v, _ := oneRequest(t, c, "sess-b", runCall(2, "run", ls, retry(env)), completeResult)
		newCall(t, v)
	})
	t.Run("an expired envelope is a new call", func(t *testing.T) {
		c, clk, env := first(t)
		clk.advance(enforce.RoundTTL + time.Second)
		// The hour's unit is still spent.
		v, _ := oneRequest(t, c, "sess-a", runCall(2, "run", ls, retry(env)), completeResult)
		newCall(t, v)
	})
	t.Run("a forged envelope is a new call", func(t *testing.T) {
		c, _, env := first(t)
		forged := flip(env, len("agentid.rs1.")+4)
		v, _ := oneRequest(t, c, "sess-a", runCall(2, "run", ls, retry(forged)), completeResult)
		newCall(t, v)
	})
	t.Run("an envelope with other arguments is refused", func(t *testing.T) {
		c, _, env := first(t)
		v, _ := oneRequest(t, c, "sess-a", runCall(2, "run", `{"cmd":"rm -rf /"}`, retry(env)), completeResult)
		if v.ToServer != nil || errorCode(t, v.ToClient) != aip.CodeForbidden || !hasRecordEvent(v, enforce.EventRoundMismatch) {
			t.Fatalf("forwarded %s, answered %s", v.ToServer, v.ToClient)
		}
	})
	t.Run("a state the client made up is forwarded as it is, as a new call", func(t *testing.T) {
		c, _, _ := first(t)
		v, _ := oneRequest(t, c, "sess-a", runCall(2, "echo", `{}`, retry("made-up")), completeResult)
		if v.ToServer == nil || string(forwardedParams(t, v)["requestState"]) != `"made-up"` {
			t.Fatalf("forwarded %s, answered %s", v.ToServer, v.ToClient)
		}
	})
}

func TestASealedStateCarriesTheApproval(t *testing.T) {
	clk := &clock{now: time.Unix(1_800_000_000, 0)}
	c := roundsCore(t, "enforce", clk)
	ctx := context.Background()
	s := enforce.NewRequestSession()
	v := c.FromCaller(ctx, s, []byte(runCall(1, "deploy", `{}`, "")), enforce.Caller{})
	if v.Approval == nil {
		t.Fatal("the first round was not asked")
	}
	v = c.Resolve(v.Approval, approve.Approved)
	resp := c.FromServer(ctx, s, []byte(`{"jsonrpc":"2.0","id":1,"result":`+inputRequired("s")+`}`))
	var got struct {
		Result json.RawMessage `json:"result"`
	}
	json.Unmarshal(resp.ToClient, &got)
	env := stateOf(t, string(got.Result))
	v = c.FromCaller(ctx, enforce.NewRequestSession(), []byte(runCall(2, "deploy", `{}`, retry(env))), enforce.Caller{})
	if v.Approval != nil || v.ToServer == nil {
		t.Fatalf("the retry was asked again or refused: %s", v.ToClient)
	}
}

func hasRecordEvent(v enforce.Verdict, event string) bool {
	for _, r := range v.Audit {
		if r.Event == event {
			return true
		}
	}
	return false
}
