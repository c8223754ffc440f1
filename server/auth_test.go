package server_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/agentid/agentid/audit"
	"github.com/agentid/agentid/server"
)

func TestAListenerThatRequiresAuthenticationAcceptsOnlyATokenThatValidates(t *testing.T) {
	optional := strings.Replace(tenantPolicy("team-a", "read_file"), "require_token: true", "require_token: false", 1)
	call := `{"tool":"read_file","arguments":{}}`
	for _, tc := range []struct {
		name, policy string
		token        string // "valid" for one from /v1/token
		status       int
	}{
		// Any b64token in the header passed for authentication, and a
		// policy that validates no token (identity off) or does not
		// require one decided the call anyway: the policy could be
		// probed from the network with "Bearer x".
		{"any Bearer string, identity off", basePolicy, "x", 401},
		{"any Bearer string, token not required", optional, "x", 401},
		{"a forged JWT, token not required", optional, "eyJhbGciOiJFUzI1NiJ9.eyJhdWQiOiJ0ZWFtLWEifQ.c2ln", 401},
		{"a valid token, token not required", optional, "valid", 200},
		{"a valid token, token required", tenantPolicy("team-a", "read_file"), "valid", 200},
		{"any Bearer string, token required", tenantPolicy("team-a", "read_file"), "x", 401},
	} {
		t.Run(tc.name, func(t *testing.T) {
			auditPath := filepath.Join(t.TempDir(), "audit.jsonl")
			log, err := audit.Open(auditPath)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { log.Close() })
			ts := newTestServer(t, server.Config{RequireAuthentication: true, AdminToken: []byte(adminToken), Audit: log}, tc.policy)
			tok := tc.token
			if tok == "valid" {
				tok, _ = ts.token(t, `{`+binding+`}`)
			}
			r := ts.do(t, "POST", "/v1/validate", call, "Authorization: Bearer "+tok)
			if r.status != tc.status {
				t.Fatalf("%d %s, want %d", r.status, r.raw, tc.status)
			}
			if tc.status != 401 {
				return
			}
			if r.body["decision"] != nil {
				t.Fatalf("an unauthenticated caller learned the decision: %s", r.raw)
			}
			records, _ := os.ReadFile(auditPath)
			if strings.Contains(string(records), `"ALLOW"`) {
				t.Fatalf("a refused call is recorded as allowed:\n%s", records)
			}
		})
	}
}
