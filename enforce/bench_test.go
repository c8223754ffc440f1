package enforce_test

import (
	"context"
	"strconv"
	"strings"
	"testing"

	"github.com/agentid/agentid/audit"
	"github.com/agentid/agentid/enforce"
	"github.com/agentid/agentid/internal/benchdata"
	"github.com/agentid/agentid/policy"
)

// BenchmarkToolCall is the core's whole cost of one tools/call round trip:
// the request decided, its audit record encoded and written (to a discarding
// writer), the 4 KB response decided, with and without response DLP. With
// host path resolution, a path-like argument costs one openat2.
func BenchmarkToolCall(b *testing.B) {
	response := `{"jsonrpc":"2.0","id":ID,"result":` + benchdata.Result() + `}`
	for _, bc := range []struct {
		name  string
		yaml  string
		paths policy.PathResolver
	}{
		{"lexical paths", benchdata.Policy, nil},
		{"host paths", benchdata.Policy, policy.HostPaths()},
		{"host paths, 10 DLP patterns", benchdata.Policy + benchdata.DLP, policy.HostPaths()},
	} {
		b.Run(bc.name, func(b *testing.B) {
			p, _, err := policy.Parse([]byte(bc.yaml))
			if err != nil {
				b.Fatal(err)
			}
			compiled, err := enforce.Compile(p, enforce.LoadOptions{Paths: bc.paths})
			if err != nil {
				b.Fatal(err)
			}
			c, err := enforce.New(enforce.Config{Policy: compiled})
			if err != nil {
				b.Fatal(err)
			}
			defer c.Close()
			log := audit.New(discard{})
			s := enforce.NewSession()
			ctx := context.Background()
			// Ids are free again once answered: 100 calls, made up front.
			var calls, answers [100][]byte
			for i := range calls {
				id := strconv.Itoa(i)
				calls[i] = []byte(`{"jsonrpc":"2.0","id":` + id + `,"method":"tools/call","params":{"name":"read_file","arguments":{"path":"/data/report-` + id + `.txt"}}}`)
				answers[i] = []byte(strings.Replace(response, "ID", id, 1))
			}
			b.ReportAllocs()
			b.ResetTimer()
			for i := range b.N {
				v := c.FromClient(ctx, s, calls[i%100])
				if v.ToServer == nil {
					b.Fatalf("refused: %s", v.ToClient)
				}
				if err := log.LogAll(v.Audit); err != nil {
					b.Fatal(err)
				}
				r := c.FromServer(ctx, s, answers[i%100])
				if r.ToClient == nil {
					b.Fatal("response dropped")
				}
				_ = log.LogAll(r.Audit)
			}
		})
	}
}

type discard struct{}

func (discard) Write(p []byte) (int, error) { return len(p), nil }

// BenchmarkToolCall2026 is a tools/call as an MCP 2026-07-28 client sends
// it: params._meta on every request (protocol version, client info and
// capabilities), no token in it.
func BenchmarkToolCall2026(b *testing.B) {
	const policy = "apiVersion: aip.io/v1alpha2\nkind: AgentPolicy\nmetadata: {name: bench}\nspec:\n  allowed_tools: [echo]\n"
	c := newCore(&testing.T{}, policy)
	line := []byte(`{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"echo","arguments":{"text":"hi"},"_meta":{"io.modelcontextprotocol/protocolVersion":"2026-07-28","io.modelcontextprotocol/clientInfo":{"name":"bench","version":"1"},"io.modelcontextprotocol/clientCapabilities":{}}}}`)
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		s := enforce.NewRequestSession()
		v := c.FromClient(ctx, s, line)
		if v.ToServer == nil {
			b.Fatalf("refused: %s", v.ToClient)
		}
	}
}
