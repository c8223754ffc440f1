package proxy_test

// Family 13 (issue #9) through the real binary: MCP 2026-07-28
// multi-round-trip calls between the official Go SDK client and a Go SDK
// server, and a raw client that forges and swaps request states.

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/jsonrpc"
	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/agentid/agentid/aip"
	"github.com/agentid/agentid/internal/testenv"
)

// mrtrServerEnv makes the test binary an MRTR server: "sdk" for one built
// with the Go SDK, "raw:PATH" for a line server that appends every line it
// receives to PATH.
const mrtrServerEnv = "AGENTID_E2E_MRTR_SERVER"

func runMRTRServer(mode string) {
	if path, ok := strings.CutPrefix(mode, "raw:"); ok {
		runRawMRTRServer(path)
		return
	}
	server := mcp.NewServer(&mcp.Implementation{Name: "e2e-mrtr-server", Version: "v1"}, nil)
	ask := func(message string) mcp.InputRequest {
		return &mcp.ElicitParams{Mode: "form", Message: message, RequestedSchema: json.RawMessage(`{"type":"object","properties":{}}`)}
	}
	type cmdIn struct {
		Cmd string `json:"cmd"`
	}
	// confirm asks once, with a request state, then runs.
	confirm := func(_ context.Context, req *mcp.CallToolRequest, in cmdIn) (*mcp.CallToolResult, any, error) {
		if len(req.Params.InputResponses) == 0 {
			return &mcp.CallToolResult{InputRequests: mcp.InputRequestMap{"ok": ask("Run " + in.Cmd + "?")}, RequestState: "confirm:" + in.Cmd}, nil, nil
		}
		if req.Params.RequestState != "confirm:"+in.Cmd {
			return nil, nil, errors.New("request state does not match the call")
		}
		return &mcp.CallToolResult{Content: []mcp.Content{&mcp.TextContent{Text: "ran " + in.Cmd}}}, nil, nil
	}
	mcp.AddTool(server, &mcp.Tool{Name: "confirm_run"}, confirm)
	mcp.AddTool(server, &mcp.Tool{Name: "deploy"}, confirm)
	// two_step asks twice: first without a request state, then with one.
	mcp.AddTool(server, &mcp.Tool{Name: "two_step"}, func(_ context.Context, req *mcp.CallToolRequest, _ struct{}) (*mcp.CallToolResult, any, error) {
		switch {
		case len(req.Params.InputResponses) == 0:
			return &mcp.CallToolResult{InputRequests: mcp.InputRequestMap{"a": ask("First?")}}, nil, nil
		case req.Params.RequestState == "":
			return &mcp.CallToolResult{InputRequests: mcp.InputRequestMap{"b": ask("Second?")}, RequestState: "got-a"}, nil, nil
		}
		return &mcp.CallToolResult{Content: []mcp.Content{&mcp.TextContent{Text: "both"}}}, nil, nil
	})
	_ = server.Run(context.Background(), &mcp.StdioTransport{})
}

// runRawMRTRServer answers a tools/call without inputResponses with an
// input_required result whose state names the call's arguments, and its
// retry with a complete result.
func runRawMRTRServer(logPath string) {
	log, err := os.OpenFile(logPath, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
	if err != nil {
		os.Exit(2)
	}
	defer log.Close()
	sc := bufio.NewScanner(os.Stdin)
	sc.Buffer(make([]byte, 1<<16), 16<<20)
	for sc.Scan() {
		_, _ = log.Write(append(sc.Bytes(), '\n'))
		var msg struct {
			ID     json.RawMessage `json:"id"`
			Method string          `json:"method"`
			Params struct {
				Arguments      json.RawMessage `json:"arguments"`
				InputResponses json.RawMessage `json:"inputResponses"`
			} `json:"params"`
		}
		if json.Unmarshal(sc.Bytes(), &msg) != nil || msg.ID == nil {
			continue
		}
		result := `{}`
		if msg.Method == "tools/call" {
			result = `{"resultType":"complete","content":[{"type":"text","text":"done"}]}`
			if msg.Params.InputResponses == nil {
				state, _ := json.Marshal("for " + string(msg.Params.Arguments))
				result = `{"resultType":"input_required","inputRequests":{"ok":{"method":"elicitation/create","params":{"mode":"form","message":"Proceed?","requestedSchema":{"type":"object","properties":{}}}}},"requestState":` + string(state) + `}`
			}
		}
		os.Stdout.Write([]byte(`{"jsonrpc":"2.0","id":` + string(msg.ID) + `,"result":` + result + "}\n"))
	}
}

const mrtrPolicy = `apiVersion: aip.io/v1alpha2
kind: AgentPolicy
metadata: {name: mrtr-e2e}
spec:
METHODS  tool_rules:
    - tool: confirm_run
      rate_limit: 1/minute
    - tool: two_step
      rate_limit: 1/minute
    - tool: deploy
      action: ask
      rate_limit: 1/minute
`

// approvingWebhook allows every call and counts the approvals asked.
func approvingWebhook(t *testing.T) (*httptest.Server, *atomic.Int32) {
	t.Helper()
	var n atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var req struct {
			Digest string `json:"digest"`
		}
		_ = json.NewDecoder(r.Body).Decode(&req)
		n.Add(1)
		_ = json.NewEncoder(w).Encode(map[string]string{"decision": "allow", "digest": req.Digest})
	}))
	t.Cleanup(srv.Close)
	return srv, &n
}

// eras are the ways the Go SDK client meets the Go SDK server through the
// proxy: with server/discover allowed it speaks 2026-07-28 (MRTR on the
// wire), as it does under the default methods, which follow the client's
// era; with a policy that lists only 2025 methods it falls back to
// initialize and 2025-11-25, where the server asks its first round itself
// (a server→client elicitation) and returns only later ones.
var eras = []struct{ name, methods string }{
	{"2026-07-28", "  allowed_methods: [server/discover, initialize, notifications/initialized, ping, tools/list, tools/call, notifications/cancelled]\n"},
	{"2025-11-25 fallback", "  allowed_methods: [initialize, notifications/initialized, ping, tools/list, tools/call, notifications/cancelled]\n"},
	{"default methods (2026-07-28)", ""},
}

func TestMultiRoundTripCallsThroughTheProxyWithTheGoSDK(t *testing.T) {
	// How many rounds go over the wire as retries, per era.
	continued := []map[string]int{
		{"confirm_run": 1, "two_step": 2, "deploy": 1},
		{"confirm_run": 0, "two_step": 1, "deploy": 0},
		{"confirm_run": 1, "two_step": 2, "deploy": 1},
	}
	for i, era := range eras {
		t.Run(era.name, func(t *testing.T) {
			testMultiRoundTripCalls(t, strings.Replace(mrtrPolicy, "METHODS", era.methods, 1), continued[i])
		})
	}
}

func TestDeniedElicitationHoldsForMultiRoundTripCalls(t *testing.T) {
	for _, era := range eras {
		t.Run(era.name, func(t *testing.T) {
			policyYAML := strings.Replace(mrtrPolicy, "METHODS", era.methods+"  denied_methods: [elicitation/create]\n", 1)
			c := connectMRTR(t, policyYAML)
			err := callErr(c.session, "confirm_run", map[string]any{"cmd": "ls"})
			if err == nil || c.elicited.Load() != 0 {
				t.Fatalf("a denied elicitation: call error %v, %d elicitations", err, c.elicited.Load())
			}
			var werr *jsonrpc.Error
			if !strings.Contains(era.name, "2025") && (!errors.As(err, &werr) || werr.Code != aip.CodeMethodNotAllowed) {
				t.Fatalf("2026-07-28: got %v, want -32006", err)
			}
		})
	}
}

// mrtrClient is a Go SDK client session through the proxy to the SDK MRTR
// server, with the counts of what it was asked.
type mrtrClient struct {
	session             *mcp.ClientSession
	audit               string
	elicited, approvals *atomic.Int32
}

func connectMRTR(t *testing.T, policyYAML string) mrtrClient {
	t.Helper()
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	hook, approvals := approvingWebhook(t)
	bin := testenv.AgentidBinary(t)
	dir := t.TempDir()
	policyPath, auditPath := filepath.Join(dir, "policy.yaml"), filepath.Join(dir, "audit.jsonl")
	if err := os.WriteFile(policyPath, []byte(policyYAML), 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "proxy", "--policy", policyPath, "--audit", auditPath, "--approval-webhook", hook.URL, "--", self)
	cmd.Env = append(os.Environ(), mrtrServerEnv+"=sdk")
	cmd.Stderr = testWriter{t}
	elicited := new(atomic.Int32)
	client := mcp.NewClient(&mcp.Implementation{Name: "e2e-mrtr-client", Version: "v1"}, &mcp.ClientOptions{
		ElicitationHandler: func(context.Context, *mcp.ElicitRequest) (*mcp.ElicitResult, error) {
			elicited.Add(1)
			return &mcp.ElicitResult{Action: "accept", Content: map[string]any{}}, nil
		},
	})
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	s, err := client.Connect(ctx, &mcp.CommandTransport{Command: cmd}, nil)
	if err != nil {
		t.Fatalf("connecting through the proxy: %v", err)
	}
	t.Cleanup(func() { s.Close() })
	return mrtrClient{session: s, audit: auditPath, elicited: elicited, approvals: approvals}
}

func testMultiRoundTripCalls(t *testing.T, policyYAML string, wantContinued map[string]int) {
	c := connectMRTR(t, policyYAML)
	s, elicited, approvals, auditPath := c.session, c.elicited, c.approvals, c.audit

	for _, tc := range []struct {
		tool      string
		args      map[string]any
		want      string
		elicited  int32
		approvals int32
	}{
		{"confirm_run", map[string]any{"cmd": "ls"}, "ran ls", 1, 0},
		{"two_step", map[string]any{}, "both", 2, 0},
		{"deploy", map[string]any{"cmd": "v2"}, "ran v2", 1, 1},
	} {
		elicited.Store(0)
		approvals.Store(0)
		if got := callText(t, s, tc.tool, tc.args); got != tc.want {
			t.Fatalf("%s: %q, want %q", tc.tool, got, tc.want)
		}
		if e, a := elicited.Load(), approvals.Load(); e != tc.elicited || a != tc.approvals {
			t.Fatalf("%s: %d elicitations and %d approvals, want %d and %d", tc.tool, e, a, tc.elicited, tc.approvals)
		}
		// Its rounds spent the call's one unit: a new call is refused.
		wantAIPError(t, s, tc.tool, tc.args, aip.CodeRateLimited)
	}

	continued := map[string]int{}
	for _, r := range auditLines(t, auditPath) {
		if r["event"] == "ROUND_CONTINUED" {
			continued[r["tool"].(string)]++
		}
	}
	for tool, n := range wantContinued {
		if continued[tool] != n {
			t.Errorf("%s: %d rounds audited as continued, want %d", tool, continued[tool], n)
		}
	}
}

// rawProxy runs the binary in front of the raw MRTR server and exchanges
// lines with it.
type rawProxy struct {
	t      *testing.T
	in     interface{ Write([]byte) (int, error) }
	lines  chan string
	server string // the server's log of received lines
}

func startRawProxy(t *testing.T, policyYAML string) *rawProxy {
	t.Helper()
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	policyPath := filepath.Join(dir, "policy.yaml")
	if err := os.WriteFile(policyPath, []byte(policyYAML), 0o600); err != nil {
		t.Fatal(err)
	}
	p := &rawProxy{t: t, lines: make(chan string, 16), server: filepath.Join(dir, "received.jsonl")}
	cmd := exec.Command(testenv.AgentidBinary(t), "proxy", "--policy", policyPath, "--audit", filepath.Join(dir, "audit.jsonl"), "--", self)
	cmd.Env = append(os.Environ(), mrtrServerEnv+"=raw:"+p.server)
	cmd.Stderr = testWriter{t}
	in, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		sc := bufio.NewScanner(out)
		sc.Buffer(make([]byte, 1<<16), 16<<20)
		for sc.Scan() {
			p.lines <- sc.Text()
		}
		close(p.lines)
	}()
	t.Cleanup(func() {
		in.Close()
		done := make(chan struct{})
		go func() { _ = cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			_ = cmd.Process.Kill()
			<-done
		}
		wg.Wait()
	})
	p.in = in
	return p
}

// exchange sends line and returns the answer.
func (p *rawProxy) exchange(line string) map[string]any {
	p.t.Helper()
	if _, err := p.in.Write([]byte(line + "\n")); err != nil {
		p.t.Fatal(err)
	}
	select {
	case l, ok := <-p.lines:
		if !ok {
			p.t.Fatal("the proxy closed its output")
		}
		var m map[string]any
		if err := json.Unmarshal([]byte(l), &m); err != nil {
			p.t.Fatalf("the proxy wrote %q: %v", l, err)
		}
		return m
	case <-time.After(20 * time.Second):
		p.t.Fatalf("no answer to %s", line)
		return nil
	}
}

func TestForgedAndSwappedRequestStatesThroughTheProxy(t *testing.T) {
	p := startRawProxy(t, `apiVersion: aip.io/v1alpha2
kind: AgentPolicy
metadata: {name: mrtr-raw}
spec:
  tool_rules:
    - tool: run
      rate_limit: 1/hour
`)
	call := func(id, args, state string) string {
		line := `{"jsonrpc":"2.0","id":` + id + `,"method":"tools/call","params":{"name":"run","arguments":` + args
		if state != "" {
			s, _ := json.Marshal(state)
			line += `,"inputResponses":{"ok":{"action":"accept","content":{}}},"requestState":` + string(s)
		}
		return line + `}}`
	}
	first := p.exchange(call("1", `{"c":"a"}`, ""))
	state, _ := first["result"].(map[string]any)["requestState"].(string)
	if state == "" {
		t.Fatalf("first round: %v", first)
	}
	for _, tc := range []struct {
		name, line string
		code       int
		aipError   string
	}{
		{"the call's state with other arguments is refused", call("2", `{"c":"b"}`, state), aip.CodeForbidden, "forbidden"},
		{"a forged state is a new call, over the limit", call("3", `{"c":"a"}`, "for {\"c\":\"z\"}"), aip.CodeRateLimited, "rate_limited"},
		{"the state refused once is used up", call("4", `{"c":"a"}`, state), aip.CodeRateLimited, "rate_limited"},
	} {
		m := p.exchange(tc.line)
		e, _ := m["error"].(map[string]any)
		if e == nil || int(e["code"].(float64)) != tc.code || e["data"].(map[string]any)[aip.DataKey] != tc.aipError {
			t.Fatalf("%s: got %v, want %d (%s)", tc.name, m, tc.code, tc.aipError)
		}
	}
	// Unforged, the retry of a 1/hour call goes through (in a fresh proxy:
	// this one's unit is spent).
	q := startRawProxy(t, `apiVersion: aip.io/v1alpha2
kind: AgentPolicy
metadata: {name: mrtr-raw}
spec:
  tool_rules:
    - tool: run
      rate_limit: 1/hour
`)
	first = q.exchange(call("1", `{"c":"a"}`, ""))
	state, _ = first["result"].(map[string]any)["requestState"].(string)
	if m := q.exchange(call("2", `{"c":"a"}`, state)); m["error"] != nil {
		t.Fatalf("the retry of a 1/hour call: %v", m)
	}
	received, err := os.ReadFile(p.server)
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Count(string(received), "\n"); got != 1 || strings.Contains(string(received), `"c":"b"`) {
		t.Fatalf("the server received more than the first call:\n%s", received)
	}
}
