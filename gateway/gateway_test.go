package gateway_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/jsonrpc"
	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/agentid/agentid/audit"
	"github.com/agentid/agentid/enforce"
	"github.com/agentid/agentid/gateway"
	"github.com/agentid/agentid/server"
)

// featurePolicy allows every feature of the upstream but the tool
// "forbidden", and redacts a secret in responses.
const featurePolicy = `apiVersion: aip.io/v1alpha2
kind: AgentPolicy
metadata: {name: gateway-test}
spec:
  allowed_tools: [echo, progress, sample, elicit, roots, leak, log]
  allowed_methods: [initialize, notifications/initialized, ping, tools/list, tools/call,
    resources/list, resources/read, resources/templates/list, prompts/list, prompts/get,
    completion/complete, logging/setLevel, notifications/cancelled, notifications/progress,
    notifications/roots/list_changed, notifications/message, server/discover, subscriptions/listen]
  dlp:
    patterns:
      - name: Test Secret
        regex: "sk-[a-z0-9]{8}"
`

// upstream is a real MCP server (the official Go SDK's) over Streamable
// HTTP, with a tool for each feature the gateway must carry.
func upstream(t *testing.T) string {
	t.Helper()
	s := upstreamServer()
	hs := httptest.NewServer(mcp.NewStreamableHTTPHandler(func(*http.Request) *mcp.Server { return s }, nil))
	t.Cleanup(hs.Close)
	return hs.URL
}

// statelessUpstream serves upstreamServer as the Go SDK serves 2026-07-28
// clients: its handler answers 2026-07-28 requests only when stateless (a
// stateful one refuses them with -32022, and the client falls back to
// 2025-11-25 sessions).
func statelessUpstream(t *testing.T) string {
	t.Helper()
	s := upstreamServer()
	hs := httptest.NewServer(mcp.NewStreamableHTTPHandler(func(*http.Request) *mcp.Server { return s }, &mcp.StreamableHTTPOptions{Stateless: true}))
	t.Cleanup(hs.Close)
	return hs.URL
}

// upstreamServer is the server of upstream, to serve over any transport.
func upstreamServer() *mcp.Server {
	s := mcp.NewServer(&mcp.Implementation{Name: "upstream", Version: "1.0.0"}, nil)
	type text struct {
		Text string `json:"text"`
	}
	textResult := func(s string) *mcp.CallToolResult {
		return &mcp.CallToolResult{Content: []mcp.Content{&mcp.TextContent{Text: s}}}
	}
	mcp.AddTool(s, &mcp.Tool{Name: "echo", Description: "echoes text"},
		func(ctx context.Context, req *mcp.CallToolRequest, in text) (*mcp.CallToolResult, any, error) {
			return textResult("echo: " + in.Text), nil, nil
		})
	mcp.AddTool(s, &mcp.Tool{Name: "forbidden", Description: "the policy denies it"},
		func(ctx context.Context, req *mcp.CallToolRequest, in text) (*mcp.CallToolResult, any, error) {
			return textResult("ran"), nil, nil
		})
	mcp.AddTool(s, &mcp.Tool{Name: "leak", Description: "returns a secret"},
		func(ctx context.Context, req *mcp.CallToolRequest, in text) (*mcp.CallToolResult, any, error) {
			return textResult("the key is sk-abcdefgh"), nil, nil
		})
	mcp.AddTool(s, &mcp.Tool{Name: "progress", Description: "reports progress"},
		func(ctx context.Context, req *mcp.CallToolRequest, in text) (*mcp.CallToolResult, any, error) {
			if tok := req.Params.GetProgressToken(); tok != nil {
				for i := 1; i <= 3; i++ {
					req.Session.NotifyProgress(ctx, &mcp.ProgressNotificationParams{ProgressToken: tok, Progress: float64(i), Total: 3})
				}
			}
			return textResult("done"), nil, nil
		})
	mcp.AddTool(s, &mcp.Tool{Name: "log", Description: "logs a message"},
		func(ctx context.Context, req *mcp.CallToolRequest, in text) (*mcp.CallToolResult, any, error) {
			req.Session.Log(ctx, &mcp.LoggingMessageParams{Level: "info", Data: in.Text})
			return textResult("logged"), nil, nil
		})
	// sample, elicit and roots ask the client in input_required results
	// (MCP 2026-07-28 multi-round-trip requests): on the wire for a
	// 2026-07-28 client, and for a 2025-11-25 one the SDK's server asks it
	// itself with server→client requests. Either way the client answers.
	ask := func(req *mcp.CallToolRequest, ir mcp.InputRequest) (mcp.InputResponse, *mcp.CallToolResult) {
		if r, ok := req.Params.InputResponses["q"]; ok {
			return r, nil
		}
		return nil, &mcp.CallToolResult{InputRequests: mcp.InputRequestMap{"q": ir}}
	}
	mcp.AddTool(s, &mcp.Tool{Name: "sample", Description: "asks the client's model"},
		func(ctx context.Context, req *mcp.CallToolRequest, in text) (*mcp.CallToolResult, any, error) {
			r, first := ask(req, &mcp.CreateMessageParams{
				MaxTokens: 10, Messages: []*mcp.SamplingMessage{{Role: "user", Content: &mcp.TextContent{Text: in.Text}}}})
			if first != nil {
				return first, nil, nil
			}
			switch r := r.(type) {
			case *mcp.CreateMessageWithToolsResult:
				return textResult("model said: " + r.Content[0].(*mcp.TextContent).Text), nil, nil
			case *mcp.CreateMessageResult:
				return textResult("model said: " + r.Content.(*mcp.TextContent).Text), nil, nil
			}
			return nil, nil, fmt.Errorf("sampling answered with %T", r)
		})
	mcp.AddTool(s, &mcp.Tool{Name: "elicit", Description: "asks the user"},
		func(ctx context.Context, req *mcp.CallToolRequest, in text) (*mcp.CallToolResult, any, error) {
			r, first := ask(req, &mcp.ElicitParams{Message: in.Text,
				RequestedSchema: map[string]any{"type": "object", "properties": map[string]any{"name": map[string]any{"type": "string"}}}})
			if first != nil {
				return first, nil, nil
			}
			res, ok := r.(*mcp.ElicitResult)
			if !ok {
				return nil, nil, fmt.Errorf("elicitation answered with %T", r)
			}
			return textResult(fmt.Sprintf("user: %s %v", res.Action, res.Content["name"])), nil, nil
		})
	mcp.AddTool(s, &mcp.Tool{Name: "roots", Description: "lists the client's roots"},
		func(ctx context.Context, req *mcp.CallToolRequest, in text) (*mcp.CallToolResult, any, error) {
			r, first := ask(req, &mcp.ListRootsParams{})
			if first != nil {
				return first, nil, nil
			}
			res, ok := r.(*mcp.ListRootsResult)
			if !ok {
				return nil, nil, fmt.Errorf("roots/list answered with %T", r)
			}
			var uris []string
			for _, r := range res.Roots {
				uris = append(uris, r.URI)
			}
			return textResult("roots: " + strings.Join(uris, ",")), nil, nil
		})
	s.AddResource(&mcp.Resource{URI: "test://doc", Name: "doc", MIMEType: "text/plain"},
		func(ctx context.Context, req *mcp.ReadResourceRequest) (*mcp.ReadResourceResult, error) {
			return &mcp.ReadResourceResult{Contents: []*mcp.ResourceContents{{URI: "test://doc", MIMEType: "text/plain", Text: "hello sk-12345678"}}}, nil
		})
	s.AddPrompt(&mcp.Prompt{Name: "greet", Arguments: []*mcp.PromptArgument{{Name: "who"}}},
		func(ctx context.Context, req *mcp.GetPromptRequest) (*mcp.GetPromptResult, error) {
			return &mcp.GetPromptResult{Messages: []*mcp.PromptMessage{{Role: "user", Content: &mcp.TextContent{Text: "hello " + req.Params.Arguments["who"]}}}}, nil
		})
	return s
}

func httptestServer(t *testing.T, g *gateway.Gateway) string {
	t.Helper()
	hs := httptest.NewServer(g.Handler())
	t.Cleanup(hs.Close)
	return hs.URL
}

func compareEqual(t *testing.T, a, b observed) {
	t.Helper()
	if !reflect.DeepEqual(a, b) {
		t.Errorf("differ:\n %+v\n %+v", a, b)
	}
}

// newGateway starts a gateway for policyYAML in front of up.
func newGateway(t *testing.T, policyYAML, up string, cfg gateway.Config, scfg server.Config) (string, *gateway.Gateway) {
	t.Helper()
	scfg.Policies = writePolicy(t, policyYAML)
	srv, err := server.New(scfg)
	if err != nil {
		t.Fatal(err)
	}
	cfg.Server, cfg.Upstream = srv, up
	g, err := gateway.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	hs := httptest.NewServer(g.Handler())
	t.Cleanup(func() { hs.Close(); srv.Close() })
	return hs.URL, g
}

func writePolicy(t *testing.T, policyYAML string) []*enforce.Policy {
	t.Helper()
	path := filepath.Join(t.TempDir(), "policy.yaml")
	if err := os.WriteFile(path, []byte(policyYAML), 0o600); err != nil {
		t.Fatal(err)
	}
	p, err := enforce.Load(path, enforce.LoadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return []*enforce.Policy{p}
}

// observed is what a client saw of the features, to compare directly and
// through the gateway.
type observed struct {
	Tools     []string
	Echo      string
	Forbidden string
	Leak      string
	Progress  []float64
	Logged    []string
	Sample    string
	Elicit    string
	Roots     string
	Resources []string
	Read      string
	Prompt    string
}

// exercise runs every feature once as a client of endpoint.
func exercise(t *testing.T, endpoint string, version string, httpClient *http.Client) observed {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var mu sync.Mutex
	var o observed
	logged := make(chan struct{}, 1)
	c := mcp.NewClient(&mcp.Implementation{Name: "client", Version: "1.0.0"}, &mcp.ClientOptions{
		CreateMessageHandler: func(ctx context.Context, req *mcp.CreateMessageRequest) (*mcp.CreateMessageResult, error) {
			return &mcp.CreateMessageResult{Role: "assistant", Model: "m", Content: &mcp.TextContent{Text: "hi"}}, nil
		},
		ElicitationHandler: func(ctx context.Context, req *mcp.ElicitRequest) (*mcp.ElicitResult, error) {
			return &mcp.ElicitResult{Action: "accept", Content: map[string]any{"name": "ada"}}, nil
		},
		ProgressNotificationHandler: func(ctx context.Context, req *mcp.ProgressNotificationClientRequest) {
			mu.Lock()
			o.Progress = append(o.Progress, req.Params.Progress)
			mu.Unlock()
		},
		LoggingMessageHandler: func(ctx context.Context, req *mcp.LoggingMessageRequest) {
			mu.Lock()
			o.Logged = append(o.Logged, fmt.Sprint(req.Params.Data))
			mu.Unlock()
			select {
			case logged <- struct{}{}:
			default:
			}
		},
	})
	c.AddRoots(&mcp.Root{URI: "file:///work", Name: "work"})
	cs, err := c.Connect(ctx, &mcp.StreamableClientTransport{Endpoint: endpoint, HTTPClient: httpClient, MaxRetries: -1},
		&mcp.ClientSessionOptions{ProtocolVersion: version})
	if err != nil {
		t.Fatalf("connect %s: %v", endpoint, err)
	}
	defer cs.Close()

	tools, err := cs.ListTools(ctx, nil)
	if err != nil {
		t.Fatalf("tools/list: %v", err)
	}
	for _, tl := range tools.Tools {
		o.Tools = append(o.Tools, tl.Name)
	}
	call := func(name, text string, params *mcp.CallToolParams) string {
		if params == nil {
			params = &mcp.CallToolParams{}
		}
		params.Name, params.Arguments = name, map[string]any{"text": text}
		res, err := cs.CallTool(ctx, params)
		if err != nil {
			var werr *jsonrpc.Error
			if errors.As(err, &werr) {
				return fmt.Sprintf("error %d", werr.Code)
			}
			return "error: " + err.Error()
		}
		var parts []string
		for _, c := range res.Content {
			if tc, ok := c.(*mcp.TextContent); ok {
				parts = append(parts, tc.Text)
			}
		}
		return strings.Join(parts, " ")
	}
	o.Echo = call("echo", "hello", nil)
	o.Forbidden = call("forbidden", "x", nil)
	o.Leak = call("leak", "", nil)
	p := &mcp.CallToolParams{}
	p.SetProgressToken("p1")
	if got := call("progress", "", p); got != "done" {
		t.Errorf("progress: %s", got)
	}
	logParams := &mcp.CallToolParams{}
	if version < "2026-07-28" {
		if err := cs.SetLoggingLevel(ctx, &mcp.SetLoggingLevelParams{Level: "debug"}); err != nil {
			t.Errorf("logging/setLevel: %v", err)
		}
	} else {
		// No logging/setLevel in 2026-07-28: each request names its level.
		logParams.Meta = mcp.Meta{"io.modelcontextprotocol/logLevel": "debug"}
	}
	if got := call("log", "a log line", logParams); got != "logged" {
		t.Errorf("log: %s", got)
	}
	select {
	case <-logged:
	case <-time.After(10 * time.Second):
		t.Errorf("no notifications/message")
	}
	o.Sample = call("sample", "question", nil)
	o.Elicit = call("elicit", "your name?", nil)
	o.Roots = call("roots", "", nil)
	rs, err := cs.ListResources(ctx, nil)
	if err != nil {
		t.Fatalf("resources/list: %v", err)
	}
	for _, r := range rs.Resources {
		o.Resources = append(o.Resources, r.URI)
	}
	rr, err := cs.ReadResource(ctx, &mcp.ReadResourceParams{URI: "test://doc"})
	if err != nil {
		t.Fatalf("resources/read: %v", err)
	}
	o.Read = rr.Contents[0].Text
	pr, err := cs.GetPrompt(ctx, &mcp.GetPromptParams{Name: "greet", Arguments: map[string]string{"who": "ada"}})
	if err != nil {
		t.Fatalf("prompts/get: %v", err)
	}
	o.Prompt = pr.Messages[0].Content.(*mcp.TextContent).Text
	mu.Lock()
	defer mu.Unlock()
	return o
}

// The same client sees the same of every feature directly and through the
// gateway, except what the policy denies (a tool) or redacts (a secret).
func TestFeaturesBehaveAsDirectlyExceptWhatThePolicyDenies(t *testing.T) {
	up := upstream(t)
	logPath := filepath.Join(t.TempDir(), "audit.jsonl")
	al, err := audit.Open(logPath)
	if err != nil {
		t.Fatal(err)
	}
	defer al.Close()
	gw, _ := newGateway(t, featurePolicy, up, gateway.Config{Audit: al}, server.Config{Audit: al})
	up2026 := statelessUpstream(t)
	gw2026, _ := newGateway(t, featurePolicy, up2026, gateway.Config{Audit: al}, server.Config{Audit: al})

	t.Run("2025-11-25", func(t *testing.T) {
		compareFeatures(t, exercise(t, up, "2025-11-25", nil), exercise(t, gw+"/mcp", "2025-11-25", nil))
	})
	b, _ := os.ReadFile(logPath)
	if !strings.Contains(string(b), `"tool":"forbidden"`) || !strings.Contains(string(b), `"mcp_session_id"`) {
		t.Errorf("audit log lacks the denial or the session:\n%s", b)
	}
	before := len(b)
	t.Run("2026-07-28", func(t *testing.T) {
		compareFeatures(t, exercise(t, up2026, "2026-07-28", nil), exercise(t, gw2026+"/mcp", "2026-07-28", nil))
	})
	b, _ = os.ReadFile(logPath)
	stateless := string(b[before:])
	// Spoken statelessly: discovered, no MCP session, and the rounds of
	// sample, elicit and roots bound through their sealed request state.
	if !strings.Contains(stateless, `"method":"server/discover"`) || strings.Contains(stateless, `"mcp_session_id"`) ||
		strings.Count(stateless, `"event":"ROUND_CONTINUED"`) != 3 {
		t.Errorf("the 2026-07-28 client did not speak to the server statelessly:\n%s", stateless)
	}
}

func compareFeatures(t *testing.T, direct, through observed) {
	t.Helper()

	want := direct
	want.Tools = nil
	for _, n := range direct.Tools {
		if n != "forbidden" {
			want.Tools = append(want.Tools, n)
		}
	}
	want.Forbidden = "error -32001"
	want.Leak = "the key is [REDACTED:Test Secret]"
	want.Read = "hello [REDACTED:Test Secret]"
	if direct.Forbidden != "ran" || direct.Leak != "the key is sk-abcdefgh" || direct.Sample != "model said: hi" ||
		direct.Elicit != "user: accept ada" || direct.Roots != "roots: file:///work" || len(direct.Logged) == 0 || len(direct.Progress) == 0 {
		t.Fatalf("direct: the upstream does not behave as the test expects: %+v", direct)
	}
	t.Logf("direct:  %+v\nthrough: %+v", direct, through)
	if !reflect.DeepEqual(through, want) {
		t.Errorf("through the gateway:\n got %+v\nwant %+v", through, want)
	}
}
