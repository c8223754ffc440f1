package server_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/agentid/agentid/audit"
	"github.com/agentid/agentid/enforce"
	"github.com/agentid/agentid/identity"
	"github.com/agentid/agentid/server"
)

// BenchmarkValidate is one POST /v1/validate with a fresh ES256 token,
// through the handler (no network): token verification, the decision, an
// audit record, metrics. Tokens are minted outside the timer.
func BenchmarkValidate(b *testing.B) {
	dir := b.TempDir()
	path := filepath.Join(dir, "p.yaml")
	os.WriteFile(path, []byte(tenantPolicy("bench", "read_file")), 0o600)
	p, err := enforce.Load(path, enforce.LoadOptions{})
	if err != nil {
		b.Fatal(err)
	}
	keys, _ := identity.GenerateKeySet(identity.AlgES256, identity.KeySetOptions{})
	logf, _ := os.Create(filepath.Join(dir, "audit.jsonl"))
	defer logf.Close()
	s, err := server.New(server.Config{Policies: []*enforce.Policy{p}, Keys: keys, Audit: audit.New(logf)})
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	mgr, _ := identity.NewManager(identity.Config{Policy: p.Policy, Keys: keys, RemoteAgents: true, Binding: &identity.Binding{}})
	bind := identity.Binding{ProcessID: 1, Hostname: "h", PolicyPath: "/p"}
	toks := make([]string, b.N)
	for i := range toks {
		toks[i], _, _ = mgr.IssueFor(context.Background(), "", bind)
	}
	h := s.Handler()
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		req := httptest.NewRequest("POST", "/v1/validate", strings.NewReader(`{"tool":"read_file","arguments":{"path":"/tmp/x"}}`))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Authorization", "Bearer "+toks[i])
		w := httptest.NewRecorder()
		h.ServeHTTP(w, req)
		if w.Code != http.StatusOK {
			b.Fatalf("%d %s", w.Code, w.Body)
		}
	}
}
