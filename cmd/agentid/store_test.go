package main

import (
	"net"
	"path/filepath"
	"strings"
	"testing"

	"github.com/agentid/agentid/internal/testenv"
)

const sharedStorePolicy = `apiVersion: aip.io/v1alpha2
kind: AgentPolicy
metadata: {name: shared}
spec:
  allowed_tools: [echo]
  tool_rules:
    - tool: echo
      rate_limit: "2/minute"
  identity:
    enabled: true
    nonce_storage:
      type: redis
      address: "ADDRESS"
`

// freeAddr is a loopback address nothing listens on.
func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

// A configured store that cannot be reached stops the proxy: it never runs
// on an in-memory store that proxies meant to share one would not share.
func TestAnUnreachableNonceStoreStopsTheProxy(t *testing.T) {
	p := writeFile(t, "p.yaml", strings.Replace(sharedStorePolicy, "ADDRESS", "redis://"+freeAddr(t)+"/0", 1))
	if out, code := run(t, "policy", "check", p); code != 0 {
		t.Fatalf("policy check: exit %d:\n%s", code, out)
	}
	out, code := run(t, "proxy", "--policy", p, "--audit", filepath.Join(t.TempDir(), "a.jsonl"), "--", "/bin/cat")
	if code == 0 || !strings.Contains(out, "backend: redis://") {
		t.Fatalf("proxy: exit %d:\n%s", code, out)
	}
}

// Two proxies whose policy names one Redis share its rate limits.
func TestProxiesOnOneRedisShareRateLimits(t *testing.T) {
	r := testenv.Redis(t)
	p := writeFile(t, "p.yaml", strings.Replace(sharedStorePolicy, "ADDRESS", r.URL+"?prefix=ratetest-"+strings.ReplaceAll(t.Name(), "/", "-")+":", 1))
	a := startProxy(t, "--policy", p)
	b := startProxy(t, "--policy", p)
	for i, px := range []*proxyProcess{a, b} {
		tok := px.roundTrip(`{"jsonrpc":"2.0","id":"t","method":"aip.io/token"}`)["result"].(map[string]any)["token"].(string)
		line := `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"echo","arguments":{"text":"hi"},"_meta":{"aip.io/token":"` + tok + `"}}}`
		if c := code(px.roundTrip(line)); c != 0 {
			t.Fatalf("call %d: code %d", i+1, c)
		}
	}
	tok := a.roundTrip(`{"jsonrpc":"2.0","id":"t2","method":"aip.io/token"}`)["result"].(map[string]any)["token"].(string)
	line := `{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"echo","arguments":{"text":"hi"},"_meta":{"aip.io/token":"` + tok + `"}}}`
	if c := code(a.roundTrip(line)); c != -32002 {
		t.Fatalf("the third call across two proxies: code %d, want -32002", c)
	}
}
