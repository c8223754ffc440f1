package gateway_test

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/jsonrpc"
	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/agentid/agentid/aip"
	"github.com/agentid/agentid/gateway"
	"github.com/agentid/agentid/server"
)

// Where AIP's codes collide with codes MCP SDKs reserve (DESIGN 13b), this
// pins how the official Go SDK client surfaces each AIP answer of the
// gateway over Streamable HTTP, in both protocol eras: with its code and
// data.aip_error, and with the session still usable afterwards. The Go SDK
// reads -32004 as a closed connection over HTTP as over stdio; the
// data.aip_error member is what tells a Go client it was a decision.
func TestHowTheGoSDKSurfacesEachAIPCodeThroughTheGateway(t *testing.T) {
	const base = "apiVersion: aip.io/v1alpha2\nkind: AgentPolicy\nmetadata: {name: codes}\nspec:\n"
	cases := []struct {
		name   string
		policy string
		call   func(s *mcp.ClientSession) error
		code   int
		closed bool
	}{
		{"-32001 tool not allowed", base + "  allowed_tools: [echo]\n",
			func(s *mcp.ClientSession) error { return callErr(s, "delete_everything", nil) }, aip.CodeForbidden, false},
		{"-32002 rate limited", base + "  allowed_tools: [echo]\n  tool_rules:\n    - tool: echo\n      rate_limit: \"1/minute\"\n",
			func(s *mcp.ClientSession) error {
				if err := callErr(s, "echo", map[string]any{"text": "a"}); err != nil {
					return err
				}
				return callErr(s, "echo", map[string]any{"text": "b"})
			}, aip.CodeRateLimited, false},
		{"-32004 user denied", base + "  allowed_tools: [echo]\n  tool_rules:\n    - tool: echo\n      action: ask\n",
			func(s *mcp.ClientSession) error { return callErr(s, "echo", map[string]any{"text": "a"}) }, aip.CodeUserDenied, true},
		{"-32007 protected path", base + "  allowed_tools: [echo]\n  protected_paths: [/etc/secret]\n",
			func(s *mcp.ClientSession) error { return callErr(s, "echo", map[string]any{"text": "/etc/secret/key"}) }, aip.CodeProtectedPath, false},
	}
	for _, era := range []string{"2025-11-25", "2026-07-28"} {
		for _, tc := range cases {
			t.Run(era+" "+tc.name, func(t *testing.T) {
				gw, _ := newGateway(t, tc.policy, echoServer(t, nil), gateway.Config{}, server.Config{})
				ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
				defer cancel()
				c := mcp.NewClient(&mcp.Implementation{Name: "codes", Version: "1"}, nil)
				s, err := c.Connect(ctx, &mcp.StreamableClientTransport{Endpoint: gw + "/mcp", MaxRetries: -1},
					&mcp.ClientSessionOptions{ProtocolVersion: era})
				if err != nil {
					t.Fatal(err)
				}
				defer s.Close()
				err = tc.call(s)
				var werr *jsonrpc.Error
				switch {
				case tc.closed:
					if !errors.Is(err, mcp.ErrConnectionClosed) || !strings.Contains(err.Error(), aip.Message(tc.code)) {
						t.Fatalf("the SDK returned %v, pinned: ErrConnectionClosed with the AIP message", err)
					}
				case !errors.As(err, &werr):
					t.Fatalf("the SDK returned %v (%T), want a *jsonrpc.Error with code %d", err, err, tc.code)
				case int(werr.Code) != tc.code:
					t.Fatalf("code %d (%s), want %d", werr.Code, werr.Message, tc.code)
				case !hasAIPError(werr.Data, aip.ErrorName(tc.code)):
					t.Fatalf("data %s does not carry %s=%s", werr.Data, aip.DataKey, aip.ErrorName(tc.code))
				}
				if _, err := s.ListTools(ctx, nil); err != nil {
					t.Fatalf("the session did not survive the AIP answer: %v", err)
				}
			})
		}
	}
}

func callErr(s *mcp.ClientSession, name string, args map[string]any) error {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	_, err := s.CallTool(ctx, &mcp.CallToolParams{Name: name, Arguments: args})
	return err
}

func hasAIPError(data []byte, want string) bool {
	var m map[string]any
	if err := json.Unmarshal(data, &m); err != nil {
		return false
	}
	return m[aip.DataKey] == want
}
