package proxy_test

import (
	"bufio"
	"bytes"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/agentid/agentid/aip"
	"github.com/agentid/agentid/internal/testenv"
)

// Family 15 (issue #9), the TypeScript half: the official MCP TypeScript
// SDK client (test/sdk-client, pinned) through the real proxy surfaces each
// AIP answer as an McpError with its code and data.aip_error, and the
// session survives it.
func TestHowTheTypeScriptSDKSurfacesEachAIPCode(t *testing.T) {
	node, err := exec.LookPath("node")
	testenv.RequireComponent(t, "Node.js (for the TypeScript SDK client)", err)
	dir := filepath.Join(testenv.Root(t), "test", "sdk-client")
	_, err = os.Stat(filepath.Join(dir, "node_modules", "@modelcontextprotocol", "sdk", "package.json"))
	testenv.RequireComponent(t, "the TypeScript MCP SDK in test/sdk-client (npm ci)", err)

	bin := testenv.AgentidBinary(t)
	tmp := t.TempDir()
	policyPath := filepath.Join(tmp, "policy.yaml")
	os.WriteFile(policyPath, []byte(`apiVersion: aip.io/v1alpha2
kind: AgentPolicy
metadata: {name: ts-codes}
spec:
  allowed_tools: [echo, reverse]
  protected_paths: [/etc/secret]
  tool_rules:
    - tool: reverse
      action: ask
    - tool: echo
      rate_limit: "2/minute"
`), 0o600)
	argv, _ := json.Marshal([]string{bin, "proxy", "--policy", policyPath, "--audit", filepath.Join(tmp, "audit.jsonl"), "--", bin, "example-server"})
	calls, _ := json.Marshal([]map[string]any{
		{"tool": "echo", "arguments": map[string]any{"text": "hi"}},
		{"tool": "delete_everything"},
		{"tool": "reverse", "arguments": map[string]any{"text": "hi"}},
		{"tool": "echo", "arguments": map[string]any{"text": "/etc/secret/key"}},
		{"tool": "echo", "arguments": map[string]any{"text": "a"}}, // the third echo: the refused one counted
	})
	cmd := exec.Command(node, filepath.Join(dir, "codes.mjs"), string(argv), string(calls))
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("node codes.mjs: %v\n%s", err, stderr.String())
	}
	want := []int{0, aip.CodeForbidden, aip.CodeUserDenied, aip.CodeProtectedPath, aip.CodeRateLimited}
	sc := bufio.NewScanner(bytes.NewReader(out))
	i := 0
	for ; sc.Scan(); i++ {
		var r struct {
			Call  string         `json:"call"`
			OK    bool           `json:"ok"`
			Name  string         `json:"name"`
			Code  int            `json:"code"`
			Data  map[string]any `json:"data"`
			After bool           `json:"after"`
		}
		if err := json.Unmarshal(sc.Bytes(), &r); err != nil {
			t.Fatalf("line %q: %v", sc.Text(), err)
		}
		if i >= len(want) {
			t.Fatalf("more answers than calls: %s", sc.Text())
		}
		switch {
		case want[i] == 0 && !r.OK:
			t.Errorf("call %d (%s): refused, want allowed: %s", i, r.Call, sc.Text())
		case want[i] != 0 && (r.OK || r.Name != "McpError" || r.Code != want[i] || r.Data[aip.DataKey] != aip.ErrorName(want[i])):
			t.Errorf("call %d (%s): %s, want McpError %d with data.%s=%s", i, r.Call, sc.Text(), want[i], aip.DataKey, aip.ErrorName(want[i]))
		}
		if !r.After {
			t.Errorf("call %d (%s): the session did not survive: %s", i, r.Call, sc.Text())
		}
	}
	if i != len(want) {
		t.Fatalf("%d answers for %d calls\n%s", i, len(want), stderr.String())
	}
}
