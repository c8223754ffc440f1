package proxy_test

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/jsonrpc"
	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/agentid/agentid/aip"
)

// Family 15 (issue #9): AIP's codes collide with codes MCP SDKs reserve.
// This pins how the official Go SDK surfaces each AIP answer through the
// real proxy, and that every one carries data.aip_error, by which a Go
// client tells agentid's decision from a transport failure (docs/decisions.md).
func TestHowTheGoSDKSurfacesEachAIPCode(t *testing.T) {
	hang := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select { // an approver that does not answer in time
		case <-r.Context().Done():
		case <-time.After(5 * time.Second):
		}
	}))
	defer func() { hang.CloseClientConnections(); hang.Close() }()
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	const base = "apiVersion: aip.io/v1alpha2\nkind: AgentPolicy\nmetadata: {name: codes}\nspec:\n"
	cases := []struct {
		name   string
		policy string
		flags  []string
		call   func(s *mcp.ClientSession) error
		code   int
		// closed: the SDK reports the answer as a closed connection
		// (jsonrpc2 reserves the code), and keeps only the message.
		closed bool
	}{
		{"-32001 tool not allowed", base + "  allowed_tools: [greet]\n", nil,
			func(s *mcp.ClientSession) error { return callErr(s, "delete_everything", nil) }, aip.CodeForbidden, false},
		{"-32002 rate limited", base + "  allowed_tools: [greet]\n  tool_rules:\n    - tool: greet\n      rate_limit: \"1/minute\"\n", nil,
			func(s *mcp.ClientSession) error {
				if err := callErr(s, "greet", map[string]any{"text": "a"}); err != nil {
					return err
				}
				return callErr(s, "greet", map[string]any{"text": "b"})
			}, aip.CodeRateLimited, false},
		{"-32004 user denied", base + "  allowed_tools: [greet]\n  tool_rules:\n    - tool: greet\n      action: ask\n", nil,
			func(s *mcp.ClientSession) error { return callErr(s, "greet", map[string]any{"text": "a"}) }, aip.CodeUserDenied, true},
		{"-32005 approval timeout", base + "  allowed_tools: [greet]\n  tool_rules:\n    - tool: greet\n      action: ask\n",
			[]string{"--approval-webhook", hang.URL, "--approval-timeout", "200ms"},
			func(s *mcp.ClientSession) error { return callErr(s, "greet", map[string]any{"text": "a"}) }, aip.CodeUserTimeout, false},
		{"-32006 method not allowed", base + "  allowed_tools: [greet]\n  denied_methods: [tools/list]\n", nil,
			func(s *mcp.ClientSession) error {
				_, err := s.ListTools(context.Background(), &mcp.ListToolsParams{})
				return err
			}, aip.CodeMethodNotAllowed, false},
		{"-32007 protected path", base + "  allowed_tools: [greet]\n  protected_paths: [/etc/secret]\n", nil,
			func(s *mcp.ClientSession) error {
				return callErr(s, "greet", map[string]any{"text": "/etc/secret/key"})
			}, aip.CodeProtectedPath, false},
		{"-32008 token required", base + "  allowed_tools: [greet]\n  identity:\n    enabled: true\n    require_token: true\n", nil,
			func(s *mcp.ClientSession) error { return callErr(s, "greet", map[string]any{"text": "a"}) }, aip.CodeTokenRequired, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			s, _ := connectWith(t, tc.policy, tc.flags, []string{sdkServerEnv + "=1"}, self)
			err := tc.call(s)
			if tc.closed {
				if !errors.Is(err, mcp.ErrConnectionClosed) || !strings.Contains(err.Error(), aip.Message(tc.code)) {
					t.Fatalf("the SDK returned %v, pinned: ErrConnectionClosed with the AIP message", err)
				}
				ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
				defer cancel()
				if perr := s.Ping(ctx, nil); perr != nil {
					t.Logf("after %d the SDK session no longer answers: %v", tc.code, perr)
				}
				return
			}
			var werr *jsonrpc.Error
			if !errors.As(err, &werr) {
				t.Fatalf("the SDK returned %v (%T), want a *jsonrpc.Error with code %d", err, err, tc.code)
			}
			if int(werr.Code) != tc.code {
				t.Fatalf("code %d (%s), want %d", werr.Code, werr.Message, tc.code)
			}
			if !hasAIPError(werr.Data, aip.ErrorName(tc.code)) {
				t.Fatalf("data %s does not carry %s=%s", werr.Data, aip.DataKey, aip.ErrorName(tc.code))
			}
			// The session survives the refusal.
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			if err := s.Ping(ctx, nil); err != nil {
				t.Fatalf("the session did not survive the AIP answer: %v", err)
			}
		})
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
