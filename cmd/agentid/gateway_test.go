package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/agentid/agentid/internal/testenv"
)

// startEverythingHTTP runs the pinned @modelcontextprotocol/server-everything
// in its Streamable HTTP mode on a free loopback port and returns its MCP
// endpoint.
func startEverythingHTTP(t *testing.T) string {
	t.Helper()
	argv := testenv.NPMServer(t, "everything")
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	cmd := exec.Command(argv[0], append(argv[1:], "streamableHttp")...)
	cmd.Env = append(os.Environ(), fmt.Sprintf("PORT=%d", port))
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	deadline := time.Now().Add(30 * time.Second)
	for {
		c, err := net.Dial("tcp", addr)
		if err == nil {
			c.Close()
			return "http://" + addr + "/mcp"
		}
		if time.Now().After(deadline) {
			t.Fatalf("server-everything did not listen on %s:\n%s", addr, out.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// tsHTTPClient runs test/sdk-client/http.mjs (the official TypeScript SDK's
// StreamableHTTPClientTransport) against endpoint and returns what it
// observed; extra is the token endpoint and the credential file.
func tsHTTPClient(t *testing.T, endpoint string, extra ...string) map[string]any {
	t.Helper()
	node, err := exec.LookPath("node")
	testenv.RequireComponent(t, "Node.js (for the TypeScript SDK client)", err)
	dir := filepath.Join(testenv.Root(t), "test", "sdk-client")
	_, err = os.Stat(filepath.Join(dir, "node_modules", "@modelcontextprotocol", "sdk", "package.json"))
	testenv.RequireComponent(t, "the TypeScript MCP SDK in test/sdk-client (npm ci)", err)
	cmd := exec.Command(node, append([]string{filepath.Join(dir, "http.mjs"), endpoint}, extra...)...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("node http.mjs %s: %v\n%s%s", endpoint, err, out, stderr.String())
	}
	var got map[string]any
	if err := json.Unmarshal(out, &got); err != nil {
		t.Fatalf("http.mjs printed %q: %v", out, err)
	}
	return got
}

const everythingGatewayPolicy = `apiVersion: aip.io/v1alpha2
kind: AgentPolicy
metadata: {name: everything}
spec:
  allowed_tools: [echo, get-sum, trigger-long-running-operation, trigger-sampling-request, trigger-elicitation-request,
    get-roots-list, get-annotated-message, get-resource-links, get-resource-reference, get-structured-content,
    get-tiny-image, gzip-file-as-resource, simulate-research-query, toggle-simulated-logging, toggle-subscriber-updates]
  allowed_methods: [initialize, notifications/initialized, ping, tools/list, tools/call, resources/list, resources/read,
    resources/templates/list, resources/subscribe, resources/unsubscribe, prompts/list, prompts/get, completion/complete,
    logging/setLevel, notifications/cancelled, notifications/progress, notifications/roots/list_changed]
  identity:
    enabled: true
    require_token: true
    audience: https://gateway.example
`

// The official TypeScript SDK client, with a fresh AIP token on every
// request, sees every feature of server-everything through the real
// `agentid gateway` as it does directly, except the tool the policy denies.
func TestGatewayTypeScriptClientSeesWhatItSeesDirectly(t *testing.T) {
	up := startEverythingHTTP(t)
	dir := t.TempDir()
	policyPath := filepath.Join(dir, "policy.yaml")
	credPath := filepath.Join(dir, "credential")
	os.WriteFile(policyPath, []byte(everythingGatewayPolicy), 0o600)
	os.WriteFile(credPath, []byte("a-token-credential-for-agents\n"), 0o600)
	gw := startListener(t, "gateway", "--policy", policyPath, "--upstream", up, "--token-credential-file", credPath)

	direct := tsHTTPClient(t, up)
	through := tsHTTPClient(t, gw.url+"/mcp", gw.url+"/v1/token", credPath)

	want := make(map[string]any, len(direct))
	for k, v := range direct {
		want[k] = v
	}
	var tools []any
	for _, n := range direct["tools"].([]any) {
		if n != "get-env" {
			tools = append(tools, n)
		}
	}
	want["tools"] = tools
	want["env"] = "error -32001"
	if !strings.Contains(direct["env"].(string), "PATH") {
		t.Fatalf("directly, get-env did not run: %v", direct["env"])
	}
	if !reflect.DeepEqual(through, want) {
		t.Errorf("through the gateway:\n got %v\nwant %v", through, want)
	}
	if direct["progress"].(float64) < 3 || direct["sampling"] != true || direct["elicitation"] != true || direct["roots"] != true {
		t.Errorf("the scenario did not exercise every feature directly: %v", direct)
	}
}

const filesystemGatewayPolicy = `apiVersion: aip.io/v1alpha2
kind: AgentPolicy
metadata: {name: filesystem}
spec:
  allowed_tools: [list_allowed_directories, list_directory, read_text_file, get_file_info, search_files, directory_tree]
  allowed_methods: [initialize, notifications/initialized, ping, tools/list, tools/call, resources/list,
    resources/templates/list, prompts/list, notifications/cancelled, notifications/roots/list_changed]
  dlp:
    patterns:
      - name: AWS Key
        regex: "AKIA[A-Z0-9]{16}"
`

// The official TypeScript SDK client through the real `agentid gateway` in
// front of the pinned stdio @modelcontextprotocol/server-filesystem, which
// the gateway spawns for the session: reads work, the secret is redacted, a
// write (not allowed) is refused and never reaches the server, and the
// server process is gone once the session ends.
func TestGatewaySpawnsAStdioServerPerSession(t *testing.T) {
	root := t.TempDir()
	os.WriteFile(filepath.Join(root, "notes.txt"), []byte("key AKIAABCDEFGHIJKLMNOP\n"), 0o600)
	dir := t.TempDir()
	policyPath := filepath.Join(dir, "policy.yaml")
	os.WriteFile(policyPath, []byte(filesystemGatewayPolicy), 0o600)
	fs := testenv.NPMServer(t, "filesystem")
	gw := startListener(t, "gateway", append([]string{"--policy", policyPath, "--"}, append(fs, root)...)...)

	got := tsFilesystemClient(t, gw.url+"/mcp", root)
	if got["read"] != "key [REDACTED:AWS Key]\n" {
		t.Errorf("read_text_file through the gateway: %q", got["read"])
	}
	if got["write"] != "error -32001" {
		t.Errorf("write_file through the gateway: %v", got["write"])
	}
	if _, err := os.Stat(filepath.Join(root, "written.txt")); err == nil {
		t.Errorf("the refused write reached the server")
	}
	// The client ended its session: the server it had goes within the
	// shutdown grace (stdin closed, then SIGTERM, then SIGKILL).
	servers := func() []string {
		out, _ := exec.Command("pgrep", "-f", "server-filesystem.* "+root).Output()
		var pids []string
		for _, pid := range strings.Fields(string(out)) {
			if pid != fmt.Sprint(gw.cmd.Process.Pid) {
				pids = append(pids, pid)
			}
		}
		return pids
	}
	for deadline := time.Now().Add(10 * time.Second); len(servers()) > 0; time.Sleep(100 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("the session's server is still running: %v", servers())
		}
	}
}

// tsFilesystemClient drives test/sdk-client/fs.mjs against endpoint.
func tsFilesystemClient(t *testing.T, endpoint, root string) map[string]any {
	t.Helper()
	node, err := exec.LookPath("node")
	testenv.RequireComponent(t, "Node.js (for the TypeScript SDK client)", err)
	dir := filepath.Join(testenv.Root(t), "test", "sdk-client")
	cmd := exec.Command(node, filepath.Join(dir, "fs.mjs"), endpoint, root)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("node fs.mjs: %v\n%s%s", err, out, stderr.String())
	}
	var got map[string]any
	if err := json.Unmarshal(out, &got); err != nil {
		t.Fatalf("fs.mjs printed %q: %v", out, err)
	}
	return got
}

// With OTEL_EXPORTER_OTLP_ENDPOINT set, the real binary exports its
// decision spans over OTLP/HTTP (protobuf POSTs to /v1/traces).
func TestGatewayExportsTracesOverOTLP(t *testing.T) {
	received := make(chan string, 16)
	collector := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		received <- r.URL.Path + " " + r.Header.Get("Content-Type") + " " + string(b)
		w.Header().Set("Content-Type", "application/x-protobuf")
	}))
	defer collector.Close()
	up := statelessEcho(t)
	policyPath := writeFile(t, "open.yaml", "apiVersion: aip.io/v1alpha2\nkind: AgentPolicy\nmetadata: {name: traced}\nspec:\n  allowed_tools: [echo]\n")
	t.Setenv("OTEL_EXPORTER_OTLP_ENDPOINT", collector.URL)
	t.Setenv("OTEL_BSP_SCHEDULE_DELAY", "100")
	gw := startListener(t, "gateway", "--policy", policyPath, "--upstream", up)
	req, _ := http.NewRequest("POST", gw.url+"/mcp", strings.NewReader(`{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"rm","arguments":{}}}`))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json, text/event-stream")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	select {
	case got := <-received:
		if !strings.HasPrefix(got, "/v1/traces application/x-protobuf") || !strings.Contains(got, "mcp.gateway.decide") || !strings.Contains(got, "rm") {
			t.Fatalf("collector received %q", got)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("no spans exported")
	}
}
