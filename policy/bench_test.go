package policy

import (
	"encoding/json"
	"testing"

	"github.com/agentid/agentid/internal/testenv"
)

const engineBenchPolicy = `allowed_tools: [read_file, list_directory]
protected_paths: [~/.ssh, .env]
tool_rules:
- tool: read_file
  allow_args:
    path: '^/(tmp|srv)/'
- tool: exec
  action: block`

func engineBenchEngine(b *testing.B, doc string) *Engine {
	b.Helper()
	return mustEngine(b, mustPolicyYAML(b, doc))
}

// BenchmarkDecideToolAllowed is the common case: an allowed call with two
// arguments, one constrained by a pattern. "no_paths" isolates the cost of
// the protected-path walk, which for path-like values includes the lstat
// calls of symlink resolution; "plain_values" has protected paths but no
// path-like values.
func BenchmarkDecideToolAllowed(b *testing.B) {
	for _, bc := range []struct{ name, policy, tool, args string }{
		{"protected_paths", engineBenchPolicy, "read_file", `{"path":"/tmp/report.txt","encoding":"utf-8"}`},
		{"protected_paths_plain_values", engineBenchPolicy, "list_directory", `{"name":"report","limit":10}`},
		{"no_paths", "allowed_tools: [read_file]\ntool_rules:\n- tool: read_file\n  allow_args:\n    path: '^/(tmp|srv)/'", "read_file", `{"path":"/tmp/report.txt","encoding":"utf-8"}`},
	} {
		b.Run(bc.name, func(b *testing.B) {
			e := engineBenchEngine(b, bc.policy)
			call := ToolCall{Name: bc.tool, Arguments: json.RawMessage(bc.args)}
			if d := e.DecideTool(call); d.Action != Allow {
				b.Fatalf("%+v", d)
			}
			b.ReportAllocs()
			for b.Loop() {
				e.DecideTool(call)
			}
		})
	}
}

// BenchmarkDecideTool4KB is an allowed call with about 4 KB of arguments,
// where reading the arguments costs more than the rules; "protected_paths"
// adds the walk of every string for protected paths.
func BenchmarkDecideTool4KB(b *testing.B) {
	const rules = "tool_rules:\n- tool: write_file\n  allow_args:\n    path: '^/home/'"
	for _, bc := range []struct{ name, policy string }{
		{"no_paths", "allowed_tools: [write_file]\n" + rules},
		{"protected_paths", "allowed_tools: [write_file]\nprotected_paths: [~/.ssh, .env]\n" + rules},
	} {
		b.Run(bc.name, func(b *testing.B) {
			e := engineBenchEngine(b, bc.policy)
			args := testenv.ToolArguments(4096)
			call := ToolCall{Name: "write_file", Arguments: json.RawMessage(args)}
			if d := e.DecideTool(call); d.Action != Allow {
				b.Fatalf("%+v", d)
			}
			b.SetBytes(int64(len(args)))
			b.ReportAllocs()
			for b.Loop() {
				e.DecideTool(call)
			}
		})
	}
}

func BenchmarkDecideToolBlocked(b *testing.B) {
	e := engineBenchEngine(b, engineBenchPolicy)
	for _, bc := range []struct{ name, tool, args string }{
		{"not_allowed", "delete_file", `{"path":"/tmp/x"}`},
		{"rule_block", "exec", `{"cmd":"ls"}`},
		{"argument", "read_file", `{"path":"/etc/passwd"}`},
		{"protected_path", "read_file", `{"path":"~/.ssh/id_rsa"}`},
	} {
		b.Run(bc.name, func(b *testing.B) {
			call := ToolCall{Name: bc.tool, Arguments: json.RawMessage(bc.args)}
			if d := e.DecideTool(call); d.Action != Block {
				b.Fatalf("%+v", d)
			}
			b.ReportAllocs()
			for b.Loop() {
				e.DecideTool(call)
			}
		})
	}
}

func BenchmarkDecideMethod(b *testing.B) {
	e := engineBenchEngine(b, engineBenchPolicy)
	b.ReportAllocs()
	for b.Loop() {
		e.DecideMethod("tools/call")
	}
}

func BenchmarkNormalizeName(b *testing.B) {
	for _, bc := range []struct{ name, in string }{
		{"ascii", "read_file"},
		{"ascii_upper", "Read_File"},
		{"non_ascii", "ｒｅａｄ\u200b_ﬁle"},
	} {
		b.Run(bc.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				NormalizeName(bc.in)
			}
		})
	}
}
