package proxy

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/agentid/agentid/audit"
	"github.com/agentid/agentid/enforce"
	"github.com/agentid/agentid/identity"
	"github.com/agentid/agentid/policy"
)

type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

const identityPolicy = `apiVersion: aip.io/v1alpha2
kind: AgentPolicy
metadata: {name: agent-a}
spec:
  allowed_tools: [echo]
  identity:
    enabled: true
    require_token: true
    token_ttl: 5m
`

type identityHarness struct {
	*harness
	mgr   *identity.Manager
	clock *fakeClock
	px    *Proxy
}

func startIdentityHarness(t *testing.T, policyYAML string) *identityHarness {
	t.Helper()
	p, _, err := policy.Parse([]byte(policyYAML))
	if err != nil {
		t.Fatal(err)
	}
	p.Path = "/etc/agentid/policy.yaml"
	compiled, err := enforce.Compile(p, enforce.LoadOptions{HomeDir: "/home/u", WorkDir: "/work"})
	if err != nil {
		t.Fatal(err)
	}
	clock := &fakeClock{now: time.Date(2026, 1, 24, 10, 30, 0, 0, time.UTC)}
	buf := &lockedBuffer{}
	auditLog := audit.New(buf)
	core, err := enforce.New(enforce.Config{Policy: compiled, Now: clock.Now,
		Events: func(r audit.Record) { _ = auditLog.Log(r) }})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { core.Close() })
	mgr := core.Identity()
	h := startHarnessWithProxy(t, New(Config{Core: core, Audit: auditLog}),
		func(string, json.RawMessage) string { return `{"content":[{"type":"text","text":"ok"}]}` })
	h.audit = buf
	return &identityHarness{harness: h, mgr: mgr, clock: clock}
}

// token obtains a fresh token through the proxy's own method.
func (h *identityHarness) token() string {
	h.t.Helper()
	h.send(`{"jsonrpc":"2.0","id":"tok","method":"aip.io/token"}`)
	m := h.recv()
	result, ok := m["result"].(map[string]any)
	if !ok {
		h.t.Fatalf("aip.io/token: %v", m)
	}
	return result["token"].(string)
}

func (h *identityHarness) call(id int, token string) map[string]any {
	h.t.Helper()
	meta := `"progressToken":7`
	if token != "" {
		meta += `,"aip.io/token":"` + token + `"`
	}
	h.send(fmt.Sprintf(`{"jsonrpc":"2.0","id":%d,"method":"tools/call","params":{"name":"echo","arguments":{},"_meta":{%s}}}`, id, meta))
	return h.recv()
}

func tokenError(m map[string]any) string {
	e, _ := m["error"].(map[string]any)
	d, _ := e["data"].(map[string]any)
	s, _ := d["token_error"].(string)
	return s
}

func TestIdentityCallWithoutTokenIsRefusedWhenRequired(t *testing.T) {
	h := startIdentityHarness(t, identityPolicy)
	m := h.call(1, "")
	if errCode(m) != -32008 {
		t.Fatalf("got %v, want -32008", m)
	}
	if len(h.server.lines()) != 0 {
		t.Fatal("the call reached the server")
	}
}

func TestIdentityValidTokenIsAcceptedAndNeverForwarded(t *testing.T) {
	h := startIdentityHarness(t, identityPolicy)
	tok := h.token()
	if m := h.call(1, tok); m["error"] != nil {
		t.Fatalf("valid token refused: %v", m)
	}
	sent := strings.Join(h.server.lines(), "\n")
	if strings.Contains(sent, tok) || strings.Contains(sent, enforce.TokenMetaKey) {
		t.Fatalf("the token reached the server: %s", sent)
	}
	if !strings.Contains(sent, `"progressToken":7`) {
		t.Fatalf("other _meta members must be kept: %s", sent)
	}
	log := h.audit.String()
	if strings.Contains(log, tok) {
		t.Fatal("the token was written to the audit log")
	}
	for _, want := range []string{`"TOKEN_ISSUED"`, `"session_id":"` + h.mgr.SessionID() + `"`, `"policy_hash":"`, `"token_id":"`} {
		if !strings.Contains(log, want) {
			t.Errorf("audit log lacks %s:\n%s", want, log)
		}
	}
}

func TestIdentityReplayedTokenIsRefused(t *testing.T) {
	h := startIdentityHarness(t, identityPolicy)
	tok := h.token()
	if m := h.call(1, tok); m["error"] != nil {
		t.Fatalf("first use refused: %v", m)
	}
	m := h.call(2, tok)
	if errCode(m) != -32009 || tokenError(m) != "replay_detected" {
		t.Fatalf("replay: %v", m)
	}
}

func TestIdentityExpiredTokenIsRefused(t *testing.T) {
	h := startIdentityHarness(t, identityPolicy)
	tok := h.token()
	h.clock.Advance(6 * time.Minute)
	m := h.call(1, tok)
	if errCode(m) != -32009 || tokenError(m) != "token_expired" {
		t.Fatalf("expired: %v", m)
	}
}

func TestIdentityForgedTokenIsRefused(t *testing.T) {
	h := startIdentityHarness(t, identityPolicy)
	tok := h.token()
	parts := strings.Split(tok, ".")
	forged := parts[0] + "." + parts[1] + "." + strings.Repeat("A", len(parts[2]))
	m := h.call(1, forged)
	if errCode(m) != -32009 {
		t.Fatalf("forged: %v", m)
	}
	m = h.call(2, "not-a-token")
	if errCode(m) != -32009 || tokenError(m) != "malformed" {
		t.Fatalf("malformed: %v", m)
	}
}

func TestIdentityRevokedSessionIsRefused(t *testing.T) {
	h := startIdentityHarness(t, identityPolicy)
	tok := h.token()
	if err := h.mgr.RevokeSession(context.Background(), h.mgr.SessionID(), "test"); err != nil {
		t.Fatal(err)
	}
	m := h.call(1, tok)
	if errCode(m) != -32011 {
		t.Fatalf("revoked: %v", m)
	}
}

func TestIdentityErrorsAreEnforcedInMonitorMode(t *testing.T) {
	h := startIdentityHarness(t, strings.Replace(identityPolicy, "spec:\n", "spec:\n  mode: monitor\n", 1))
	if m := h.call(1, ""); errCode(m) != -32008 {
		t.Fatalf("monitor mode let a call without a token through: %v", m)
	}
}

func TestIdentityWithoutRequireTokenAuditsButDoesNotBlockABadToken(t *testing.T) {
	h := startIdentityHarness(t, strings.Replace(identityPolicy, "require_token: true", "require_token: false", 1))
	if m := h.call(1, "garbage"); m["error"] != nil {
		t.Fatalf("blocked in rollout mode: %v", m)
	}
	if m := h.call(2, ""); m["error"] != nil {
		t.Fatalf("no token, not required: %v", m)
	}
	if !strings.Contains(h.audit.String(), `"TOKEN_INVALID_NOT_REQUIRED"`) {
		t.Fatalf("the bad token was not audited:\n%s", h.audit.String())
	}
}

func TestTokenMethodWithoutIdentityIsMethodNotFound(t *testing.T) {
	h := startHarness(t, Config{Core: mustCore(t, basicPolicy)}, nil)
	h.send(`{"jsonrpc":"2.0","id":1,"method":"aip.io/token"}`)
	if got := errCode(h.recv()); got != -32601 {
		t.Fatalf("code %d, want -32601", got)
	}
	if len(h.server.lines()) != 0 {
		t.Fatal("the proxy's own method was forwarded")
	}
}

func TestTokensAreStrippedEvenWithoutIdentity(t *testing.T) {
	h := startHarness(t, Config{Core: mustCore(t, basicPolicy)}, nil)
	h.send(`{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"echo","arguments":{},"_meta":{"aip.io\/token":"secret-token"}}}`)
	h.recv()
	if sent := strings.Join(h.server.lines(), "\n"); strings.Contains(sent, "secret-token") {
		t.Fatalf("a token reached the server: %s", sent)
	}
}

func TestRejectedReloadAnswersPolicySignatureInvalid(t *testing.T) {
	// Reject is what `agentid proxy` calls when a reload fails
	// verification.
	core := mustCore(t, basicPolicy)
	px := New(Config{Core: core})
	core.Reject("policy signature invalid")
	h2 := startHarnessWithProxy(t, px)
	h2.send(`{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"echo","arguments":{}}}`)
	if got := errCode(h2.recv()); got != -32010 {
		t.Fatalf("code %d, want -32010", got)
	}
	// Methods other than tool calls keep working on the previous policy.
	h2.send(`{"jsonrpc":"2.0","id":2,"method":"ping"}`)
	if m := h2.recv(); m["error"] != nil {
		t.Fatalf("ping: %v", m)
	}
	// A good policy installed afterwards is enforced again.
	if err := core.SetPolicy(mustPolicy(t, basicPolicy)); err != nil {
		t.Fatal(err)
	}
	h2.send(`{"jsonrpc":"2.0","id":3,"method":"tools/call","params":{"name":"echo","arguments":{}}}`)
	if m := h2.recv(); m["error"] != nil {
		t.Fatalf("after a good reload: %v", m)
	}
}
