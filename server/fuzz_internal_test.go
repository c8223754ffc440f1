package server

import (
	"encoding/json"
	"testing"

	"github.com/agentid/agentid/internal/strictjson"
)

// FuzzDecodeValidateRequest: whatever the decoder accepts is one JSON
// object that encoding/json reads the same way (same tool, same
// arguments), with a non-empty tool and an arguments object the MCP
// profile accepts; and it never panics.
func FuzzDecodeValidateRequest(f *testing.F) {
	for _, s := range []string{
		`{"tool":"read_file","arguments":{"path":"/tmp/x"}}`,
		`{"tool":"read_file","arguments":{},"token":"x"}`,
		`{"tool":"\u0072ead","arguments":{"a":[1,2,{"b":null}]}}`,
		`{"tool":"a","tool":"b","arguments":{}}`,
		`{"Tool":"a","tool":"b","arguments":{}}`,
		`{"tool":"a","arguments":{"x":1,"X":2}}`,
		`{"tool":"a","arguments":[]}`,
		`{"tool":"","arguments":{}}`,
		`not valid json`,
		"{\"tool\":\"a\xff\",\"arguments\":{}}",
		`{"tool":"a","arguments":{}} trailing`,
		`{"tool":"a","arguments":{"n":1e999}}`,
		`{"tool":"a","arguments":{},"round_ticket":"r1.AAAA.BBBB"}`,
		`{"tool":"a","arguments":{},"round_ticket":7}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		req, err := decodeValidateRequest(body)
		if err != nil {
			return
		}
		if req.Tool == "" || len(req.Arguments) == 0 || req.Arguments[0] != '{' {
			t.Fatalf("accepted %q as tool %q arguments %q", body, req.Tool, req.Arguments)
		}
		if err := strictjson.Validate(strictjson.MCP, req.Arguments); err != nil {
			t.Fatalf("arguments %q refused by the MCP profile: %v", req.Arguments, err)
		}
		var std struct {
			Tool      string          `json:"tool"`
			Arguments json.RawMessage `json:"arguments"`
		}
		if err := json.Unmarshal(body, &std); err != nil {
			t.Fatalf("accepted %q, which encoding/json refuses: %v", body, err)
		}
		if std.Tool != req.Tool || string(std.Arguments) != string(req.Arguments) {
			t.Fatalf("%q: tool %q args %q, encoding/json reads %q %q", body, req.Tool, req.Arguments, std.Tool, std.Arguments)
		}
	})
}
