package enforce_test

import (
	"context"
	"strconv"
	"strings"
	"testing"

	"github.com/agentid/agentid/audit"
	"github.com/agentid/agentid/enforce"
	"github.com/agentid/agentid/policy"
)

const benchPolicy = `apiVersion: aip.io/v1alpha2
kind: AgentPolicy
metadata: {name: bench}
spec:
  allowed_tools: [read_file]
  tool_rules:
    - tool: read_file
      allow_args:
        path: "^/data/[a-z0-9_./-]+$"
`

const benchDLP = `  dlp:
    patterns:
      - {name: AWS Key, regex: "(AKIA|ASIA)[A-Z0-9]{16}"}
      - {name: GitHub Token, regex: "gh[pousr]_[A-Za-z0-9]{36}"}
      - {name: Email, regex: "[a-zA-Z0-9._%+-]+@[a-zA-Z0-9.-]+\\.[a-zA-Z]{2,}"}
      - {name: SSN, regex: "\\b\\d{3}-\\d{2}-\\d{4}\\b"}
      - {name: Credit Card, regex: "\\b(?:\\d{4}[- ]?){3}\\d{4}\\b"}
      - {name: Private Key, regex: "-----BEGIN (RSA |EC |DSA |OPENSSH )?PRIVATE KEY-----"}
      - {name: JWT, regex: "eyJ[A-Za-z0-9_-]{10,}\\.[A-Za-z0-9_-]{10,}\\.[A-Za-z0-9_-]{10,}"}
      - {name: Generic Secret, regex: "(?i)(password|secret|token)\\s*[:=]\\s*\\S+"}
      - {name: Slack Token, regex: "xox[baprs]-[A-Za-z0-9-]{10,}"}
      - {name: IPv4, regex: "\\b(?:\\d{1,3}\\.){3}\\d{1,3}\\b"}
`

// BenchmarkToolCall is the core's whole cost of one tools/call round trip:
// the request decided, its audit record encoded and written (to a discarding
// writer), the 4 KB response decided, with and without response DLP. With
// host path resolution, a path-like argument costs one openat2.
func BenchmarkToolCall(b *testing.B) {
	text := strings.Repeat("The quarterly report lists revenue, costs and outlook for each region. ", 58)[:4000]
	response := []byte(`{"jsonrpc":"2.0","id":ID,"result":{"content":[{"type":"text","text":"` + text + `"}]}}`)
	for _, bc := range []struct {
		name  string
		yaml  string
		paths policy.PathResolver
	}{
		{"lexical paths", benchPolicy, nil},
		{"host paths", benchPolicy, policy.HostPaths()},
		{"host paths, 10 DLP patterns", benchPolicy + benchDLP, policy.HostPaths()},
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
			b.ReportAllocs()
			b.ResetTimer()
			for i := range b.N {
				id := strconv.Itoa(i)
				v := c.FromClient(ctx, s, []byte(`{"jsonrpc":"2.0","id":`+id+`,"method":"tools/call","params":{"name":"read_file","arguments":{"path":"/data/report-`+strconv.Itoa(i%100)+`.txt"}}}`))
				if v.ToServer == nil {
					b.Fatalf("refused: %s", v.ToClient)
				}
				if err := log.LogAll(v.Audit); err != nil {
					b.Fatal(err)
				}
				r := c.FromServer(ctx, s, []byte(strings.Replace(string(response), "ID", id, 1)))
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
