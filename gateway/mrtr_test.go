package gateway_test

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/jsonrpc"
	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/agentid/agentid/aip"
	"github.com/agentid/agentid/audit"
	"github.com/agentid/agentid/gateway"
	"github.com/agentid/agentid/server"
)

// Multi-round-trip calls (MCP 2026-07-28) through the gateway: every
// request is a conversation of its own, so the core binds the rounds of a
// call through the request state it seals. With the Go SDK on both sides,
// a call's rounds spend one rate-limit unit, as through the stdio proxy.

const mrtrGatewayPolicy = `apiVersion: aip.io/v1alpha2
kind: AgentPolicy
metadata: {name: gateway-mrtr}
spec:
  allowed_tools: [confirm_run, two_step]
  tool_rules:
    - tool: confirm_run
      rate_limit: 1/hour
    - tool: two_step
      rate_limit: 1/hour
`

// mrtrUpstream is a Streamable HTTP server whose tools ask for input in
// input_required results.
func mrtrUpstream(t *testing.T) (url string, states *atomic.Value) {
	t.Helper()
	states = new(atomic.Value)
	s := mcp.NewServer(&mcp.Implementation{Name: "mrtr-upstream", Version: "1"}, nil)
	ask := func(message string) mcp.InputRequest {
		return &mcp.ElicitParams{Mode: "form", Message: message, RequestedSchema: json.RawMessage(`{"type":"object","properties":{}}`)}
	}
	type cmdIn struct {
		Cmd string `json:"cmd"`
	}
	mcp.AddTool(s, &mcp.Tool{Name: "confirm_run"}, func(_ context.Context, req *mcp.CallToolRequest, in cmdIn) (*mcp.CallToolResult, any, error) {
		if len(req.Params.InputResponses) == 0 {
			return &mcp.CallToolResult{InputRequests: mcp.InputRequestMap{"ok": ask("Run " + in.Cmd + "?")}, RequestState: "confirm:" + in.Cmd}, nil, nil
		}
		states.Store(req.Params.RequestState)
		if req.Params.RequestState != "confirm:"+in.Cmd {
			return nil, nil, errors.New("request state does not match the call")
		}
		return &mcp.CallToolResult{Content: []mcp.Content{&mcp.TextContent{Text: "ran " + in.Cmd}}}, nil, nil
	})
	mcp.AddTool(s, &mcp.Tool{Name: "two_step"}, func(_ context.Context, req *mcp.CallToolRequest, _ struct{}) (*mcp.CallToolResult, any, error) {
		switch {
		case len(req.Params.InputResponses) == 0:
			return &mcp.CallToolResult{InputRequests: mcp.InputRequestMap{"a": ask("First?")}}, nil, nil
		case req.Params.RequestState == "":
			return &mcp.CallToolResult{InputRequests: mcp.InputRequestMap{"b": ask("Second?")}, RequestState: "got-a"}, nil, nil
		}
		return &mcp.CallToolResult{Content: []mcp.Content{&mcp.TextContent{Text: "both"}}}, nil, nil
	})
	// Stateless: the Go SDK's handler serves 2026-07-28 requests only so
	// (a stateful one answers them -32022 and the client falls back to
	// 2025-11-25 sessions).
	hs := httptest.NewServer(mcp.NewStreamableHTTPHandler(func(*http.Request) *mcp.Server { return s }, &mcp.StreamableHTTPOptions{Stateless: true}))
	t.Cleanup(hs.Close)
	return hs.URL, states
}

func TestTheRoundsOfACallThroughTheGatewaySpendOneUnit(t *testing.T) {
	up, states := mrtrUpstream(t)
	logPath := filepath.Join(t.TempDir(), "audit.jsonl")
	al, err := audit.Open(logPath)
	if err != nil {
		t.Fatal(err)
	}
	defer al.Close()
	gw, _ := newGateway(t, mrtrGatewayPolicy, up, gateway.Config{Audit: al}, server.Config{Audit: al})

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	elicited := new(atomic.Int32)
	c := mcp.NewClient(&mcp.Implementation{Name: "agent", Version: "1"}, &mcp.ClientOptions{
		ElicitationHandler: func(context.Context, *mcp.ElicitRequest) (*mcp.ElicitResult, error) {
			elicited.Add(1)
			return &mcp.ElicitResult{Action: "accept", Content: map[string]any{}}, nil
		},
	})
	cs, err := c.Connect(ctx, &mcp.StreamableClientTransport{Endpoint: gw + "/mcp", MaxRetries: -1}, &mcp.ClientSessionOptions{ProtocolVersion: "2026-07-28"})
	if err != nil {
		t.Fatal(err)
	}
	defer cs.Close()
	for _, tc := range []struct {
		tool     string
		args     map[string]any
		want     string
		elicited int32
	}{
		{"confirm_run", map[string]any{"cmd": "ls"}, "ran ls", 1},
		{"two_step", map[string]any{}, "both", 2},
	} {
		elicited.Store(0)
		res, err := cs.CallTool(ctx, &mcp.CallToolParams{Name: tc.tool, Arguments: tc.args})
		if err != nil || res.IsError || len(res.Content) == 0 || res.Content[0].(*mcp.TextContent).Text != tc.want {
			t.Fatalf("%s: %v %+v", tc.tool, err, res)
		}
		if n := elicited.Load(); n != tc.elicited {
			t.Fatalf("%s: %d elicitations, want %d", tc.tool, n, tc.elicited)
		}
		// The rounds spent the call's one unit: a new call is limited.
		var werr *jsonrpc.Error
		if _, err := cs.CallTool(ctx, &mcp.CallToolParams{Name: tc.tool, Arguments: tc.args}); !errors.As(err, &werr) || werr.Code != aip.CodeRateLimited {
			t.Fatalf("%s: a new call after the rounds: %v", tc.tool, err)
		}
	}
	if got, _ := states.Load().(string); got != "confirm:ls" {
		t.Fatalf("the server got back request state %q, want its own", got)
	}
	b, _ := os.ReadFile(logPath)
	if strings.Contains(string(b), `"mcp_session_id"`) || !strings.Contains(string(b), `"method":"server/discover"`) {
		t.Fatalf("the client did not speak 2026-07-28 (stateless):\n%s", b)
	}
	if n := strings.Count(string(b), `"event":"ROUND_CONTINUED"`); n != 3 {
		t.Fatalf("%d rounds audited as continued, want 3:\n%s", n, b)
	}
}

// A client that swaps the sealed state of one call into another (the
// server's state would confirm "ls" for "rm") is refused before the server
// sees it.
func TestASealedStateCannotBeMovedToAnotherCall(t *testing.T) {
	up, states := mrtrUpstream(t)
	gw, _ := newGateway(t, strings.Replace(mrtrGatewayPolicy, "1/hour", "100/hour", 2), up, gateway.Config{}, server.Config{})
	const v = "Mcp-Protocol-Version: 2026-07-28"
	meta := `"_meta":{"io.modelcontextprotocol/protocolVersion":"2026-07-28","io.modelcontextprotocol/clientInfo":{"name":"raw","version":"1"},"io.modelcontextprotocol/clientCapabilities":{"elicitation":{"form":{}}}}`
	call := func(id int, cmd, extra string) (int, string) {
		body := `{"jsonrpc":"2.0","id":` + itoaG(id) + `,"method":"tools/call","params":{"name":"confirm_run","arguments":{"cmd":"` + cmd + `"},` + meta + extra + `}}`
		status, _, resp := rawPost(t, gw+"/mcp", body, v, "Mcp-Method: tools/call", "Mcp-Name: confirm_run")
		return status, resp
	}
	status, resp := call(1, "ls", "")
	i := strings.Index(resp, `"requestState":"`)
	if status != 200 || i < 0 {
		t.Fatalf("first round: %d %s", status, resp)
	}
	env := resp[i+len(`"requestState":"`):]
	env = env[:strings.IndexByte(env, '"')]
	if !strings.HasPrefix(env, "agentid.rs1.") {
		t.Fatalf("the state is not sealed: %s", resp)
	}
	retry := `,"inputResponses":{"ok":{"action":"accept","content":{}}},"requestState":"` + env + `"`
	if _, resp := call(2, "rm -rf /", retry); !strings.Contains(resp, "-32001") || !strings.Contains(resp, "changes the arguments") {
		t.Fatalf("the moved state: %s", resp)
	}
	if got, _ := states.Load().(string); got != "" {
		t.Fatalf("the server saw a retry: %q", got)
	}
}

func itoaG(i int) string { b, _ := json.Marshal(i); return string(b) }
