package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/agentid/agentid/internal/testenv"
)

const gatewayReplicaPolicy = `apiVersion: aip.io/v1alpha2
kind: AgentPolicy
metadata: {name: NAME}
spec:
  allowed_tools: [echo]
  tool_rules:
    - tool: echo
      rate_limit: "3/minute"
  identity:
    enabled: true
    require_token: true
    audience: https://gateway.example
    keys:
      key_source: file
      key_path: KEY
`

// statelessEcho is a real MCP server (the Go SDK's, stateless Streamable
// HTTP) with one tool.
func statelessEcho(t *testing.T) string {
	t.Helper()
	s := mcp.NewServer(&mcp.Implementation{Name: "echo", Version: "1"}, nil)
	mcp.AddTool(s, &mcp.Tool{Name: "echo"}, func(ctx context.Context, req *mcp.CallToolRequest, in struct {
		Text string `json:"text"`
	}) (*mcp.CallToolResult, any, error) {
		return &mcp.CallToolResult{Content: []mcp.Content{&mcp.TextContent{Text: in.Text}}}, nil, nil
	})
	hs := httptest.NewServer(mcp.NewStreamableHTTPHandler(func(*http.Request) *mcp.Server { return s }, &mcp.StreamableHTTPOptions{Stateless: true}))
	t.Cleanup(hs.Close)
	return hs.URL
}

// Two gateway replicas on one Redis behave as one gateway for stateless
// (2026-07-28) traffic, with no affinity: a token used on one is refused on
// the other, and a rate limit holds across both.
func TestGatewayReplicasShareNoncesAndRateLimits(t *testing.T) {
	redisURL := testenv.Redis(t).URL + "?prefix=" + fmt.Sprintf("gw%d:", os.Getpid())
	up := statelessEcho(t)
	dir := t.TempDir()
	key := filepath.Join(dir, "key.pem")
	if out, code := run(t, "keys", "generate", "--alg", "ES256", "--out", key); code != 0 {
		t.Fatalf("keys generate: %s", out)
	}
	policyPath := writeFile(t, "gateway.yaml", strings.NewReplacer("NAME", "gateway-replicas", "KEY", key).Replace(gatewayReplicaPolicy))
	adminFile := filepath.Join(dir, "admin")
	os.WriteFile(adminFile, []byte("gateway-admin-token-0123456789"), 0o600)
	var replicas []*serveProcess
	for i := 0; i < 2; i++ {
		replicas = append(replicas, startListener(t, "gateway", "--policy", policyPath, "--upstream", up,
			"--store", redisURL, "--admin-token-file", adminFile))
	}
	token := func() string {
		req, _ := http.NewRequest("POST", replicas[0].url+"/v1/token", strings.NewReader(`{"binding":{"process_id":7,"hostname":"agent","policy_path":"/agent.yaml"}}`))
		req.Header.Set("Authorization", "Bearer gateway-admin-token-0123456789")
		req.Header.Set("Content-Type", "application/json")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		tok, _, _ := strings.Cut(strings.TrimPrefix(string(b), `{"token":"`), `"`)
		if resp.StatusCode != 200 || tok == "" {
			t.Fatalf("token: %d %s", resp.StatusCode, b)
		}
		return tok
	}
	const meta = `"_meta":{"io.modelcontextprotocol/protocolVersion":"2026-07-28","io.modelcontextprotocol/clientCapabilities":{},"io.modelcontextprotocol/clientInfo":{"name":"raw","version":"1"}}`
	call := func(replica int, tok string) (int, string) {
		body := `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"echo","arguments":{"text":"hi"},` + meta + `}}`
		req, _ := http.NewRequest("POST", replicas[replica].url+"/mcp", strings.NewReader(body))
		for k, v := range map[string]string{"Content-Type": "application/json", "Accept": "application/json, text/event-stream",
			"Mcp-Protocol-Version": "2026-07-28", "Mcp-Method": "tools/call", "Mcp-Name": "echo", "Authorization": "Bearer " + tok} {
			req.Header.Set(k, v)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}

	tok := token()
	if status, body := call(0, tok); status != 200 || !strings.Contains(body, `"hi"`) {
		t.Fatalf("first use on replica 0: %d %s", status, body)
	}
	if status, body := call(1, tok); status != 401 || !strings.Contains(body, "replay_detected") {
		t.Fatalf("the same token on replica 1: %d %s", status, body)
	}
	// The first call spent one of the three; four more, alternating.
	allowed, limited := 1, 0
	for i := 0; i < 4; i++ {
		status, body := call(i%2, token())
		switch {
		case status == 200 && strings.Contains(body, `"hi"`):
			allowed++
		case strings.Contains(body, "-32002"):
			limited++
		default:
			t.Fatalf("call %d: %d %s", i, status, body)
		}
	}
	if allowed != 3 || limited != 2 {
		t.Fatalf("3/minute across two replicas: %d allowed, %d limited", allowed, limited)
	}
}
