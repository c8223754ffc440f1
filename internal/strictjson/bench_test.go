package strictjson

import (
	"testing"

	"github.com/agentid/agentid/internal/testenv"
)

// typicalToolCall is the 300-byte tools/call line of jsonrpc's benchmarks.
const typicalToolCall = `{"jsonrpc":"2.0","id":42,"method":"tools/call","params":{"name":"read_file","arguments":{"path":"/home/user/projects/agentid/README.md","encoding":"utf-8","max_bytes":65536},"_meta":{"progressToken":"tok-123","aip.io/token":"eyJhbGciOiJFUzI1NiJ9.eyJzdWIiOiJhZ2VudC0xIn0.c2lnbmF0dXJlLXNpZ25hdHVyZQ"}}}`

func BenchmarkValidate(b *testing.B) {
	for _, bc := range []struct {
		name string
		p    Profile
		doc  []byte
	}{
		{"MCP/tool_call", MCP, []byte(typicalToolCall)},
		{"Syntax/tool_call", Syntax, []byte(typicalToolCall)},
		{"MCP/arguments_4KB", MCP, testenv.ToolArguments(4096)},
		{"Syntax/arguments_4KB", Syntax, testenv.ToolArguments(4096)},
	} {
		b.Run(bc.name, func(b *testing.B) {
			b.SetBytes(int64(len(bc.doc)))
			b.ReportAllocs()
			for b.Loop() {
				if err := Validate(bc.p, bc.doc); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
