package jsonrpc

import (
	"bytes"
	"encoding/json"
	"strconv"

	"github.com/agentid/agentid/aip"
	"github.com/agentid/agentid/internal/jsonstr"
	"github.com/agentid/agentid/internal/strictjson"
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

	// call is what Decode read of params while validating it, for ToolCall.
	call callScan
}

// callScan is where the members of an object params that a tools/call
// needs are, as Decode found them while validating the line: spans of Raw,
// so that a Message stays small and holds no more pointers.
type callScan struct {
	params, name, args, meta span // name, args and meta are empty when absent
	nameEscaped              bool
	scanned                  bool
}

// span is a half-open byte range [start, end) of a message.
type span struct{ start, end int32 }

func (sp span) of(b []byte) []byte {
	if sp.end == 0 {
		return nil
	}
	return b[sp.start:sp.end:sp.end]
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
	s := strictjson.NewScanner(profile, line)
	defer s.Release()
	first, err := s.Next()
	if err != nil {
		return nil, scanError(err)
	}
	if first.Kind != strictjson.Object {
		if err := s.Finish(); err != nil && err.(*strictjson.Error).Syntax() {
			return nil, scanError(err)
		}
		if first.Kind == strictjson.Array {
			// Batches were removed in MCP 2025-06, and a policy proxy that
			// looks only at single messages would wave their contents
			// through.
			return nil, newError(aip.CodeInvalidRequest, "batch requests are not supported")
		}
		return nil, newError(aip.CodeInvalidRequest, "message is not a JSON object")
	}

	var jsonrpc, id, method, params, result, errv []byte
	var methodTok strictjson.Token
	var call callScan
	unknown := ""
	ids := 0
	for {
		key, err := s.Next()
		if err != nil {
			return nil, scanError(err)
		}
		if key.Kind != strictjson.Key {
			break
		}
		k := s.Text(key)
		if len(k) <= 4 && strictjson.EqualFold(k, []byte("id")) {
			ids++
		}
		var field *[]byte
		switch string(k) {
		case "jsonrpc":
			field = &jsonrpc
		case "id":
			field = &id
		case "method":
			field = &method
		case "params":
			field = &params
		case "result":
			field = &result
		case "error":
			field = &errv
		default:
			if unknown == "" {
				unknown = "unknown member " + quoteShort(line[key.Start+1:key.End-1]) + " at offset " + strconv.Itoa(key.Start)
			}
		}
		var val strictjson.Token
		if field == &params {
			val, err = scanParams(s, &call)
		} else {
			val, err = s.Skip()
		}
		if err != nil {
			return nil, scanError(err)
		}
		if field != nil {
			*field = line[val.Start:val.End:val.End]
		}
		if field == &method {
			methodTok = val
		}
	}
	if err := s.Finish(); err != nil && err.(*strictjson.Error).Syntax() {
		return nil, scanError(err)
	}

	// The first structural problem wins: one the scanner found, a line
	// break, an unknown member.
	invalid := ""
	var cause error // the scanner's refusal, when that is the problem
	if r := s.Refusal(); r != nil {
		invalid, cause = r.Message(), r
	} else if i := lineBreak(line); i >= 0 {
		// Only possible as whitespace between tokens. Python's text-mode
		// stdin and Node's readline end lines at a bare CR as well, so the
		// server would read a different framing than the proxy did.
		invalid = "line break inside the line at offset " + strconv.Itoa(i)
	} else {
		invalid = unknown
	}

	// Echo the id in an Invalid Request answer only if it is certain.
	var echo json.RawMessage
	if id != nil && ids == 1 && (id[0] == '"' || isInteger(id)) {
		echo = id
	}
	fail := func(reason string) (*Message, error) {
		e := withCause(newError(aip.CodeInvalidRequest, reason), cause)
		e.ID = echo
		return nil, e
	}
	if invalid != "" {
		return fail(invalid)
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
		msg.Method = methodString(s.Text(methodTok))
		msg.call = call
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

// scanParams reads the value of the params member: when it is an object,
// member by member, noting those a tools/call needs, in the same pass that
// validates it; otherwise whole.
func scanParams(s *strictjson.Scanner, call *callScan) (strictjson.Token, error) {
	d := s.Data()
	i := s.Offset()
	for i < len(d) && isSpace(d[i]) {
		i++
	}
	if i >= len(d) || d[i] != '{' {
		return s.Skip()
	}
	open, err := s.Next()
	if err != nil {
		return open, err
	}
	for {
		key, val, ok, err := s.Member()
		if err != nil {
			return val, err
		}
		if !ok {
			break
		}
		sp := span{int32(val.Start), int32(val.End)}
		switch string(s.Text(key)) {
		case "name":
			call.name, call.nameEscaped = sp, val.Escaped()
		case "arguments":
			call.args = sp
		case "_meta":
			call.meta = sp
		}
	}
	call.params, call.scanned = span{int32(open.Start), int32(s.Offset())}, true
	return strictjson.Token{Kind: strictjson.Object, Start: open.Start, End: s.Offset()}, nil
}

// checkErrorObject checks the "error" member of a response, which is already
// known to be strictly valid JSON.
func checkErrorObject(v []byte) string {
	if v[0] != '{' {
		return `"error" must be an object`
	}
	s := strictjson.NewScanner(strictjson.Syntax, v)
	defer s.Release()
	s.Next()
	var code, message []byte
	for {
		key, val, ok, err := s.Member()
		if err != nil || !ok {
			break
		}
		switch string(s.Text(key)) {
		case "code":
			code = v[val.Start:val.End]
		case "message":
			message = v[val.Start:val.End]
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
	s := strictjson.NewScanner(profile, params)
	defer s.Release()
	var call callScan
	_, err := scanParams(s, &call)
	if err == nil {
		err = s.Finish()
	}
	if err != nil {
		return ToolCall{}, withCause(newError(aip.CodeInvalidParams, err.(*strictjson.Error).Message()), err)
	}
	if !call.scanned {
		return ToolCall{}, newError(aip.CodeInvalidParams, "tools/call params must be an object")
	}
	return call.toolCall(params)
}

// ToolCall returns ParseToolCall(m.Params) without reading the params
// again: Decode noted the members a tools/call needs while it validated
// them. A Message whose Params were replaced after Decode is parsed anew.
func (m *Message) ToolCall() (ToolCall, error) {
	c := &m.call
	if !c.scanned || int(c.params.end) > len(m.Raw) || len(m.Params) == 0 ||
		&m.Params[0] != &m.Raw[c.params.start] || len(m.Params) != int(c.params.end-c.params.start) {
		return ParseToolCall(m.Params)
	}
	return c.toolCall(m.Raw)
}

// toolCall checks the members found in data.
func (c *callScan) toolCall(data []byte) (ToolCall, error) {
	var tc ToolCall
	if args := c.args.of(data); args != nil {
		switch args[0] {
		case 'n':
			// null is how some SDKs send "no arguments" (the Go MCP SDK
			// does); it means the same as an absent member.
		case '{':
			tc.Arguments = args
		default:
			return ToolCall{}, newError(aip.CodeInvalidParams, `"arguments" must be an object`)
		}
	}
	if meta := c.meta.of(data); meta != nil {
		if meta[0] != '{' {
			return ToolCall{}, newError(aip.CodeInvalidParams, `"_meta" must be an object`)
		}
		tc.Meta = meta
	}
	name := c.name.of(data)
	switch {
	case name == nil:
		return ToolCall{}, newError(aip.CodeInvalidParams, `missing "name"`)
	case name[0] != '"':
		return ToolCall{}, newError(aip.CodeInvalidParams, `"name" must be a string`)
	}
	body := name[1 : len(name)-1]
	if c.nameEscaped {
		tc.Name = string(jsonstr.AppendUnescaped(make([]byte, 0, len(body)), body))
	} else {
		tc.Name = string(body)
	}
	return tc, nil
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
