package policy

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/agentid/agentid/internal/strictjson"
)

// fuzzEnginePolicy exercises every step of DecideTool.
const fuzzEnginePolicy = `allowed_tools: [read_file, t]
strict_args_default: false
protected_paths: [~/.ssh, .env, /etc/shadow]
tool_rules:
- tool: read_file
  rate_limit: 1000/second
  allow_args:
    path: '^/(tmp|srv)/'
- tool: exec
  action: block
- tool: deploy
  action: ask
  allow_args:
    env: ^(staging|prod)$
- tool: strict
  strict_args: true
  allow_args:
    a: .
- tool: pinned
  schema_hash: sha256:` + "0000000000000000000000000000000000000000000000000000000000000000"

// FuzzDecideTool feeds arbitrary names and argument bytes to DecideTool: it
// must not panic, must fail closed on anything that is not a JSON object, and
// its decision must be self-consistent.
func FuzzDecideTool(f *testing.F) {
	for _, s := range []struct{ name, args string }{
		{"read_file", `{"path":"/tmp/x"}`},
		{"READ_FILE", `{"path":"~/.ssh/id_rsa"}`},
		{"exec", `{}`},
		{"deploy", `{"env":"prod"}`},
		{"strict", `{"a":"x","b":[1,{"c":null}]}`},
		{"t", `{"cmd":"cat /tmp/../etc/shadow; echo $HOME/.ssh"}`},
		{"t", `{"a":1,"\u0061":2}`},
		{"t", `[1]`},
		{"t", `{"a":"\ud800"}`},
		{"\u200b t", `null`},
		{"pinned", `{"x":1e400}`},
	} {
		f.Add(s.name, []byte(s.args))
	}
	var e *Engine
	f.Fuzz(func(t *testing.T, name string, args []byte) {
		if e == nil {
			e = mustEngine(t, mustPolicyYAML(t, fuzzEnginePolicy))
		}
		d := e.DecideTool(ToolCall{Name: name, Arguments: args})
		// Arguments jsonrpc would admit (valid under strictjson.MCP) are
		// decided alike whether or not the engine validates them itself;
		// anything else it refuses.
		if strictjson.Validate(strictjson.MCP, args) == nil {
			if v := e.DecideTool(ToolCall{Name: name, Arguments: args, Validated: true}); v != d {
				t.Fatalf("validated arguments %q decided %+v, unvalidated %+v", args, v, d)
			}
		} else if len(bytes.TrimSpace(args)) > 0 && d.Action != Block {
			t.Fatalf("arguments refused under MCP %q not blocked: %+v", args, d)
		}
		switch d.Action {
		case Allow, Block, Ask:
		default:
			t.Fatalf("action %v", d.Action)
		}
		if d.Tool != NormalizeName(name) || d.Method != "tools/call" {
			t.Fatalf("names %q %q", d.Tool, d.Method)
		}
		if (d.Action == Block || d.Monitored) != d.Violation() {
			t.Fatalf("violation fields inconsistent: %+v", d)
		}
		if d.Violation() && d.Code == 0 {
			t.Fatalf("violation without code: %+v", d)
		}
		trimmed := strings.TrimSpace(string(args))
		if len(trimmed) > 0 && trimmed != "null" && (!json.Valid(args) || trimmed[0] != '{') && d.Action != Block {
			t.Fatalf("non-object arguments %q not blocked: %+v", args, d)
		}
		if d.Action == Allow && strings.Contains(string(args), "/etc/shadow") {
			t.Fatalf("protected path allowed: %q", args)
		}
	})
}

// FuzzStringify checks STRING() against encoding/json: it must not panic,
// must accept exactly the valid JSON values, and must agree with the Go
// decoder on strings and booleans.
func FuzzStringify(f *testing.F) {
	for _, s := range []string{`"a"`, `"\u00e9\n"`, `12345678901234567890`, `-1.50e2`, `true`, `null`, `[1,"<"]`, `{"b":1,"a":2}`, `1e400`, `"\ud83d\ude00"`, `{"a":{"a":[[]]}}`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, raw []byte) {
		s, err := Stringify(raw)
		valid := json.Valid(raw)
		if !valid {
			if err == nil {
				t.Fatalf("invalid JSON %q accepted as %q", raw, s)
			}
			return
		}
		var v any
		dec := json.NewDecoder(strings.NewReader(string(raw)))
		dec.UseNumber()
		if dec.Decode(&v) != nil {
			t.Fatalf("json.Valid but undecodable: %q", raw)
		}
		switch v := v.(type) {
		case string:
			if err != nil || s != v {
				t.Fatalf("string %q: got %q, %v; want %q", raw, s, err, v)
			}
		case bool:
			if err != nil || s != map[bool]string{true: "true", false: "false"}[v] {
				t.Fatalf("bool %q: got %q, %v", raw, s, err)
			}
		case nil:
			if err != nil || s != "" {
				t.Fatalf("null: got %q, %v", s, err)
			}
		case json.Number:
			if err != nil || s == "" || strings.ContainsAny(s, "eE") && s != string(v) {
				t.Fatalf("number %q: got %q, %v", raw, s, err)
			}
		default:
			// Arrays and objects: JCS may refuse (duplicate keys, numbers
			// beyond float64), but what it returns is valid JSON.
			if err == nil && (!json.Valid([]byte(s)) || !utf8.ValidString(s)) {
				t.Fatalf("composite %q: got invalid %q", raw, s)
			}
		}
	})
}

// FuzzNormalizeName checks that NormalizeName is idempotent: a name the
// policy normalizes must normalize to itself again, or a rule written with
// an already-normalized name could miss the request it targets.
func FuzzNormalizeName(f *testing.F) {
	for _, s := range []string{"read_file", "ＲＥＡＤ", "\u200b read", "ﬁle", "İstanbul", "e\u200b\u0301", "\ufeff", "Å", "ǅ"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		n := NormalizeName(s)
		if again := NormalizeName(n); again != n {
			t.Fatalf("NormalizeName(%q) = %q, but NormalizeName(%q) = %q", s, n, n, again)
		}
	})
}
