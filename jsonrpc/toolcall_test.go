package jsonrpc

import (
	"encoding/json"
	"testing"

	"github.com/agentid/agentid/aip"
)

func TestParseToolCall(t *testing.T) {
	tests := []struct {
		name   string
		params string
		want   ToolCall
		ok     bool
	}{
		{"name and arguments are returned raw", `{"name":"read_file","arguments":{"path":"/tmp/x"}}`,
			ToolCall{Name: "read_file", Arguments: json.RawMessage(`{"path":"/tmp/x"}`)}, true},
		{"arguments may be absent", `{"name":"list"}`, ToolCall{Name: "list"}, true},
		{"_meta is returned raw", `{"name":"a","arguments":{},"_meta":{"aip.io/token":"t"}}`,
			ToolCall{Name: "a", Arguments: json.RawMessage(`{}`), Meta: json.RawMessage(`{"aip.io/token":"t"}`)}, true},
		{"escaped name is unescaped", `{"name":"read\u005ffile"}`, ToolCall{Name: "read_file"}, true},
		{"name is not normalized", `{"name":"ＲＥＡＤ_FILE"}`, ToolCall{Name: "ＲＥＡＤ_FILE"}, true},
		{"other members are allowed", `{"name":"a","task":{"ttl":1}}`, ToolCall{Name: "a"}, true},
		{"surrounding whitespace is allowed", ` {"name":"a"} `, ToolCall{Name: "a"}, true},
		{"missing name is invalid", `{"arguments":{}}`, ToolCall{}, false},
		{"Name alone is not a name", `{"Name":"a"}`, ToolCall{}, false},
		{"name and Name shadowing is invalid", `{"name":"delete_files","Name":"list_files"}`, ToolCall{}, false},
		{"non-string name is invalid", `{"name":1}`, ToolCall{}, false},
		{"array arguments are invalid", `{"name":"a","arguments":[1]}`, ToolCall{}, false},
		{"null arguments count as absent (the Go MCP SDK sends them)", `{"name":"a","arguments":null}`, ToolCall{Name: "a"}, true},
		{"string _meta is invalid", `{"name":"a","_meta":"x"}`, ToolCall{}, false},
		{"array params are invalid", `["a"]`, ToolCall{}, false},
		{"empty params are invalid", ``, ToolCall{}, false},
		{"NaN in arguments is invalid", `{"name":"a","arguments":{"x":NaN}}`, ToolCall{}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseToolCall(json.RawMessage(tt.params))
			if !tt.ok {
				e, isErr := err.(*Error)
				if !isErr || e.Code != aip.CodeInvalidParams {
					t.Fatalf("ParseToolCall = %+v, %v; want an *Error with code %d", got, err, aip.CodeInvalidParams)
				}
				return
			}
			if err != nil {
				t.Fatalf("ParseToolCall: %v", err)
			}
			if got.Name != tt.want.Name || string(got.Arguments) != string(tt.want.Arguments) || string(got.Meta) != string(tt.want.Meta) ||
				(got.Arguments == nil) != (tt.want.Arguments == nil) || (got.Meta == nil) != (tt.want.Meta == nil) {
				t.Errorf("ParseToolCall = %+v, want %+v", got, tt.want)
			}
		})
	}
}

// Message.ToolCall is ParseToolCall without the second scan: it must agree
// with it on every message Decode accepts, and notice replaced Params.
func TestMessageToolCallAgreesWithParseToolCall(t *testing.T) {
	for _, params := range []string{
		`{"name":"read_file","arguments":{"path":"/tmp/x"}}`, `{"name":"list"}`, `{"name":"read\u005ffile"}`,
		`{"name":"a","arguments":{},"_meta":{"aip.io/token":"t"}}`, `{"name":"a","arguments":null}`,
		` { "name" : "a" , "task" : {"ttl":1} } `, `{"arguments":{}}`, `{"name":1}`, `{"name":"a","arguments":[1]}`,
		`{"name":"a","_meta":"x"}`, `["a"]`, `{}`,
	} {
		msg, err := Decode([]byte(`{"jsonrpc":"2.0","id":1,"method":"tools/call","params":` + params + `}`))
		if err != nil {
			t.Fatalf("Decode: %v", err)
		}
		want, wantErr := ParseToolCall(msg.Params)
		got, gotErr := msg.ToolCall()
		if got.Name != want.Name || string(got.Arguments) != string(want.Arguments) || string(got.Meta) != string(want.Meta) ||
			(got.Arguments == nil) != (want.Arguments == nil) || (gotErr == nil) != (wantErr == nil) ||
			gotErr != nil && gotErr.Error() != wantErr.Error() {
			t.Errorf("%s: ToolCall() = %+v, %v; ParseToolCall = %+v, %v", params, got, gotErr, want, wantErr)
		}
	}
	msg, _ := Decode([]byte(`{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"a"}}`))
	m := *msg
	m.Params = json.RawMessage(`{"name":"b"}`)
	if tc, err := m.ToolCall(); err != nil || tc.Name != "b" {
		t.Errorf("after replacing Params: %+v, %v", tc, err)
	}
}
