package jsonrpc

import (
	"bytes"
	"encoding/json"
	"io"
	"strings"
	"testing"
	"testing/iotest"

	"github.com/agentid/agentid/aip"
)

// bypassSeeds are the parser-differential and fail-open cases found in the
// AIP reference proxy (reference digest §5.4), plus near misses.
var bypassSeeds = []string{
	toolCall,
	`[{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"delete_files","arguments":{}}}]`,
	`{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"a","arguments":{"x":NaN}}}`,
	`{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"delete_files","Name":"list_files"}}`,
	`{"jsonrpc":"2.0","id":1,"method":"tools/call","Method":"tools/list","params":{"name":"x"}}`,
	"{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"tools/call\u200b\",\"params\":{\"name\":\"x\"}}",
	`{"jsonrpc":"2.0","id":1,"method":"tools/call\u200b","params":{"name":"x"}}`,
	`{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"delete_files","n\u0061me":"list_files"}}`,
	`{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"x","arguments":{"s":"\ud800"}}}`,
	"{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"tools/call\",\"params\":{\"name\":\"x\",\"arguments\":{\"s\":\"\xff\"}}}",
	`{"jsonrpc":"2.0","id":"abc-123","result":{"content":[{"type":"text","text":"hi"}]}}`,
	`{"jsonrpc":"2.0","id":null,"error":{"code":-32700,"message":"Parse error"}}`,
	`{"jsonrpc":"2.0","method":"notifications/cancelled","params":{"requestId":1}}`,
	`{"jsonrpc":"2.0","id":1.0,"method":"ping"}`,
	`{"jsonrpc":"2.0","id":1,"method":"ping"} {}`,
	`{"\u212a":1,"k":2}`,
	`{"jsonrpc":"2.0","id":1,"method":"m","params":[[[[[[[[[[]]]]]]]]]]}`,
}

func FuzzDecode(f *testing.F) {
	for _, s := range bypassSeeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		orig := bytes.Clone(in)
		msg, err := Decode(in)
		if !bytes.Equal(in, orig) {
			t.Fatalf("Decode modified its input")
		}
		if err != nil {
			e, ok := err.(*Error)
			if !ok {
				t.Fatalf("error %v is a %T, want *Error", err, err)
			}
			if e.Code != aip.CodeParseError && e.Code != aip.CodeInvalidRequest {
				t.Fatalf("code %d, want -32700 or -32600", e.Code)
			}
			if !json.Valid(in) && e.Code != aip.CodeParseError {
				t.Fatalf("encoding/json rejects the input but the code is %d, not -32700: %v", e.Code, err)
			}
			if e.Code == aip.CodeParseError && e.ID != nil {
				t.Fatalf("parse error echoes id %q", e.ID)
			}
			if resp, err := Decode(bytes.TrimSuffix(e.Response(), []byte("\n"))); err != nil || resp.Kind != KindResponse {
				t.Fatalf("the error response is not a valid response: %v", err)
			}
			return
		}

		// Accepted: every downstream parser must read the same message.
		if !json.Valid(in) {
			t.Fatalf("Decode accepted what encoding/json rejects")
		}
		if err := CheckStrict(in); err != nil {
			t.Fatalf("Decode accepted what CheckStrict rejects: %v", err)
		}
		if !bytes.Equal(msg.Raw, in) {
			t.Fatalf("Raw = %q, want the input", msg.Raw)
		}
		var generic any
		dec := json.NewDecoder(bytes.NewReader(in))
		dec.UseNumber()
		if err := dec.Decode(&generic); err != nil {
			t.Fatalf("encoding/json cannot decode an accepted message: %v", err)
		}
		var members map[string]json.RawMessage
		if err := json.Unmarshal(in, &members); err != nil {
			t.Fatalf("accepted message is not an object to encoding/json: %v", err)
		}
		sameRaw := func(name string, got json.RawMessage) {
			if want, ok := members[name]; ok != (got != nil) || ok && !bytes.Equal(got, want) {
				t.Fatalf("%s = %q, encoding/json sees %q", name, got, want)
			}
		}
		sameRaw("id", msg.ID)
		sameRaw("params", msg.Params)
		sameRaw("result", msg.Result)
		sameRaw("error", msg.Error)
		if msg.Kind != KindResponse {
			var method string
			if err := json.Unmarshal(members["method"], &method); err != nil || method != msg.Method {
				t.Fatalf("Method = %q, encoding/json reads %q (%v)", msg.Method, method, err)
			}
			// A struct with a Method field matches case-insensitively; it
			// must still see the same method.
			var env struct{ Method string }
			if err := json.Unmarshal(in, &env); err != nil || env.Method != msg.Method {
				t.Fatalf("Method = %q, encoding/json struct reads %q (%v)", msg.Method, env.Method, err)
			}
		}
		if msg.Method == "tools/call" && msg.Params != nil {
			call, err := ParseToolCall(msg.Params)
			if got, gerr := msg.ToolCall(); (gerr == nil) != (err == nil) || got.Name != call.Name ||
				!bytes.Equal(got.Arguments, call.Arguments) || !bytes.Equal(got.Meta, call.Meta) {
				t.Fatalf("Message.ToolCall() = %+v, %v; ParseToolCall: %+v, %v", got, gerr, call, err)
			}
			if err == nil {
				var p struct{ Name string }
				if err := json.Unmarshal(msg.Params, &p); err != nil || p.Name != call.Name {
					t.Fatalf("tool name = %q, encoding/json struct reads %q (%v)", call.Name, p.Name, err)
				}
			}
		}
	})
}

// refLines is the obvious, slow reading of the Reader's contract.
func refLines(in []byte, maxLine int) []string {
	var out []string
	parts := bytes.Split(in, []byte("\n"))
	if len(parts[len(parts)-1]) == 0 {
		parts = parts[:len(parts)-1]
	}
	for _, p := range parts {
		p = bytes.TrimSuffix(p, []byte("\r"))
		switch {
		case len(p) > maxLine:
			out = append(out, "<too long>")
		case len(bytes.Trim(p, " \t\r")) == 0:
		default:
			out = append(out, string(p))
		}
	}
	return out
}

func FuzzReader(f *testing.F) {
	f.Add([]byte("a\nb\r\n\n  \nccc"), uint8(2), uint8(16), false)
	f.Add([]byte(toolCall+"\r\n"+toolCall), uint8(200), uint8(20), true)
	f.Add([]byte("abcdefgh\r\r\nx\r"), uint8(7), uint8(16), true)
	f.Fuzz(fuzzReaderOnce)
}

// fuzzReaderOnce is one FuzzReader input.
func fuzzReaderOnce(t *testing.T, in []byte, maxLine, bufSize uint8, oneByte bool) {
	max := int(maxLine) + 1
	want := refLines(in, max)
	// Each input is read with ReadLine, and with ReadShared holding
	// lines over Reuse and Keep at a few cadences: the same lines come
	// out, and no held line changes.
	for _, every := range []int{0, 1, 3} {
		var src io.Reader = bytes.NewReader(in)
		if oneByte {
			src = iotest.OneByteReader(src)
		}
		r := newReaderSize(src, max, int(bufSize)+16)
		var got []string
		var err error
		if every == 0 {
			got, err = readAll(r)
		} else {
			got, err = readShared(t, r, every)
		}
		if err != io.EOF {
			t.Fatalf("final error %v, want io.EOF", err)
		}
		if strings.Join(got, "\x00|") != strings.Join(want, "\x00|") || len(got) != len(want) {
			t.Fatalf("lines (shared, every %d) = %q, want %q", every, got, want)
		}
	}
}

// readShared is readAll with ReadShared: lines are held, and checked, until
// a Reuse after every-th line, or a Keep after every other such span.
func readShared(t *testing.T, r *Reader, every int) ([]string, error) {
	var results []string
	var held, kept [][]byte
	var heldWant, keptWant []string
	for i := 1; i < 1000; i++ {
		line, err := r.ReadShared()
		switch {
		case err == ErrLineTooLong:
			results = append(results, "<too long>")
		case err != nil:
			return results, err
		default:
			results = append(results, string(line))
			held, heldWant = append(held, line), append(heldWant, string(line))
		}
		for j := range held {
			if string(held[j]) != heldWant[j] {
				t.Fatalf("held line %q became %q", heldWant[j], held[j])
			}
		}
		for j := range kept {
			if string(kept[j]) != keptWant[j] {
				t.Fatalf("kept line %q became %q", keptWant[j], kept[j])
			}
		}
		if i%every == 0 {
			if i%(2*every) == 0 {
				r.Keep()
				kept, keptWant = append(kept, held...), append(keptWant, heldWant...)
			} else {
				r.Reuse()
			}
			held, heldWant = held[:0], heldWant[:0]
		}
	}
	panic("ReadShared never ended")
}
