package enforce_test

import (
	"context"
	"encoding/json"
	"strings"
	"testing"

	"github.com/agentid/agentid/aip"

	"github.com/agentid/agentid/audit"
	"github.com/agentid/agentid/enforce"
)

const fuzzPolicy = `apiVersion: aip.io/v1alpha2
kind: AgentPolicy
metadata: {name: fuzz}
spec:
  allowed_tools: [echo, read_file]
  protected_paths: [/etc/secret]
  tool_rules:
    - tool: write_file
      action: ask
    - tool: run
      rate_limit: 3/minute
      allow_args: {cmd: "^ls( .*)?$"}
  dlp:
    scan_requests: true
    patterns:
      - name: AWS Key
        regex: "AKIA[A-Z0-9]{16}"
`

const fuzzSecret = "AKIAABCDEFGHIJKLMNOP"

func fuzzCore(t *testing.T) *enforce.Core { return newCore(t, fuzzPolicy) }

// checkVerdict holds for every verdict: what is sent is one valid JSON
// value, the audit records can be written, and nothing the client sent to a
// protected path reaches the server.
func checkVerdict(t *testing.T, v enforce.Verdict) {
	t.Helper()
	for name, b := range map[string][]byte{"to server": v.ToServer, "to client": v.ToClient} {
		if b != nil && !json.Valid(b) {
			t.Fatalf("%s is not valid JSON: %q", name, b)
		}
		if strings.ContainsRune(string(b), '\n') {
			t.Fatalf("%s contains a newline, which would split the message: %q", name, b)
		}
	}
	if err := audit.Discard().LogAll(v.Audit); err != nil {
		t.Fatalf("audit records cannot be written: %v", err)
	}
	if call := decoded(t, v.ToServer); call != nil && call["method"] == "tools/call" {
		if params, ok := call["params"].(map[string]any); ok && anyString(params["arguments"], func(s string) bool { return strings.Contains(s, "/etc/secret") }) {
			t.Fatalf("a protected path reached the server: %s", v.ToServer)
		}
	}
}

// checkOwnErrors holds for a verdict on a client message: every error it
// answers says it is agentid's decision (aip.DataKey).
func checkOwnErrors(t *testing.T, v enforce.Verdict) {
	t.Helper()
	if answer := decoded(t, v.ToClient); answer != nil {
		if e, ok := answer["error"].(map[string]any); ok {
			data, _ := e["data"].(map[string]any)
			code, _ := e["code"].(float64)
			if data[aip.DataKey] != aip.ErrorName(int(code)) {
				t.Fatalf("an error the core answers does not say it is agentid's (%s): %s", aip.DataKey, v.ToClient)
			}
		}
	}
}

func decoded(t *testing.T, b []byte) map[string]any {
	if b == nil {
		return nil
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatalf("not a JSON object: %q", b)
	}
	return m
}

// anyString reports whether some string value (not key) at any depth of v
// satisfies f. Object keys are not policed yet (issue: DLP and protected
// paths for keys), so they are not asserted here.
func anyString(v any, f func(string) bool) bool {
	switch x := v.(type) {
	case string:
		return f(x)
	case []any:
		for _, e := range x {
			if anyString(e, f) {
				return true
			}
		}
	case map[string]any:
		for _, e := range x {
			if anyString(e, f) {
				return true
			}
		}
	}
	return false
}

func FuzzFromClient(f *testing.F) {
	for _, s := range []string{
		`{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"echo","arguments":{"text":"hi"}}}`,
		`{"jsonrpc":"2.0","method":"tools/call","params":{"name":"read_file","arguments":{"path":"/etc/secret/k"}}}`,
		`{"jsonrpc":"2.0","id":"a","method":"tools/call","params":{"name":"run","arguments":{"cmd":"ls /"}}}`,
		`{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"write_file","arguments":{"path":"/work/x"}}}`,
		`{"jsonrpc":"2.0","id":3,"method":"tools/call","params":{"name":"echo","arguments":{"t":"` + fuzzSecret + `"},"_meta":{"aip.io/token":"x"}}}`,
		`{"jsonrpc":"2.0","id":-0,"method":"tools/list"}`,
		`{"jsonrpc":"2.0","id":4,"result":{}}`,
		`[{"jsonrpc":"2.0","id":1,"method":"ping"}]`,
		`{"jsonrpc":"2.0","id":5,"method":"aip.io/token"}`,
	} {
		f.Add([]byte(s), []byte(`{"jsonrpc":"2.0","id":1,"method":"ping"}`))
	}
	f.Fuzz(func(t *testing.T, first, second []byte) {
		c := fuzzCore(t)
		s := enforce.NewSession()
		for _, line := range [][]byte{first, second} {
			v := c.FromClient(context.Background(), s, line)
			checkVerdict(t, v)
			checkOwnErrors(t, v)
			if v.Approval != nil {
				r := c.Resolve(v.Approval, 0)
				checkVerdict(t, r)
				checkOwnErrors(t, r)
			}
		}
	})
}

func FuzzFromServer(f *testing.F) {
	for _, s := range []string{
		`{"jsonrpc":"2.0","id":1,"result":{"tools":[{"name":"echo"},{"name":"delete_file"}]}}`,
		`{"jsonrpc":"2.0","id":1,"result":{"tools":[{"name":"echo"},{"name":"ＥＣＨＯ"}]}}`,
		`{"jsonrpc":"2.0","id":1,"result":{"content":[{"type":"text","text":"` + fuzzSecret + `"}]}}`,
		`{"jsonrpc":"2.0","id":1,"error":{"code":-1,"message":"` + fuzzSecret + `"}}`,
		`{"jsonrpc":"2.0","id":"s1","method":"sampling/createMessage","params":{"x":"` + fuzzSecret + `"}}`,
		`{"jsonrpc":"2.0","method":"notifications/tools/list_changed"}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, line []byte) {
		c := fuzzCore(t)
		s := enforce.NewSession()
		// One tools/list in flight with id 1, so responses have a request.
		c.FromClient(context.Background(), s, []byte(`{"jsonrpc":"2.0","id":1,"method":"tools/list"}`))
		v := c.FromServer(context.Background(), s, line)
		checkVerdict(t, v)
		if m := decoded(t, v.ToClient); m != nil {
			for _, member := range []string{"result", "error", "params"} {
				if anyString(m[member], func(s string) bool { return strings.Contains(s, fuzzSecret) }) {
					t.Fatalf("a secret reached the client unredacted: %s", v.ToClient)
				}
			}
		}
		// After the listing, a call to a tool it did not advertise is refused.
		after := c.FromClient(context.Background(), s, []byte(`{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"read_file","arguments":{}}}`))
		checkVerdict(t, after)
	})
}
