package jsonrpc

import (
	"encoding/json"
	"errors"
	"strconv"
	"strings"
	"testing"

	"github.com/agentid/agentid/aip"
	"github.com/agentid/agentid/internal/strictjson"
)

const toolCall = `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"read_file","arguments":{"path":"/tmp/x"}}}`

func TestDecodeAcceptsValidMessages(t *testing.T) {
	tests := []struct {
		name   string
		line   string
		kind   Kind
		id     string // raw; "" for nil
		method string
		params string
		result string
		errv   string
	}{
		{"request with a number id", toolCall, KindRequest, `1`, "tools/call", `{"name":"read_file","arguments":{"path":"/tmp/x"}}`, "", ""},
		{"request with a string id", `{"jsonrpc":"2.0","id":"abc-123","method":"ping"}`, KindRequest, `"abc-123"`, "ping", "", "", ""},
		{"request with a negative id", `{"jsonrpc":"2.0","id":-7,"method":"ping"}`, KindRequest, `-7`, "ping", "", "", ""},
		{"request id with escapes is kept raw", `{"jsonrpc":"2.0","id":"a\u0062c","method":"ping"}`, KindRequest, `"a\u0062c"`, "ping", "", "", ""},
		{"params may be an array", `{"jsonrpc":"2.0","id":1,"method":"m","params":[1,2]}`, KindRequest, `1`, "m", `[1,2]`, "", ""},
		{"members may come in any order", `{"params":{},"method":"m","id":2,"jsonrpc":"2.0"}`, KindRequest, `2`, "m", `{}`, "", ""},
		{"notification has no id", `{"jsonrpc":"2.0","method":"notifications/initialized"}`, KindNotification, "", "notifications/initialized", "", "", ""},
		{"response with a result", `{"jsonrpc":"2.0","id":5,"result":{"roots":[]}}`, KindResponse, `5`, "", "", `{"roots":[]}`, ""},
		{"response result may be any value", `{"jsonrpc":"2.0","id":5,"result":null}`, KindResponse, `5`, "", "", `null`, ""},
		{"error response", `{"jsonrpc":"2.0","id":"x","error":{"code":-32601,"message":"Method not found","data":{"m":1}}}`, KindResponse, `"x"`, "", "", "", `{"code":-32601,"message":"Method not found","data":{"m":1}}`},
		{"error response may have a null id", `{"jsonrpc":"2.0","id":null,"error":{"code":-32700,"message":"Parse error"}}`, KindResponse, `null`, "", "", "", `{"code":-32700,"message":"Parse error"}`},
		{"surrounding whitespace is allowed", " \t" + toolCall + " ", KindRequest, `1`, "tools/call", `{"name":"read_file","arguments":{"path":"/tmp/x"}}`, "", ""},
		{"whitespace between tokens is allowed", `{ "jsonrpc" : "2.0" , "id" : 1 , "method" : "m" }`, KindRequest, `1`, "m", "", "", ""},
		{"escaped method is unescaped", `{"jsonrpc":"2.0","id":1,"method":"tools\/call"}`, KindRequest, `1`, "tools/call", "", "", ""},
		{"zero-width space in method is kept byte-exact", "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"tools/call\u200b\"}", KindRequest, `1`, "tools/call\u200b", "", "", ""},
		{"escaped zero-width space in method is kept", `{"jsonrpc":"2.0","id":1,"method":"tools/call\u200B"}`, KindRequest, `1`, "tools/call\u200b", "", "", ""},
		{"fullwidth method is not normalized", `{"jsonrpc":"2.0","id":1,"method":"ｔｏｏｌｓ/call"}`, KindRequest, `1`, "ｔｏｏｌｓ/call", "", "", ""},
		{"different keys in different objects are fine", `{"jsonrpc":"2.0","id":1,"method":"m","params":{"a":{"name":1},"b":{"name":2}}}`, KindRequest, `1`, "m", `{"a":{"name":1},"b":{"name":2}}`, "", ""},
		{"escaped surrogate pair is accepted", `{"jsonrpc":"2.0","id":1,"method":"m","params":{"s":"\ud83d\ude00"}}`, KindRequest, `1`, "m", `{"s":"\ud83d\ude00"}`, "", ""},
		{"U+FFFD written literally is accepted", "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"m\",\"params\":{\"s\":\"\uFFFD\"}}", KindRequest, `1`, "m", "{\"s\":\"\uFFFD\"}", "", ""},
		{"numbers of every RFC 8259 form are accepted", `{"jsonrpc":"2.0","id":1,"method":"m","params":[0,-0,1.5,-1e3,2E+10,3e-2,0.0]}`, KindRequest, `1`, "m", `[0,-0,1.5,-1e3,2E+10,3e-2,0.0]`, "", ""},
		{"nesting of 1000 levels is accepted", `{"jsonrpc":"2.0","id":1,"method":"m","params":` + strings.Repeat("[", 999) + strings.Repeat("]", 999) + `}`, KindRequest, `1`, "m", strings.Repeat("[", 999) + strings.Repeat("]", 999), "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m, err := Decode([]byte(tt.line))
			if err != nil {
				t.Fatalf("Decode: %v", err)
			}
			if string(m.Raw) != tt.line {
				t.Errorf("Raw = %q, want the input", m.Raw)
			}
			if m.Kind != tt.kind {
				t.Errorf("Kind = %v, want %v", m.Kind, tt.kind)
			}
			check := func(field string, got json.RawMessage, want string) {
				t.Helper()
				if want == "" && got != nil || string(got) != want {
					t.Errorf("%s = %q, want %q", field, got, want)
				}
			}
			check("ID", m.ID, tt.id)
			check("Params", m.Params, tt.params)
			check("Result", m.Result, tt.result)
			check("Error", m.Error, tt.errv)
			if m.Method != tt.method {
				t.Errorf("Method = %q, want %q", m.Method, tt.method)
			}
		})
	}
}

func TestDecodeRejects(t *testing.T) {
	const (
		parse   = aip.CodeParseError
		invalid = aip.CodeInvalidRequest
	)
	pre := `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":`
	tests := []struct {
		name string
		line string
		code int
	}{
		// Not JSON at all.
		{"empty line is a parse error", ``, parse},
		{"NaN is a parse error", pre + `{"name":"a","arguments":{"x":NaN}}}`, parse},
		{"Infinity is a parse error", pre + `{"name":"a","arguments":{"x":Infinity}}}`, parse},
		{"-Infinity is a parse error", pre + `{"name":"a","arguments":{"x":-Infinity}}}`, parse},
		{"single quotes are a parse error", `{'jsonrpc':'2.0','id':1,'method':'m'}`, parse},
		{"line comment is a parse error", `{"jsonrpc":"2.0","id":1,"method":"m"} // c`, parse},
		{"block comment is a parse error", `{"jsonrpc":"2.0",/* c */"id":1,"method":"m"}`, parse},
		{"trailing comma in object is a parse error", `{"jsonrpc":"2.0","id":1,"method":"m",}`, parse},
		{"trailing comma in array is a parse error", pre + `[1,2,]}`, parse},
		{"leading zero is a parse error", pre + `[01]}`, parse},
		{"leading plus is a parse error", pre + `[+1]}`, parse},
		{"fraction without integer part is a parse error", pre + `[.5]}`, parse},
		{"fraction without digits is a parse error", pre + `[1.]}`, parse},
		{"exponent without digits is a parse error", pre + `[1e]}`, parse},
		{"hex number is a parse error", pre + `[0x10]}`, parse},
		{"Python None is a parse error", pre + `[None]}`, parse},
		{"capitalized True is a parse error", pre + `[True]}`, parse},
		{"invalid UTF-8 byte is a parse error", pre + "{\"s\":\"\xff\"}}", parse},
		{"overlong UTF-8 is a parse error", pre + "{\"s\":\"\xc0\xaf\"}}", parse},
		{"UTF-8 encoded surrogate is a parse error", pre + "{\"s\":\"\xed\xa0\x80\"}}", parse},
		{"truncated UTF-8 is a parse error", pre + "{\"s\":\"\xe2\x82\"}}", parse},
		{"invalid UTF-8 in a key is a parse error", pre + "{\"\xff\":1}}", parse},
		{"lone high surrogate escape is a parse error", pre + `{"s":"\ud800"}}`, parse},
		{"lone low surrogate escape is a parse error", pre + `{"s":"\udc00"}}`, parse},
		{"high surrogate followed by non-surrogate is a parse error", pre + `{"s":"\ud800\u0041"}}`, parse},
		{"reversed surrogate pair is a parse error", pre + `{"s":"\ude00\ud83d"}}`, parse},
		{"invalid escape is a parse error", pre + `{"s":"\x41"}}`, parse},
		{"short unicode escape is a parse error", pre + `{"s":"\u41"}}`, parse},
		{"raw control character in string is a parse error", pre + "{\"s\":\"a\x01b\"}}", parse},
		{"raw tab in string is a parse error", pre + "{\"s\":\"a\tb\"}}", parse},
		{"unterminated string is a parse error", `{"jsonrpc":"2.0","id":1,"method":"m`, parse},
		{"unterminated object is a parse error", `{"jsonrpc":"2.0","id":1,"method":"m"`, parse},
		{"trailing garbage is a parse error", toolCall + ` x`, parse},
		{"two objects on one line are a parse error", toolCall + toolCall, parse},
		{"byte order mark is a parse error", "\xef\xbb\xbf" + toolCall, parse},
		{"NUL byte is a parse error", toolCall + "\x00", parse},
		{"missing colon is a parse error", `{"jsonrpc" "2.0"}`, parse},
		{"unquoted key is a parse error", `{jsonrpc:"2.0"}`, parse},

		// JSON, but not one unambiguous JSON-RPC message.
		{"batch is rejected with -32600", `[{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"delete_files","arguments":{}}}]`, invalid},
		{"empty batch is rejected with -32600", `[]`, invalid},
		{"top-level string is rejected with -32600", `"tools/call"`, invalid},
		{"top-level number is rejected with -32600", `1`, invalid},
		{"top-level null is rejected with -32600", `null`, invalid},
		{"duplicate method is rejected", `{"jsonrpc":"2.0","id":1,"method":"tools/list","method":"tools/call"}`, invalid},
		{"method and Method shadowing is rejected", `{"jsonrpc":"2.0","id":1,"method":"tools/call","Method":"tools/list","params":{"name":"x"}}`, invalid},
		{"method and METHOD shadowing is rejected", `{"jsonrpc":"2.0","id":1,"METHOD":"tools/list","method":"tools/call"}`, invalid},
		{"name and Name shadowing in params is rejected", pre + `{"name":"delete_files","Name":"list_files"}}`, invalid},
		{"duplicate key deep in arguments is rejected", pre + `{"name":"a","arguments":{"x":[{"p":1,"q":{"r":1,"r":2}}]}}}`, invalid},
		{"case-variant key deep in arguments is rejected", pre + `{"name":"a","arguments":{"x":[{"path":"/a","PATH":"/b"}]}}}`, invalid},
		{"keys are compared after unescaping", pre + `{"name":"delete_files","n\u0061me":"list_files"}}`, invalid},
		{"escaped case variant is rejected", pre + `{"name":"delete_files","\u004eame":"list_files"}}`, invalid},
		{"Kelvin sign folds to k", pre + `{"k":1,"\u212a":2}}`, invalid},
		{"long s folds to s", pre + `{"s":1,"ſ":2}}`, invalid},
		{"dotless i is treated as a case variant of i", pre + `{"id":1,"ıd":2}}`, invalid},
		{"dotted capital I is treated as a case variant of i", pre + `{"id":1,"İd":2}}`, invalid},
		{"non-ASCII case variants are rejected", pre + `{"straße":1,"STRAßE":2}}`, invalid},
		{"Greek sigma forms are case variants", pre + `{"σ":1,"ς":2}}`, invalid},
		{"unknown member is rejected", `{"jsonrpc":"2.0","id":1,"method":"m","extra":1}`, invalid},
		{"case-variant member alone is unknown", `{"jsonrpc":"2.0","id":1,"Method":"tools/call"}`, invalid},
		{"missing jsonrpc is rejected", `{"id":1,"method":"m"}`, invalid},
		{"jsonrpc 1.0 is rejected", `{"jsonrpc":"1.0","id":1,"method":"m"}`, invalid},
		{"jsonrpc as a number is rejected", `{"jsonrpc":2.0,"id":1,"method":"m"}`, invalid},
		{"method as a number is rejected", `{"jsonrpc":"2.0","id":1,"method":1}`, invalid},
		{"method null is rejected", `{"jsonrpc":"2.0","id":1,"method":null}`, invalid},
		{"fractional id is rejected", `{"jsonrpc":"2.0","id":1.5,"method":"m"}`, invalid},
		{"id 1.0 is rejected", `{"jsonrpc":"2.0","id":1.0,"method":"m"}`, invalid},
		{"exponent id is rejected", `{"jsonrpc":"2.0","id":1e3,"method":"m"}`, invalid},
		{"object id is rejected", `{"jsonrpc":"2.0","id":{},"method":"m"}`, invalid},
		{"array id is rejected", `{"jsonrpc":"2.0","id":[1],"method":"m"}`, invalid},
		{"boolean id is rejected", `{"jsonrpc":"2.0","id":true,"method":"m"}`, invalid},
		{"request with null id is rejected", `{"jsonrpc":"2.0","id":null,"method":"m"}`, invalid},
		{"string params is rejected", `{"jsonrpc":"2.0","id":1,"method":"m","params":"x"}`, invalid},
		{"null params is rejected", `{"jsonrpc":"2.0","id":1,"method":"m","params":null}`, invalid},
		{"request with a result is rejected", `{"jsonrpc":"2.0","id":1,"method":"m","result":{}}`, invalid},
		{"notification with an error is rejected", `{"jsonrpc":"2.0","method":"m","error":{"code":1,"message":"x"}}`, invalid},
		{"message with neither method nor id is rejected", `{"jsonrpc":"2.0","result":{}}`, invalid},
		{"response with result and error is rejected", `{"jsonrpc":"2.0","id":1,"result":{},"error":{"code":1,"message":"x"}}`, invalid},
		{"response with neither result nor error is rejected", `{"jsonrpc":"2.0","id":1}`, invalid},
		{"response with params is rejected", `{"jsonrpc":"2.0","id":1,"result":{},"params":{}}`, invalid},
		{"result with a null id is rejected", `{"jsonrpc":"2.0","id":null,"result":{}}`, invalid},
		{"error that is not an object is rejected", `{"jsonrpc":"2.0","id":1,"error":"boom"}`, invalid},
		{"error without a code is rejected", `{"jsonrpc":"2.0","id":1,"error":{"message":"x"}}`, invalid},
		{"error with a fractional code is rejected", `{"jsonrpc":"2.0","id":1,"error":{"code":1.5,"message":"x"}}`, invalid},
		{"error without a message is rejected", `{"jsonrpc":"2.0","id":1,"error":{"code":1}}`, invalid},
		{"error with a non-string message is rejected", `{"jsonrpc":"2.0","id":1,"error":{"code":1,"message":2}}`, invalid},
		{"nesting deeper than 1000 is rejected with -32600", pre + strings.Repeat("[", 1000) + strings.Repeat("]", 1000) + `}`, invalid},
		{"deep and malformed nesting is a parse error", pre + strings.Repeat(`[{"a":`, 2000) + `1` + strings.Repeat(`}]`, 1999) + `}`, parse},
		{"carriage return between tokens is rejected", `{"jsonrpc":"2.0",` + "\r" + `"id":1,"method":"m"}`, invalid},
		{"line feed between tokens is rejected", `{"jsonrpc":"2.0",` + "\n" + `"id":1,"method":"m"}`, invalid},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m, err := Decode([]byte(tt.line))
			if err == nil {
				t.Fatalf("Decode accepted %q as %+v", tt.line, m)
			}
			var e *Error
			if !errors.As(err, &e) {
				t.Fatalf("error %v is a %T, want *Error", err, err)
			}
			if e.Code != tt.code {
				t.Errorf("Code = %d, want %d (%v)", e.Code, tt.code, err)
			}
			if e.Message != aip.Message(tt.code) {
				t.Errorf("Message = %q, want %q", e.Message, aip.Message(tt.code))
			}
			if !strings.HasPrefix(err.Error(), "jsonrpc: ") {
				t.Errorf("Error() = %q, want the jsonrpc: prefix", err)
			}
		})
	}
}

func TestDecodeErrorID(t *testing.T) {
	tests := []struct {
		name string
		line string
		id   string // "" for nil
	}{
		{"invalid request echoes a number id", `{"jsonrpc":"2.0","id":123,"method":"m","extra":1}`, `123`},
		{"invalid request echoes a string id", `{"jsonrpc":"2.0","id":"abc-123","method":1}`, `"abc-123"`},
		{"id after a shadowed key is still echoed", `{"jsonrpc":"2.0","method":"tools/call","params":{"name":"a","Name":"b"},"id":7}`, `7`},
		{"id is echoed when only the envelope is wrong", `{"jsonrpc":"1.0","id":"x","method":"m"}`, `"x"`},
		{"duplicated id is not echoed", `{"jsonrpc":"2.0","id":1,"id":2,"method":"m"}`, ``},
		{"case-variant id is not echoed", `{"jsonrpc":"2.0","id":1,"ID":2,"method":"m"}`, ``},
		{"fractional id is not echoed", `{"jsonrpc":"2.0","id":1.5,"method":"m"}`, ``},
		{"object id is not echoed", `{"jsonrpc":"2.0","id":{"a":1},"method":"m"}`, ``},
		{"null id is not echoed", `{"jsonrpc":"2.0","id":null,"method":"m"}`, ``},
		{"parse error never echoes an id", `{"jsonrpc":"2.0","id":5,"method":"m","params":[NaN]}`, ``},
		{"batch does not echo an inner id", `[{"jsonrpc":"2.0","id":5,"method":"m"}]`, ``},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Decode([]byte(tt.line))
			var e *Error
			if !errors.As(err, &e) {
				t.Fatalf("Decode error = %v, want *Error", err)
			}
			if string(e.ID) != tt.id || tt.id == "" && e.ID != nil {
				t.Errorf("ID = %q, want %q", e.ID, tt.id)
			}
		})
	}
}

func TestDecodeErrorResponseEchoesID(t *testing.T) {
	_, err := Decode([]byte(`{"jsonrpc":"2.0","id":"abc-123","method":"tools/call","params":{"name":"a","NAME":"b"}}`))
	got := string(err.(*Error).Response())
	want := `{"jsonrpc":"2.0","id":"abc-123","error":{"code":-32600,"message":"Invalid Request","data":{"reason":"duplicate key (keys must differ in more than letter case) at offset 75"}}}` + "\n"
	if got != want {
		t.Errorf("Response() =\n%s\nwant\n%s", got, want)
	}
}

// What the strict scanner finds is its own message, wrapped: the client
// gets the message without the name of the scanner's package, a log gets
// it under jsonrpc's prefix, and the scanner's error is the cause.
func TestScannerErrorsAreWrappedNotRetold(t *testing.T) {
	for _, tt := range []struct {
		name string
		run  func() error
		want string
	}{
		{"Decode, syntax", func() error { _, err := Decode([]byte(`{"jsonrpc":"2.0","id":1,"method":"m"`)); return err },
			"jsonrpc: parse error (-32700): unexpected end of input at offset 36"},
		{"Decode, refusal", func() error {
			_, err := Decode([]byte(`{"jsonrpc":"2.0","id":1,"method":"m","params":{"a":1,"A":2}}`))
			return err
		},
			"jsonrpc: invalid request (-32600): duplicate key (keys must differ in more than letter case) at offset 53"},
		{"CheckStrict", func() error { return CheckStrict([]byte(`{"s":"\ud800"}`)) },
			"jsonrpc: parse error (-32700): unpaired surrogate escape in a string at offset 6"},
		{"ParseToolCall", func() error { _, err := ParseToolCall([]byte(`{"name":"a","arguments":{"x":01}}`)); return err },
			"jsonrpc: invalid params (-32602): expected ',' or '}' at offset 30"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.run()
			var se *strictjson.Error
			if !errors.As(err, &se) {
				t.Fatalf("error %v does not wrap a *strictjson.Error", err)
			}
			if err.Error() != tt.want {
				t.Errorf("Error() = %q, want %q", err, tt.want)
			}
			if reason := err.(*Error).Data.(map[string]string)["reason"]; reason != se.Message() {
				t.Errorf("data.reason = %q, want the scanner's message %q", reason, se.Message())
			}
		})
	}
}

func TestDecodeFieldsDoNotAliasBeyondTheirSpan(t *testing.T) {
	line := []byte(toolCall)
	m, err := Decode(line)
	if err != nil {
		t.Fatal(err)
	}
	_ = append(m.ID, "junk"...)
	_ = append(m.Params, "junk"...)
	if string(line) != toolCall {
		t.Errorf("appending to a field modified the line: %s", line)
	}
}

// TestDecodeDecidesHugeInputs decodes inputs on which only a linear decoder
// finishes in reasonable time: the duplicate check switches to a map beyond
// mapThreshold keys and nesting beyond maxDepth is skipped without recursion.
// A quadratic check would be orders of magnitude slower here and unbounded
// recursion would overflow the stack; the time itself is not measured, as a
// wall-clock bound flakes on a loaded machine (speed is for the benchmarks).
func TestDecodeDecidesHugeInputs(t *testing.T) {
	var b strings.Builder
	b.WriteString(`{"jsonrpc":"2.0","id":1,"method":"m","params":{`)
	for i := range 100_000 {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(`"k`)
		b.WriteString(strings.Repeat("x", i%7))
		b.WriteString(strconv.Itoa(i))
		b.WriteString(`":0`)
	}
	wide := b.String() + `}}`
	wideDup := b.String() + `,"K0":1}}`
	deep := `{"jsonrpc":"2.0","id":1,"method":"m","params":` + strings.Repeat("[", 1_000_000) + strings.Repeat("]", 1_000_000) + `}`
	deepOpen := `{"jsonrpc":"2.0","id":1,"method":"m","params":` + strings.Repeat(`{"a":[`, 1_000_000)

	tests := []struct {
		name string
		line string
		code int
	}{
		{"object with 100k distinct keys is accepted", wide, 0},
		{"case variant as the 100001st key is rejected", wideDup, aip.CodeInvalidRequest},
		{"a million nested arrays are rejected without overflowing the stack", deep, aip.CodeInvalidRequest},
		{"a million unclosed containers are a parse error", deepOpen, aip.CodeParseError},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Decode([]byte(tt.line))
			code := 0
			if err != nil {
				code = err.(*Error).Code
			}
			if code != tt.code {
				t.Errorf("code = %d, want %d (%v)", code, tt.code, err)
			}
		})
	}
}
