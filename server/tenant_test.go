package server_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/agentid/agentid/enforce"
	"github.com/agentid/agentid/server"
)

// namedTenant is a tenant's policy with a metadata.name and an audience
// of its own, and a rate limit of one call a minute on "limited".
func namedTenant(name, audience string) string {
	return strings.NewReplacer("NAME", name, "AUD", audience).Replace(`apiVersion: aip.io/v1alpha2
kind: AgentPolicy
metadata: {name: NAME}
spec:
  allowed_tools: [limited]
  tool_rules:
    - tool: limited
      rate_limit: "1/minute"
  identity:
    enabled: true
    require_token: true
    audience: AUD
`)
}

func TestTenantsThatShareAMetadataNameAreRefused(t *testing.T) {
	for _, tc := range []struct {
		name     string
		policies []string
		ok       bool
	}{
		{"distinct names and audiences", []string{namedTenant("team-a", "https://a.example"), namedTenant("team-b", "https://b.example")}, true},
		// Rate-limit counters are keyed by metadata.name: team A's agents
		// would spend team B's limits.
		{"one name, two audiences", []string{namedTenant("shared", "https://a.example"), namedTenant("shared", "https://b.example")}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			var cfg server.Config
			for i, y := range tc.policies {
				path := filepath.Join(dir, string(rune('a'+i))+".yaml")
				if err := os.WriteFile(path, []byte(y), 0o600); err != nil {
					t.Fatal(err)
				}
				p, err := enforce.Load(path, enforce.LoadOptions{})
				if err != nil {
					t.Fatal(err)
				}
				cfg.Policies = append(cfg.Policies, p)
			}
			s, err := server.New(cfg)
			if s != nil {
				s.Close()
			}
			if (err == nil) != tc.ok {
				t.Fatalf("New: %v, want ok %v", err, tc.ok)
			}
		})
	}
}
