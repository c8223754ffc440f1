package server_test

import (
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/agentid/agentid/enforce"
	"github.com/agentid/agentid/server"
)

// With several tenants, a client certificate obtains tokens only for the
// tenants that name it (Config.TokenClients): a Team A agent's certificate
// must not buy Team B's tokens, which Team B's policy would then honour.
func TestAClientCertificateObtainsTokensOnlyForItsTenants(t *testing.T) {
	dir := t.TempDir()
	var policies []*enforce.Policy
	for _, name := range []string{"team-a", "team-b"} {
		path := filepath.Join(dir, name+".yaml")
		os.WriteFile(path, []byte(tenantPolicy(name, "read_file")), 0o600)
		p, err := enforce.Load(path, enforce.LoadOptions{})
		if err != nil {
			t.Fatal(err)
		}
		policies = append(policies, p)
	}
	srv, err := server.New(server.Config{Policies: policies, AdminToken: []byte(adminToken),
		TokenClients: map[string][]string{"team-a": {"spiffe://example.org/team-a/agent"}}})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	token := func(policy, spiffeID, bearer string) int {
		r := httptest.NewRequest("POST", "/v1/token", strings.NewReader(`{"policy":"`+policy+`",`+binding+`}`))
		r.Header.Set("Content-Type", "application/json")
		if bearer != "" {
			r.Header.Set("Authorization", "Bearer "+bearer)
		}
		if spiffeID != "" {
			u, _ := url.Parse(spiffeID)
			r.TLS = &tls.ConnectionState{VerifiedChains: [][]*x509.Certificate{{{Subject: pkix.Name{CommonName: "agent"}, URIs: []*url.URL{u}}}}}
		}
		w := httptest.NewRecorder()
		srv.Handler().ServeHTTP(w, r)
		return w.Code
	}
	for _, c := range []struct {
		name, policy, client, bearer string
		status                       int
	}{
		{"Team A's certificate, Team A's tokens", "team-a", "spiffe://example.org/team-a/agent", "", 200},
		{"Team A's certificate, Team B's tokens", "team-b", "spiffe://example.org/team-a/agent", "", 403},
		{"another certificate, Team A's tokens", "team-a", "spiffe://example.org/team-b/agent", "", 403},
		{"a certificate no tenant names, Team B's tokens", "team-b", "spiffe://example.org/team-b/agent", "", 403},
		{"the admin, either tenant", "team-b", "", adminToken, 200},
		{"no credential", "team-a", "", "", 401},
	} {
		if got := token(c.policy, c.client, c.bearer); got != c.status {
			t.Errorf("%s: %d, want %d", c.name, got, c.status)
		}
	}
}
