package gateway_test

import (
	"context"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/agentid/agentid/gateway"
	"github.com/agentid/agentid/server"
)

// serverEnv makes the test binary, re-executed, the stdio MCP server of
// upstreamServer (the official Go SDK's server on its stdio transport).
const serverEnv = "AGENTID_GATEWAY_TEST_STDIO_SERVER"

func TestMain(m *testing.M) {
	if os.Getenv(serverEnv) == "1" {
		upstreamServer().Run(context.Background(), &mcp.StdioTransport{})
		os.Exit(0)
	}
	os.Exit(m.Run())
}

func stdioCommand(t *testing.T) *gateway.Command {
	t.Helper()
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	return &gateway.Command{Path: self, Env: append(os.Environ(), serverEnv+"=1"), ShutdownGrace: time.Second}
}

// The gateway in front of a stdio server it spawns per session carries
// every feature as a remote upstream does: the same client sees the same
// through both.
func TestAStdioServerPerSessionBehavesAsTheRemoteOne(t *testing.T) {
	remote, _ := newGateway(t, featurePolicy, upstream(t), gateway.Config{}, server.Config{})
	srv, err := server.New(server.Config{Policies: writePolicy(t, featurePolicy)})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	g, err := gateway.New(gateway.Config{Server: srv, Command: stdioCommand(t)})
	if err != nil {
		t.Fatal(err)
	}
	hs := httptestServer(t, g)
	viaRemote := exercise(t, remote+"/mcp", "2025-11-25", nil)
	viaStdio := exercise(t, hs+"/mcp", "2025-11-25", nil)
	t.Logf("%+v", viaStdio)
	compareEqual(t, viaRemote, viaStdio)
	if n := g.Sessions(); n != 0 {
		t.Errorf("%d sessions left after the client closed its own", n)
	}
	// A 2026-07-28 client (the SDK's default) keeps no session: its
	// requests share one server, which outlives them until it idles out.
	compareEqual(t, viaRemote, exercise(t, hs+"/mcp", "2026-07-28", nil))
	if n := g.Sessions(); n != 1 {
		t.Errorf("%d servers for one client outside sessions, want 1", n)
	}
	g.Close()
}

// Outside sessions one client's requests share its server under ids of
// the gateway's: two requests with the same id, at once, each get their
// own answer; another client gets a server of its own.
func TestRequestsOutsideSessionsShareTheirClientsServer(t *testing.T) {
	srv, err := server.New(server.Config{Policies: writePolicy(t, identityPolicyWith("echo")), TokenCredential: []byte(credential)})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	g, err := gateway.New(gateway.Config{Server: srv, Command: stdioCommand(t)})
	if err != nil {
		t.Fatal(err)
	}
	defer g.Close()
	hs := httptestServer(t, g)
	alice, bob := tokenClient(t, hs), tokenClient(t, hs)
	call := func(c *server.Client, text string) string {
		tok, err := c.Token(context.Background())
		if err != nil {
			t.Error(err)
			return ""
		}
		body := `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"echo","arguments":{"text":"` + text + `"},"_meta":` + meta2026 + `}}`
		status, _, resp := rawPost(t, hs+"/mcp", body, "Authorization: Bearer "+tok.Token, "Mcp-Protocol-Version: 2026-07-28",
			"Mcp-Method: tools/call", "Mcp-Name: echo")
		if status != 200 {
			t.Errorf("%s: %d %s", text, status, resp)
		}
		return resp
	}
	// (The first token opens alice's AIP session; the others continue it.)
	if a := call(alice, "first"); !strings.Contains(a, "echo: first") {
		t.Fatalf("first: %s", a)
	}
	var wg sync.WaitGroup
	answers := make([]string, 8)
	for i := range answers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			answers[i] = call(alice, "call-"+strconv.Itoa(i))
		}()
	}
	wg.Wait()
	for i, a := range answers {
		if !strings.Contains(a, `"id":1`) || !strings.Contains(a, "echo: call-"+strconv.Itoa(i)+`"`) {
			t.Errorf("request %d got %s", i, a)
		}
	}
	if n := g.Sessions(); n != 1 {
		t.Errorf("%d servers for one client, want 1", n)
	}
	if a := call(bob, "bob"); !strings.Contains(a, "echo: bob") {
		t.Errorf("bob: %s", a)
	}
	if n := g.Sessions(); n != 2 {
		t.Errorf("%d servers for two clients, want 2", n)
	}
}

func identityPolicyWith(tools string) string {
	return strings.Replace(identityPolicy, "allowed_tools: [echo]", "allowed_tools: ["+tools+"]", 1)
}
