package server_test

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/agentid/agentid/enforce"
	"github.com/agentid/agentid/policy"
	"github.com/agentid/agentid/server"
)

const basePolicy = `apiVersion: aip.io/v1alpha2
kind: AgentPolicy
metadata: {name: base}
spec:
  allowed_tools: [read_file, file_write, limited]
  protected_paths: ["~/.ssh"]
  tool_rules:
    - tool: file_write
      action: allow
      allow_args: {path: "^/allowed/.*"}
    - tool: dangerous
      action: ask
    - tool: limited
      rate_limit: "1/minute"
`

// testServer serves the policies (YAML texts) on an httptest server.
type testServer struct {
	*server.Server
	url      string
	paths    []string
	stopHTTP func() // closes the HTTP listener (the server is then gone)
}

func newTestServer(t *testing.T, cfg server.Config, policies ...string) *testServer {
	t.Helper()
	dir := t.TempDir()
	ts := &testServer{}
	for i, y := range policies {
		path := filepath.Join(dir, "policy"+string(rune('a'+i))+".yaml")
		if err := os.WriteFile(path, []byte(y), 0o600); err != nil {
			t.Fatal(err)
		}
		p, err := enforce.Load(path, enforce.LoadOptions{HomeDir: "/home/agent", WorkDir: "/work"})
		if err != nil {
			t.Fatal(err)
		}
		cfg.Policies = append(cfg.Policies, p)
		ts.paths = append(ts.paths, path)
	}
	s, err := server.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	hs := httptest.NewServer(s.Handler())
	var once sync.Once
	ts.stopHTTP = func() { once.Do(hs.Close) }
	t.Cleanup(func() { ts.stopHTTP(); s.Close() })
	ts.Server, ts.url = s, hs.URL
	return ts
}

type response struct {
	status int
	header http.Header
	body   map[string]any
	raw    string
}

// do sends a request; headers are "Name: value" strings, and a JSON
// Content-Type is set for a body unless one is given.
func (ts *testServer) do(t *testing.T, method, path, body string, headers ...string) response {
	t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, ts.url+path, rd)
	if err != nil {
		t.Fatal(err)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	for _, h := range headers {
		k, v, _ := strings.Cut(h, ": ")
		req.Header.Add(k, v)
		if k == "Content-Type" {
			req.Header.Set(k, v)
		}
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	r := response{status: resp.StatusCode, header: resp.Header, raw: string(raw)}
	_ = json.Unmarshal(raw, &r.body)
	return r
}

func TestValidateAnswersEveryPolicyOutcomeWithADecision(t *testing.T) {
	ts := newTestServer(t, server.Config{}, basePolicy)
	cases := []struct {
		name     string
		body     string
		status   int
		decision string
		reason   string
		vtype    string // of the first violation
		vfield   string
		vmessage string
	}{
		{"an allowed tool", `{"tool":"read_file","arguments":{"path":"/tmp/x"}}`, 200, "allow", "", "", "", ""},
		{"a tool outside the allowlist", `{"tool":"delete_file","arguments":{}}`, 200, "block", "Tool not in allowed_tools list", "tool_not_allowed", "", ""},
		{"an argument that misses its pattern", `{"tool":"file_write","arguments":{"path":"/etc/passwd"}}`, 200, "block", "", "argument_validation", "path", "Value does not match pattern: ^/allowed/.*"},
		{"a protected path", `{"tool":"read_file","arguments":{"path":"~/.ssh/id_rsa"}}`, 200, "block", "", "protected_path", "path", ""},
		{"a tool to approve", `{"tool":"dangerous","arguments":{}}`, 200, "ask", "", "", "", ""},
		{"a name in another case decides as its normal form", `{"tool":"READ_FILE","arguments":{}}`, 200, "allow", "", "", "", ""},
		{"a token in the body is ignored", `{"tool":"read_file","arguments":{},"token":"x"}`, 200, "allow", "", "", "", ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := ts.do(t, "POST", "/v1/validate", tc.body)
			if r.status != tc.status || r.body["decision"] != tc.decision {
				t.Fatalf("status %d body %s, want %d decision %s", r.status, r.raw, tc.status, tc.decision)
			}
			if tc.reason != "" && r.body["reason"] != tc.reason {
				t.Errorf("reason %v, want %q", r.body["reason"], tc.reason)
			}
			if tc.vtype == "" {
				if r.body["violations"] != nil && tc.decision != "block" {
					t.Errorf("violations on an allowed call: %s", r.raw)
				}
				return
			}
			vs, _ := r.body["violations"].([]any)
			if len(vs) == 0 {
				t.Fatalf("no violations: %s", r.raw)
			}
			v := vs[0].(map[string]any)
			if v["type"] != tc.vtype || (tc.vfield != "" && v["field"] != tc.vfield) || (tc.vmessage != "" && v["message"] != tc.vmessage) {
				t.Errorf("violation %v, want type %s field %s message %q", v, tc.vtype, tc.vfield, tc.vmessage)
			}
		})
	}
}

func TestValidateRefusesMalformedRequestsWithoutDeciding(t *testing.T) {
	ts := newTestServer(t, server.Config{MaxBodyBytes: 1 << 10}, basePolicy)
	cases := []struct {
		name   string
		method string
		body   string
		header string
		status int
		code   string
	}{
		{"not JSON", "POST", `not valid json`, "", 400, "invalid_request"},
		{"no tool", "POST", `{"arguments":{}}`, "", 400, "invalid_request"},
		{"an empty tool", "POST", `{"tool":"","arguments":{}}`, "", 400, "invalid_request"},
		{"no arguments", "POST", `{"tool":"read_file"}`, "", 400, "invalid_request"},
		{"arguments that are not an object", "POST", `{"tool":"read_file","arguments":[1]}`, "", 400, "invalid_request"},
		{"a tool that is not a string", "POST", `{"tool":7,"arguments":{}}`, "", 400, "invalid_request"},
		{"a duplicate key", "POST", `{"tool":"read_file","tool":"delete_file","arguments":{}}`, "", 400, "invalid_request"},
		{"a case-variant key in the arguments", "POST", `{"tool":"file_write","arguments":{"path":"/allowed/x","Path":"/etc/passwd"}}`, "", 400, "invalid_request"},
		{"invalid UTF-8", "POST", "{\"tool\":\"read_file\xff\",\"arguments\":{}}", "", 400, "invalid_request"},
		{"trailing data", "POST", `{"tool":"read_file","arguments":{}} {}`, "", 400, "invalid_request"},
		{"a body over the limit", "POST", `{"tool":"read_file","arguments":{"x":"` + strings.Repeat("a", 2<<10) + `"}}`, "", 413, "request_too_large"},
		{"a form body", "POST", `tool=read_file`, "Content-Type: application/x-www-form-urlencoded", 415, "unsupported_media_type"},
		{"GET", "GET", "", "", 405, "method_not_allowed"},
		{"two Authorization headers", "POST", `{"tool":"read_file","arguments":{}}`, "Authorization: Bearer a", 400, "invalid_request"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var hs []string
			if tc.header != "" {
				hs = append(hs, tc.header)
			}
			if tc.name == "two Authorization headers" {
				hs = append(hs, "Authorization: Bearer b")
			}
			r := ts.do(t, tc.method, "/v1/validate", tc.body, hs...)
			if r.status != tc.status || r.body["error"] != tc.code {
				t.Fatalf("status %d body %s, want %d %s", r.status, r.raw, tc.status, tc.code)
			}
			if r.body["decision"] != nil {
				t.Fatalf("a refused request was decided: %s", r.raw)
			}
		})
	}
}

func TestARateLimitIs429WithTheDecision(t *testing.T) {
	ts := newTestServer(t, server.Config{}, basePolicy)
	if r := ts.do(t, "POST", "/v1/validate", `{"tool":"limited","arguments":{}}`); r.status != 200 || r.body["decision"] != "allow" {
		t.Fatalf("first call: %d %s", r.status, r.raw)
	}
	r := ts.do(t, "POST", "/v1/validate", `{"tool":"limited","arguments":{}}`)
	if r.status != 429 || r.body["error"] != "rate_limited" || r.body["decision"] != "block" {
		t.Fatalf("second call: %d %s", r.status, r.raw)
	}
}

func TestAnUnauthenticatedCallIsRefusedWhereTheListenerRequiresAuthentication(t *testing.T) {
	ts := newTestServer(t, server.Config{RequireAuthentication: true}, basePolicy)
	r := ts.do(t, "POST", "/v1/validate", `{"tool":"read_file","arguments":{}}`)
	if r.status != 401 || r.body["error"] != "token_required" {
		t.Fatalf("%d %s", r.status, r.raw)
	}
}

func TestHealthReportsThePoliciesAndDegradesOnARefusedReload(t *testing.T) {
	ts := newTestServer(t, server.Config{}, basePolicy)
	r := ts.do(t, "GET", "/health", "")
	hash, _ := r.body["policy_hash"].(string)
	if r.status != 200 || r.body["status"] != "healthy" || r.body["version"] != "v1alpha2" || len(hash) != 64 {
		t.Fatalf("health: %d %s", r.status, r.raw)
	}
	if _, ok := r.body["uptime_seconds"].(float64); !ok {
		t.Fatalf("no uptime_seconds: %s", r.raw)
	}

	if err := os.WriteFile(ts.paths[0], []byte("apiVersion: aip.io/v1alpha2\nkind: Nonsense\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := ts.Reload(); err == nil {
		t.Fatal("a broken policy reloaded")
	}
	r = ts.do(t, "GET", "/health", "")
	if r.status != 200 || r.body["status"] != "degraded" || r.body["policy_hash"] != hash {
		t.Fatalf("after a refused reload: %d %s", r.status, r.raw)
	}
	if strings.Contains(r.raw, ts.paths[0]) || strings.Contains(r.raw, "Nonsense") {
		t.Fatalf("health reveals the policy's details: %s", r.raw)
	}
	if r := ts.do(t, "POST", "/v1/validate", `{"tool":"read_file","arguments":{}}`); r.body["decision"] != "allow" {
		t.Fatalf("the old policy is not in force: %s", r.raw)
	}

	changed := strings.Replace(basePolicy, "[read_file, file_write, limited]", "[file_write]", 1)
	if err := os.WriteFile(ts.paths[0], []byte(changed), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := ts.Reload(); err != nil {
		t.Fatal(err)
	}
	r = ts.do(t, "GET", "/health", "")
	if r.body["status"] != "healthy" || r.body["policy_hash"] == hash {
		t.Fatalf("after a good reload: %s", r.raw)
	}
	if r := ts.do(t, "POST", "/v1/validate", `{"tool":"read_file","arguments":{}}`); r.body["decision"] != "block" {
		t.Fatalf("the new policy is not in force: %s", r.raw)
	}

	ts.Drain()
	if r := ts.do(t, "GET", "/health", ""); r.status != 503 || r.body["status"] != "unhealthy" {
		t.Fatalf("draining: %d %s", r.status, r.raw)
	}
}

func TestMetricsNameEveryMetricOfTheSpec(t *testing.T) {
	ts := newTestServer(t, server.Config{}, basePolicy)
	ts.do(t, "POST", "/v1/validate", `{"tool":"delete_file","arguments":{}}`)
	r := ts.do(t, "GET", "/metrics", "")
	if r.status != 200 || !strings.HasPrefix(r.header.Get("Content-Type"), "text/plain") {
		t.Fatalf("%d %s", r.status, r.header.Get("Content-Type"))
	}
	for _, m := range []string{"aip_requests_total", "aip_decisions_total", "aip_violations_total", "aip_token_validations_total",
		"aip_revocations_total", "aip_responses_total", "aip_active_sessions", "aip_request_duration_seconds", "aip_policy_hash", "aip_fail_open_requests_total",
		`aip_decisions_total{decision="block"} 1`, `aip_violations_total{type="tool_not_allowed"} 1`} {
		if !strings.Contains(r.raw, m) {
			t.Errorf("metrics lack %s", m)
		}
	}
}

func TestUnknownPathsAndMethodsAreRefused(t *testing.T) {
	ts := newTestServer(t, server.Config{}, basePolicy)
	for _, tc := range []struct {
		method, path string
		status       int
	}{
		{"GET", "/nope", 404},
		{"POST", "/health", 405},
		{"DELETE", "/v1/jwks", 405},
		{"GET", "/v1/revoke", 401},
	} {
		if r := ts.do(t, tc.method, tc.path, ""); r.status != tc.status {
			t.Errorf("%s %s: %d, want %d (%s)", tc.method, tc.path, r.status, tc.status, r.raw)
		}
	}
}

// slowStore is a store that answers after the caller's deadline, or fails.
type slowStore struct{ fail bool }

func (s slowStore) wait(ctx context.Context) error {
	if s.fail {
		return errors.New("store down")
	}
	<-ctx.Done()
	return ctx.Err()
}
func (s slowStore) Allow(ctx context.Context, _ string, _ int, _ time.Duration, _ time.Time) (bool, error) {
	return false, s.wait(ctx)
}
func (slowStore) Close() error { return nil }

func TestAStoreThatFailsOrIsSlowerThanTheTimeoutAppliesFailoverMode(t *testing.T) {
	policyWith := func(failover string) string {
		return strings.Replace(basePolicy, "  tool_rules:", "  server:\n    timeout: 200ms\n"+failover+"  tool_rules:", 1)
	}
	for _, tc := range []struct {
		name     string
		failover string
		store    slowStore
		status   int
		decision string
	}{
		{"fail_closed and a slow store: 503", "    failover_mode: fail_closed\n", slowStore{}, 503, ""},
		{"fail_closed and a failing store: 503", "    failover_mode: fail_closed\n", slowStore{fail: true}, 503, ""},
		{"fail_open within its constraints: allowed and counted", "    failover_mode: fail_open\n    fail_open_constraints:\n      allowed_tools: [limited]\n", slowStore{fail: true}, 200, "allow"},
		{"local_policy counts in process", "    failover_mode: local_policy\n", slowStore{}, 200, "allow"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ts := newTestServer(t, server.Config{RateLimits: tc.store}, policyWith(tc.failover))
			r := ts.do(t, "POST", "/v1/validate", `{"tool":"limited","arguments":{}}`)
			if r.status != tc.status || (tc.decision != "" && r.body["decision"] != tc.decision) {
				t.Fatalf("%d %s, want %d %s", r.status, r.raw, tc.status, tc.decision)
			}
			if tc.status == 503 && r.body["error"] != "validation_unavailable" {
				t.Fatalf("503 body %s", r.raw)
			}
			m := ts.do(t, "GET", "/metrics", "")
			counted := strings.Contains(m.raw, "aip_fail_open_requests_total 1")
			if counted != strings.Contains(tc.failover, "fail_open") {
				t.Errorf("aip_fail_open_requests_total counted %v", counted)
			}
		})
	}
}

func TestAReloadOfAPolicyWithoutAValidSignatureKeepsTheSignedOne(t *testing.T) {
	pub, priv, _ := ed25519.GenerateKey(rand.Reader)
	doc := "apiVersion: aip.io/v1alpha2\nkind: AgentPolicy\nmetadata:\n  name: signed\nspec:\n  allowed_tools: [read_file]\n"
	signed, err := policy.Sign([]byte(doc), priv)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "signed.yaml")
	os.WriteFile(path, signed, 0o600)
	p, err := enforce.Load(path, enforce.LoadOptions{PublicKey: pub})
	if err != nil {
		t.Fatal(err)
	}
	s, err := server.New(server.Config{Policies: []*enforce.Policy{p}})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	// Same policy, more tools, no signature: refused.
	os.WriteFile(path, []byte(strings.Replace(doc, "[read_file]", "[read_file, delete_file]", 1)), 0o600)
	if err := s.Reload(); err == nil {
		t.Fatal("an unsigned policy reloaded under --policy-pubkey")
	}
	if h := s.Health(context.Background()); h.Status != "degraded" || h.PolicyHash != p.Hash {
		t.Fatalf("health after the refused reload: %+v", h)
	}
	if c := s.PolicyHashes(); c[0] != p.Hash {
		t.Fatalf("policy in force %s, want the signed one", c[0])
	}
}
