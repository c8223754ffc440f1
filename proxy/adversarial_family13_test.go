package proxy

import (
	"context"
	"encoding/json"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/agentid/agentid/approve"
)

// Family 13 (issue #9): one logical call, one decision. A 2026-07-28 server
// answers a tools/call with resultType input_required, and the client
// retries it with inputResponses and the request state: the retry must not
// spend a second rate-limit unit or ask a second approval, and a client
// must not use a request state to get a different call through on the first
// call's decision.

const family13Policy = `apiVersion: aip.io/v1alpha2
kind: AgentPolicy
metadata: {name: family13}
spec:
  tool_rules:
    - tool: run
      rate_limit: 1/hour
    - tool: write_file
      action: ask
`

// mrtrServer answers every tools/call without inputResponses with an
// input_required result whose request state names the call's arguments,
// and a retry with a complete result.
func mrtrServer(method string, params json.RawMessage) string {
	if method != "tools/call" {
		return `{}`
	}
	var p struct {
		Arguments      json.RawMessage `json:"arguments"`
		InputResponses json.RawMessage `json:"inputResponses"`
	}
	_ = json.Unmarshal(params, &p)
	if p.InputResponses == nil {
		state, _ := json.Marshal("for " + string(p.Arguments))
		return `{"resultType":"input_required","inputRequests":{"ok":{"method":"elicitation/create","params":{"mode":"form","message":"Proceed?","requestedSchema":{"type":"object","properties":{}}}}},"requestState":` + string(state) + `}`
	}
	return `{"resultType":"complete","content":[{"type":"text","text":"done"}]}`
}

// stateOf returns the request state of an input_required answer.
func stateOf(t *testing.T, m map[string]any) string {
	t.Helper()
	r, _ := m["result"].(map[string]any)
	s, ok := r["requestState"].(string)
	if !ok || r["resultType"] != "input_required" {
		t.Fatalf("not an input_required result: %v", m)
	}
	return s
}

func family13Call(id, tool, args, state string) string {
	line := `{"jsonrpc":"2.0","id":` + id + `,"method":"tools/call","params":{"name":"` + tool + `","arguments":` + args
	if state != "" {
		s, _ := json.Marshal(state)
		line += `,"inputResponses":{"ok":{"action":"accept","content":{}}},"requestState":` + string(s)
	}
	return line + `}}`
}

func TestAdversarialFamily13RequestStatesBuyNothing(t *testing.T) {
	for _, tc := range []struct {
		name string
		// play sends the attack after a first call to run {"c":"a"} was
		// answered input_required with state; it returns the answer.
		play func(h *harness, state string) map[string]any
		code int
	}{
		{"the state of one call with the arguments of another", func(h *harness, state string) map[string]any {
			h.send(family13Call("2", "run", `{"c":"b"}`, state))
			return h.recv()
		}, -32001},
		{"the state of one call naming another tool", func(h *harness, state string) map[string]any {
			h.send(family13Call("2", "write_file", `{"c":"a"}`, state))
			return h.recv()
		}, -32001},
		{"a forged state", func(h *harness, _ string) map[string]any {
			h.send(family13Call("2", "run", `{"c":"a"}`, "forged"))
			return h.recv()
		}, -32002},
		{"a state replayed after its retry", func(h *harness, state string) map[string]any {
			h.send(family13Call("2", "run", `{"c":"a"}`, state))
			h.recv()
			h.send(family13Call("3", "run", `{"c":"a"}`, state))
			return h.recv()
		}, -32002},
		{"a state under a case-variant key", func(h *harness, state string) map[string]any {
			s, _ := json.Marshal(state)
			h.send(`{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"run","arguments":{"c":"b"},"RequestState":` + string(s) + `}}`)
			return h.recv()
		}, -32001},
		{"a state under an escaped key", func(h *harness, state string) map[string]any {
			s, _ := json.Marshal(state)
			h.send(`{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"run","arguments":{"c":"b"},"request\u0053tate":` + string(s) + `}}`)
			return h.recv()
		}, -32001},
		{"the retry of a call as a notification with other arguments", func(h *harness, state string) map[string]any {
			h.send(`{"jsonrpc":"2.0","method":"tools/call","params":{"name":"run","arguments":{"c":"b"},"requestState":` + quoteJSON(state) + `}}`)
			// The notification is dropped unanswered; the real retry then
			// finds its round used up.
			h.send(family13Call("2", "run", `{"c":"a"}`, state))
			return h.recv()
		}, -32002},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := startHarness(t, Config{Core: mustCore(t, family13Policy)}, mrtrServer)
			h.send(family13Call("1", "run", `{"c":"a"}`, ""))
			state := stateOf(t, h.recv())
			if got := tc.play(h, state); errCode(got) != tc.code {
				t.Fatalf("got %v, want %d", got, tc.code)
			}
			h.sync()
			for _, l := range h.received()[1:] {
				if !strings.Contains(l, `"c":"a"`) || !strings.Contains(l, "inputResponses") {
					t.Fatalf("the server received %s", l)
				}
			}
		})
	}
}

func TestAdversarialFamily13OneApprovalPerLogicalCall(t *testing.T) {
	var asked atomic.Int32
	approver := approve.Func(func(context.Context, approve.Request) (approve.Answer, error) {
		asked.Add(1)
		return approve.Approved, nil
	})
	h := startHarness(t, Config{Core: mustCore(t, family13Policy), Approver: approver}, mrtrServer)
	// Another call with an approved call's state is refused, not asked.
	h.send(family13Call("1", "write_file", `{"path":"/w"}`, ""))
	state := stateOf(t, h.recv())
	h.send(family13Call("2", "write_file", `{"path":"/etc/passwd"}`, state))
	if m := h.recv(); errCode(m) != -32001 || asked.Load() != 1 {
		t.Fatalf("got %v after %d approvals", m, asked.Load())
	}
	// The retry of an approved call is not asked again.
	h.send(family13Call("3", "write_file", `{"path":"/w"}`, ""))
	state = stateOf(t, h.recv())
	h.send(family13Call("4", "write_file", `{"path":"/w"}`, state))
	if m := h.recv(); errCode(m) != 0 {
		t.Fatalf("the retry of an approved call: %v", m)
	}
	if n := asked.Load(); n != 2 {
		t.Fatalf("asked %d times for two calls", n)
	}
	h.sync()
	for _, l := range h.received() {
		if strings.Contains(l, "/etc/passwd") {
			t.Fatalf("the server received %s", l)
		}
	}
	if !strings.Contains(h.audit.String(), `"event":"ROUND_CONTINUED"`) || !strings.Contains(h.audit.String(), `"event":"ROUND_MISMATCH"`) {
		t.Fatalf("audit log:\n%s", h.audit.String())
	}
}

func quoteJSON(s string) string { b, _ := json.Marshal(s); return string(b) }

// Family 12 meets 13: in the 2026-07-28 era the server's requests travel
// inside input_required results, and denied_methods still governs them.
func TestAdversarialFamily13DeniedMethodsInsideInputRequests(t *testing.T) {
	const denying = family13Policy + "  denied_methods: [sampling/createMessage]\n"
	for _, result := range []string{
		`{"resultType":"input_required","inputRequests":{"s":{"method":"sampling/createMessage","params":{"messages":[],"maxTokens":1}}}}`,
		`{"resultType":"input_required","inputRequests":{"e":{"method":"elicitation/create","params":{}},"s":{"method":"sampling\/createMessage"}},"requestState":"x"}`,
		`{"inputRequests":{"s":{"method":"sampling/createMessage"}}}`,
		`{"resultType":"input_required","InputRequests":{"s":{"Method":"sampling/createMessage"}}}`,
	} {
		h := startHarness(t, Config{Core: mustCore(t, denying)}, func(string, json.RawMessage) string { return result })
		h.send(family13Call("1", "run", `{}`, ""))
		m := h.recv()
		if errCode(m) != -32006 || strings.Contains(mustJSON(t, m), "inputRequests") {
			t.Fatalf("result %s reached the client as %v", result, m)
		}
	}
}

func mustJSON(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
