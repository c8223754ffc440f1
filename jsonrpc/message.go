package jsonrpc

import (
	"bytes"
	"encoding/json"

	"github.com/agentid/agentid/aip"
)

// Kind is the kind of a JSON-RPC message.
type Kind uint8

const (
	KindRequest      Kind = iota + 1 // has a method and an id
	KindNotification                 // has a method and no id
	KindResponse                     // has an id and a result or an error, no method
)

func (k Kind) String() string {
	switch k {
	case KindRequest:
		return "request"
	case KindNotification:
		return "notification"
	case KindResponse:
		return "response"
	}
	return "invalid"
}

// Message is a strictly decoded JSON-RPC 2.0 message. The json.RawMessage
// fields are sub-slices of Raw, with their capacity capped so that appending
// to one cannot overwrite the line; none is modified by this package.
type Message struct {
	Raw    []byte // the line exactly as given to Decode
	Kind   Kind
	ID     json.RawMessage // the id exactly as sent: a string, an integer, or null in an error response; nil for notifications
	Method string          // the method as sent (unescaped, not normalized); "" for responses
	Params json.RawMessage // an object or an array; nil if absent
	Result json.RawMessage // responses only; nil if absent
	Error  json.RawMessage // responses only; an object with an integer code and a string message; nil if absent
}

// Decode strictly validates one line and returns the message it holds. The
// Message refers to line, which must not be modified while it is in use.
//
// On failure the error is an *Error with the code to answer with:
// aip.CodeParseError when line is not RFC 8259 JSON in UTF-8, and
// aip.CodeInvalidRequest when it is JSON but not a single, unambiguous JSON-RPC
// 2.0 message (see the package documentation). When the id can be recovered
// unambiguously from an invalid request, Error.ID carries it so that the
// answer reaches the right caller; for parse errors it is always nil, as
// JSON-RPC 2.0 requires.
func Decode(line []byte) (*Message, error) {
	s := getScanner(line, true)
	defer putScanner(s)
	if err := s.document(); err != nil {
		return nil, err
	}

	start := 0
	for start < len(line) && isSpace(line[start]) {
		start++
	}
	switch line[start] {
	case '{':
	case '[':
		// Batches were removed in MCP 2025-06, and a policy proxy that looks
		// only at single messages would wave their contents through.
		return nil, newError(aip.CodeInvalidRequest, "batch requests are not supported")
	default:
		return nil, newError(aip.CodeInvalidRequest, "message is not a JSON object")
	}
	if i := lineBreak(line); i >= 0 {
		// Only possible as whitespace between tokens. Python's text-mode
		// stdin and Node's readline end lines at a bare CR as well, so the
		// server would read a different framing than the proxy did.
		s.markInvalid("line break inside the line", i)
	}

	var jsonrpc, id, method, params, result, errv []byte
	for _, m := range s.members {
		v := line[m.val.start:m.val.end:m.val.end]
		switch string(s.memberName(m)) {
		case "jsonrpc":
			jsonrpc = v
		case "id":
			id = v
		case "method":
			method = v
		case "params":
			params = v
		case "result":
			result = v
		case "error":
			errv = v
		default:
			s.markInvalid("unknown member "+quoteShort(line[m.key.start+1:m.key.end-1]), m.key.start)
		}
	}

	// Echo the id in an Invalid Request answer only if it is certain.
	var echo json.RawMessage
	if id != nil && !s.idDup && (id[0] == '"' || isInteger(id)) {
		echo = id
	}
	fail := func(reason string) (*Message, error) {
		e := newError(aip.CodeInvalidRequest, reason)
		e.ID = echo
		return nil, e
	}
	if s.invalid != "" {
		e := s.invalidError()
		e.ID = echo
		return nil, e
	}

	switch {
	case jsonrpc == nil:
		return fail(`missing "jsonrpc" member`)
	case string(jsonrpc) != `"2.0"`:
		return fail(`"jsonrpc" must be "2.0"`)
	case method != nil && method[0] != '"':
		return fail(`"method" must be a string`)
	case id != nil && id[0] != '"' && id[0] != 'n' && !isInteger(id):
		return fail(`"id" must be a string or an integer`)
	case params != nil && params[0] != '{' && params[0] != '[':
		return fail(`"params" must be an object or an array`)
	}

	msg := &Message{Raw: line[:len(line):len(line)], ID: id, Params: params}
	if method != nil {
		switch {
		case result != nil || errv != nil:
			return fail(`a request must not have "result" or "error"`)
		case id == nil:
			msg.Kind = KindNotification
		case id[0] == 'n':
			return fail(`a request id must not be null`)
		default:
			msg.Kind = KindRequest
		}
		msg.Method = methodString(unquote(method, s))
		return msg, nil
	}

	switch {
	case id == nil:
		return fail(`a message needs a "method" or an "id"`)
	case params != nil:
		return fail(`a response must not have "params"`)
	case (result == nil) == (errv == nil):
		return fail(`a response needs exactly one of "result" and "error"`)
	case result != nil && id[0] == 'n':
		// JSON-RPC 2.0 allows a null id only when the request's id could
		// not be determined, which can only be an error.
		return fail(`a result must not have a null id`)
	case errv != nil:
		if reason := checkErrorObject(errv); reason != "" {
			return fail(reason)
		}
	}
	msg.Kind = KindResponse
	msg.Result, msg.Error = result, errv
	return msg, nil
}

// checkErrorObject checks the "error" member of a response, which is already
// known to be strictly valid JSON.
func checkErrorObject(v []byte) string {
	if v[0] != '{' {
		return `"error" must be an object`
	}
	s := getScanner(v, true)
	defer putScanner(s)
	s.document()
	var code, message []byte
	for _, m := range s.members {
		switch string(s.memberName(m)) {
		case "code":
			code = v[m.val.start:m.val.end]
		case "message":
			message = v[m.val.start:m.val.end]
		}
	}
	if code == nil || !isInteger(code) {
		return `"error" needs an integer "code"`
	}
	if message == nil || message[0] != '"' {
		return `"error" needs a string "message"`
	}
	return ""
}

// ToolCall is the params of a tools/call request.
type ToolCall struct {
	Name      string          // params.name as sent (unescaped, not normalized)
	Arguments json.RawMessage // params.arguments, an object; nil when absent
	Meta      json.RawMessage // params._meta, an object; nil when absent
}

// ParseToolCall parses the params of a tools/call request with the same
// strict rules as Decode. Params must be an object with a string "name";
// "arguments" and "_meta", if present, must be objects ("arguments": null
// counts as absent). Other members are allowed, as MCP may add them. The
// json.RawMessage fields refer to params.
//
// On failure the error is an *Error with code aip.CodeInvalidParams and no ID.
func ParseToolCall(params json.RawMessage) (ToolCall, error) {
	s := getScanner(params, true)
	defer putScanner(s)
	if err := s.document(); err != nil {
		return ToolCall{}, newError(aip.CodeInvalidParams, err.reason)
	}
	if s.invalid != "" {
		return ToolCall{}, newError(aip.CodeInvalidParams, s.invalidError().reason)
	}
	start := 0
	for isSpace(params[start]) {
		start++
	}
	if params[start] != '{' {
		return ToolCall{}, newError(aip.CodeInvalidParams, "tools/call params must be an object")
	}
	var tc ToolCall
	var name []byte
	for _, m := range s.members {
		v := params[m.val.start:m.val.end:m.val.end]
		switch string(s.memberName(m)) {
		case "name":
			if v[0] != '"' {
				return ToolCall{}, newError(aip.CodeInvalidParams, `"name" must be a string`)
			}
			name = v
		case "arguments":
			if v[0] == 'n' {
				// null is how some SDKs send "no arguments" (the Go MCP
				// SDK does); it means the same as an absent member.
				continue
			}
			if v[0] != '{' {
				return ToolCall{}, newError(aip.CodeInvalidParams, `"arguments" must be an object`)
			}
			tc.Arguments = v
		case "_meta":
			if v[0] != '{' {
				return ToolCall{}, newError(aip.CodeInvalidParams, `"_meta" must be an object`)
			}
			tc.Meta = v
		}
	}
	if name == nil {
		return ToolCall{}, newError(aip.CodeInvalidParams, `missing "name"`)
	}
	tc.Name = string(unquote(name, s))
	return tc, nil
}

// memberName returns the unescaped name of m. The result may live in the
// scanner's scratch buffer and is valid until the next call.
func (s *scanner) memberName(m member) []byte {
	raw := s.data[m.key.start+1 : m.key.end-1]
	if !m.escaped {
		return raw
	}
	s.buf = appendUnescaped(s.buf[:0], raw)
	return s.buf
}

// unquote returns the value of the valid JSON string v. The result may live
// in the scanner's scratch buffer.
func unquote(v []byte, s *scanner) []byte {
	body := v[1 : len(v)-1]
	if bytes.IndexByte(body, '\\') < 0 {
		return body
	}
	s.buf = appendUnescaped(s.buf[:0], body)
	return s.buf
}

// methodString returns b as a string, without allocating for the methods
// that make up nearly all MCP traffic.
func methodString(b []byte) string {
	switch string(b) {
	case "tools/call":
		return "tools/call"
	case "tools/list":
		return "tools/list"
	case "ping":
		return "ping"
	case "initialize":
		return "initialize"
	case "notifications/initialized":
		return "notifications/initialized"
	case "notifications/cancelled":
		return "notifications/cancelled"
	case "notifications/progress":
		return "notifications/progress"
	case "resources/read":
		return "resources/read"
	case "resources/list":
		return "resources/list"
	case "prompts/get":
		return "prompts/get"
	case "prompts/list":
		return "prompts/list"
	}
	return string(b)
}

// lineBreak returns the index of the first CR or LF in b, or -1.
// Two IndexByte calls are several times faster than IndexAny.
func lineBreak(b []byte) int {
	i := bytes.IndexByte(b, '\n')
	if j := bytes.IndexByte(b, '\r'); j >= 0 && (i < 0 || j < i) {
		i = j
	}
	return i
}

// isInteger reports whether the valid JSON value v is a number without a
// fraction or an exponent.
func isInteger(v []byte) bool {
	if v[0] != '-' && (v[0] < '0' || v[0] > '9') {
		return false
	}
	for _, c := range v {
		if c == '.' || c == 'e' || c == 'E' {
			return false
		}
	}
	return true
}

func isSpace(c byte) bool {
	return c == ' ' || c == '\t' || c == '\n' || c == '\r'
}
