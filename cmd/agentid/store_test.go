package main

import (
	"path/filepath"
	"strings"
	"testing"
)

const redisPolicy = `apiVersion: aip.io/v1alpha2
kind: AgentPolicy
metadata: {name: x}
spec:
  allowed_tools: [echo]
  identity:
    enabled: true
    nonce_storage:
      type: redis
      address: redis://127.0.0.1:6379
`

// A policy naming a nonce store this build does not have is valid (the
// spec allows it), so policy check passes with a warning; the proxy refuses
// to start with it instead of running on an in-memory store that two
// proxies meant to share Redis would not share.
func TestUnavailableNonceStoreWarnsInPolicyCheckAndStopsTheProxy(t *testing.T) {
	p := writeFile(t, "p.yaml", redisPolicy)
	out, code := run(t, "policy", "check", p)
	if code != 0 || !strings.Contains(out, `warning: spec.identity.nonce_storage.type: "redis" nonce storage is not available in this build`) {
		t.Fatalf("policy check: exit %d:\n%s", code, out)
	}
	out, code = run(t, "proxy", "--policy", p, "--audit", filepath.Join(t.TempDir(), "a.jsonl"), "--", "/bin/cat")
	if code == 0 || !strings.Contains(out, `configured store is not available in this build: spec.identity.nonce_storage.type is "redis"`) {
		t.Fatalf("proxy: exit %d:\n%s", code, out)
	}
}
