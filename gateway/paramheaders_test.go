package gateway_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/agentid/agentid/gateway"
	"github.com/agentid/agentid/server"
)

// MCP 2026-07-28 servers may mirror tool parameters into headers
// (x-mcp-header in the input schema; the client sends Mcp-Param-{Name} and
// the server refuses a call whose headers do not match its arguments).

const paramHeaderPolicy = `apiVersion: aip.io/v1alpha2
kind: AgentPolicy
metadata: {name: gateway-param-headers}
spec:
  allowed_tools: [regional]
  dlp:
    scan_requests: true
    on_request_match: redact
    patterns:
      - {name: Test Secret, regex: "sk-[a-z0-9]{8}"}
`

func paramHeaderUpstream(t *testing.T) string {
	t.Helper()
	s := mcp.NewServer(&mcp.Implementation{Name: "regional", Version: "1"}, nil)
	s.AddTool(&mcp.Tool{Name: "regional", InputSchema: json.RawMessage(`{"type":"object","properties":{"region":{"type":"string","x-mcp-header":"Region"},"text":{"type":"string"}}}`)},
		func(_ context.Context, req *mcp.CallToolRequest) (*mcp.CallToolResult, error) {
			var in struct{ Region, Text string }
			json.Unmarshal(req.Params.Arguments, &in)
			return &mcp.CallToolResult{Content: []mcp.Content{&mcp.TextContent{Text: in.Region + ": " + in.Text}}}, nil
		})
	hs := httptest.NewServer(mcp.NewStreamableHTTPHandler(func(*http.Request) *mcp.Server { return s }, &mcp.StreamableHTTPOptions{Stateless: true}))
	t.Cleanup(hs.Close)
	return hs.URL
}

func callRegional(t *testing.T, endpoint, region string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	c := mcp.NewClient(&mcp.Implementation{Name: "agent", Version: "1"}, nil)
	cs, err := c.Connect(ctx, &mcp.StreamableClientTransport{Endpoint: endpoint, MaxRetries: -1}, &mcp.ClientSessionOptions{ProtocolVersion: "2026-07-28"})
	if err != nil {
		t.Fatal(err)
	}
	defer cs.Close()
	if _, err := cs.ListTools(ctx, nil); err != nil { // the client learns which parameters go in headers
		t.Fatal(err)
	}
	res, err := cs.CallTool(ctx, &mcp.CallToolParams{Name: "regional", Arguments: map[string]any{"region": region, "text": "hi"}})
	if err != nil {
		return "error: " + err.Error()
	}
	return res.Content[0].(*mcp.TextContent).Text
}

func TestParametersMirroredInHeadersReachTheServer(t *testing.T) {
	up := paramHeaderUpstream(t)
	gw, _ := newGateway(t, paramHeaderPolicy, up, gateway.Config{}, server.Config{})
	for _, region := range []string{"eu-west-1", "zürich"} {
		direct, through := callRegional(t, up, region), callRegional(t, gw+"/mcp", region)
		if direct != region+": hi" || through != direct {
			t.Errorf("%s: direct %q, through the gateway %q", region, direct, through)
		}
	}
	// A mirrored argument that request DLP redacts is redacted in its
	// header too: the server gets the two the same, and never the secret.
	if got := callRegional(t, gw+"/mcp", "sk-abcdefgh"); got != "[REDACTED:Test Secret]: hi" {
		t.Errorf("a redacted mirrored argument: %q", got)
	}
}
