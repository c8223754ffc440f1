package exampleserver

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
)

type callResult struct {
	Content []struct {
		Type string `json:"type"`
		Text string `json:"text"`
	} `json:"content"`
	StructuredContent json.RawMessage `json:"structuredContent"`
	IsError           bool            `json:"isError"`
}

// callLine builds a tools/call request.
func callLine(id int, name string, args any) string {
	a, err := json.Marshal(args)
	if err != nil {
		panic(err)
	}
	return fmt.Sprintf(`{"jsonrpc":"2.0","id":%d,"method":"tools/call","params":{"name":%q,"arguments":%s}}`, id, name, a)
}

// calls runs tool calls in order in one session, so later calls see the
// effects of earlier ones, and returns their results.
func calls(t *testing.T, cs ...[2]any) []callResult {
	t.Helper()
	var lines []string
	for i, c := range cs {
		lines = append(lines, callLine(i+1, c[0].(string), c[1]))
	}
	msgs := session(t, lines...)
	if len(msgs) != len(cs) {
		t.Fatalf("got %d responses, want %d", len(msgs), len(cs))
	}
	var results []callResult
	for i, m := range msgs {
		if m.Error != nil {
			t.Fatalf("call %d (%v): JSON-RPC error %d %s", i+1, cs[i][0], m.Error.Code, m.Error.Message)
		}
		var r callResult
		if err := json.Unmarshal(m.Result, &r); err != nil {
			t.Fatal(err)
		}
		if len(r.Content) != 1 || r.Content[0].Type != "text" {
			t.Fatalf("call %d: content %+v, want one text item", i+1, r.Content)
		}
		results = append(results, r)
	}
	return results
}

func call(t *testing.T, name string, args any) callResult {
	t.Helper()
	return calls(t, [2]any{name, args})[0]
}

func text(r callResult) string { return r.Content[0].Text }

func TestReadFile(t *testing.T) {
	r := call(t, "read_file", map[string]string{"path": "/home/demo/project/config.env"})
	if r.IsError || !strings.Contains(text(r), "AKIAIOSFODNN7EXAMPLE") || !strings.Contains(text(r), "password=hunter2") {
		t.Errorf("config.env: %+v", r)
	}
	for _, p := range []string{"~/.ssh/id_rsa", "/home/demo/.ssh/id_rsa", "../.ssh/id_rsa", "/home/demo/project/../.ssh//id_rsa"} {
		r := call(t, "read_file", map[string]string{"path": p})
		if r.IsError || !strings.HasPrefix(text(r), "-----BEGIN OPENSSH PRIVATE KEY-----") {
			t.Errorf("read_file %s: %+v", p, r)
		}
	}
	r = call(t, "read_file", map[string]string{"path": "README.md"})
	if r.IsError || !strings.HasPrefix(text(r), "# Demo project") {
		t.Errorf("relative README.md: %+v", r)
	}
	for _, p := range []string{"/etc/passwd", "/home/demo/project", "/", "/../../etc/shadow"} {
		if r := call(t, "read_file", map[string]string{"path": p}); !r.IsError {
			t.Errorf("read_file %s succeeded: %q", p, text(r))
		}
	}
}

func TestListDirectory(t *testing.T) {
	tests := map[string]string{
		"/home/demo/project": "[FILE] README.md\n[FILE] config.env\n",
		"~":                  "[DIR] .ssh\n[DIR] project\n",
		"/":                  "[DIR] home\n",
		"/home/demo/.ssh":    "[FILE] id_rsa\n",
	}
	for p, want := range tests {
		r := call(t, "list_directory", map[string]string{"path": p})
		if r.IsError || text(r) != want {
			t.Errorf("list_directory %s = %q (isError %v), want %q", p, text(r), r.IsError, want)
		}
	}
	for _, p := range []string{"/nope", "/home/demo/project/README.md"} {
		if r := call(t, "list_directory", map[string]string{"path": p}); !r.IsError {
			t.Errorf("list_directory %s succeeded: %q", p, text(r))
		}
	}
}

func TestWriteFile(t *testing.T) {
	rs := calls(t,
		[2]any{"write_file", map[string]string{"path": "/home/demo/project/notes/todo.txt", "content": "ship it"}},
		[2]any{"read_file", map[string]string{"path": "notes/todo.txt"}},
		[2]any{"list_directory", map[string]string{"path": "/home/demo/project"}},
		[2]any{"write_file", map[string]string{"path": "README.md", "content": "replaced"}},
		[2]any{"read_file", map[string]string{"path": "/home/demo/project/README.md"}},
		[2]any{"write_file", map[string]string{"path": "/home/demo/project", "content": "x"}},
		[2]any{"write_file", map[string]string{"path": "/home/demo/project/README.md/sub", "content": "x"}},
		[2]any{"write_file", map[string]string{"path": "/", "content": "x"}},
	)
	if rs[0].IsError || !strings.Contains(text(rs[0]), "wrote 7 bytes") {
		t.Errorf("write: %+v", rs[0])
	}
	if text(rs[1]) != "ship it" {
		t.Errorf("read back %q", text(rs[1]))
	}
	if !strings.Contains(text(rs[2]), "[DIR] notes") {
		t.Errorf("new directory not listed: %q", text(rs[2]))
	}
	if rs[3].IsError || text(rs[4]) != "replaced" {
		t.Errorf("overwrite: %+v then %q", rs[3], text(rs[4]))
	}
	for i, r := range rs[5:] {
		if !r.IsError {
			t.Errorf("bad write %d succeeded: %q", i, text(r))
		}
	}
}

func TestWritesDoNotLeakBetweenSessions(t *testing.T) {
	call(t, "write_file", map[string]string{"path": "/tmp/x", "content": "x"})
	if r := call(t, "read_file", map[string]string{"path": "/tmp/x"}); !r.IsError {
		t.Error("a second session saw the first one's write")
	}
}

func TestDeleteFile(t *testing.T) {
	rs := calls(t,
		[2]any{"delete_file", map[string]string{"path": "~/.ssh/id_rsa"}},
		[2]any{"read_file", map[string]string{"path": "~/.ssh/id_rsa"}},
		[2]any{"delete_file", map[string]string{"path": "~/.ssh/id_rsa"}},
		[2]any{"delete_file", map[string]string{"path": "~/.ssh"}},
		[2]any{"list_directory", map[string]string{"path": "~/.ssh"}},
	)
	if rs[0].IsError || !strings.Contains(text(rs[0]), "/home/demo/.ssh/id_rsa") {
		t.Errorf("delete: %+v", rs[0])
	}
	if !rs[1].IsError || !rs[2].IsError || !rs[3].IsError {
		t.Errorf("after delete: read %v, delete again %v, delete dir %v; want all errors", rs[1].IsError, rs[2].IsError, rs[3].IsError)
	}
	if rs[4].IsError || text(rs[4]) != "" {
		t.Errorf("emptied directory lists as %+v", rs[4])
	}
}

func TestRunCommand(t *testing.T) {
	r := call(t, "run_command", map[string]string{"command": "rm -rf / --no-preserve-root"})
	if r.IsError || text(r) != "simulated: rm -rf / --no-preserve-root" {
		t.Errorf("run_command: %+v", r)
	}
}

func TestEcho(t *testing.T) {
	r := call(t, "echo", map[string]string{"text": "héllo\n\"quoted\""})
	if r.IsError || text(r) != "héllo\n\"quoted\"" {
		t.Errorf("echo text: %+v", r)
	}
	var sc struct{ Text string }
	if err := json.Unmarshal(r.StructuredContent, &sc); err != nil || sc.Text != text(r) {
		t.Errorf("echo structuredContent %s", r.StructuredContent)
	}
	if r := call(t, "read_file", map[string]string{"path": "README.md"}); r.StructuredContent != nil {
		t.Errorf("read_file has structuredContent %s", r.StructuredContent)
	}
}

func TestToolCallInvalidParams(t *testing.T) {
	tests := []string{
		`{"jsonrpc":"2.0","id":1,"method":"tools/call"}`,
		`{"jsonrpc":"2.0","id":1,"method":"tools/call","params":[]}`,
		`{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"arguments":{}}}`,
		`{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"no_such_tool","arguments":{}}}`,
		`{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"read_file"}}`,
		`{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"read_file","arguments":[]}}`,
		`{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"read_file","arguments":{"path":1}}}`,
		`{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"read_file","arguments":{"path":null}}}`,
		`{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"read_file","arguments":{"path":"a","extra":"b"}}}`,
		`{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"write_file","arguments":{"path":"a"}}}`,
	}
	for _, line := range tests {
		wantError(t, one(t, line), codeInvalidParams, "1")
	}
}

func TestFSSizeLimit(t *testing.T) {
	fs := newFS()
	big := strings.Repeat("x", maxFSBytes/2)
	if err := fs.write("/a", big); err != nil {
		t.Fatal(err)
	}
	if err := fs.write("/a", big); err != nil {
		t.Fatalf("overwriting the same file should not count twice: %v", err)
	}
	if err := fs.write("/b", big); err != errNoSpace {
		t.Fatalf("second large file: %v, want %v", err, errNoSpace)
	}
	if err := fs.remove("/a"); err != nil {
		t.Fatal(err)
	}
	if err := fs.write("/b", big); err != nil {
		t.Fatalf("after freeing space: %v", err)
	}
}
