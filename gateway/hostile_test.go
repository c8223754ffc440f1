package gateway_test

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/agentid/agentid/gateway"
	"github.com/agentid/agentid/server"
)

const openPolicy = `apiVersion: aip.io/v1alpha2
kind: AgentPolicy
metadata: {name: gateway-open}
spec:
  allowed_tools: [echo]
`

func send(t *testing.T, method, url, body string, headers ...string) (int, http.Header, string) {
	t.Helper()
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	for _, h := range headers {
		k, v, _ := strings.Cut(h, ": ")
		if k == "Host" {
			req.Host = v
			continue
		}
		req.Header.Add(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header, string(b)
}

// Every message the MCP transport does not allow is refused before it
// reaches the upstream, with the status the transport names.
func TestHostileRequestsAreRefusedBeforeTheUpstream(t *testing.T) {
	rec := &recorder{}
	up := echoServer(t, rec)
	gw, _ := newGateway(t, openPolicy, up, gateway.Config{MaxBodyBytes: 4096, AllowedOrigins: []string{"https://app.example"}}, server.Config{})
	mcpURL := gw + "/mcp"
	const json, accept = "Content-Type: application/json", "Accept: application/json, text/event-stream"
	call := `{"jsonrpc":"2.0","id":7,"method":"tools/call","params":{"name":"echo","arguments":{"text":"x"}}}`
	cases := []struct {
		name    string
		method  string
		body    string
		headers []string
		status  int
		inBody  string
	}{
		{"a body that is not JSON gets -32700", "POST", `{"jsonrpc":`, []string{json, accept}, 200, `-32700`},
		{"a batch gets -32600", "POST", `[` + call + `]`, []string{json, accept}, 200, `-32600`},
		{"duplicate keys get -32600", "POST", `{"jsonrpc":"2.0","id":1,"id":2,"method":"ping"}`, []string{json, accept}, 200, `-32600`},
		{"a case-variant key gets -32600", "POST", `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"echo","Name":"rm"}}`, []string{json, accept}, 200, `-32600`},
		{"a text/plain body is refused", "POST", call, []string{"Content-Type: text/plain", accept}, 415, ""},
		{"a form body is refused", "POST", call, []string{"Content-Type: application/x-www-form-urlencoded", accept}, 415, ""},
		{"a client that cannot read event streams is refused", "POST", call, []string{json, "Accept: application/json"}, 406, ""},
		{"a body over the limit gets 413 and its id answered", "POST", `{"jsonrpc":"2.0","id":99,"method":"tools/call","params":{"name":"echo","arguments":{"text":"` + strings.Repeat("a", 5000) + `"}}}`, []string{json, accept}, 413, `"id":99`},
		{"an origin not listed is refused", "POST", call, []string{json, accept, "Origin: https://evil.example"}, 403, ""},
		{"two origins are refused", "POST", call, []string{json, accept, "Origin: https://app.example", "Origin: https://evil.example"}, 403, ""},
		{"a DNS-rebinding Host on loopback is refused", "POST", call, []string{json, accept, "Host: evil.example"}, 403, ""},
		{"an unknown session is not found", "POST", call, []string{json, accept, "Mcp-Session-Id: 0123456789abcdef0123456789abcdef"}, 404, ""},
		{"two session ids are refused", "POST", call, []string{json, accept, "Mcp-Session-Id: a", "Mcp-Session-Id: b"}, 400, ""},
		{"PUT is not a method of the transport", "PUT", call, []string{json, accept}, 405, ""},
		{"a GET without a session is refused", "GET", "", []string{"Accept: text/event-stream"}, 400, ""},
		{"a 2026-07-28 request without Mcp-Method gets -32020", "POST", call, []string{json, accept, "Mcp-Protocol-Version: 2026-07-28", "Mcp-Name: echo"}, 400, `-32020`},
		{"a 2026-07-28 tools/call without Mcp-Name gets -32020", "POST", call, []string{json, accept, "Mcp-Protocol-Version: 2026-07-28", "Mcp-Method: tools/call"}, 400, `-32020`},
		{"an Mcp-Method that is not the body's gets -32020", "POST", call, []string{json, accept, "Mcp-Method: tools/list"}, 400, `-32020`},
		{"an Mcp-Name that is not the body's tool gets -32020", "POST", call, []string{json, accept, "Mcp-Protocol-Version: 2026-07-28", "Mcp-Method: tools/call", "Mcp-Name: rm"}, 400, `-32020`},
		{"a case variant of the tool in Mcp-Name gets -32020", "POST", call, []string{json, accept, "Mcp-Method: tools/call", "Mcp-Name: ECHO"}, 400, `-32020`},
		{"two Mcp-Name headers get -32020", "POST", call, []string{json, accept, "Mcp-Method: tools/call", "Mcp-Name: echo", "Mcp-Name: rm"}, 400, `-32020`},
		{"an Mcp-Name on a method without a name gets -32020", "POST", `{"jsonrpc":"2.0","id":1,"method":"tools/list"}`, []string{json, accept, "Mcp-Method: tools/list", "Mcp-Name: echo"}, 400, `-32020`},
		{"a denied tool is answered with the AIP error", "POST", `{"jsonrpc":"2.0","id":3,"method":"tools/call","params":{"name":"rm","arguments":{}}}`, []string{json, accept}, 200, `"aip_error"`},
		{"a denied notification is dropped, not answered", "POST", `{"jsonrpc":"2.0","method":"tools/call","params":{"name":"rm","arguments":{}}}`, []string{json, accept}, 403, ""},
		{"a response to no server request is dropped", "POST", `{"jsonrpc":"2.0","id":5,"result":{}}`, []string{json, accept}, 403, ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			before := rec.count()
			status, _, body := send(t, c.method, mcpURL, c.body, c.headers...)
			if status != c.status || !strings.Contains(body, c.inBody) {
				t.Fatalf("got %d %s, want %d with %q", status, body, c.status, c.inBody)
			}
			if rec.count() > before {
				t.Fatalf("the upstream received it")
			}
		})
	}
	t.Run("a listed origin is served", func(t *testing.T) {
		status, _, body := send(t, "POST", mcpURL, initialize, json, accept, "Origin: https://app.example")
		if status != 200 || !strings.Contains(body, `"serverInfo"`) {
			t.Fatalf("got %d %s", status, body)
		}
	})
}

// Event streams are bounded: a session opens at most MaxStreamsPerSession
// GET streams (refused by the gateway, before the upstream, which would
// answer 409 itself), and a stream ends after MaxStreamDuration.
func TestEventStreamsAreBoundedInNumberAndDuration(t *testing.T) {
	up := echoServer(t, nil)
	gw, _ := newGateway(t, openPolicy, up, gateway.Config{MaxStreamsPerSession: 1, MaxStreamDuration: 2 * time.Second}, server.Config{})
	mcpURL := gw + "/mcp"
	status, h, body := rawPost(t, mcpURL, initialize)
	sid := h.Get("Mcp-Session-Id")
	if status != 200 || sid == "" {
		t.Fatalf("initialize: %d %s", status, body)
	}
	rawPost(t, mcpURL, `{"jsonrpc":"2.0","method":"notifications/initialized"}`, "Mcp-Session-Id: "+sid)
	open := func() (*http.Response, error) {
		req, _ := http.NewRequest("GET", mcpURL, nil)
		req.Header.Set("Accept", "text/event-stream")
		req.Header.Set("Mcp-Session-Id", sid)
		req.Header.Set("Mcp-Protocol-Version", "2025-11-25")
		return http.DefaultClient.Do(req)
	}
	var streams []*http.Response
	for i := 0; i < 1; i++ {
		resp, err := open()
		if err != nil || resp.StatusCode != 200 {
			t.Fatalf("stream %d: %v %v", i, err, resp)
		}
		streams = append(streams, resp)
	}
	resp, err := open()
	if err != nil || resp.StatusCode != http.StatusTooManyRequests {
		t.Fatalf("a second stream: %v %v", err, resp)
	}
	resp.Body.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	done := make(chan error, 1)
	go func() {
		_, err := io.Copy(io.Discard, streams[0].Body)
		done <- err
	}()
	select {
	case <-done:
	case <-ctx.Done():
		t.Fatal("a stream outlived MaxStreamDuration")
	}
	for _, s := range streams {
		s.Body.Close()
	}
}

// A header block over the server's limit is refused by the HTTP server
// itself (431), before any handler runs.
func TestHugeHeadersAreRefused(t *testing.T) {
	up := echoServer(t, nil)
	p := writePolicy(t, openPolicy)
	srv, err := server.New(server.Config{Policies: p})
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
	c, err := net.Dial("tcp", a.String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	io.WriteString(c, "POST /mcp HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Big: "+strings.Repeat("a", 64<<10)+"\r\n\r\n")
	line, _ := bufio.NewReader(c).ReadString('\n')
	if !strings.Contains(line, "431") {
		t.Fatalf("got %q, want 431", line)
	}
}

const meta2026 = `{"io.modelcontextprotocol/protocolVersion":"2026-07-28","io.modelcontextprotocol/clientCapabilities":{},"io.modelcontextprotocol/clientInfo":{"name":"raw","version":"1"}}`

// Headers that match the body pass, in the plain and the base64 form.
func TestMatchingMcpHeadersPass(t *testing.T) {
	rec := &recorder{}
	up := echoServer(t, rec)
	gw, _ := newGateway(t, openPolicy, up, gateway.Config{}, server.Config{})
	const json, accept = "Content-Type: application/json", "Accept: application/json, text/event-stream"
	discover := `{"jsonrpc":"2.0","id":1,"method":"server/discover","params":{"_meta":` + meta2026 + `}}`
	status, _, body := send(t, "POST", gw+"/mcp", discover, json, accept, "Mcp-Protocol-Version: 2026-07-28", "Mcp-Method: server/discover")
	if status != 200 || !strings.Contains(body, `"result"`) {
		t.Fatalf("server/discover: %d %s", status, body)
	}
	call := `{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"echo","arguments":{"text":"x"},"_meta":` + meta2026 + `}}`
	for _, name := range []string{"echo", "=?base64?ZWNobw==?="} {
		before := rec.count()
		_, _, body := send(t, "POST", gw+"/mcp", call, json, accept, "Mcp-Protocol-Version: 2026-07-28", "Mcp-Method: tools/call", "Mcp-Name: "+name)
		if strings.Contains(body, "-32020") || rec.count() == before {
			t.Fatalf("Mcp-Name %s: refused by the gateway: %s", name, body)
		}
		if got := rec.last().Get("Mcp-Name"); got != name {
			t.Fatalf("Mcp-Name %s reached the upstream as %q", name, got)
		}
	}
}

// A client that opens an event stream and stops reading it is cut off
// after StreamWriteTimeout: it does not hold the upstream's stream (or the
// gateway's memory) for as long as the upstream keeps writing.
func TestASlowStreamReaderIsCutOff(t *testing.T) {
	upstreamDone := make(chan struct{})
	up, _ := hostileUpstream(t, func(w http.ResponseWriter, r *http.Request, method string, body []byte) {
		if r.Method != http.MethodGet {
			w.WriteHeader(http.StatusAccepted)
			return
		}
		defer close(upstreamDone)
		w.Header().Set("Content-Type", "text/event-stream")
		event := []byte(`data: {"jsonrpc":"2.0","method":"notifications/message","params":{"level":"info","data":"` + strings.Repeat("x", 60<<10) + `"}}` + "\n\n")
		for i := 0; i < 4096; i++ { // 240 MB at most: far more than any socket buffers
			if _, err := w.Write(event); err != nil {
				return
			}
			w.(http.Flusher).Flush()
		}
		t.Error("the upstream wrote 240 MB to a client that reads nothing")
	})
	gw, _ := newGateway(t, openPolicy+"  allowed_methods: [initialize, notifications/initialized, notifications/message]\n", up,
		gateway.Config{StreamWriteTimeout: 300 * time.Millisecond}, server.Config{})
	status, h, body := rawPost(t, gw+"/mcp", initialize)
	sid := h.Get("Mcp-Session-Id")
	if status != 200 || sid == "" {
		t.Fatalf("initialize: %d %s", status, body)
	}
	c, err := net.Dial("tcp", strings.TrimPrefix(gw, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	fmt.Fprintf(c, "GET /mcp HTTP/1.1\r\nHost: 127.0.0.1\r\nAccept: text/event-stream\r\nMcp-Session-Id: %s\r\nMcp-Protocol-Version: 2025-11-25\r\n\r\n", sid)
	// The client reads nothing.
	select {
	case <-upstreamDone:
	case <-time.After(60 * time.Second):
		t.Fatal("the stream of a client that stopped reading was never cut off")
	}
}
