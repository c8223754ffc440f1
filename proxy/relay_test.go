package proxy

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/agentid/agentid/approve"
	"github.com/agentid/agentid/audit"
	"github.com/agentid/agentid/enforce"
	"github.com/agentid/agentid/policy"
)

// harness runs a Relay between a test client and a scripted fake server.
type harness struct {
	t         *testing.T
	toProxy   *io.PipeWriter
	fromProxy *bufio.Reader
	server    *fakeServer
	audit     *lockedBuffer
	done      chan error
}

// fakeServer records every line it receives and answers requests with a
// result produced by respond (nil: an empty result).
type fakeServer struct {
	mu       sync.Mutex
	received []string
	out      *io.PipeWriter
	respond  func(method string, params json.RawMessage) string // returns the result JSON
	hold     atomic.Bool                                        // answer nothing while set
}

func (s *fakeServer) lines() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.received...)
}

func (s *fakeServer) send(line string) {
	_, _ = s.out.Write([]byte(line + "\n"))
}

func (s *fakeServer) serve(in io.Reader) {
	sc := bufio.NewScanner(in)
	sc.Buffer(make([]byte, 1<<16), 64<<20)
	for sc.Scan() {
		line := sc.Text()
		s.mu.Lock()
		s.received = append(s.received, line)
		s.mu.Unlock()
		var msg struct {
			ID     json.RawMessage `json:"id"`
			Method string          `json:"method"`
			Params json.RawMessage `json:"params"`
		}
		if json.Unmarshal([]byte(line), &msg) != nil || msg.ID == nil || msg.Method == "" || s.hold.Load() {
			continue
		}
		result := `{}`
		if s.respond != nil {
			result = s.respond(msg.Method, msg.Params)
		}
		s.send(`{"jsonrpc":"2.0","id":` + string(msg.ID) + `,"result":` + result + `}`)
	}
	s.out.Close()
}

type lockedBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// mustPolicy compiles a policy for the tests' home and working directory.
func mustPolicy(t testing.TB, yaml string) *enforce.Policy {
	t.Helper()
	p, _, err := policy.Parse([]byte(yaml))
	if err != nil {
		t.Fatalf("policy: %v", err)
	}
	c, err := enforce.Compile(p, enforce.LoadOptions{HomeDir: "/home/u", WorkDir: "/work"})
	if err != nil {
		t.Fatalf("compile: %v", err)
	}
	return c
}

// mustCore returns a core enforcing yaml; configure adjusts its Config.
func mustCore(t testing.TB, yaml string, configure ...func(*enforce.Config)) *enforce.Core {
	t.Helper()
	cfg := enforce.Config{Policy: mustPolicy(t, yaml)}
	for _, f := range configure {
		f(&cfg)
	}
	c, err := enforce.New(cfg)
	if err != nil {
		t.Fatalf("core: %v", err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func startHarness(t *testing.T, cfg Config, respond func(string, json.RawMessage) string) *harness {
	t.Helper()
	buf := &lockedBuffer{}
	if cfg.Audit == nil {
		cfg.Audit = audit.New(buf)
	}
	h := startHarnessWithProxy(t, New(cfg), respond)
	h.audit = buf
	return h
}

// startHarnessWithProxy runs px between a test client and a fake server.
func startHarnessWithProxy(t *testing.T, px *Proxy, respond ...func(string, json.RawMessage) string) *harness {
	t.Helper()
	clientR, clientW := io.Pipe()
	outR, outW := io.Pipe()
	srvInR, srvInW := io.Pipe()
	srvOutR, srvOutW := io.Pipe()
	h := &harness{
		t: t, toProxy: clientW, fromProxy: bufio.NewReader(outR),
		server: &fakeServer{out: srvOutW},
		audit:  &lockedBuffer{}, done: make(chan error, 1),
	}
	if len(respond) > 0 {
		h.server.respond = respond[0]
	}
	go h.server.serve(srvInR)
	go func() {
		h.done <- px.Relay(context.Background(), clientR, outW, srvInW, srvOutR)
		outW.Close()
	}()
	t.Cleanup(func() {
		clientW.Close()
		select {
		case <-h.done:
		case <-time.After(5 * time.Second):
			t.Error("relay did not stop after the client closed")
		}
	})
	return h
}

func (h *harness) send(line string) {
	h.t.Helper()
	if _, err := h.toProxy.Write([]byte(line + "\n")); err != nil {
		h.t.Fatal(err)
	}
}

// recv returns the next message the client receives.
func (h *harness) recv() map[string]any {
	h.t.Helper()
	ch := make(chan string, 1)
	go func() {
		l, _ := h.fromProxy.ReadString('\n')
		ch <- l
	}()
	select {
	case l := <-ch:
		var m map[string]any
		if err := json.Unmarshal([]byte(l), &m); err != nil {
			h.t.Fatalf("client received invalid JSON %q: %v", l, err)
		}
		return m
	case <-time.After(5 * time.Second):
		h.t.Fatal("client received nothing within 5s")
		return nil
	}
}

func errCode(m map[string]any) int {
	e, ok := m["error"].(map[string]any)
	if !ok {
		return 0
	}
	return int(e["code"].(float64))
}

const basicPolicy = `apiVersion: aip.io/v1alpha2
kind: AgentPolicy
metadata: {name: t}
spec:
  allowed_tools: [read_file, echo]
  protected_paths: [~/.ssh]
  tool_rules:
    - tool: write_file
      action: ask
    - tool: delete_file
      action: block
  dlp:
    patterns:
      - {name: AWS Key, regex: "AKIA[A-Z0-9]{16}"}
`

func TestRelayRefusesHostileMessagesBeforeTheServer(t *testing.T) {
	tests := []struct {
		name     string
		line     string
		wantCode int // 0: no answer at all (notification or stray response)
	}{
		{"a batch is refused with -32600", `[{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"delete_file"}}]`, -32600},
		{"NaN in arguments is a parse error", `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"read_file","arguments":{"x":NaN}}}`, -32700},
		{"a case-variant Name key cannot shadow name", `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"delete_file","Name":"read_file"}}`, -32600},
		{"a case-variant Method key cannot shadow method", `{"jsonrpc":"2.0","id":1,"method":"tools/call","Method":"tools/list","params":{"name":"delete_file"}}`, -32600},
		{"duplicate keys are refused", `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"delete_file","name":"read_file"}}`, -32600},
		{"a zero-width method cannot skip tool checks", "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"tools/call\u200b\",\"params\":{\"name\":\"delete_file\"}}", -32006},
		{"trailing garbage is a parse error", `{"jsonrpc":"2.0","id":1,"method":"ping"} x`, -32700},
		{"a denied notification gets no answer", `{"jsonrpc":"2.0","method":"notifications/evil"}`, 0},
		{"a response to nothing the server asked is dropped", `{"jsonrpc":"2.0","id":77,"result":{}}`, 0},
		{"a blocked tool gets -32001", `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"delete_file","arguments":{}}}`, -32001},
		{"a protected path gets -32007", `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"read_file","arguments":{"path":"~/.ssh/id_rsa"}}}`, -32007},
		{"a method outside the allowlist gets -32006", `{"jsonrpc":"2.0","id":1,"method":"resources/read","params":{}}`, -32006},
		{"arguments that are not an object are invalid params", `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"read_file","arguments":"x"}}`, -32602},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := startHarness(t, Config{Core: mustCore(t, basicPolicy)}, nil)
			h.send(tt.line)
			if tt.wantCode != 0 {
				if got := errCode(h.recv()); got != tt.wantCode {
					t.Fatalf("code %d, want %d", got, tt.wantCode)
				}
			}
			// A ping afterwards proves the proxy is alive and that its
			// answer is the next thing the client sees.
			h.send(`{"jsonrpc":"2.0","id":"after","method":"ping"}`)
			if m := h.recv(); m["id"] != "after" || m["error"] != nil {
				t.Fatalf("after the hostile message: %v", m)
			}
			for _, l := range h.server.lines() {
				if !strings.Contains(l, `"after"`) {
					t.Errorf("server received %q", l)
				}
			}
		})
	}
}

func TestRelayAnswersWithTheOriginalID(t *testing.T) {
	h := startHarness(t, Config{Core: mustCore(t, basicPolicy)}, nil)
	h.send(`{"jsonrpc":"2.0","id":"abc-123","method":"tools/call","params":{"name":"nope"}}`)
	m := h.recv()
	if m["id"] != "abc-123" || errCode(m) != -32001 {
		t.Fatalf("got %v", m)
	}
	data := m["error"].(map[string]any)["data"].(map[string]any)
	if data["tool"] != "nope" || data["reason"] != "Tool not in allowed_tools list" {
		t.Fatalf("data %v", data)
	}
}

func TestRelayRefusesOversizedLinesAndKeepsGoing(t *testing.T) {
	h := startHarness(t, Config{Core: mustCore(t, basicPolicy), MaxLineSize: 1024}, nil)
	h.send(`{"jsonrpc":"2.0","id":1,"method":"ping","params":{"x":"` + strings.Repeat("a", 4096) + `"}}`)
	if m := h.recv(); errCode(m) != -32600 || m["id"] != float64(1) {
		t.Fatalf("got %v, want -32600 for id 1", m)
	}
	h.send(`{"jsonrpc":"2.0","id":2,"method":"ping"}`)
	if m := h.recv(); m["id"] != float64(2) || m["error"] != nil {
		t.Fatalf("got %v", m)
	}
	if n := len(h.server.lines()); n != 1 {
		t.Fatalf("server received %d lines, want only the ping", n)
	}
}

func TestRelayRefusesDuplicateIDInFlight(t *testing.T) {
	release := make(chan struct{})
	h := startHarness(t, Config{Core: mustCore(t, basicPolicy),
		Approver: approve.Func(func(ctx context.Context, _ approve.Request) (approve.Answer, error) {
			<-release
			return approve.Denied, nil
		})}, nil)
	h.send(`{"jsonrpc":"2.0","id":5,"method":"tools/call","params":{"name":"write_file","arguments":{"path":"/tmp/x"}}}`)
	h.send(`{"jsonrpc":"2.0","id":5,"method":"tools/list"}`)
	if got := errCode(h.recv()); got != -32600 {
		t.Fatalf("duplicate id: code %d, want -32600", got)
	}
	close(release)
	if got := errCode(h.recv()); got != -32004 {
		t.Fatalf("denied approval: code %d, want -32004", got)
	}
}

func TestRelayPendingApprovalDoesNotStallOtherTraffic(t *testing.T) {
	release := make(chan approve.Answer)
	h := startHarness(t, Config{Core: mustCore(t, basicPolicy),
		Approver: approve.Func(func(ctx context.Context, r approve.Request) (approve.Answer, error) {
			if r.Digest == "" || r.Tool != "write_file" {
				t.Errorf("approval request lacks the call binding: %+v", r)
			}
			return <-release, nil
		})}, func(method string, _ json.RawMessage) string {
		return `{"content":[{"type":"text","text":"done"}]}`
	})
	h.send(`{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"write_file","arguments":{"path":"/tmp/x"}}}`)
	h.send(`{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"echo","arguments":{"text":"hi"}}}`)
	if m := h.recv(); m["id"] != float64(2) {
		t.Fatalf("the allowed call waited behind the approval: %v", m)
	}
	release <- approve.Approved
	if m := h.recv(); m["id"] != float64(1) || m["error"] != nil {
		t.Fatalf("approved call: %v", m)
	}
}

func TestRelayApprovalOutcomes(t *testing.T) {
	tests := []struct {
		name   string
		answer func(ctx context.Context) approve.Answer
		want   int
	}{
		{"denial answers -32004", func(context.Context) approve.Answer { return approve.Denied }, -32004},
		{"timeout answers -32005", func(ctx context.Context) approve.Answer { <-ctx.Done(); return approve.TimedOut }, -32005},
		{"an approver that returns Denied after its deadline counts as a timeout", func(ctx context.Context) approve.Answer { <-ctx.Done(); return approve.Denied }, -32005},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := startHarness(t, Config{Core: mustCore(t, basicPolicy, func(c *enforce.Config) { c.ApprovalTimeout = 20 * time.Millisecond }),
				Approver: approve.Func(func(ctx context.Context, _ approve.Request) (approve.Answer, error) {
					return tt.answer(ctx), nil
				})}, nil)
			h.send(`{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"write_file","arguments":{}}}`)
			if got := errCode(h.recv()); got != tt.want {
				t.Fatalf("code %d, want %d", got, tt.want)
			}
			if n := len(h.server.lines()); n != 0 {
				t.Fatalf("server received %d lines", n)
			}
		})
	}
}

func TestRelayFiltersToolsListAndPinsAdvertisedNames(t *testing.T) {
	h := startHarness(t, Config{Core: mustCore(t, basicPolicy)}, func(method string, _ json.RawMessage) string {
		if method == "tools/list" {
			return `{"tools":[{"name":"read_file"},{"name":"delete_file"},{"name":"write_file"},{"name":"Echo"},{"name":"ｅｃｈｏ"}],"nextCursor":"c2"}`
		}
		return `{"content":[]}`
	})
	h.send(`{"jsonrpc":"2.0","id":1,"method":"tools/list"}`)
	m := h.recv()
	result := m["result"].(map[string]any)
	var names []string
	for _, tool := range result["tools"].([]any) {
		names = append(names, tool.(map[string]any)["name"].(string))
	}
	if strings.Join(names, ",") != "read_file,write_file" {
		t.Fatalf("offered %v: want blocked and colliding tools hidden", names)
	}
	if result["nextCursor"] != "c2" {
		t.Fatalf("other result members must be kept: %v", result)
	}
	// "Echo" and "ｅｃｈｏ" both normalize to the allowed "echo": ambiguous.
	h.send(`{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"Echo","arguments":{}}}`)
	if got := errCode(h.recv()); got != -32001 {
		t.Fatalf("ambiguous tool: code %d, want -32001", got)
	}
	// "READ_FILE" is allowed by the policy but is not what the server
	// advertised: it must not reach the server.
	h.send(`{"jsonrpc":"2.0","id":3,"method":"tools/call","params":{"name":"READ_FILE","arguments":{}}}`)
	if got := errCode(h.recv()); got != -32001 {
		t.Fatalf("unadvertised raw name: code %d, want -32001", got)
	}
	h.send(`{"jsonrpc":"2.0","id":4,"method":"tools/call","params":{"name":"read_file","arguments":{}}}`)
	if m := h.recv(); m["error"] != nil {
		t.Fatalf("advertised allowed tool: %v", m)
	}
}

func TestRelayRedactsEveryStringOfAResponse(t *testing.T) {
	key := "AKIA" + "IOSFODNN7EXAMPLE"
	h := startHarness(t, Config{Core: mustCore(t, basicPolicy)}, func(string, json.RawMessage) string {
		return `{"content":[{"type":"text","text":"k=` + key + `"},{"type":"image","data":"AAAA","mimeType":"image/png"}],"structuredContent":{"nested":["` + key + `"]}}`
	})
	h.send(`{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"echo","arguments":{}}}`)
	m := h.recv()
	raw, _ := json.Marshal(m)
	if strings.Contains(string(raw), key) {
		t.Fatalf("secret reached the client: %s", raw)
	}
	content := m["result"].(map[string]any)["content"].([]any)
	img := content[1].(map[string]any)
	if img["data"] != "AAAA" || img["mimeType"] != "image/png" {
		t.Fatalf("non-text content lost fields: %v", img)
	}
	if !strings.Contains(h.audit.String(), `"DLP_TRIGGERED"`) {
		t.Fatalf("no DLP_TRIGGERED audit record: %s", h.audit.String())
	}
}

func TestRelayDropsServerGarbageAndKeepsServing(t *testing.T) {
	h := startHarness(t, Config{Core: mustCore(t, basicPolicy)}, nil)
	h.server.send(`this is not json`)
	h.server.send(`{"jsonrpc":"2.0","id":99,"result":{}}`) // answers nothing we asked
	h.send(`{"jsonrpc":"2.0","id":1,"method":"ping"}`)
	if m := h.recv(); m["id"] != float64(1) {
		t.Fatalf("got %v", m)
	}
}

func TestRelayForwardsClientResponsesOnlyToServerRequests(t *testing.T) {
	h := startHarness(t, Config{Core: mustCore(t, basicPolicy)}, nil)
	h.server.send(`{"jsonrpc":"2.0","id":"srv-1","method":"roots/list"}`)
	if m := h.recv(); m["method"] != "roots/list" {
		t.Fatalf("server request not relayed: %v", m)
	}
	h.send(`{"jsonrpc":"2.0","id":"srv-1","result":{"roots":[]}}`)
	h.send(`{"jsonrpc":"2.0","id":"srv-1","result":{"roots":[]}}`) // a second answer is stray
	h.send(`{"jsonrpc":"2.0","id":2,"method":"ping"}`)
	h.recv()
	var responses int
	for _, l := range h.server.lines() {
		if strings.Contains(l, `"srv-1"`) {
			responses++
		}
	}
	if responses != 1 {
		t.Fatalf("server received %d answers to its request, want 1", responses)
	}
}

func TestRelayMonitorModeForwardsViolationsButEnforcesProtectedPaths(t *testing.T) {
	yaml := strings.Replace(basicPolicy, "spec:\n", "spec:\n  mode: monitor\n", 1)
	h := startHarness(t, Config{Core: mustCore(t, yaml)}, nil)
	h.send(`{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"delete_file","arguments":{}}}`)
	if m := h.recv(); m["error"] != nil {
		t.Fatalf("monitor mode blocked a rule violation: %v", m)
	}
	h.send(`{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"read_file","arguments":{"path":"~/.ssh/id_rsa"}}}`)
	if got := errCode(h.recv()); got != -32007 {
		t.Fatalf("protected path in monitor mode: code %d, want -32007", got)
	}
	if !strings.Contains(h.audit.String(), `"ALLOW_MONITOR"`) {
		t.Fatalf("no ALLOW_MONITOR record: %s", h.audit.String())
	}
}

func TestRelayRequestDLP(t *testing.T) {
	key := "AKIA" + "IOSFODNN7EXAMPLE"
	tests := []struct {
		name     string
		onMatch  string
		wantCode int
		wantSent string // substring the server must see, "" when nothing is sent
	}{
		{"block refuses the call", "block", -32001, ""},
		{"redact forwards the redacted arguments", "redact", 0, `[REDACTED:AWS Key]`},
		{"warn forwards the original arguments", "warn", 0, key},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			yaml := strings.Replace(basicPolicy, "  dlp:\n", "  dlp:\n    scan_requests: true\n    on_request_match: "+tt.onMatch+"\n", 1)
			h := startHarness(t, Config{Core: mustCore(t, yaml)}, nil)
			h.send(`{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"echo","arguments":{"text":"` + key + `"}}}`)
			if got := errCode(h.recv()); got != tt.wantCode {
				t.Fatalf("code %d, want %d", got, tt.wantCode)
			}
			sent := strings.Join(h.server.lines(), "\n")
			if tt.wantSent == "" && sent != "" || !strings.Contains(sent, tt.wantSent) {
				t.Fatalf("server received %q", sent)
			}
			if strings.Contains(h.audit.String(), key) {
				t.Fatalf("the audit log holds the secret: %s", h.audit.String())
			}
		})
	}
}

func TestRelayRefusesALineOverTheDefault16MiBCap(t *testing.T) {
	h := startHarness(t, Config{Core: mustCore(t, basicPolicy)}, nil)
	huge := `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"echo","arguments":{"text":"` +
		strings.Repeat("x", 16<<20) + `"}}}`
	go h.send(huge) // the pipe is drained by the proxy while it discards the line
	if got := errCode(h.recv()); got != -32600 {
		t.Fatalf("code %d, want -32600", got)
	}
	h.send(`{"jsonrpc":"2.0","id":2,"method":"ping"}`)
	if m := h.recv(); m["id"] != float64(2) {
		t.Fatalf("after the huge line: %v", m)
	}
	if n := len(h.server.lines()); n != 1 {
		t.Fatalf("server received %d lines, want only the ping", n)
	}
}

// brokenDisk is an audit log destination whose writes fail until fixed.
type brokenDisk struct {
	mu     sync.Mutex
	broken bool
}

func (d *brokenDisk) Write(p []byte) (int, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.broken {
		return 0, io.ErrShortWrite
	}
	return len(p), nil
}

func (d *brokenDisk) set(broken bool) { d.mu.Lock(); d.broken = broken; d.mu.Unlock() }

func TestACallWhoseAuditRecordCannotBeWrittenIsNotForwarded(t *testing.T) {
	disk := &brokenDisk{broken: true}
	h := startHarness(t, Config{Core: mustCore(t, basicPolicy), Audit: audit.New(disk)}, nil)
	h.send(`{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"echo","arguments":{}}}`)
	m := h.recv()
	if errCode(m) != -32603 || !strings.Contains(fmt.Sprint(m), "audit log unavailable") {
		t.Fatalf("got %v, want -32603 audit log unavailable", m)
	}
	if len(h.server.lines()) != 0 {
		t.Fatalf("the call reached the server: %v", h.server.lines())
	}
	disk.set(false)
	h.send(`{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"echo","arguments":{}}}`)
	if m := h.recv(); m["error"] != nil {
		t.Fatalf("after the disk recovered: %v", m)
	}
}

func TestAuditBestEffortLetsTrafficGoOnWhenTheLogFails(t *testing.T) {
	disk := &brokenDisk{broken: true}
	h := startHarness(t, Config{Core: mustCore(t, basicPolicy), Audit: audit.New(disk), AuditBestEffort: true}, nil)
	h.send(`{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"echo","arguments":{}}}`)
	if m := h.recv(); m["error"] != nil {
		t.Fatalf("best effort: %v", m)
	}
}

// A response too large to relay still answers its request at once, so the
// client does not wait for its own timeout, and the session goes on.
func TestAServerResponseOverTheLimitIsAnsweredAtOnce(t *testing.T) {
	h := startHarness(t, Config{Core: mustCore(t, basicPolicy), MaxLineSize: 1024}, func(method string, _ json.RawMessage) string {
		if method == "tools/call" {
			return `{"content":[{"type":"text","text":"` + strings.Repeat("z", 8192) + `"}]}`
		}
		return `{}`
	})
	h.send(`{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"echo","arguments":{}}}`)
	m := h.recv()
	if errCode(m) != -32603 || m["id"] != float64(1) || !strings.Contains(fmt.Sprint(m), "size limit") {
		t.Fatalf("got %v, want -32603 for id 1 naming the size limit", m)
	}
	h.send(`{"jsonrpc":"2.0","id":2,"method":"ping"}`)
	if m := h.recv(); m["id"] != float64(2) || m["error"] != nil {
		t.Fatalf("after the oversized response: %v", m)
	}
}
