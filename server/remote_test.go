package server_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/agentid/agentid/aip"
	"github.com/agentid/agentid/enforce"
	"github.com/agentid/agentid/identity"
	"github.com/agentid/agentid/server"
)

// remoteProxy is a proxy's core that decides tool calls through the
// server at url, with localPolicy as its own policy.
func remoteProxy(t *testing.T, url, localPolicy string) *enforce.Core {
	t.Helper()
	path := filepath.Join(t.TempDir(), "local.yaml")
	if err := os.WriteFile(path, []byte(localPolicy), 0o600); err != nil {
		t.Fatal(err)
	}
	p, err := enforce.Load(path, enforce.LoadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	client, err := server.NewClient(server.ClientConfig{URL: url, Credential: adminToken,
		Binding: identity.Binding{ProcessID: os.Getpid(), Hostname: "proxy-host", PolicyPath: path}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(client.Close)
	core, err := enforce.New(enforce.Config{Policy: p, Remote: client})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { core.Close() })
	return core
}

// outcome sends one client line and returns the error code of the answer
// (0 when forwarded) and the answer.
func outcome(t *testing.T, c *enforce.Core, s *enforce.Session, line string) (int, map[string]any) {
	t.Helper()
	v := c.FromClient(context.Background(), s, []byte(line))
	if v.ToServer != nil {
		return 0, nil
	}
	var m struct {
		Result map[string]any `json:"result"`
		Error  *struct {
			Code int            `json:"code"`
			Data map[string]any `json:"data"`
		} `json:"error"`
	}
	if err := json.Unmarshal(v.ToClient, &m); err != nil {
		t.Fatalf("answer %q: %v", v.ToClient, err)
	}
	if m.Error == nil {
		return 0, m.Result
	}
	return m.Error.Code, m.Error.Data
}

func toolCall(id int, tool, args, token string) string {
	meta := ""
	if token != "" {
		meta = `,"_meta":{"aip.io/token":"` + token + `"}`
	}
	return `{"jsonrpc":"2.0","id":` + itoa(id) + `,"method":"tools/call","params":{"name":"` + tool + `","arguments":` + args + meta + `}}`
}

func itoa(i int) string { b, _ := json.Marshal(i); return string(b) }

func TestAProxyWithAServerDecidesAsTheServerDoes(t *testing.T) {
	ts := newTestServer(t, server.Config{AdminToken: []byte(adminToken)}, basePolicy)
	// The local policy allows everything: every refusal below is the
	// server's.
	core := remoteProxy(t, ts.url, "apiVersion: aip.io/v1alpha2\nkind: AgentPolicy\nmetadata: {name: local}\nspec:\n  allowed_tools: [read_file, delete_file, file_write, limited]\n")
	s := enforce.NewSession()
	for _, tc := range []struct {
		name, tool, args string
		code             int
	}{
		{"allowed by the server", "read_file", `{"path":"/tmp/x"}`, 0},
		{"outside the server's allowlist", "delete_file", `{}`, aip.CodeForbidden},
		{"a protected path keeps its code", "read_file", `{"path":"~/.ssh/id_rsa"}`, aip.CodeProtectedPath},
		{"an argument pattern", "file_write", `{"path":"/etc/passwd"}`, aip.CodeForbidden},
		{"the first call of a rate limit", "limited", `{}`, 0},
		{"the second call of a rate limit", "limited", `{}`, aip.CodeRateLimited},
	} {
		code, data := outcome(t, core, s, toolCall(len(tc.name), tc.tool, tc.args, ""))
		if code != tc.code {
			t.Errorf("%s: code %d (%v), want %d", tc.name, code, data, tc.code)
		}
	}
}

func TestAProxyObtainsSingleUseTokensFromTheServer(t *testing.T) {
	ts := newTestServer(t, server.Config{AdminToken: []byte(adminToken)}, tenantPolicy("team-a", "read_file"))
	core := remoteProxy(t, ts.url, "apiVersion: aip.io/v1alpha2\nkind: AgentPolicy\nmetadata: {name: local}\nspec:\n  allowed_tools: [read_file]\n")
	s := enforce.NewSession()
	code, res := outcome(t, core, s, `{"jsonrpc":"2.0","id":"t","method":"aip.io/token"}`)
	tok, _ := res["token"].(string)
	if code != 0 || tok == "" {
		t.Fatalf("token: %d %v", code, res)
	}
	if code, data := outcome(t, core, s, toolCall(1, "read_file", `{}`, "")); code != aip.CodeTokenRequired {
		t.Fatalf("no token: %d %v", code, data)
	}
	if code, data := outcome(t, core, s, toolCall(2, "read_file", `{}`, tok)); code != 0 {
		t.Fatalf("with the token: %d %v", code, data)
	}
	code, data := outcome(t, core, s, toolCall(3, "read_file", `{}`, tok))
	if code != aip.CodeTokenInvalid || data["token_error"] != aip.TokenErrReplayDetected {
		t.Fatalf("replayed: %d %v", code, data)
	}
	_, res2 := outcome(t, core, s, `{"jsonrpc":"2.0","id":"t2","method":"aip.io/token"}`)
	if res2["session_id"] != res["session_id"] {
		t.Fatalf("the session did not continue: %v then %v", res["session_id"], res2["session_id"])
	}
}

func TestAProxyAppliesFailoverWhenTheServerIsGone(t *testing.T) {
	ts := newTestServer(t, server.Config{}, basePolicy)
	url := ts.url
	local := func(mode string) string {
		return "apiVersion: aip.io/v1alpha2\nkind: AgentPolicy\nmetadata: {name: local}\nspec:\n  allowed_tools: [read_file]\n  server:\n    failover_mode: " + mode + "\n"
	}
	closed := remoteProxy(t, url, local("fail_closed"))
	localPolicy := remoteProxy(t, url, local("local_policy"))
	s := enforce.NewSession()
	if code, _ := outcome(t, closed, s, toolCall(1, "read_file", `{}`, "")); code != 0 {
		t.Fatalf("before the outage: %d", code)
	}
	ts.stopHTTP()
	code, data := outcome(t, closed, s, toolCall(2, "read_file", `{}`, ""))
	if code != aip.CodeForbidden || data["reason"] != aip.TokenErrValidationUnavailable {
		t.Fatalf("fail_closed: %d %v", code, data)
	}
	if code, _ := outcome(t, localPolicy, s, toolCall(3, "read_file", `{}`, "")); code != 0 {
		t.Fatalf("local_policy allows what the local policy allows: %d", code)
	}
	if code, _ := outcome(t, localPolicy, s, toolCall(4, "delete_file", `{}`, "")); code != aip.CodeForbidden {
		t.Fatalf("local_policy blocks what the local policy blocks: %d", code)
	}
	if !strings.HasPrefix(url, "http://127.0.0.1") {
		t.Fatalf("test server %s is not loopback", url)
	}
}

// The agent's host expands "~" and resolves its paths: a proxy deciding
// through a server still refuses a call to a path its own policy protects,
// which the server could not see (it checks against its own home).
func TestAProxyWithAServerStillProtectsItsHostsPaths(t *testing.T) {
	ts := newTestServer(t, server.Config{}, "apiVersion: aip.io/v1alpha2\nkind: AgentPolicy\nmetadata: {name: remote}\nspec:\n  allowed_tools: [read_file]\n")
	home := t.TempDir()
	local := "apiVersion: aip.io/v1alpha2\nkind: AgentPolicy\nmetadata: {name: local}\nspec:\n  allowed_tools: [read_file]\n  protected_paths: [\"" + home + "/.ssh\"]\n"
	core := remoteProxy(t, ts.url, local)
	s := enforce.NewSession()
	if code, _ := outcome(t, core, s, toolCall(1, "read_file", `{"path":"/tmp/notes.txt"}`, "")); code != 0 {
		t.Fatalf("an unprotected path: code %d", code)
	}
	code, data := outcome(t, core, s, toolCall(2, "read_file", `{"path":"`+home+`/.ssh/id_rsa"}`, ""))
	if code != aip.CodeProtectedPath {
		t.Fatalf("a path the proxy's policy protects: code %d (%v), want %d", code, data, aip.CodeProtectedPath)
	}
}

func TestThroughTheServerTheRoundsOfOneCallSpendOneRateLimitUnit(t *testing.T) {
	ts := newTestServer(t, server.Config{AdminToken: []byte(adminToken)}, basePolicy)
	core := remoteProxy(t, ts.url, "apiVersion: aip.io/v1alpha2\nkind: AgentPolicy\nmetadata: {name: local}\nspec:\n  allowed_tools: [limited]\n")
	s := enforce.NewSession()
	ctx := context.Background()
	// answer forwards the call and answers it with result.
	answer := func(id int, params, result string) {
		t.Helper()
		line := `{"jsonrpc":"2.0","id":` + itoa(id) + `,"method":"tools/call","params":{"name":"limited","arguments":{}` + params + `}}`
		v := core.FromClient(ctx, s, []byte(line))
		if v.ToServer == nil {
			t.Fatalf("call %d not forwarded: %s", id, v.ToClient)
		}
		if core.FromServer(ctx, s, []byte(`{"jsonrpc":"2.0","id":`+itoa(id)+`,"result":`+result+`}`)).ToClient == nil {
			t.Fatalf("call %d: the answer did not reach the client", id)
		}
	}
	asks := `{"resultType":"input_required","inputRequests":{"q":{"method":"elicitation/create","params":{"mode":"form","message":"Sure?","requestedSchema":{"type":"object","properties":{}}}}},"requestState":"s1"}`
	answer(1, "", asks)
	answer(2, `,"inputResponses":{"q":{"action":"accept","content":{}}},"requestState":"s1"`, `{"content":[]}`)
	// The server counted one call of the minute's one.
	if code, data := outcome(t, core, s, toolCall(3, "limited", `{}`, "")); code != aip.CodeRateLimited {
		t.Fatalf("a new call after the two rounds: %d %v", code, data)
	}
}

func TestOnlyARequestThatCarriesRoundTicketGetsOne(t *testing.T) {
	ts := newTestServer(t, server.Config{}, basePolicy)
	for _, tc := range []struct {
		body string
		want bool
	}{
		{`{"tool":"read_file","arguments":{}}`, false},
		{`{"tool":"read_file","arguments":{},"round_ticket":""}`, true},
	} {
		resp, err := http.Post(ts.url+"/v1/validate", "application/json", strings.NewReader(tc.body))
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if got := strings.Contains(string(b), `"round_ticket":"r1.`); got != tc.want {
			t.Errorf("%s: answered %s; want a ticket %v", tc.body, b, tc.want)
		}
	}
}
