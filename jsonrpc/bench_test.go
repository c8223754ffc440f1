package jsonrpc

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"

	"github.com/agentid/agentid/aip"
	"github.com/agentid/agentid/internal/testenv"
)

// typicalToolCall is a 300-byte tools/call line of the kind MCP clients send.
const typicalToolCall = `{"jsonrpc":"2.0","id":42,"method":"tools/call","params":{"name":"read_file","arguments":{"path":"/home/user/projects/agentid/README.md","encoding":"utf-8","max_bytes":65536},"_meta":{"progressToken":"tok-123","aip.io/token":"eyJhbGciOiJFUzI1NiJ9.eyJzdWIiOiJhZ2VudC0xIn0.c2lnbmF0dXJlLXNpZ25hdHVyZQ"}}}`

func BenchmarkDecodeToolCall(b *testing.B) {
	line := []byte(typicalToolCall)
	b.SetBytes(int64(len(line)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Decode(line); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkDecodeAndParseToolCall(b *testing.B) {
	line := []byte(typicalToolCall)
	b.SetBytes(int64(len(line)))
	b.ReportAllocs()
	for b.Loop() {
		m, err := Decode(line)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := ParseToolCall(m.Params); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkErrorResponse(b *testing.B) {
	id := json.RawMessage(`42`)
	data := map[string]any{"tool": "delete_files", "reason": "Tool not in allowed_tools list"}
	b.ReportAllocs()
	for b.Loop() {
		AIPError(id, aip.CodeForbidden, data)
	}
}

func BenchmarkReader(b *testing.B) {
	const lines = 1000
	in := []byte(strings.Repeat(typicalToolCall+"\n", lines))
	b.SetBytes(int64(len(in)))
	b.ReportAllocs()
	for b.Loop() {
		r := NewReader(bytes.NewReader(in), 0)
		for range lines {
			if _, err := r.ReadLine(); err != nil {
				b.Fatal(err)
			}
		}
	}
}

func BenchmarkCheckStrictToolCall(b *testing.B) {
	line := []byte(typicalToolCall)
	b.SetBytes(int64(len(line)))
	b.ReportAllocs()
	for b.Loop() {
		if err := CheckStrict(line); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkDecodeAndParseToolCall4KB is the arguments path of a tools/call
// with about 4 KB of arguments, the size where scanning dominates.
func BenchmarkDecodeAndParseToolCall4KB(b *testing.B) {
	line := []byte(`{"jsonrpc":"2.0","id":42,"method":"tools/call","params":{"name":"write_file","arguments":` + string(testenv.ToolArguments(4096)) + `}}`)
	b.SetBytes(int64(len(line)))
	b.ReportAllocs()
	for b.Loop() {
		m, err := Decode(line)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := ParseToolCall(m.Params); err != nil {
			b.Fatal(err)
		}
	}
}
