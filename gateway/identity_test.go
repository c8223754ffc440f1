package gateway_test

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/agentid/agentid/gateway"
	"github.com/agentid/agentid/identity"
	"github.com/agentid/agentid/server"
)

const identityPolicy = `apiVersion: aip.io/v1alpha2
kind: AgentPolicy
metadata: {name: gateway-id}
spec:
  allowed_tools: [echo]
  identity:
    enabled: true
    require_token: true
    audience: https://gateway.test
`

const credential = "token-credential-for-tests"

// recorder keeps the headers of every request the upstream received.
type recorder struct {
	mu      sync.Mutex
	headers []http.Header
}

func (rec *recorder) wrap(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rec.mu.Lock()
		rec.headers = append(rec.headers, r.Header.Clone())
		rec.mu.Unlock()
		h.ServeHTTP(w, r)
	})
}

func (rec *recorder) count() int {
	rec.mu.Lock()
	defer rec.mu.Unlock()
	return len(rec.headers)
}

func (rec *recorder) last() http.Header {
	rec.mu.Lock()
	defer rec.mu.Unlock()
	return rec.headers[len(rec.headers)-1]
}

func echoServer(t *testing.T, rec *recorder) string {
	t.Helper()
	s := mcp.NewServer(&mcp.Implementation{Name: "upstream", Version: "1.0.0"}, nil)
	mcp.AddTool(s, &mcp.Tool{Name: "echo"}, func(ctx context.Context, req *mcp.CallToolRequest, in struct {
		Text string `json:"text"`
	}) (*mcp.CallToolResult, any, error) {
		return &mcp.CallToolResult{Content: []mcp.Content{&mcp.TextContent{Text: in.Text}}}, nil, nil
	})
	var h http.Handler = mcp.NewStreamableHTTPHandler(func(*http.Request) *mcp.Server { return s }, nil)
	if rec != nil {
		h = rec.wrap(h)
	}
	hs := httptest.NewServer(h)
	t.Cleanup(hs.Close)
	return hs.URL
}

func tokenClient(t *testing.T, gw string) *server.Client {
	t.Helper()
	c, err := server.NewClient(server.ClientConfig{URL: gw, Credential: credential,
		Binding: identity.Binding{ProcessID: 7, Hostname: "agent-host", PolicyPath: "/agent/policy.yaml"}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return c
}

// An agent that presents a fresh token on every request works as without
// the gateway; the upstream never sees a token.
func TestEveryRequestCarriesAFreshTokenThatIsNeverForwarded(t *testing.T) {
	rec := &recorder{}
	up := echoServer(t, rec)
	gw, _ := newGateway(t, identityPolicy, up, gateway.Config{}, server.Config{TokenCredential: []byte(credential)})
	hc := &http.Client{Transport: &gateway.TokenTransport{Tokens: tokenClient(t, gw)}}

	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	c := mcp.NewClient(&mcp.Implementation{Name: "agent", Version: "1"}, nil)
	cs, err := c.Connect(ctx, &mcp.StreamableClientTransport{Endpoint: gw + "/mcp", HTTPClient: hc, MaxRetries: -1},
		&mcp.ClientSessionOptions{ProtocolVersion: "2025-11-25"})
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 3; i++ {
		res, err := cs.CallTool(ctx, &mcp.CallToolParams{Name: "echo", Arguments: map[string]any{"text": "hi"}})
		if err != nil || res.Content[0].(*mcp.TextContent).Text != "hi" {
			t.Fatalf("call %d: %v %+v", i, err, res)
		}
	}
	cs.Close()

	rec.mu.Lock()
	defer rec.mu.Unlock()
	if len(rec.headers) < 4 {
		t.Fatalf("upstream saw %d requests", len(rec.headers))
	}
	for _, h := range rec.headers {
		if h.Get("Authorization") != "" || h.Get("Cookie") != "" {
			t.Fatalf("credential forwarded upstream: %v", h)
		}
	}
}

// rawPost sends one message with the given headers and returns the status,
// the response headers and the body.
func rawPost(t *testing.T, url, body string, headers ...string) (int, http.Header, string) {
	t.Helper()
	req, err := http.NewRequest("POST", url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json, text/event-stream")
	for _, h := range headers {
		k, v, _ := strings.Cut(h, ": ")
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header, string(b)
}

const initialize = `{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"raw","version":"1"}}}`

func TestTokensAreRequiredSingleUseAndOnlyReadFromTheHeader(t *testing.T) {
	up := echoServer(t, nil)
	gw, _ := newGateway(t, identityPolicy, up, gateway.Config{}, server.Config{TokenCredential: []byte(credential)})
	tokens := tokenClient(t, gw)
	fresh := func() string {
		tok, err := tokens.Token(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		return tok.Token
	}

	status, h, body := rawPost(t, gw+"/mcp", initialize)
	if status != 401 || !strings.Contains(h.Get("WWW-Authenticate"), `resource_metadata="`+gw+`/.well-known/oauth-protected-resource/mcp"`) ||
		!strings.Contains(body, `"code":-32008`) || !strings.Contains(body, `"aip_error"`) {
		t.Fatalf("no token: %d %v %s", status, h, body)
	}
	tok := fresh()
	if status, _, body := rawPost(t, gw+"/mcp?access_token="+tok, initialize); status != 401 {
		t.Fatalf("a token in the query string was read: %d %s", status, body)
	}
	withMeta := `{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"_meta":{"aip.io/token":"` + tok + `"},"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"raw","version":"1"}}}`
	if status, _, body := rawPost(t, gw+"/mcp", withMeta); status != 401 {
		t.Fatalf("a token in the body was read: %d %s", status, body)
	}
	if status, _, body := rawPost(t, gw+"/mcp", initialize, "Authorization: Bearer "+tok); status != 200 {
		t.Fatalf("a fresh token: %d %s", status, body)
	}
	status, h, body = rawPost(t, gw+"/mcp", initialize, "Authorization: Bearer "+tok)
	if status != 401 || !strings.Contains(body, `"token_error":"replay_detected"`) || !strings.Contains(h.Get("WWW-Authenticate"), `error="invalid_token"`) {
		t.Fatalf("a replayed token: %d %s", status, body)
	}
	forged := tok[:len(tok)-4] + "AAAA"
	if status, _, body := rawPost(t, gw+"/mcp", initialize, "Authorization: Bearer "+forged); status != 401 || !strings.Contains(body, "-32009") {
		t.Fatalf("a forged token: %d %s", status, body)
	}
}

// A session belongs to the AIP session that opened it: another agent's
// token, even a valid one, cannot use it, and cannot tell it exists.
func TestASessionIsOnlyUsableByTheIdentityThatOpenedIt(t *testing.T) {
	up := echoServer(t, nil)
	gw, _ := newGateway(t, identityPolicy, up, gateway.Config{}, server.Config{TokenCredential: []byte(credential)})
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
	list := `{"jsonrpc":"2.0","id":2,"method":"tools/list"}`
	if status, _, body := rawPost(t, gw+"/mcp", list, bearer(mallory), "Mcp-Session-Id: "+sid, "Mcp-Protocol-Version: 2025-11-25"); status != 404 {
		t.Fatalf("another agent used the session: %d %s", status, body)
	}
	rawPost(t, gw+"/mcp", `{"jsonrpc":"2.0","method":"notifications/initialized"}`, bearer(alice), "Mcp-Session-Id: "+sid, "Mcp-Protocol-Version: 2025-11-25")
	if status, _, body := rawPost(t, gw+"/mcp", list, bearer(alice), "Mcp-Session-Id: "+sid, "Mcp-Protocol-Version: 2025-11-25"); status != 200 || !strings.Contains(body, "echo") {
		t.Fatalf("the owner could not use the session: %d %s", status, body)
	}
}

// A 2025-11-25 session lives in the replica that opened it: another
// replica answers 404, the transport's signal to start a new session, and
// never forwards the request with a session id it did not mint.
func TestAReplicaAnswersNotFoundForASessionItDidNotOpen(t *testing.T) {
	rec := &recorder{}
	up := echoServer(t, rec)
	one, _ := newGateway(t, openPolicy, up, gateway.Config{}, server.Config{})
	other, _ := newGateway(t, openPolicy, up, gateway.Config{}, server.Config{})
	status, h, body := rawPost(t, one+"/mcp", initialize)
	sid := h.Get("Mcp-Session-Id")
	if status != 200 || sid == "" {
		t.Fatalf("initialize: %d %s", status, body)
	}
	rawPost(t, one+"/mcp", `{"jsonrpc":"2.0","method":"notifications/initialized"}`, "Mcp-Session-Id: "+sid, "Mcp-Protocol-Version: 2025-11-25")
	if got := rec.last().Get("Mcp-Session-Id"); got == "" || got == sid {
		t.Fatalf("upstream session id %q for the client's %q: the gateway must map its own ids to the upstream's", got, sid)
	}
	before := rec.count()
	status, _, body = rawPost(t, other+"/mcp", `{"jsonrpc":"2.0","id":2,"method":"tools/list"}`, "Mcp-Session-Id: "+sid, "Mcp-Protocol-Version: 2025-11-25")
	if status != 404 || rec.count() != before {
		t.Fatalf("another replica: %d %s (upstream reached: %v)", status, body, rec.count() != before)
	}
}

// The protected-resource metadata (RFC 9728) tells a client that tokens go
// in the Authorization header, where they come from and which keys verify
// them; the 401 challenge points at it.
func TestProtectedResourceMetadataNamesTheTokenEndpoint(t *testing.T) {
	up := echoServer(t, nil)
	gw, _ := newGateway(t, identityPolicy, up, gateway.Config{PublicURL: "https://mcp.example"}, server.Config{TokenCredential: []byte(credential)})
	for _, path := range []string{"/.well-known/oauth-protected-resource", "/.well-known/oauth-protected-resource/mcp"} {
		status, _, body := send(t, "GET", gw+path, "")
		for _, want := range []string{`"resource":"https://mcp.example/mcp"`, `"bearer_methods_supported":["header"]`,
			`"aip_token_endpoint":"https://mcp.example/v1/token"`, `"jwks_uri":"https://mcp.example/v1/jwks"`, `"aip_audience":"https://gateway.test"`} {
			if status != 200 || !strings.Contains(body, want) {
				t.Errorf("%s: %d %s lacks %s", path, status, body, want)
			}
		}
	}
	_, h, _ := rawPost(t, gw+"/mcp", initialize)
	if got := h.Get("WWW-Authenticate"); got != `Bearer resource_metadata="https://mcp.example/.well-known/oauth-protected-resource/mcp"` {
		t.Errorf("challenge %q", got)
	}
}

// With clients named for the policy (--token-client), only their verified
// certificates may call through the gateway; the token is still required
// (require_token applies) and a refused client does not spend it.
func TestOnlyTheClientCertificatesNamedForThePolicyMayCall(t *testing.T) {
	up := echoServer(t, nil)
	const agent = "spiffe://example.org/ns/a/sa/agent"
	gw, g := newGateway(t, identityPolicy, up, gateway.Config{}, server.Config{TokenCredential: []byte(credential),
		TokenClients: map[string][]string{"gateway-id": {agent}}})
	tokens := tokenClient(t, gw)
	fresh := func() string {
		tok, err := tokens.Token(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		return tok.Token
	}
	post := func(client, token string) (int, string) {
		r := httptest.NewRequest("POST", "/mcp", strings.NewReader(initialize))
		r.Header.Set("Content-Type", "application/json")
		r.Header.Set("Accept", "application/json, text/event-stream")
		if token != "" {
			r.Header.Set("Authorization", "Bearer "+token)
		}
		if client != "" {
			u, _ := url.Parse(client)
			r.TLS = &tls.ConnectionState{VerifiedChains: [][]*x509.Certificate{{{URIs: []*url.URL{u}}}}}
		}
		w := httptest.NewRecorder()
		g.Handler().ServeHTTP(w, r)
		return w.Code, w.Body.String()
	}
	tok := fresh()
	for _, tc := range []struct {
		name, client string
	}{
		{"another workload's certificate", "spiffe://example.org/ns/b/sa/other"},
		{"no certificate", ""},
	} {
		if status, body := post(tc.client, tok); status != 403 || !strings.Contains(body, "-32001") || !strings.Contains(body, "not named") {
			t.Errorf("%s: %d %s", tc.name, status, body)
		}
	}
	if status, body := post(agent, tok); status != 200 {
		t.Fatalf("the named certificate with the token the refusals did not spend: %d %s", status, body)
	}
	if status, body := post(agent, ""); status != 401 {
		t.Fatalf("the named certificate without a token: %d %s", status, body)
	}
}
