package gateway_test

// Adversarial review of the gateway: the findings, each a test that failed
// while the gateway was vulnerable and guards the fix since (the rules are
// in docs/decisions.md, "Gateway"). The attacks that held from the start
// are in review_held_test.go.

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"time"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"

	"github.com/agentid/agentid/audit"
	"github.com/agentid/agentid/gateway"
	"github.com/agentid/agentid/server"
)

// Finding 1: an upstream puts a lone CR in an event's id, event or retry
// field; the gateway's reader does not take a lone CR as a line end, so it
// passes the field on verbatim, and every standard SSE client (browsers,
// the TypeScript SDK's eventsource-parser, Python's httpx-sse) reads what
// follows the CR as a data line of its own: a message that never went
// through the core (no DLP, no id bookkeeping, no tools/list filtering).
func TestReviewFinding1_CRInAnEventFieldSmugglesAMessagePastTheCore(t *testing.T) {
	const secret = "sk-abcdefgh"
	smuggled := `{"jsonrpc":"2.0","id":7,"result":{"content":[{"type":"text","text":"the key is ` + secret + `"}]}}`
	clean := `{"jsonrpc":"2.0","id":7,"result":{"content":[{"type":"text","text":"fine"}]}}`
	streams := map[string]string{
		"id":    "id: 1\rdata: " + smuggled + "\n\n",
		"event": "event: message\rdata: " + smuggled + "\nid: 2\n\n",
		"retry": "retry: 100\rdata: " + smuggled + "\n\n",
	}
	for field, stream := range streams {
		t.Run(field, func(t *testing.T) {
			up, _ := hostileUpstream(t, func(w http.ResponseWriter, r *http.Request, method string, body []byte) {
				w.Header().Set("Content-Type", "text/event-stream")
				io.WriteString(w, stream+"data: "+clean+"\n\n")
			})
			gw, _ := newGateway(t, featurePolicy, up, gateway.Config{}, server.Config{})
			_, _, body, err := post(gw+"/mcp", callEcho(7), 10*time.Second)
			if err != nil {
				t.Fatal(err)
			}
			for _, d := range whatwgEvents(body) {
				if strings.Contains(d, secret) {
					t.Errorf("a standard SSE client reads a message the core never saw (the secret unredacted): %q\nraw stream: %q", d, body)
				}
			}
		})
	}
}

// Finding 2: a stdio server that stops reading its stdin (busy, or
// hostile) makes its session unkillable. A POST whose message fills the
// pipe blocks in child.write holding writeMu; child.close takes writeMu
// before anything else, so DELETE (and idle expiry, and Gateway.Close)
// block for as long as the server lives, and it is never signalled.
func TestReviewFinding2_AStdioServerThatStopsReadingCannotBeStopped(t *testing.T) {
	cmd, pidfile := reviewCommand(t, "stuck")
	gw, _ := newStdioGateway(t, featurePolicy, cmd, gateway.Config{MaxBodyBytes: 4 << 20}, server.Config{})
	killLater(t, pidfile)
	status, h, body, err := post(gw+"/mcp", initialize, 10*time.Second)
	sid := h.Get("Mcp-Session-Id")
	if err != nil || status != 200 || sid == "" {
		t.Fatalf("initialize: %d %s %v", status, body, err)
	}
	pid := waitPid(t, pidfile, 5*time.Second)
	big := `{"jsonrpc":"2.0","method":"notifications/initialized","params":{"_meta":{"pad":"` + strings.Repeat("x", 1<<20) + `"}}}`
	go post(gw+"/mcp", big, 3*time.Second, "Mcp-Session-Id: "+sid, "Mcp-Protocol-Version: 2025-11-25")
	time.Sleep(time.Second)

	done := make(chan int, 1)
	go func() {
		req, _ := http.NewRequest("DELETE", gw+"/mcp", nil)
		req.Header.Set("Mcp-Session-Id", sid)
		resp, err := (&http.Client{Timeout: 15 * time.Second}).Do(req)
		if err != nil {
			done <- -1
			return
		}
		resp.Body.Close()
		done <- resp.StatusCode
	}()
	select {
	case status := <-done:
		if status != 204 {
			t.Errorf("DELETE: %d (-1: no answer within 15 s)", status)
		}
	case <-time.After(20 * time.Second):
		t.Errorf("DELETE hung")
	}
	for end := time.Now().Add(3 * time.Second); time.Now().Before(end) && alive(pid); time.Sleep(50 * time.Millisecond) {
	}
	if alive(pid) {
		t.Errorf("the stdio server (pid %d) is still running after DELETE; it was never signalled", pid)
	}
}

// Finding 3: with MaxBodyBytes under 4 KiB (headSize), a client body or
// upstream response over the limit makes readBody slice b[:headSize]
// beyond the buffer: the handler panics, the client's connection is
// dropped without an answer, and nothing is audited.
func TestReviewFinding3_ASmallMaxBodyBytesPanicsOnAnOversizedMessage(t *testing.T) {
	t.Run("client body", func(t *testing.T) {
		gw, _ := newGateway(t, openPolicy, echoServer(t, nil), gateway.Config{MaxBodyBytes: 300}, server.Config{})
		big := `{"jsonrpc":"2.0","id":99,"method":"tools/call","params":{"name":"echo","arguments":{"text":"` + strings.Repeat("a", 400) + `"}}}`
		status, _, body, err := post(gw+"/mcp", big, 10*time.Second)
		if err != nil {
			t.Fatalf("the gateway dropped the connection instead of answering 413: %v", err)
		}
		if status != 413 || !strings.Contains(body, `"id":99`) {
			t.Fatalf("got %d %s", status, body)
		}
	})
	t.Run("upstream response", func(t *testing.T) {
		up, _ := hostileUpstream(t, func(w http.ResponseWriter, r *http.Request, method string, body []byte) {
			w.Header().Set("Content-Type", "application/json")
			fmt.Fprintf(w, `{"jsonrpc":"2.0","id":7,"result":{"content":[{"type":"text","text":"%s"}]}}`, strings.Repeat("b", 1000))
		})
		gw, _ := newGateway(t, openPolicy, up, gateway.Config{MaxBodyBytes: 300}, server.Config{})
		status, _, body, err := post(gw+"/mcp", callEcho(7), 10*time.Second)
		if err != nil {
			t.Fatalf("the gateway dropped the connection instead of answering the request: %v", err)
		}
		if !strings.Contains(body, `"id":7`) {
			t.Fatalf("got %d %s", status, body)
		}
	})
}

// Finding 4: a stdio session's server messages wait for a stream in
// queues bounded in count (256 per queue) but not in bytes: each message
// may be MaxBodyBytes (16 MiB by default), so a server that writes
// notifications while no stream is open makes the gateway hold up to
// 256 × 16 MiB = 4 GiB for one session (and as much again per waiting
// POST). Here: 96 notifications of 1 MiB, all kept.
func TestReviewFinding4_StdioQueuesAreNotBoundedInBytes(t *testing.T) {
	done := filepath.Join(t.TempDir(), "done")
	cmd, pidfile := reviewCommand(t, "flood", "AGENTID_REVIEW_FLOOD_N=96", "AGENTID_REVIEW_FLOOD_SIZE=1048576", reviewDoneEnv+"="+done)
	gw, _ := newStdioGateway(t, featurePolicy, cmd, gateway.Config{MaxBodyBytes: 2 << 20}, server.Config{})
	killLater(t, pidfile)
	runtime.GC()
	var before runtime.MemStats
	runtime.ReadMemStats(&before)
	status, _, body, err := post(gw+"/mcp", initialize, 10*time.Second)
	if err != nil || status != 200 {
		t.Fatalf("initialize: %d %s %v", status, body, err)
	}
	for end := time.Now().Add(60 * time.Second); time.Now().Before(end); time.Sleep(100 * time.Millisecond) {
		if _, err := os.Stat(done); err == nil {
			break
		}
	}
	time.Sleep(time.Second)
	runtime.GC()
	var after runtime.MemStats
	runtime.ReadMemStats(&after)
	grown := int64(after.HeapAlloc) - int64(before.HeapAlloc)
	t.Logf("heap grew by %d MiB", grown>>20)
	if grown > 32<<20 {
		t.Errorf("one stdio session with no stream open holds %d MiB of the server's messages", grown>>20)
	}
}

// Finding 5: an initialize whose client goes away before the answer (or
// that the server never answers) leaves a stdio session whose id nobody
// ever received: nobody can DELETE it, and its server process runs until
// the idle timeout (30 minutes by default), counting against MaxSessions.
// A client that repeats this spawns servers at will.
func TestReviewFinding5_AnAbandonedStdioInitializeLeavesAnOrphanServer(t *testing.T) {
	cmd, pidfile := reviewCommand(t, "silent")
	gw, g := newStdioGateway(t, featurePolicy, cmd, gateway.Config{}, server.Config{})
	killLater(t, pidfile)
	if _, _, _, err := post(gw+"/mcp", initialize, time.Second); err == nil {
		t.Fatal("the silent server answered")
	}
	pid := waitPid(t, pidfile, 5*time.Second)
	time.Sleep(1500 * time.Millisecond)
	if n := g.Sessions(); n != 0 || alive(pid) {
		t.Errorf("after the client of an unanswered initialize left: %d sessions, server alive %v", n, alive(pid))
	}
}

// Finding 6: in a stdio session every server message is audited under the
// identity that opened the session, token id included (child.read carries
// the initialize's principal): the DLP record of a tools/call's response
// names the initialize's token, not the token of the request it answers.
// (With a remote upstream the same records are right:
// TestHeldRemoteResponseRecordsCarryTheTokenOfTheirRequest.)
func TestReviewFinding6_StdioResponseRecordsNameTheInitializeToken(t *testing.T) {
	logPath := filepath.Join(t.TempDir(), "audit.jsonl")
	al, err := audit.Open(logPath)
	if err != nil {
		t.Fatal(err)
	}
	defer al.Close()
	gw, _ := newStdioGateway(t, identityDLPPolicy, stdioCommand(t), gateway.Config{Audit: al}, server.Config{TokenCredential: []byte(credential), Audit: al})
	checkResponseTokenAttribution(t, gw, logPath)
}

// Finding 7: one identity can take every session: the table is bounded
// (MaxSessions) but not per identity, so one agent (or, without identity,
// anyone) that opens MaxSessions sessions and never DELETEs locks every
// other agent out for the idle timeout (30 minutes). In stdio mode each of
// those sessions is a server process (10,000 by default).
func TestReviewFinding7_OneIdentityCanTakeEverySession(t *testing.T) {
	up := echoServer(t, nil)
	gw, _ := newGateway(t, identityPolicy, up, gateway.Config{MaxSessions: 4, MaxSessionsPerClient: 3}, server.Config{TokenCredential: []byte(credential)})
	alice, mallory := tokenClient(t, gw), tokenClient(t, gw)
	bearer := func(c *server.Client) string {
		tok, err := c.Token(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		return "Authorization: Bearer " + tok.Token
	}
	for i := 0; i < 3; i++ {
		if status, _, body := rawPost(t, gw+"/mcp", initialize, bearer(mallory)); status != 200 {
			t.Fatalf("mallory's session %d: %d %s", i, status, body)
		}
	}
	if status, _, body := rawPost(t, gw+"/mcp", initialize, bearer(mallory)); status != http.StatusTooManyRequests {
		t.Errorf("mallory's session over the per-client bound: %d %s", status, body)
	}
	if status, _, body := rawPost(t, gw+"/mcp", initialize, bearer(alice)); status != 200 {
		t.Errorf("alice cannot open a session once mallory holds them all: %d %s", status, body)
	}
}

// Finding 8: on a stateless conversation (every 2026-07-28 request, and
// any request without Mcp-Session-Id) the server's tools/list is never
// seen, so decision 2's advertised-name check never applies: a call is
// decided on its normalized name and forwarded with its raw name. The
// gateway's own tools/list answer hides "echo" and "ECHO" as ambiguous,
// yet a tools/call of "ECHO" reaches the upstream's ECHO tool, which the
// policy never allowed.
func TestReviewFinding8_StatelessCallsSkipTheAdvertisedNameCheck(t *testing.T) {
	up, h := hostileUpstream(t, func(w http.ResponseWriter, r *http.Request, method string, body []byte) {
		w.Header().Set("Content-Type", "application/json")
		switch method {
		case "tools/list":
			io.WriteString(w, `{"jsonrpc":"2.0","id":1,"result":{"tools":[{"name":"echo","inputSchema":{"type":"object"}},{"name":"ECHO","inputSchema":{"type":"object"}}]}}`)
		default:
			io.WriteString(w, `{"jsonrpc":"2.0","id":2,"result":{"content":[{"type":"text","text":"ran"}]}}`)
		}
	})
	gw, _ := newGateway(t, openPolicy, up, gateway.Config{}, server.Config{})
	_, _, list, _ := post(gw+"/mcp", `{"jsonrpc":"2.0","id":1,"method":"tools/list"}`, 10*time.Second)
	t.Logf("tools/list through the gateway: %s", list)
	post(gw+"/mcp", `{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"ECHO","arguments":{}}}`, 10*time.Second)
	for _, b := range h.received() {
		if strings.Contains(b, `"name":"ECHO"`) {
			t.Errorf("a call to ECHO reached the upstream, decided as echo: %s", b)
		}
	}
}

// Finding 9: a stdio server gets the gateway's whole environment (the CLI
// builds Command without Env), so the credentials the gateway itself is
// configured with through its environment, e.g. OTEL_EXPORTER_OTLP_HEADERS
// for its trace exporter, reach every third-party MCP server it spawns.
func TestReviewFinding9_StdioServersInheritTheGatewaysCredentials(t *testing.T) {
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	pidfile := filepath.Join(t.TempDir(), "pid")
	t.Setenv("OTEL_EXPORTER_OTLP_HEADERS", "authorization=Bearer collector-secret-0123")
	t.Setenv(reviewEnv, "env")
	t.Setenv(reviewPidEnv, pidfile)
	// As cmd/agentid/gateway.go builds it.
	cmd := &gateway.Command{Path: self, ShutdownGrace: 500 * time.Millisecond}
	gw, _ := newStdioGateway(t, featurePolicy, cmd, gateway.Config{}, server.Config{})
	killLater(t, pidfile)
	status, h, body, err := post(gw+"/mcp", initialize, 10*time.Second)
	sid := h.Get("Mcp-Session-Id")
	if err != nil || status != 200 || sid == "" {
		t.Fatalf("initialize: %d %s %v", status, body, err)
	}
	_, _, body, _ = post(gw+"/mcp", callEcho(2), 10*time.Second, "Mcp-Session-Id: "+sid, "Mcp-Protocol-Version: 2025-11-25")
	if strings.Contains(body, "collector-secret-0123") {
		t.Errorf("the spawned server read the gateway's exporter credential: %s", body)
	}
}

var _ = syscall.Kill

// Finding 10: event ids and event names from the upstream are relayed
// verbatim, never scanned: a secret in an id reaches the client's bytes
// (and its lastEventId, which it sends back as Last-Event-ID).
func TestReviewFinding10_EventIDsAreRelayedUnscanned(t *testing.T) {
	up, _ := hostileUpstream(t, func(w http.ResponseWriter, r *http.Request, method string, body []byte) {
		w.Header().Set("Content-Type", "text/event-stream")
		io.WriteString(w, "id: sk-abcdefgh\nevent: sk-12345678\ndata: {\"jsonrpc\":\"2.0\",\"id\":7,\"result\":{\"content\":[]}}\n\n")
	})
	gw, _ := newGateway(t, featurePolicy, up, gateway.Config{}, server.Config{})
	_, _, body, err := post(gw+"/mcp", callEcho(7), 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(body, "sk-abcdefgh") || strings.Contains(body, "sk-12345678") {
		t.Errorf("a secret in an event's id or name reached the client: %q", body)
	}
}

// Finding 11: with require_token, a request without any Authorization
// header is refused only after its whole body has been read and buffered
// (up to MaxBodyBytes, 16 MiB by default, held for up to the server's
// ReadTimeout): an unauthenticated client makes the gateway hold 16 MiB
// per connection before it looks at the (absent) token. The 401 can be
// decided from the headers alone.
func TestReviewFinding11_UnauthenticatedBodiesAreBufferedBeforeTheTokenIsChecked(t *testing.T) {
	up := echoServer(t, nil)
	gw, _ := newGateway(t, identityPolicy, up, gateway.Config{}, server.Config{TokenCredential: []byte(credential)})
	c, err := net.Dial("tcp", strings.TrimPrefix(gw, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	fmt.Fprintf(c, "POST /mcp HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nAccept: application/json, text/event-stream\r\nContent-Length: %d\r\n\r\n", 15<<20)
	io.WriteString(c, `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"echo","arguments":{"text":"`+strings.Repeat("a", 1024))
	c.SetReadDeadline(time.Now().Add(3 * time.Second))
	line, err := bufio.NewReader(c).ReadString('\n')
	if err != nil || !strings.Contains(line, "401") {
		t.Errorf("no 401 for a request without a token while its body is still coming: %q %v", line, err)
	}
}

// Finding 12: a message with a line break between its tokens, or after it (pretty-printed
// JSON, valid JSON-RPC, and allowed by the Streamable HTTP transport, which
// forbids embedded newlines only on stdio) is refused with -32600 from a
// client, and dropped from an upstream (the client gets -32603 instead of
// the response): the strict decoder's stdio rule applies to HTTP bodies.
// An interoperability failure, not a bypass, but a wide one: Go's
// json.Encoder ends every value with a newline, and servers that write
// their JSON responses with it (mark3labs/mcp-go's streamable HTTP server
// does, in handlePost) get every JSON response withheld. appendEvent's
// comment expects multi-line messages to pass.
func TestReviewFinding12_PrettyPrintedMessagesAreRefused(t *testing.T) {
	up, _ := hostileUpstream(t, func(w http.ResponseWriter, r *http.Request, method string, body []byte) {
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, "{\n  \"jsonrpc\": \"2.0\",\n  \"id\": 7,\n  \"result\": {\"content\": []}\n}\n")
	})
	gw, _ := newGateway(t, openPolicy, up, gateway.Config{}, server.Config{})
	_, _, body, err := post(gw+"/mcp", "{\n  \"jsonrpc\": \"2.0\",\n  \"id\": 1,\n  \"method\": \"ping\"\n}\n", 10*time.Second)
	if err != nil || strings.Contains(body, "-32600") {
		t.Errorf("a pretty-printed client request: %s %v", body, err)
	}
	_, _, body, err = post(gw+"/mcp", callEcho(7), 10*time.Second)
	if err != nil || !strings.Contains(body, `"result"`) {
		t.Errorf("a pretty-printed upstream response: %s %v", body, err)
	}
	// Even one trailing newline, as Go's json.Encoder writes after every
	// value, is refused both ways.
	_, _, body, err = post(gw+"/mcp", `{"jsonrpc":"2.0","id":2,"method":"ping"}`+"\n", 10*time.Second)
	if err != nil || strings.Contains(body, "-32600") {
		t.Errorf("a compact client request ending in a newline: %s %v", body, err)
	}
	up2, _ := hostileUpstream(t, func(w http.ResponseWriter, r *http.Request, method string, body []byte) {
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(map[string]any{"jsonrpc": "2.0", "id": 7, "result": map[string]any{"content": []any{}}})
	})
	gw2, _ := newGateway(t, openPolicy, up2, gateway.Config{}, server.Config{})
	_, _, body, err = post(gw2+"/mcp", callEcho(7), 10*time.Second)
	if err != nil || !strings.Contains(body, `"result"`) {
		t.Errorf("an upstream response written by json.Encoder: %s %v", body, err)
	}
}

// Finding 13: TokenTransport puts a fresh token on every request its
// client sends, redirects included: net/http strips an Authorization
// header that the caller set from a redirect to another host, but one the
// transport adds on each round trip goes to whatever host the redirect
// names. A 307 from the endpoint (a misconfigured proxy, an http→https
// hop to another name, an open redirect) hands a fresh, unused token of
// the agent to a third party, which can spend it at the gateway first.
func TestReviewFinding13_TokenTransportSendsTokensAcrossRedirects(t *testing.T) {
	up := echoServer(t, nil)
	gw, _ := newGateway(t, identityPolicy, up, gateway.Config{}, server.Config{TokenCredential: []byte(credential)})
	leaked := make(chan string, 4)
	evil := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		leaked <- r.Header.Get("Authorization")
	}))
	defer evil.Close()
	redirector := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, strings.Replace(evil.URL, "127.0.0.1", "localhost", 1)+"/collect", http.StatusTemporaryRedirect)
	}))
	defer redirector.Close()
	hc := &http.Client{Transport: &gateway.TokenTransport{Tokens: tokenClient(t, gw)}, Timeout: 10 * time.Second}
	req, _ := http.NewRequest("POST", redirector.URL+"/mcp", strings.NewReader(initialize))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json, text/event-stream")
	if resp, err := hc.Do(req); err == nil {
		resp.Body.Close()
	}
	select {
	case auth := <-leaked:
		if auth != "" {
			status, _, _ := rawPost(t, gw+"/mcp", initialize, "Authorization: "+auth)
			t.Errorf("another host received the agent's token across a redirect (and the gateway accepts it from there: %d)", status)
		}
	case <-time.After(5 * time.Second):
		t.Log("the redirect was not followed")
	}
}

// Finding 14: the gateway's session id is the only credential of an
// anonymous session (no identity in the policy, no client certificate:
// "guarded by its id alone"), yet every span carries it verbatim
// (mcp.session.id) to the trace backend: whoever reads the traces can use
// the session. (The audit log's mcp_session_id is the same value.)
func TestReviewFinding14_SpansExportTheSessionBearerSecret(t *testing.T) {
	exp := tracetest.NewInMemoryExporter()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSyncer(exp))
	defer tp.Shutdown(t.Context())
	up := echoServer(t, nil)
	gw, _ := newGateway(t, openPolicy, up, gateway.Config{Tracer: tp.Tracer("agentid")}, server.Config{})
	status, h, body := rawPost(t, gw+"/mcp", initialize)
	sid := h.Get("Mcp-Session-Id")
	if status != 200 || sid == "" {
		t.Fatalf("initialize: %d %s", status, body)
	}
	rawPost(t, gw+"/mcp", `{"jsonrpc":"2.0","method":"notifications/initialized"}`, "Mcp-Session-Id: "+sid, "Mcp-Protocol-Version: 2025-11-25")
	var exported string
	for _, s := range exp.GetSpans() {
		for _, a := range s.Attributes {
			if a.Value.Emit() == sid {
				exported = string(a.Key)
			}
		}
	}
	if exported != "" {
		status, _, _ := rawPost(t, gw+"/mcp", `{"jsonrpc":"2.0","id":3,"method":"tools/list"}`, "Mcp-Session-Id: "+sid, "Mcp-Protocol-Version: 2025-11-25")
		t.Errorf("span attribute %s holds the session's id, which alone opens the session (tools/list with it: %d)", exported, status)
	}
}

// Finding 15: the Mcp-Method/Mcp-Name check skips client responses, and
// the headers are forwarded as sent: a response to a server request
// reaches the upstream labelled "Mcp-Method: tools/call", "Mcp-Name: rm",
// which an intermediary that routes or authorizes on the headers (their
// purpose in 2026-07-28) takes for a call of rm. The transport requires a
// mismatch to be refused with 400/-32020; a response has no method.
func TestReviewFinding15_HeadersOnAClientResponseAreNotChecked(t *testing.T) {
	up, h := hostileUpstream(t, func(w http.ResponseWriter, r *http.Request, method string, body []byte) {
		if method == "" {
			w.WriteHeader(http.StatusAccepted) // the client's response
			return
		}
		w.Header().Set("Content-Type", "text/event-stream")
		io.WriteString(w, `data: {"jsonrpc":"2.0","id":"s1","method":"roots/list"}`+"\n\n")
		io.WriteString(w, `data: {"jsonrpc":"2.0","id":7,"result":{"content":[]}}`+"\n\n")
	})
	gw, _ := newGateway(t, featurePolicy, up, gateway.Config{}, server.Config{})
	_, hdr, _, err := post(gw+"/mcp", initialize, 10*time.Second)
	sid := hdr.Get("Mcp-Session-Id")
	if err != nil || sid == "" {
		t.Fatal(err)
	}
	if _, _, body, _ := post(gw+"/mcp", callEcho(7), 10*time.Second, "Mcp-Session-Id: "+sid, "Mcp-Protocol-Version: 2025-11-25"); !strings.Contains(body, `"s1"`) {
		t.Fatalf("no server request: %s", body)
	}
	status, _, body, _ := post(gw+"/mcp", `{"jsonrpc":"2.0","id":"s1","result":{"roots":[]}}`, 10*time.Second,
		"Mcp-Session-Id: "+sid, "Mcp-Protocol-Version: 2026-07-28", "Mcp-Method: tools/call", "Mcp-Name: rm")
	h.mu.Lock()
	defer h.mu.Unlock()
	for i, b := range h.bodies {
		if strings.Contains(b, `"id":"s1"`) && h.headers[i].Get("Mcp-Method") != "" {
			t.Errorf("a response reached the upstream as Mcp-Method %q, Mcp-Name %q (gateway answered %d %s)",
				h.headers[i].Get("Mcp-Method"), h.headers[i].Get("Mcp-Name"), status, body)
		}
	}
}
