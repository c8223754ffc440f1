package server_test

import (
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/agentid/agentid/server"
)

const identityPolicy = `apiVersion: aip.io/v1alpha2
kind: AgentPolicy
metadata: {name: NAME}
spec:
  allowed_tools: [TOOL]
  identity:
    enabled: true
    require_token: true
    audience: NAME
`

func tenantPolicy(name, tool string) string {
	return strings.NewReplacer("NAME", name, "TOOL", tool).Replace(identityPolicy)
}

const adminToken = "s3cret-admin-token"

// binding is an agent's binding context as it reports it to /v1/token.
const binding = `"binding":{"process_id":42,"hostname":"agent-host","policy_path":"/agent/policy.yaml"}`

func (ts *testServer) token(t *testing.T, body string) (token, session string) {
	t.Helper()
	r := ts.do(t, "POST", "/v1/token", body, "Authorization: Bearer "+adminToken)
	tok, _ := r.body["token"].(string)
	if r.status != 200 || tok == "" {
		t.Fatalf("token: %d %s", r.status, r.raw)
	}
	s, _ := r.body["session_id"].(string)
	return tok, s
}

func TestTokensAreSingleUseAndOnlyInTheHeader(t *testing.T) {
	ts := newTestServer(t, server.Config{AdminToken: []byte(adminToken)}, tenantPolicy("team-a", "read_file"))
	call := `{"tool":"read_file","arguments":{}}`

	if r := ts.do(t, "POST", "/v1/validate", call); r.status != 401 || r.body["error"] != "token_required" {
		t.Fatalf("no token: %d %s", r.status, r.raw)
	}
	tok, _ := ts.token(t, `{`+binding+`}`)
	if r := ts.do(t, "POST", "/v1/validate", `{"tool":"read_file","arguments":{},"token":"`+tok+`"}`); r.status != 401 || r.body["error"] != "token_required" {
		t.Fatalf("token in the body was read: %d %s", r.status, r.raw)
	}
	if r := ts.do(t, "POST", "/v1/validate?token="+tok, call); r.status != 401 || r.body["error"] != "token_required" {
		t.Fatalf("token in the query was read: %d %s", r.status, r.raw)
	}
	if r := ts.do(t, "POST", "/v1/validate", call, "Authorization: Basic dXNlcjpwYXNz"); r.status != 401 || r.body["error"] != "token_required" {
		t.Fatalf("Basic credentials: %d %s", r.status, r.raw)
	}
	r := ts.do(t, "POST", "/v1/validate", call, "Authorization: bearer "+tok)
	if r.status != 200 || r.body["decision"] != "allow" {
		t.Fatalf("valid token (lower-case scheme): %d %s", r.status, r.raw)
	}
	status, _ := r.body["token_status"].(map[string]any)
	if status["valid"] != true || status["expires_in"].(float64) <= 0 {
		t.Fatalf("token_status %v", status)
	}
	if r := ts.do(t, "POST", "/v1/validate", call, "Authorization: Bearer "+tok); r.status != 401 || r.body["token_error"] != "replay_detected" {
		t.Fatalf("replay: %d %s", r.status, r.raw)
	}
	for _, bad := range []string{"invalid-token-12345", "a.b.c", "Bearer"} {
		if r := ts.do(t, "POST", "/v1/validate", call, "Authorization: Bearer "+bad); r.status != 401 || r.body["error"] != "token_invalid" || r.body["token_error"] == nil {
			t.Fatalf("token %q: %d %s", bad, r.status, r.raw)
		}
	}
	if r := ts.do(t, "POST", "/v1/token", `{`+binding+`}`, "Authorization: Bearer "+tok); r.status != 401 {
		t.Fatalf("an agent token obtained a token: %d %s", r.status, r.raw)
	}
	if r := ts.do(t, "POST", "/v1/token", `{}`, "Authorization: Bearer "+adminToken); r.status != 400 {
		t.Fatalf("a token without the agent's binding: %d %s", r.status, r.raw)
	}
}

func TestATeamATokenCannotActUnderTeamBsPolicy(t *testing.T) {
	ts := newTestServer(t, server.Config{AdminToken: []byte(adminToken)},
		tenantPolicy("team-a", "tool_a"), tenantPolicy("team-b", "tool_b"))
	tokA, _ := ts.token(t, `{"policy":"team-a",`+binding+`}`)
	r := ts.do(t, "POST", "/v1/validate", `{"tool":"tool_b","arguments":{}}`, "Authorization: Bearer "+tokA)
	if r.status != 200 || r.body["decision"] != "block" {
		t.Fatalf("team A's token calling team B's tool: %d %s", r.status, r.raw)
	}
	tokA2, _ := ts.token(t, `{"policy":"team-a",`+binding+`}`)
	if r := ts.do(t, "POST", "/v1/validate", `{"tool":"tool_a","arguments":{}}`, "Authorization: Bearer "+tokA2); r.body["decision"] != "allow" {
		t.Fatalf("team A's own tool: %d %s", r.status, r.raw)
	}
	tokB, _ := ts.token(t, `{"policy":"team-b",`+binding+`}`)
	if r := ts.do(t, "POST", "/v1/validate", `{"tool":"tool_b","arguments":{}}`, "Authorization: Bearer "+tokB); r.body["decision"] != "allow" {
		t.Fatalf("team B's own tool: %d %s", r.status, r.raw)
	}
	if r := ts.do(t, "POST", "/v1/validate", `{"tool":"tool_a","arguments":{}}`); r.status != 401 || r.body["error"] != "token_required" {
		t.Fatalf("no token with two tenants: %d %s", r.status, r.raw)
	}
	if r := ts.do(t, "POST", "/v1/validate", `{"tool":"tool_a","arguments":{}}`, "Authorization: Bearer garbage"); r.status != 401 || r.body["token_error"] != "malformed" {
		t.Fatalf("a garbage token with two tenants: %d %s", r.status, r.raw)
	}
}

func TestRevocationNeedsTheAdminAndEndsTheSessionEverywhere(t *testing.T) {
	ts := newTestServer(t, server.Config{AdminToken: []byte(adminToken)}, tenantPolicy("team-a", "read_file"))
	tok, session := ts.token(t, `{`+binding+`}`)
	revoke := `{"type":"session","session_id":"` + session + `","reason":"suspected compromise"}`
	for _, auth := range []string{"", "Authorization: Bearer " + tok, "Authorization: Bearer wrong"} {
		var hs []string
		if auth != "" {
			hs = append(hs, auth)
		}
		if r := ts.do(t, "POST", "/v1/revoke", revoke, hs...); r.status != 401 || r.body["error"] != "unauthorized" {
			t.Fatalf("revoke with %q: %d %s", auth, r.status, r.raw)
		}
	}
	r := ts.do(t, "POST", "/v1/revoke", revoke, "Authorization: Bearer "+adminToken)
	if r.status != 200 || r.body["revoked"] != true || r.body["target"] != session || r.body["type"] != "session" {
		t.Fatalf("revoke: %d %s", r.status, r.raw)
	}
	if r := ts.do(t, "POST", "/v1/validate", `{"tool":"read_file","arguments":{}}`, "Authorization: Bearer "+tok); r.status != 401 || r.body["token_error"] != "session_revoked" {
		t.Fatalf("a token of a revoked session: %d %s", r.status, r.raw)
	}
	if r := ts.do(t, "POST", "/v1/token", `{"session_id":"`+session+`",`+binding+`}`, "Authorization: Bearer "+adminToken); r.status != 403 {
		t.Fatalf("a revoked session was continued: %d %s", r.status, r.raw)
	}
	for _, body := range []string{`{"type":"everything"}`, `{"type":"session"}`, `{"type":"session","session_id":"x","extra":1}`} {
		if r := ts.do(t, "POST", "/v1/revoke", body, "Authorization: Bearer "+adminToken); r.status != 400 {
			t.Errorf("revoke %s: %d %s", body, r.status, r.raw)
		}
	}
}

type testClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *testClock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *testClock) advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

func TestAReloadHonoursThePreviousHashForTheTransitionGrace(t *testing.T) {
	clock := &testClock{t: time.Now()}
	doc := strings.Replace(tenantPolicy("team-a", "read_file"), "    audience: team-a\n", "    audience: team-a\n    policy_transition_grace: 30s\n", 1)
	ts := newTestServer(t, server.Config{AdminToken: []byte(adminToken), Now: clock.Now}, doc)
	call := `{"tool":"read_file","arguments":{}}`
	reload := func(extraTool string) {
		t.Helper()
		changed := strings.Replace(doc, "[read_file]", "[read_file, "+extraTool+"]", 1)
		if err := os.WriteFile(ts.paths[0], []byte(changed), 0o600); err != nil {
			t.Fatal(err)
		}
		if err := ts.Reload(); err != nil {
			t.Fatal(err)
		}
	}
	old1, _ := ts.token(t, `{`+binding+`}`)
	old2, _ := ts.token(t, `{`+binding+`}`)
	reload("write_file")
	if r := ts.do(t, "POST", "/v1/validate", call, "Authorization: Bearer "+old1); r.status != 200 || r.body["decision"] != "allow" {
		t.Fatalf("a token of the previous policy within the grace: %d %s", r.status, r.raw)
	}
	clock.advance(31 * time.Second)
	if r := ts.do(t, "POST", "/v1/validate", call, "Authorization: Bearer "+old2); r.status != 401 || r.body["token_error"] != "policy_changed" {
		t.Fatalf("a token of the previous policy after the grace: %d %s", r.status, r.raw)
	}
	fresh, _ := ts.token(t, `{`+binding+`}`)
	if r := ts.do(t, "POST", "/v1/validate", call, "Authorization: Bearer "+fresh); r.body["decision"] != "allow" {
		t.Fatalf("a token of the new policy: %d %s", r.status, r.raw)
	}
}

func TestARefusedTokenSpendsNoRateLimitWhereTheListenerRequiresAuthentication(t *testing.T) {
	doc := strings.NewReplacer("NAME", "limited", "TOOL", "read_file", "    require_token: true\n", "    require_token: false\n").Replace(identityPolicy) +
		"  tool_rules:\n    - tool: read_file\n      rate_limit: \"1/minute\"\n"
	ts := newTestServer(t, server.Config{AdminToken: []byte(adminToken), RequireAuthentication: true}, doc)
	call := `{"tool":"read_file","arguments":{}}`
	for i := 0; i < 3; i++ {
		if r := ts.do(t, "POST", "/v1/validate", call, "Authorization: Bearer not-a-token"); r.status != 401 {
			t.Fatalf("a bad token: %d %s", r.status, r.raw)
		}
	}
	tok, _ := ts.token(t, `{`+binding+`}`)
	if r := ts.do(t, "POST", "/v1/validate", call, "Authorization: Bearer "+tok); r.status != 200 || r.body["decision"] != "allow" {
		t.Fatalf("the first authenticated call after refused ones: %d %s (the refused ones spent the limit)", r.status, r.raw)
	}
}
