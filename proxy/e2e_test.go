package proxy_test

// End-to-end tests: a real MCP client (the Go MCP SDK) talks to the real
// agentid binary, which spawns a real MCP server — one written with the same
// SDK in this file (the test binary re-executes itself as the server), and
// the pinned npm servers. Allowed calls must work, blocked ones must get AIP
// codes, and DLP must redact real responses.

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/jsonrpc"
	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/agentid/agentid/internal/testenv"
)

const sdkServerEnv = "AGENTID_E2E_SDK_SERVER"

func TestMain(m *testing.M) {
	if os.Getenv(sdkServerEnv) == "1" {
		runSDKServer()
		os.Exit(0)
	}
	if mode := os.Getenv(mrtrServerEnv); mode != "" {
		runMRTRServer(mode)
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// fakeAWSKey is the documentation example key, split so that scanners of
// this repository do not flag it.
var fakeAWSKey = "AKIA" + "IOSFODNN7EXAMPLE"

// runSDKServer serves three tools on stdio with the Go MCP SDK.
func runSDKServer() {
	server := mcp.NewServer(&mcp.Implementation{Name: "e2e-sdk-server", Version: "v1"}, nil)
	type textIn struct {
		Text string `json:"text"`
	}
	mcp.AddTool(server, &mcp.Tool{Name: "greet", Description: "say hello"},
		func(_ context.Context, _ *mcp.CallToolRequest, in textIn) (*mcp.CallToolResult, any, error) {
			return &mcp.CallToolResult{Content: []mcp.Content{&mcp.TextContent{Text: "hello " + in.Text}}}, nil, nil
		})
	type secretOut struct {
		Key string `json:"key"`
	}
	mcp.AddTool(server, &mcp.Tool{Name: "show_config", Description: "leaks a key"},
		func(_ context.Context, _ *mcp.CallToolRequest, _ struct{}) (*mcp.CallToolResult, secretOut, error) {
			return &mcp.CallToolResult{Content: []mcp.Content{&mcp.TextContent{Text: "aws_access_key_id = " + fakeAWSKey}}},
				secretOut{Key: fakeAWSKey}, nil
		})
	mcp.AddTool(server, &mcp.Tool{Name: "delete_everything", Description: "destructive"},
		func(_ context.Context, _ *mcp.CallToolRequest, _ struct{}) (*mcp.CallToolResult, any, error) {
			return &mcp.CallToolResult{Content: []mcp.Content{&mcp.TextContent{Text: "deleted"}}}, nil, nil
		})
	_ = server.Run(context.Background(), &mcp.StdioTransport{})
}

// connect starts `agentid proxy` in front of server and returns a client
// session plus the audit log path.
func connect(t *testing.T, policyYAML string, env []string, server ...string) (*mcp.ClientSession, string) {
	t.Helper()
	return connectWith(t, policyYAML, nil, env, server...)
}

// connectWith is connect with extra proxy flags.
func connectWith(t *testing.T, policyYAML string, flags, env []string, server ...string) (*mcp.ClientSession, string) {
	t.Helper()
	bin := testenv.AgentidBinary(t)
	dir := t.TempDir()
	policyPath := filepath.Join(dir, "policy.yaml")
	if err := os.WriteFile(policyPath, []byte(policyYAML), 0o600); err != nil {
		t.Fatal(err)
	}
	auditPath := filepath.Join(dir, "audit.jsonl")
	args := append([]string{"proxy", "--policy", policyPath, "--audit", auditPath}, flags...)
	args = append(append(args, "--"), server...)
	cmd := exec.Command(bin, args...)
	cmd.Env = append(os.Environ(), env...)
	cmd.Stderr = testWriter{t}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	t.Cleanup(cancel)
	client := mcp.NewClient(&mcp.Implementation{Name: "e2e-client", Version: "v1"}, nil)
	session, err := client.Connect(ctx, &mcp.CommandTransport{Command: cmd}, nil)
	if err != nil {
		t.Fatalf("connecting through the proxy: %v", err)
	}
	t.Cleanup(func() { session.Close() })
	return session, auditPath
}

type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Logf("stderr: %s", strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

func toolNames(t *testing.T, s *mcp.ClientSession) []string {
	t.Helper()
	res, err := s.ListTools(context.Background(), &mcp.ListToolsParams{})
	if err != nil {
		t.Fatalf("tools/list: %v", err)
	}
	var names []string
	for _, tool := range res.Tools {
		names = append(names, tool.Name)
	}
	return names
}

func callText(t *testing.T, s *mcp.ClientSession, name string, args map[string]any) string {
	t.Helper()
	res, err := s.CallTool(context.Background(), &mcp.CallToolParams{Name: name, Arguments: args})
	if err != nil {
		t.Fatalf("tools/call %s: %v", name, err)
	}
	var b strings.Builder
	for _, c := range res.Content {
		if tc, ok := c.(*mcp.TextContent); ok {
			b.WriteString(tc.Text)
		}
	}
	return b.String()
}

// wantAIPError asserts that calling name fails with the given JSON-RPC code.
func wantAIPError(t *testing.T, s *mcp.ClientSession, name string, args map[string]any, code int64) {
	t.Helper()
	_, err := s.CallTool(context.Background(), &mcp.CallToolParams{Name: name, Arguments: args})
	var werr *jsonrpc.Error
	if !errors.As(err, &werr) {
		t.Fatalf("tools/call %s: got %v, want JSON-RPC error %d", name, err, code)
	}
	if werr.Code != code {
		t.Fatalf("tools/call %s: code %d (%s), want %d", name, werr.Code, werr.Message, code)
	}
}

func auditLines(t *testing.T, path string) []map[string]any {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var out []map[string]any
	for _, line := range strings.Split(strings.TrimSpace(string(data)), "\n") {
		var m map[string]any
		if err := json.Unmarshal([]byte(line), &m); err != nil {
			t.Fatalf("audit line %q: %v", line, err)
		}
		for _, k := range []string{"timestamp", "direction", "decision", "policy_mode", "violation"} {
			if _, ok := m[k]; !ok {
				t.Errorf("audit record lacks required field %q: %s", k, line)
			}
		}
		out = append(out, m)
	}
	return out
}

func TestProxyEndToEndWithSDKServer(t *testing.T) {
	policyYAML := `apiVersion: aip.io/v1alpha2
kind: AgentPolicy
metadata:
  name: e2e
spec:
  allowed_tools: [greet, show_config]
  dlp:
    patterns:
      - name: AWS Key
        regex: "AKIA[A-Z0-9]{16}"
`
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	s, auditPath := connect(t, policyYAML, []string{sdkServerEnv + "=1"}, self)

	if got := strings.Join(toolNames(t, s), ","); got != "greet,show_config" {
		t.Errorf("tools offered to the client = %s, want the blocked tool hidden", got)
	}
	if got := callText(t, s, "greet", map[string]any{"text": "agent"}); got != "hello agent" {
		t.Errorf("allowed call returned %q", got)
	}

	res, err := s.CallTool(context.Background(), &mcp.CallToolParams{Name: "show_config"})
	if err != nil {
		t.Fatal(err)
	}
	text := res.Content[0].(*mcp.TextContent).Text
	if strings.Contains(text, fakeAWSKey) || !strings.Contains(text, "[REDACTED:AWS Key]") {
		t.Errorf("text content not redacted: %q", text)
	}
	structured, _ := json.Marshal(res.StructuredContent)
	if strings.Contains(string(structured), fakeAWSKey) || !strings.Contains(string(structured), "[REDACTED:AWS Key]") {
		t.Errorf("structuredContent not redacted: %s", structured)
	}

	wantAIPError(t, s, "delete_everything", nil, -32001)

	s.Close()
	var blocked, redacted bool
	for _, r := range auditLines(t, auditPath) {
		if r["tool"] == "delete_everything" && r["decision"] == "BLOCK" {
			blocked = true
		}
		if r["event"] == "DLP_TRIGGERED" && r["dlp_rule"] == "AWS Key" {
			redacted = true
		}
	}
	if !blocked || !redacted {
		t.Errorf("audit log lacks the block (%v) or the redaction (%v)", blocked, redacted)
	}
}

func TestProxyEndToEndWithNPMFilesystemServer(t *testing.T) {
	server := testenv.NPMServer(t, "filesystem")
	root := t.TempDir()
	if err := os.WriteFile(filepath.Join(root, "notes.txt"), []byte("meeting at 10"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(root, "creds.txt"), []byte("key="+fakeAWSKey), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Join(root, "private"), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(root, "private", "id_rsa"), []byte("secret"), 0o600); err != nil {
		t.Fatal(err)
	}
	policyYAML := `apiVersion: aip.io/v1alpha2
kind: AgentPolicy
metadata:
  name: e2e-fs
spec:
  allowed_tools: [read_text_file, list_directory]
  protected_paths: [` + filepath.Join(root, "private") + `]
  tool_rules:
    - tool: write_file
      action: block
  dlp:
    patterns:
      - name: AWS Key
        regex: "AKIA[A-Z0-9]{16}"
`
	s, _ := connect(t, policyYAML, nil, append(server, root)...)

	names := toolNames(t, s)
	if strings.Join(names, ",") != "read_text_file,list_directory" {
		t.Errorf("tools offered = %v, want only the two allowed tools", names)
	}
	if got := callText(t, s, "read_text_file", map[string]any{"path": filepath.Join(root, "notes.txt")}); got != "meeting at 10" {
		t.Errorf("read_text_file = %q", got)
	}
	if got := callText(t, s, "read_text_file", map[string]any{"path": filepath.Join(root, "creds.txt")}); got != "key=[REDACTED:AWS Key]" {
		t.Errorf("secret file not redacted: %q", got)
	}
	wantAIPError(t, s, "read_text_file", map[string]any{"path": filepath.Join(root, "private", "id_rsa")}, -32007)
	wantAIPError(t, s, "read_text_file", map[string]any{"path": filepath.Join(root, "notes.txt", "..", "private", "id_rsa")}, -32007)
	wantAIPError(t, s, "write_file", map[string]any{"path": filepath.Join(root, "x"), "content": "x"}, -32001)
	wantAIPError(t, s, "move_file", map[string]any{"source": "a", "destination": "b"}, -32001)
	if _, err := os.Stat(filepath.Join(root, "x")); !os.IsNotExist(err) {
		t.Errorf("a blocked write reached the server")
	}
}

func TestProxyEndToEndWithNPMEverythingServer(t *testing.T) {
	server := testenv.NPMServer(t, "everything")
	policyYAML := `apiVersion: aip.io/v1alpha2
kind: AgentPolicy
metadata:
  name: e2e-everything
spec:
  allowed_tools: [echo, get-sum, get-structured-content]
  tool_rules:
    - tool: get-sum
      allow_args:
        a: "^[0-9]{1,3}$"
  dlp:
    patterns:
      - name: AWS Key
        regex: "AKIA[A-Z0-9]{16}"
`
	s, _ := connect(t, policyYAML, nil, append(server, "stdio")...)

	names := toolNames(t, s)
	if len(names) != 3 {
		t.Errorf("tools offered = %v, want exactly the three allowed tools", names)
	}
	if got := callText(t, s, "echo", map[string]any{"message": "my key is " + fakeAWSKey}); strings.Contains(got, fakeAWSKey) || !strings.Contains(got, "[REDACTED:AWS Key]") {
		t.Errorf("echo response not redacted: %q", got)
	}
	if got := callText(t, s, "get-sum", map[string]any{"a": 2, "b": 3}); !strings.Contains(got, "5") {
		t.Errorf("get-sum = %q", got)
	}
	wantAIPError(t, s, "get-sum", map[string]any{"a": 12345, "b": 1}, -32001)
	wantAIPError(t, s, "get-env", nil, -32001)
}
