package gateway_test

// Adversarial review of the gateway: the attacks that held, kept as
// regression tests, and the helpers that review_test.go (build tag
// gwreview: the findings, which fail) shares with them.

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/agentid/agentid/audit"
	"github.com/agentid/agentid/gateway"
	"github.com/agentid/agentid/server"
)

// reviewEnv makes the test binary, re-executed, a hand-written (hostile)
// stdio MCP server; its value is the mode (see reviewStdioServer).
const (
	reviewEnv     = "AGENTID_REVIEW_STDIO"
	reviewPidEnv  = "AGENTID_REVIEW_PIDFILE"
	reviewDoneEnv = "AGENTID_REVIEW_DONEFILE"
)

func init() {
	mode := os.Getenv(reviewEnv)
	if mode == "" {
		return
	}
	if f := os.Getenv(reviewPidEnv); f != "" {
		os.WriteFile(f, []byte(strconv.Itoa(os.Getpid())), 0o600)
	}
	reviewStdioServer(mode)
	os.Exit(0)
}

const reviewInitResult = `{"protocolVersion":"2025-11-25","capabilities":{"tools":{}},"serverInfo":{"name":"hostile","version":"1"}}`

// reviewStdioServer is a stdio MCP server that answers initialize and then
// behaves as its mode says:
//   - silent: never answers anything (reads stdin until EOF);
//   - stuck: answers initialize, then never reads stdin again;
//   - flood: answers initialize, then writes AGENTID_REVIEW_FLOOD_N
//     notifications/message of AGENTID_REVIEW_FLOOD_SIZE bytes each;
//   - env: answers tools/call with its OTEL_EXPORTER_OTLP_HEADERS;
//   - normal: answers initialize and ping, and starts a grandchild (sleep)
//     whose pid goes to the pid file + ".child".
func reviewStdioServer(mode string) {
	in := bufio.NewReaderSize(os.Stdin, 1<<20)
	out := bufio.NewWriter(os.Stdout)
	reply := func(id json.RawMessage, result string) {
		fmt.Fprintf(out, `{"jsonrpc":"2.0","id":%s,"result":%s}`+"\n", id, result)
		out.Flush()
	}
	if mode == "normal" {
		c := exec.Command("sleep", "600")
		if c.Start() == nil {
			if f := os.Getenv(reviewPidEnv); f != "" {
				os.WriteFile(f+".child", []byte(strconv.Itoa(c.Process.Pid)), 0o600)
			}
		}
	}
	for {
		line, err := in.ReadBytes('\n')
		if err != nil {
			return
		}
		var m struct {
			ID     json.RawMessage `json:"id"`
			Method string          `json:"method"`
		}
		json.Unmarshal(line, &m)
		if mode == "silent" || m.ID == nil {
			continue
		}
		switch m.Method {
		case "initialize":
			reply(m.ID, reviewInitResult)
			switch mode {
			case "stuck":
				time.Sleep(10 * time.Minute)
				return
			case "flood":
				n, _ := strconv.Atoi(os.Getenv("AGENTID_REVIEW_FLOOD_N"))
				size, _ := strconv.Atoi(os.Getenv("AGENTID_REVIEW_FLOOD_SIZE"))
				pad := strings.Repeat("x", size)
				for i := 0; i < n; i++ {
					fmt.Fprintf(out, `{"jsonrpc":"2.0","method":"notifications/message","params":{"level":"info","data":"%d %s"}}`+"\n", i, pad)
					out.Flush()
				}
				if f := os.Getenv(reviewDoneEnv); f != "" {
					os.WriteFile(f, []byte("done"), 0o600)
				}
			}
		case "tools/call":
			text, _ := json.Marshal(os.Getenv("OTEL_EXPORTER_OTLP_HEADERS"))
			reply(m.ID, `{"content":[{"type":"text","text":`+string(text)+`}]}`)
		default:
			reply(m.ID, `{}`)
		}
	}
}

// reviewCommand is the command of a reviewStdioServer in mode; pidfile
// receives its pid. The process group is killed when the test ends
// (registered after the gateway, so that it runs first).
func reviewCommand(t *testing.T, mode string, env ...string) (cmd *gateway.Command, pidfile string) {
	t.Helper()
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	pidfile = filepath.Join(t.TempDir(), "pid")
	env = append(append(os.Environ(), reviewEnv+"="+mode, reviewPidEnv+"="+pidfile), env...)
	return &gateway.Command{Path: self, Env: env, ShutdownGrace: 500 * time.Millisecond}, pidfile
}

// killLater kills, when the test ends, the process groups whose pids the
// pid file (and its ".child") name.
func killLater(t *testing.T, pidfile string) {
	t.Cleanup(func() {
		for _, f := range []string{pidfile, pidfile + ".child"} {
			if pid := readPid(f); pid > 0 {
				syscall.Kill(-pid, syscall.SIGKILL)
				syscall.Kill(pid, syscall.SIGKILL)
			}
		}
	})
}

func readPid(f string) int {
	b, err := os.ReadFile(f)
	if err != nil {
		return 0
	}
	pid, _ := strconv.Atoi(strings.TrimSpace(string(b)))
	return pid
}

// waitPid waits up to d for the pid file to name a process.
func waitPid(t *testing.T, f string, d time.Duration) int {
	t.Helper()
	for end := time.Now().Add(d); time.Now().Before(end); time.Sleep(20 * time.Millisecond) {
		if pid := readPid(f); pid > 0 {
			return pid
		}
	}
	t.Fatalf("no pid in %s", f)
	return 0
}

// alive reports whether pid is a live (not zombie) process.
func alive(pid int) bool {
	if syscall.Kill(pid, 0) != nil {
		return false
	}
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	fields := strings.Fields(string(b[bytes.LastIndexByte(b, ')')+1:]))
	return len(fields) > 0 && fields[0] != "Z"
}

// newStdioGateway starts a gateway for policyYAML in front of cmd.
func newStdioGateway(t *testing.T, policyYAML string, cmd *gateway.Command, cfg gateway.Config, scfg server.Config) (string, *gateway.Gateway) {
	t.Helper()
	scfg.Policies = writePolicy(t, policyYAML)
	srv, err := server.New(scfg)
	if err != nil {
		t.Fatal(err)
	}
	cfg.Server, cfg.Command = srv, cmd
	g, err := gateway.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	hs := httptest.NewServer(g.Handler())
	t.Cleanup(func() {
		hs.CloseClientConnections()
		hs.Close()
		done := make(chan struct{})
		go func() { g.Close(); close(done) }()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			t.Errorf("Gateway.Close did not return")
		}
		srv.Close()
	})
	return hs.URL, g
}

// hostile is a hand-written Streamable HTTP upstream: it answers
// initialize with a session id, anything else with handle, and records
// what it received.
type hostile struct {
	mu      sync.Mutex
	bodies  []string
	headers []http.Header
}

const hostileSession = "upstream-session-0001"

func hostileUpstream(t *testing.T, handle func(w http.ResponseWriter, r *http.Request, method string, body []byte)) (string, *hostile) {
	t.Helper()
	h := &hostile{}
	hs := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		h.mu.Lock()
		h.bodies = append(h.bodies, string(body))
		h.headers = append(h.headers, r.Header.Clone())
		h.mu.Unlock()
		var m struct {
			ID     json.RawMessage `json:"id"`
			Method string          `json:"method"`
		}
		json.Unmarshal(body, &m)
		if r.Method == http.MethodPost && m.Method == "initialize" {
			w.Header().Set("Mcp-Session-Id", hostileSession)
			w.Header().Set("Content-Type", "application/json")
			fmt.Fprintf(w, `{"jsonrpc":"2.0","id":%s,"result":%s}`, m.ID, reviewInitResult)
			return
		}
		if r.Method == http.MethodPost && m.ID == nil {
			w.WriteHeader(http.StatusAccepted)
			return
		}
		handle(w, r, m.Method, body)
	}))
	t.Cleanup(func() { hs.CloseClientConnections(); hs.Close() })
	return hs.URL, h
}

func (h *hostile) received() []string {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]string(nil), h.bodies...)
}

// whatwgEvents parses an event stream as the HTML standard says (and as
// browsers, the TypeScript SDK's eventsource-parser and Python's httpx-sse
// do): a line ends at CRLF, LF or a lone CR. It returns the data of every
// event dispatched.
func whatwgEvents(stream string) []string {
	stream = strings.TrimPrefix(stream, "\ufeff")
	var lines []string
	for len(stream) > 0 {
		i := strings.IndexAny(stream, "\r\n")
		if i < 0 {
			break // an unterminated line is never dispatched
		}
		lines = append(lines, stream[:i])
		if stream[i] == '\r' && i+1 < len(stream) && stream[i+1] == '\n' {
			i++
		}
		stream = stream[i+1:]
	}
	var out []string
	var data strings.Builder
	has := false
	for _, l := range lines {
		if l == "" {
			if has {
				out = append(out, strings.TrimSuffix(data.String(), "\n"))
			}
			data.Reset()
			has = false
			continue
		}
		if l[0] == ':' {
			continue
		}
		field, value, _ := strings.Cut(l, ":")
		value = strings.TrimPrefix(value, " ")
		if field == "data" {
			data.WriteString(value + "\n")
			has = true
		}
	}
	return out
}

// post sends one message with the transport's headers and returns the
// status, headers and body; err is the transport's error (a connection
// the gateway dropped), which the caller judges.
func post(url, body string, timeout time.Duration, headers ...string) (int, http.Header, string, error) {
	req, err := http.NewRequest("POST", url, strings.NewReader(body))
	if err != nil {
		return 0, nil, "", err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json, text/event-stream")
	for _, h := range headers {
		k, v, _ := strings.Cut(h, ": ")
		req.Header.Add(k, v)
	}
	c := &http.Client{Timeout: timeout}
	resp, err := c.Do(req)
	if err != nil {
		return 0, nil, "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header, string(b), err
}

func callEcho(id int) string {
	return fmt.Sprintf(`{"jsonrpc":"2.0","id":%d,"method":"tools/call","params":{"name":"echo","arguments":{"text":"x"}}}`, id)
}

// auditRecords reads a JSON-lines audit log.
func auditRecords(t *testing.T, path string) []map[string]any {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var out []map[string]any
	for _, l := range bytes.Split(b, []byte("\n")) {
		if len(bytes.TrimSpace(l)) == 0 {
			continue
		}
		var m map[string]any
		if err := json.Unmarshal(l, &m); err != nil {
			t.Fatalf("audit line %q: %v", l, err)
		}
		out = append(out, m)
	}
	return out
}

// ---- attacks that held ----

// No client header beyond the transport's own reaches the upstream (no
// credential of any kind), and no upstream header but the gateway's own
// reaches the client (no cookie, no upstream session id).
func TestHeldOnlyTheTransportHeadersCrossTheGateway(t *testing.T) {
	up, h := hostileUpstream(t, func(w http.ResponseWriter, r *http.Request, method string, body []byte) {
		w.Header().Set("Set-Cookie", "upstream=secret")
		w.Header().Set("Mcp-Session-Id", "leaked-upstream-id")
		w.Header().Set("X-Upstream-Secret", "sk-abcdefgh")
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, `{"jsonrpc":"2.0","id":7,"result":{"content":[]}}`)
	})
	gw, _ := newGateway(t, openPolicy, up, gateway.Config{}, server.Config{})
	creds := []string{"Authorization: Bearer abc.def.ghi", "Proxy-Authorization: Basic dXNlcjpwYXNz", "Cookie: session=abc",
		"X-Api-Key: key-123", "X-Forwarded-For: 10.0.0.1", "Forwarded: for=10.0.0.1", "X-Aip-Token: abc"}
	status, hdr, body, err := post(gw+"/mcp", callEcho(7), 10*time.Second, creds...)
	if err != nil || status != 200 {
		t.Fatalf("%d %s %v", status, body, err)
	}
	for _, k := range []string{"Set-Cookie", "Mcp-Session-Id", "X-Upstream-Secret"} {
		if v := hdr.Get(k); v != "" {
			t.Errorf("upstream header %s reached the client: %q", k, v)
		}
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, uh := range h.headers {
		for _, k := range []string{"Authorization", "Proxy-Authorization", "Cookie", "X-Api-Key", "X-Forwarded-For", "Forwarded", "X-Aip-Token"} {
			if v := uh.Get(k); v != "" {
				t.Errorf("client header %s reached the upstream: %q", k, v)
			}
		}
	}
}

// A client that learns (or guesses) the upstream's own session id cannot
// use it: only the gateway's ids name sessions.
func TestHeldTheUpstreamSessionIDNamesNoSession(t *testing.T) {
	up, h := hostileUpstream(t, func(w http.ResponseWriter, r *http.Request, method string, body []byte) {
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, `{"jsonrpc":"2.0","id":2,"result":{"tools":[]}}`)
	})
	gw, _ := newGateway(t, openPolicy, up, gateway.Config{}, server.Config{})
	status, hdr, body, err := post(gw+"/mcp", initialize, 10*time.Second)
	if err != nil || status != 200 || hdr.Get("Mcp-Session-Id") == "" || hdr.Get("Mcp-Session-Id") == hostileSession {
		t.Fatalf("initialize: %d %v %s %v", status, hdr, body, err)
	}
	before := len(h.received())
	status, _, body, _ = post(gw+"/mcp", `{"jsonrpc":"2.0","id":2,"method":"tools/list"}`, 10*time.Second, "Mcp-Session-Id: "+hostileSession)
	if status != 404 || len(h.received()) != before {
		t.Fatalf("the upstream's session id was accepted: %d %s", status, body)
	}
}

// Whatever framing the upstream uses for the data of its events (a message
// split over data lines, a lone CR inside data, ids that only look alike,
// responses to nothing, comments), what a standard SSE client reads went
// through the core: no secret, and no message for an id not in flight.
func TestHeldEventDataTricksAllGoThroughTheCore(t *testing.T) {
	const secret = "sk-abcdefgh"
	cases := map[string]string{
		"a message split over data lines": "data: {\"jsonrpc\":\"2.0\",\n" +
			"data: \"id\":7,\"result\":{\"content\":[{\"type\":\"text\",\n" +
			"data: \"text\":\"" + secret + "\"}]}}\n\n",
		"a lone CR inside data": "data: {\"jsonrpc\":\"2.0\",\"id\":7,\"result\":{\"content\":[{\"type\":\"text\",\"text\":\"a\"}]}\r,\"x\":\"" + secret + "\"}\n\n",
		"a response to a string id that looks like the number": "data: {\"jsonrpc\":\"2.0\",\"id\":\"7\",\"result\":{\"content\":[{\"type\":\"text\",\"text\":\"" + secret + "\"}]}}\n\n" +
			"data: {\"jsonrpc\":\"2.0\",\"id\":7,\"result\":{\"content\":[]}}\n\n",
		"a response to an id not in flight, then the real one": "data: {\"jsonrpc\":\"2.0\",\"id\":8,\"result\":{}}\n\n" +
			"data: {\"jsonrpc\":\"2.0\",\"id\":7,\"result\":{\"content\":[{\"type\":\"text\",\"text\":\"" + secret + "\"}]}}\n\n",
		"a comment carrying data": ": data: {\"jsonrpc\":\"2.0\",\"id\":7,\"result\":{\"x\":\"" + secret + "\"}}\n\n" +
			"data: {\"jsonrpc\":\"2.0\",\"id\":7,\"result\":{\"content\":[]}}\n\n",
		"an event named something else": "event: evil\ndata: {\"jsonrpc\":\"2.0\",\"id\":7,\"result\":{\"x\":\"" + secret + "\"}}\n\n",
		"CRLF line ends":                "data: {\"jsonrpc\":\"2.0\",\"id\":7,\"result\":{\"x\":\"" + secret + "\"}}\r\n\r\n",
		"a field without a colon":       "data\ndata: {\"jsonrpc\":\"2.0\",\"id\":7,\"result\":{\"x\":\"" + secret + "\"}}\n\n",
		"two responses for one id": "data: {\"jsonrpc\":\"2.0\",\"id\":7,\"result\":{\"content\":[]}}\n\n" +
			"data: {\"jsonrpc\":\"2.0\",\"id\":7,\"result\":{\"x\":\"unfiltered\"}}\n\n",
	}
	for name, stream := range cases {
		t.Run(name, func(t *testing.T) {
			up, _ := hostileUpstream(t, func(w http.ResponseWriter, r *http.Request, method string, body []byte) {
				w.Header().Set("Content-Type", "text/event-stream")
				io.WriteString(w, stream)
			})
			gw, _ := newGateway(t, featurePolicy, up, gateway.Config{}, server.Config{})
			_, _, body, err := post(gw+"/mcp", callEcho(7), 10*time.Second)
			if err != nil {
				t.Fatal(err)
			}
			responses := 0
			for _, d := range whatwgEvents(body) {
				if strings.Contains(d, secret) || strings.Contains(d, "unfiltered") {
					t.Errorf("a client reads what the core did not pass: %q", d)
				}
				var m struct {
					ID json.RawMessage `json:"id"`
				}
				if json.Unmarshal([]byte(d), &m) == nil && m.ID != nil {
					if string(m.ID) != "7" {
						t.Errorf("a message for id %s, not in flight: %q", m.ID, d)
					}
					responses++
				}
			}
			if responses > 1 {
				t.Errorf("%d responses for one request:\n%q", responses, body)
			}
		})
	}
}

// An event over the size limit is dropped, and the request it answered is
// answered with an error at once.
func TestHeldAnOversizedEventAnswersTheRequest(t *testing.T) {
	up, _ := hostileUpstream(t, func(w http.ResponseWriter, r *http.Request, method string, body []byte) {
		w.Header().Set("Content-Type", "text/event-stream")
		io.WriteString(w, `data: {"jsonrpc":"2.0","id":7,"result":{"x":"`+strings.Repeat("a", 8192)+` sk-abcdefgh"}}`+"\n\n")
	})
	gw, _ := newGateway(t, featurePolicy, up, gateway.Config{MaxBodyBytes: 4096}, server.Config{})
	_, _, body, err := post(gw+"/mcp", callEcho(7), 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	ev := whatwgEvents(body)
	if len(ev) != 1 || !strings.Contains(ev[0], `"id":7`) || !strings.Contains(ev[0], `-32603`) || strings.Contains(body, "sk-abcdefgh") {
		t.Fatalf("got %q", body)
	}
}

// Another identity's GET and DELETE on a session are answered 404, as its
// POST is, and leave the session to its owner.
func TestHeldGETAndDELETEOfAnotherIdentityAreNotFound(t *testing.T) {
	rec := &recorder{}
	up := echoServer(t, rec)
	gw, g := newGateway(t, identityPolicy, up, gateway.Config{}, server.Config{TokenCredential: []byte(credential)})
	alice, mallory := tokenClient(t, gw), tokenClient(t, gw)
	bearer := func(c *server.Client) string {
		tok, err := c.Token(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		return "Authorization: Bearer " + tok.Token
	}
	status, h, body := rawPost(t, gw+"/mcp", initialize, bearer(alice))
	sid := h.Get("Mcp-Session-Id")
	if status != 200 || sid == "" {
		t.Fatalf("initialize: %d %s", status, body)
	}
	before := rec.count()
	if status, _, _ := send(t, "GET", gw+"/mcp", "", "Accept: text/event-stream", "Mcp-Session-Id: "+sid, bearer(mallory)); status != 404 {
		t.Errorf("another identity's GET: %d", status)
	}
	if status, _, _ := send(t, "DELETE", gw+"/mcp", "", "Mcp-Session-Id: "+sid, bearer(mallory)); status != 404 {
		t.Errorf("another identity's DELETE: %d", status)
	}
	if status, _, _ := send(t, "DELETE", gw+"/mcp", "", "Mcp-Session-Id: "+sid); status != 401 {
		t.Errorf("an anonymous DELETE: %d", status)
	}
	if rec.count() != before || g.Sessions() != 1 {
		t.Errorf("the upstream was reached (%d) or the session ended (%d)", rec.count()-before, g.Sessions())
	}
}

// Concurrent GETs on one session never open more streams than the limit.
func TestHeldConcurrentGETStreamsStayWithinTheLimit(t *testing.T) {
	up := echoServer(t, nil)
	gw, _ := newGateway(t, openPolicy, up, gateway.Config{MaxStreamsPerSession: 2}, server.Config{})
	status, h, body := rawPost(t, gw+"/mcp", initialize)
	sid := h.Get("Mcp-Session-Id")
	if status != 200 || sid == "" {
		t.Fatalf("initialize: %d %s", status, body)
	}
	rawPost(t, gw+"/mcp", `{"jsonrpc":"2.0","method":"notifications/initialized"}`, "Mcp-Session-Id: "+sid, "Mcp-Protocol-Version: 2025-11-25")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var mu sync.Mutex
	var wg sync.WaitGroup
	opened := 0
	for i := 0; i < 16; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			req, _ := http.NewRequestWithContext(ctx, "GET", gw+"/mcp", nil)
			req.Header.Set("Accept", "text/event-stream")
			req.Header.Set("Mcp-Session-Id", sid)
			req.Header.Set("Mcp-Protocol-Version", "2025-11-25")
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				return
			}
			if resp.StatusCode == 200 {
				mu.Lock()
				opened++
				mu.Unlock()
				go func() { io.Copy(io.Discard, resp.Body); resp.Body.Close() }()
				return
			}
			resp.Body.Close()
		}()
	}
	wg.Wait()
	if opened > 2 {
		t.Fatalf("%d streams open, limit 2", opened)
	}
}

// A client that abandons a POST mid-stream ends the upstream request: the
// gateway holds no upstream connection for a client that left.
func TestHeldAnAbandonedPOSTEndsTheUpstreamRequest(t *testing.T) {
	ended := make(chan struct{}, 1)
	up, _ := hostileUpstream(t, func(w http.ResponseWriter, r *http.Request, method string, body []byte) {
		w.Header().Set("Content-Type", "text/event-stream")
		w.WriteHeader(200)
		w.(http.Flusher).Flush()
		for {
			select {
			case <-r.Context().Done():
				ended <- struct{}{}
				return
			case <-time.After(50 * time.Millisecond):
				io.WriteString(w, ": keep-alive\n\n")
				w.(http.Flusher).Flush()
			}
		}
	})
	gw, _ := newGateway(t, openPolicy, up, gateway.Config{}, server.Config{})
	post(gw+"/mcp", callEcho(7), 500*time.Millisecond)
	select {
	case <-ended:
	case <-time.After(10 * time.Second):
		t.Fatal("the upstream request outlived the client")
	}
}

// A redirect from the upstream is not followed: the message goes nowhere
// the operator did not name.
func TestHeldAnUpstreamRedirectIsNotFollowed(t *testing.T) {
	reached := make(chan string, 4)
	elsewhere := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		reached <- string(b)
	}))
	defer elsewhere.Close()
	up, _ := hostileUpstream(t, func(w http.ResponseWriter, r *http.Request, method string, body []byte) {
		http.Redirect(w, r, elsewhere.URL, http.StatusTemporaryRedirect)
	})
	gw, _ := newGateway(t, openPolicy, up, gateway.Config{}, server.Config{})
	status, _, body, err := post(gw+"/mcp", callEcho(7), 10*time.Second)
	if err != nil || status != http.StatusBadGateway || !strings.Contains(body, `"id":7`) {
		t.Errorf("got %d %s %v", status, body, err)
	}
	select {
	case b := <-reached:
		t.Fatalf("the redirect was followed: %s", b)
	case <-time.After(200 * time.Millisecond):
	}
}

// A token in a cookie is never read (require_token answers 401).
func TestHeldATokenInACookieIsNotRead(t *testing.T) {
	up := echoServer(t, nil)
	gw, _ := newGateway(t, identityPolicy, up, gateway.Config{}, server.Config{TokenCredential: []byte(credential)})
	tok, err := tokenClient(t, gw).Token(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	for _, h := range []string{"Cookie: access_token=" + tok.Token, "Cookie: token=" + tok.Token, "Authorization: Token " + tok.Token} {
		if status, _, body := rawPost(t, gw+"/mcp", initialize, h); status != 401 {
			t.Errorf("%s: %d %s", strings.SplitN(h, "=", 2)[0], status, body)
		}
	}
}

// DELETE on a stdio session stops the server's whole process group.
func TestHeldStdioDeleteStopsTheProcessGroup(t *testing.T) {
	cmd, pidfile := reviewCommand(t, "normal")
	gw, g := newStdioGateway(t, featurePolicy, cmd, gateway.Config{}, server.Config{})
	killLater(t, pidfile)
	status, h, body, err := post(gw+"/mcp", initialize, 10*time.Second)
	sid := h.Get("Mcp-Session-Id")
	if err != nil || status != 200 || sid == "" {
		t.Fatalf("initialize: %d %s %v", status, body, err)
	}
	pid, child := waitPid(t, pidfile, 5*time.Second), waitPid(t, pidfile+".child", 5*time.Second)
	if status, _, _ := send(t, "DELETE", gw+"/mcp", "", "Mcp-Session-Id: "+sid); status != 204 {
		t.Fatalf("DELETE: %d", status)
	}
	for end := time.Now().Add(5 * time.Second); time.Now().Before(end) && (alive(pid) || alive(child)); time.Sleep(50 * time.Millisecond) {
	}
	if alive(pid) || alive(child) || g.Sessions() != 0 {
		t.Fatalf("after DELETE: server alive %v, its child alive %v, %d sessions", alive(pid), alive(child), g.Sessions())
	}
}

// With a remote upstream, the record of a DLP finding in a response carries
// the token of the request it answered.
func TestHeldRemoteResponseRecordsCarryTheTokenOfTheirRequest(t *testing.T) {
	logPath := filepath.Join(t.TempDir(), "audit.jsonl")
	al, err := audit.Open(logPath)
	if err != nil {
		t.Fatal(err)
	}
	defer al.Close()
	gw, _ := newGateway(t, identityDLPPolicy, upstream(t), gateway.Config{Audit: al}, server.Config{TokenCredential: []byte(credential), Audit: al})
	checkResponseTokenAttribution(t, gw, logPath)
}

const identityDLPPolicy = `apiVersion: aip.io/v1alpha2
kind: AgentPolicy
metadata: {name: gateway-id-dlp}
spec:
  allowed_tools: [echo, leak]
  identity:
    enabled: true
    require_token: true
    audience: https://gateway.test
  dlp:
    patterns:
      - name: Test Secret
        regex: "sk-[a-z0-9]{8}"
`

// checkResponseTokenAttribution opens a session with one token, calls the
// tool "leak" with another, and checks that the DLP record of the response
// names the second.
func checkResponseTokenAttribution(t *testing.T, gw, logPath string) {
	t.Helper()
	tokens := tokenClient(t, gw)
	fresh := func() (string, string) {
		tok, err := tokens.Token(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		return "Authorization: Bearer " + tok.Token, tok.TokenID
	}
	auth1, id1 := fresh()
	status, h, body, err := post(gw+"/mcp", initialize, 20*time.Second, auth1)
	sid := h.Get("Mcp-Session-Id")
	if err != nil || status != 200 || sid == "" {
		t.Fatalf("initialize: %d %s %v", status, body, err)
	}
	auth2, _ := fresh()
	post(gw+"/mcp", `{"jsonrpc":"2.0","method":"notifications/initialized"}`, 20*time.Second, auth2, "Mcp-Session-Id: "+sid, "Mcp-Protocol-Version: 2025-11-25")
	auth3, id3 := fresh()
	status, _, body, err = post(gw+"/mcp", `{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"leak","arguments":{"text":""}}}`, 20*time.Second,
		auth3, "Mcp-Session-Id: "+sid, "Mcp-Protocol-Version: 2025-11-25")
	if err != nil || !strings.Contains(body, "REDACTED") {
		t.Fatalf("tools/call leak: %d %s %v", status, body, err)
	}
	time.Sleep(200 * time.Millisecond)
	found := false
	for _, r := range auditRecords(t, logPath) {
		if r["event"] != "DLP_TRIGGERED" {
			continue
		}
		found = true
		if r["token_id"] != id3 {
			who := "neither"
			if r["token_id"] == id1 {
				who = "the initialize's"
			}
			t.Errorf("the DLP record of the tools/call's response names token %v (%s), not the tools/call's %s", r["token_id"], who, id3)
		}
	}
	if !found {
		t.Fatal("no DLP_TRIGGERED record")
	}
}

// Under server.Serve (how `agentid gateway` listens), an event stream
// outlives the HTTP server's ReadTimeout (15 s): a tool call that takes
// longer still gets its response.
func TestHeldStreamsOutliveTheServersReadTimeout(t *testing.T) {
	up, _ := hostileUpstream(t, func(w http.ResponseWriter, r *http.Request, method string, body []byte) {
		w.Header().Set("Content-Type", "text/event-stream")
		w.WriteHeader(200)
		w.(http.Flusher).Flush()
		end := time.After(server.ReadTimeout + 3*time.Second)
		for {
			select {
			case <-r.Context().Done():
				return
			case <-end:
				io.WriteString(w, `data: {"jsonrpc":"2.0","id":7,"result":{"content":[{"type":"text","text":"slow but done"}]}}`+"\n\n")
				return
			case <-time.After(time.Second):
				io.WriteString(w, ": keep-alive\n\n")
				w.(http.Flusher).Flush()
			}
		}
	})
	srv, err := server.New(server.Config{Policies: writePolicy(t, openPolicy)})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	g, err := gateway.New(gateway.Config{Server: srv, Upstream: up})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	addr := make(chan net.Addr, 1)
	served := make(chan error, 1)
	go func() {
		served <- server.Serve(ctx, srv, server.Listener{Addr: "127.0.0.1:0", Handler: g.Handler(), Ready: func(a net.Addr) { addr <- a }})
	}()
	a := <-addr
	defer func() { cancel(); <-served }()
	start := time.Now()
	_, _, body, err := post("http://"+a.String()+"/mcp", callEcho(7), time.Minute)
	if !strings.Contains(body, "slow but done") {
		t.Errorf("after %v the stream ended without the response (%v): %q", time.Since(start).Round(time.Second), err, body)
	}
}

// A secret in what the upstream answers outside a normal result (an HTTP
// error's body, a JSON-RPC error's message or data, a server request's
// params on a stream) does not reach the client.
func TestHeldResponseDLPCoversErrorsAndServerRequests(t *testing.T) {
	const secret = "sk-abcdefgh"
	cases := map[string]func(w http.ResponseWriter){
		"an HTTP 500 with a text body": func(w http.ResponseWriter) {
			w.Header().Set("Content-Type", "text/plain")
			w.WriteHeader(500)
			io.WriteString(w, "boom "+secret)
		},
		"an HTTP 400 with a JSON-RPC error": func(w http.ResponseWriter) {
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(400)
			io.WriteString(w, `{"jsonrpc":"2.0","id":7,"error":{"code":-32602,"message":"bad `+secret+`","data":{"k":"`+secret+`"}}}`)
		},
		"an HTTP 400 with JSON that is not JSON-RPC": func(w http.ResponseWriter) {
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(400)
			io.WriteString(w, `{"error":"`+secret+`"}`)
		},
		"a JSON-RPC error in a 200": func(w http.ResponseWriter) {
			w.Header().Set("Content-Type", "application/json")
			io.WriteString(w, `{"jsonrpc":"2.0","id":7,"error":{"code":1,"message":"`+secret+`"}}`)
		},
		"a server request and a notification on the stream": func(w http.ResponseWriter) {
			w.Header().Set("Content-Type", "text/event-stream")
			io.WriteString(w, `data: {"jsonrpc":"2.0","id":"s1","method":"sampling/createMessage","params":{"messages":[{"role":"user","content":{"type":"text","text":"`+secret+`"}}],"maxTokens":1}}`+"\n\n")
			io.WriteString(w, `data: {"jsonrpc":"2.0","method":"notifications/message","params":{"level":"info","data":"`+secret+`"}}`+"\n\n")
			io.WriteString(w, `data: {"jsonrpc":"2.0","id":7,"result":{"content":[]}}`+"\n\n")
		},
		"a secret as an object key, escaped, and in _meta": func(w http.ResponseWriter) {
			w.Header().Set("Content-Type", "application/json")
			io.WriteString(w, `{"jsonrpc":"2.0","id":7,"result":{"structuredContent":{"`+secret+`":1},"content":[{"type":"text","text":"sk-\u0061bcdefgh"}],"_meta":{"x":"`+secret+`"}}}`)
		},
		"a content type with parameters and odd case": func(w http.ResponseWriter) {
			w.Header().Set("Content-Type", "Application/JSON; charset=utf-8")
			io.WriteString(w, `{"jsonrpc":"2.0","id":7,"result":{"structuredContent":{"k":"`+secret+`"},"content":[]}}`)
		},
	}
	for name, answer := range cases {
		t.Run(name, func(t *testing.T) {
			up, _ := hostileUpstream(t, func(w http.ResponseWriter, r *http.Request, method string, body []byte) { answer(w) })
			gw, _ := newGateway(t, featurePolicy, up, gateway.Config{}, server.Config{})
			status, _, body, err := post(gw+"/mcp", callEcho(7), 10*time.Second)
			if err != nil {
				t.Fatal(err)
			}
			if strings.Contains(body, secret) || strings.Contains(body, `sk-\u0061`) {
				t.Errorf("%d %s", status, body)
			}
			if !strings.Contains(body, `"id":7`) {
				t.Errorf("the request was not answered: %d %s", status, body)
			}
		})
	}
}

// Two concurrent requests with one id in a session: only one reaches the
// upstream, so a response cannot be taken for the other's.
func TestHeldConcurrentDuplicateIDsInASessionAreRefused(t *testing.T) {
	release := make(chan struct{})
	up, h := hostileUpstream(t, func(w http.ResponseWriter, r *http.Request, method string, body []byte) {
		<-release
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, `{"jsonrpc":"2.0","id":5,"result":{"tools":[{"name":"forbidden","inputSchema":{"type":"object"}}]}}`)
	})
	gw, _ := newGateway(t, openPolicy, up, gateway.Config{}, server.Config{})
	_, hdr, _, err := post(gw+"/mcp", initialize, 10*time.Second)
	sid := hdr.Get("Mcp-Session-Id")
	if err != nil || sid == "" {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	bodies := make([]string, 2)
	reqs := []string{`{"jsonrpc":"2.0","id":5,"method":"tools/call","params":{"name":"echo","arguments":{}}}`, `{"jsonrpc":"2.0","id":5,"method":"tools/list"}`}
	for i := range reqs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, _, bodies[i], _ = post(gw+"/mcp", reqs[i], 10*time.Second, "Mcp-Session-Id: "+sid, "Mcp-Protocol-Version: 2025-11-25")
		}()
		if i == 0 {
			// The first is in flight upstream before the second is sent.
			for end := time.Now().Add(5 * time.Second); time.Now().Before(end) && len(h.received()) < 2; time.Sleep(10 * time.Millisecond) {
			}
		}
	}
	time.Sleep(200 * time.Millisecond)
	close(release)
	wg.Wait()
	n := 0
	for _, b := range h.received() {
		if strings.Contains(b, `"id":5`) {
			n++
		}
	}
	if n != 1 || !strings.Contains(bodies[1], "duplicate request id") {
		t.Fatalf("%d requests with id 5 reached the upstream; answers %q", n, bodies)
	}
}

// On a loopback listener, no Host but loopback names passes (DNS
// rebinding), however it is spelled.
func TestHeldLoopbackHostSpellingsOfOtherNamesAreRefused(t *testing.T) {
	gw, _ := newGateway(t, openPolicy, echoServer(t, nil), gateway.Config{}, server.Config{})
	for _, host := range []string{"127.0.0.1.nip.io", "localhost.evil.example", "0.0.0.0", "evil.example:80", "127.1", "[::ffff:7f00:1]x", "localhost@evil.example"} {
		if status, _, body := send(t, "POST", gw+"/mcp", initialize, "Content-Type: application/json", "Accept: application/json, text/event-stream", "Host: "+host); status != 403 && status != 400 {
			t.Errorf("Host %s: %d %s", host, status, body)
		}
	}
}

// The Origin allowlist applies to GET and DELETE as to POST.
func TestHeldOriginIsCheckedOnGETAndDELETE(t *testing.T) {
	rec := &recorder{}
	gw, g := newGateway(t, openPolicy, echoServer(t, rec), gateway.Config{AllowedOrigins: []string{"https://app.example"}}, server.Config{})
	status, h, body := rawPost(t, gw+"/mcp", initialize)
	sid := h.Get("Mcp-Session-Id")
	if status != 200 || sid == "" {
		t.Fatalf("initialize: %d %s", status, body)
	}
	before := rec.count()
	for _, o := range []string{"https://evil.example", "null", "https://app.example.evil.example"} {
		if status, _, _ := send(t, "GET", gw+"/mcp", "", "Accept: text/event-stream", "Mcp-Session-Id: "+sid, "Origin: "+o); status != 403 {
			t.Errorf("GET from %s: %d", o, status)
		}
		if status, _, _ := send(t, "DELETE", gw+"/mcp", "", "Mcp-Session-Id: "+sid, "Origin: "+o); status != 403 {
			t.Errorf("DELETE from %s: %d", o, status)
		}
	}
	if rec.count() != before || g.Sessions() != 1 {
		t.Errorf("the upstream was reached or the session ended")
	}
}

var _ = errors.New

// A second message after the first in one POST does not pass.
func TestHeldASecondMessageInOnePOSTIsRefused(t *testing.T) {
	up, h := hostileUpstream(t, func(w http.ResponseWriter, r *http.Request, method string, body []byte) {
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, `{"jsonrpc":"2.0","id":8,"result":{"content":[]}}`)
	})
	gw, _ := newGateway(t, openPolicy, up, gateway.Config{}, server.Config{})
	for _, sep := range []string{"\n", "\r", " ", "", "\x00"} {
		before := len(h.received())
		two := callEcho(8) + sep + `{"jsonrpc":"2.0","id":9,"method":"tools/call","params":{"name":"rm","arguments":{}}}`
		_, _, body, _ := post(gw+"/mcp", two, 10*time.Second)
		if len(h.received()) != before || strings.Contains(body, `"result"`) {
			t.Errorf("separator %q: two messages in one POST reached the upstream: %s", sep, body)
		}
	}
}

// An event stream reaches the client whole whether the upstream announces
// its length (the gateway then knows the last event and sends it with the
// end of the response, unflushed) or not, with one event or several, and
// whether the stream ends with its last event or after trailing comments.
func TestAStreamOfKnownOrUnknownLengthReachesTheClientWhole(t *testing.T) {
	const call = `{"jsonrpc":"2.0","id":7,"method":"tools/call","params":{"name":"echo","arguments":{"text":"x"}}}`
	progress := "event: message\ndata: {\"jsonrpc\":\"2.0\",\"method\":\"notifications/message\",\"params\":{\"level\":\"info\",\"data\":\"working\"}}\n\n"
	answer := "id: ev-2\ndata: {\"jsonrpc\":\"2.0\",\"id\":7,\"result\":{\"content\":[{\"type\":\"text\",\"text\":\"done\"}]}}\n\n"
	for _, tc := range []struct {
		name   string
		stream string
		length bool
	}{
		{"one event, length announced", answer, true},
		{"one event, chunked", answer, false},
		{"two events, length announced", progress + answer, true},
		{"trailing comment, length announced", answer + ": bye\n\n", true},
		{"two events, chunked", progress + answer, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			up, _ := hostileUpstream(t, func(w http.ResponseWriter, r *http.Request, method string, body []byte) {
				w.Header().Set("Content-Type", "text/event-stream")
				if tc.length {
					w.Header().Set("Content-Length", strconv.Itoa(len(tc.stream)))
				}
				io.WriteString(w, tc.stream)
			})
			gw, _ := newGateway(t, openPolicy, up, gateway.Config{}, server.Config{})
			status, h, body, err := post(gw+"/mcp", call, 10*time.Second)
			if err != nil || status != http.StatusOK || h.Get("Content-Type") != "text/event-stream" {
				t.Fatalf("%d %v %s", status, err, body)
			}
			if !strings.Contains(body, "id: ev-2\n") || !strings.Contains(body, `"text":"done"`) || !strings.HasSuffix(body, "}\n\n") {
				t.Fatalf("stream not whole: %q", body)
			}
			if strings.Contains(tc.stream, "working") != strings.Contains(body, "working") {
				t.Fatalf("the progress event: %q", body)
			}
		})
	}
}
