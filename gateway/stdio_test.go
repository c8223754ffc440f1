package gateway_test

import (
	"context"
	"os"
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
	compareEqual(t, viaRemote, exercise(t, hs+"/mcp", "", nil))
	compareEqual(t, viaRemote, viaStdio)
	if n := g.Sessions(); n != 0 {
		t.Errorf("%d sessions left after the client closed its own", n)
	}
	g.Close()
}
