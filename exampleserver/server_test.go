package exampleserver

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"strings"
	"testing"
	"time"
)

// message is a decoded line of the server's output.
type message struct {
	JSONRPC string          `json:"jsonrpc"`
	ID      json.RawMessage `json:"id"`
	Result  json.RawMessage `json:"result"`
	Error   *struct {
		Code    int    `json:"code"`
		Message string `json:"message"`
	} `json:"error"`
}

// session feeds lines to a fresh server and returns its responses.
func session(t *testing.T, lines ...string) []message {
	t.Helper()
	var out bytes.Buffer
	in := strings.Join(lines, "\n") + "\n"
	if err := Serve(context.Background(), strings.NewReader(in), &out); err != nil {
		t.Fatalf("Serve: %v", err)
	}
	return decode(t, out.Bytes())
}

func decode(t testing.TB, out []byte) []message {
	t.Helper()
	var msgs []message
	for _, l := range bytes.SplitAfter(out, []byte("\n")) {
		if len(l) == 0 {
			continue
		}
		if l[len(l)-1] != '\n' {
			t.Fatalf("output line not newline-terminated: %q", l)
		}
		var m message
		if err := json.Unmarshal(l, &m); err != nil {
			t.Fatalf("output line %q: %v", l, err)
		}
		if m.JSONRPC != "2.0" {
			t.Fatalf("output line %q lacks jsonrpc 2.0", l)
		}
		if (m.Error == nil) == (m.Result == nil) {
			t.Fatalf("output line %q must have exactly one of result and error", l)
		}
		msgs = append(msgs, m)
	}
	return msgs
}

// one runs a single request and returns its only response.
func one(t *testing.T, line string) message {
	t.Helper()
	msgs := session(t, line)
	if len(msgs) != 1 {
		t.Fatalf("%s: got %d responses, want 1", line, len(msgs))
	}
	return msgs[0]
}

func wantError(t *testing.T, m message, code int, id string) {
	t.Helper()
	if m.Error == nil {
		t.Fatalf("got result %s, want error %d", m.Result, code)
	}
	if m.Error.Code != code {
		t.Errorf("error code %d (%s), want %d", m.Error.Code, m.Error.Message, code)
	}
	if string(m.ID) != id {
		t.Errorf("error id %s, want %s", m.ID, id)
	}
}

func TestInitialize(t *testing.T) {
	tests := []struct{ asked, want string }{
		{"2025-06-18", "2025-06-18"},
		{"2025-03-26", "2025-03-26"},
		{"2024-11-05", "2024-11-05"},
		{"2099-01-01", ProtocolVersion},
		{"", ProtocolVersion},
	}
	for _, tt := range tests {
		req := `{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"` + tt.asked + `","capabilities":{},"clientInfo":{"name":"t","version":"0"}}}`
		m := one(t, req)
		var res struct {
			ProtocolVersion string                     `json:"protocolVersion"`
			Capabilities    map[string]json.RawMessage `json:"capabilities"`
			ServerInfo      struct{ Name string }      `json:"serverInfo"`
		}
		if err := json.Unmarshal(m.Result, &res); err != nil {
			t.Fatal(err)
		}
		if res.ProtocolVersion != tt.want {
			t.Errorf("asked %q: got version %q, want %q", tt.asked, res.ProtocolVersion, tt.want)
		}
		if _, ok := res.Capabilities["tools"]; !ok || len(res.Capabilities) != 1 {
			t.Errorf("capabilities %v, want only tools", res.Capabilities)
		}
		if res.ServerInfo.Name == "" {
			t.Error("no serverInfo.name")
		}
	}
	// No params at all still initializes.
	m := one(t, `{"jsonrpc":"2.0","id":"a","method":"initialize"}`)
	if m.Error != nil || !strings.Contains(string(m.Result), ProtocolVersion) {
		t.Errorf("initialize without params: %+v %s", m.Error, m.Result)
	}
	wantError(t, one(t, `{"jsonrpc":"2.0","id":2,"method":"initialize","params":[1]}`), codeInvalidParams, "2")
}

func TestNotificationsGetNoReply(t *testing.T) {
	msgs := session(t,
		`{"jsonrpc":"2.0","method":"notifications/initialized"}`,
		`{"jsonrpc":"2.0","method":"notifications/cancelled","params":{"requestId":1}}`,
		`{"jsonrpc":"2.0","method":"no/such/notification"}`,
		`{"jsonrpc":"2.0","method":"tools/call","params":{"name":"nope"}}`,
		`{"jsonrpc":"2.0","id":7,"method":"ping"}`,
	)
	if len(msgs) != 1 || string(msgs[0].ID) != "7" {
		t.Fatalf("got %+v, want only the ping response", msgs)
	}
}

func TestPing(t *testing.T) {
	m := one(t, `{"jsonrpc":"2.0","id":"p-1","method":"ping"}`)
	if m.Error != nil || string(m.Result) != "{}" || string(m.ID) != `"p-1"` {
		t.Errorf("ping: id %s result %s error %+v", m.ID, m.Result, m.Error)
	}
}

func TestRequestsBeforeInitialize(t *testing.T) {
	// Nothing requires initialize first; a proxy test may skip it.
	m := one(t, `{"jsonrpc":"2.0","id":1,"method":"tools/list"}`)
	if m.Error != nil {
		t.Fatalf("tools/list before initialize: %+v", m.Error)
	}
}

func TestToolsList(t *testing.T) {
	m := one(t, `{"jsonrpc":"2.0","id":1,"method":"tools/list","params":{}}`)
	var res struct {
		Tools []struct {
			Name        string `json:"name"`
			Description string `json:"description"`
			InputSchema struct {
				Type       string                     `json:"type"`
				Properties map[string]json.RawMessage `json:"properties"`
				Required   []string                   `json:"required"`
			} `json:"inputSchema"`
			OutputSchema json.RawMessage `json:"outputSchema"`
		} `json:"tools"`
	}
	if err := json.Unmarshal(m.Result, &res); err != nil {
		t.Fatal(err)
	}
	want := map[string][]string{
		"read_file":      {"path"},
		"list_directory": {"path"},
		"write_file":     {"path", "content"},
		"delete_file":    {"path"},
		"run_command":    {"command"},
		"echo":           {"text"},
	}
	if len(res.Tools) != len(want) {
		t.Errorf("got %d tools, want %d", len(res.Tools), len(want))
	}
	for _, tl := range res.Tools {
		req, ok := want[tl.Name]
		if !ok {
			t.Errorf("unexpected tool %q", tl.Name)
			continue
		}
		if tl.Description == "" || tl.InputSchema.Type != "object" {
			t.Errorf("%s: description %q, schema type %q", tl.Name, tl.Description, tl.InputSchema.Type)
		}
		if strings.Join(tl.InputSchema.Required, ",") != strings.Join(req, ",") {
			t.Errorf("%s: required %v, want %v", tl.Name, tl.InputSchema.Required, req)
		}
		for _, r := range req {
			if _, ok := tl.InputSchema.Properties[r]; !ok {
				t.Errorf("%s: no property %q", tl.Name, r)
			}
		}
		if (tl.Name == "echo") != (tl.OutputSchema != nil) {
			t.Errorf("%s: outputSchema %s", tl.Name, tl.OutputSchema)
		}
	}
}

func TestUnknownMethod(t *testing.T) {
	wantError(t, one(t, `{"jsonrpc":"2.0","id":3,"method":"resources/list"}`), codeMethodNotFound, "3")
	wantError(t, one(t, `{"jsonrpc":"2.0","id":4,"method":""}`), codeMethodNotFound, "4")
}

func TestMalformedInput(t *testing.T) {
	tests := []struct {
		name, line string
		code       int
		id         string
	}{
		{"not json", `{"jsonrpc":`, codeParseError, "null"},
		{"garbage", "\x00\xff garbage", codeParseError, "null"},
		{"trailing data", `{"jsonrpc":"2.0","id":1,"method":"ping"} {}`, codeParseError, "null"},
		{"batch", `[{"jsonrpc":"2.0","id":1,"method":"ping"}]`, codeInvalidRequest, "null"},
		{"empty batch", `[]`, codeInvalidRequest, "null"},
		{"scalar", `42`, codeInvalidRequest, "null"},
		{"null", `null`, codeInvalidRequest, "null"},
		{"object id", `{"jsonrpc":"2.0","id":{},"method":"ping"}`, codeInvalidRequest, "null"},
		{"null id", `{"jsonrpc":"2.0","id":null,"method":"ping"}`, codeInvalidRequest, "null"},
		{"bool id", `{"jsonrpc":"2.0","id":true,"method":"ping"}`, codeInvalidRequest, "null"},
		{"numeric method", `{"jsonrpc":"2.0","id":5,"method":1}`, codeInvalidRequest, "5"},
		{"wrong version", `{"jsonrpc":"1.0","id":6,"method":"ping"}`, codeInvalidRequest, "6"},
		{"no version", `{"id":"x","method":"ping"}`, codeInvalidRequest, `"x"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			wantError(t, one(t, tt.line), tt.code, tt.id)
		})
	}
}

func TestSessionSurvivesBadLines(t *testing.T) {
	msgs := session(t,
		`not json`,
		``,
		`   `,
		`{"jsonrpc":"2.0","id":1,"result":{}}`, // a client response: ignored
		`[1,2]`,
		`{"jsonrpc":"2.0","id":2,"method":"ping"}`,
	)
	if len(msgs) != 3 {
		t.Fatalf("got %d responses, want 3: %+v", len(msgs), msgs)
	}
	if string(msgs[2].ID) != "2" || msgs[2].Error != nil {
		t.Errorf("ping after bad lines: %+v", msgs[2])
	}
}

func TestCRLFAndMissingFinalNewline(t *testing.T) {
	var out bytes.Buffer
	in := "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"ping\"}\r\n{\"jsonrpc\":\"2.0\",\"id\":2,\"method\":\"ping\"}"
	if err := Serve(context.Background(), strings.NewReader(in), &out); err != nil {
		t.Fatal(err)
	}
	if msgs := decode(t, out.Bytes()); len(msgs) != 2 {
		t.Errorf("got %d responses, want 2", len(msgs))
	}
}

func TestLineTooLong(t *testing.T) {
	long := `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"echo","arguments":{"text":"` +
		strings.Repeat("a", MaxLineSize) + `"}}}`
	msgs := session(t, long, `{"jsonrpc":"2.0","id":2,"method":"ping"}`)
	if len(msgs) != 2 {
		t.Fatalf("got %d responses, want 2", len(msgs))
	}
	wantError(t, msgs[0], codeParseError, "null")
	if string(msgs[1].ID) != "2" || msgs[1].Error != nil {
		t.Errorf("ping after an overlong line: %+v", msgs[1])
	}
}

func TestContextCancel(t *testing.T) {
	pr, pw := io.Pipe()
	defer pw.Close()
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() { errc <- Serve(ctx, pr, io.Discard) }()
	cancel()
	select {
	case err := <-errc:
		if !errors.Is(err, context.Canceled) {
			t.Errorf("Serve = %v, want context.Canceled", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Serve did not return after cancel")
	}
}

type failingReader struct{}

func (failingReader) Read([]byte) (int, error) { return 0, errors.New("boom") }

type failingWriter struct{}

func (failingWriter) Write([]byte) (int, error) { return 0, errors.New("closed") }

func TestIOErrors(t *testing.T) {
	if err := Serve(context.Background(), failingReader{}, io.Discard); err == nil || err.Error() != "boom" {
		t.Errorf("read error: Serve = %v", err)
	}
	in := strings.NewReader(`{"jsonrpc":"2.0","id":1,"method":"ping"}` + "\n")
	if err := Serve(context.Background(), in, failingWriter{}); err == nil {
		t.Error("write error: Serve returned nil")
	}
}

// FuzzServe checks that no input crashes the server and that everything it
// writes is a well-formed JSON-RPC response line.
func FuzzServe(f *testing.F) {
	f.Add([]byte(`{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-06-18"}}`))
	f.Add([]byte(`{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"write_file","arguments":{"path":"~/x/y","content":"z"}}}` + "\n" +
		`{"jsonrpc":"2.0","id":3,"method":"tools/call","params":{"name":"list_directory","arguments":{"path":"/home/../home/demo"}}}`))
	f.Add([]byte(`[{"id":1}]` + "\n" + `{"id":{},"method":[]}`))
	f.Add([]byte("\x00\n\r\n{}"))
	f.Fuzz(func(t *testing.T, in []byte) {
		var out bytes.Buffer
		if err := Serve(context.Background(), bytes.NewReader(in), &out); err != nil {
			t.Fatalf("Serve: %v", err)
		}
		decode(t, out.Bytes())
	})
}
