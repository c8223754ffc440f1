package jsonrpc

import (
	"bytes"
	"encoding/json"
	"strconv"
	"strings"
	"sync"

	"github.com/agentid/agentid/internal/jsonstr"
)

// JSON-RPC 2.0 error codes, and the AIP error codes of AIP v1alpha2 §7.
// -32003 is deliberately absent: v1alpha2 leaves it unassigned and older
// documents gave it three different meanings.
const (
	CodeParseError     = -32700
	CodeInvalidRequest = -32600
	CodeMethodNotFound = -32601
	CodeInvalidParams  = -32602
	CodeInternalError  = -32603

	CodeForbidden              = -32001
	CodeRateLimited            = -32002
	CodeUserDenied             = -32004
	CodeUserTimeout            = -32005
	CodeMethodNotAllowed       = -32006
	CodeProtectedPath          = -32007
	CodeTokenRequired          = -32008
	CodeTokenInvalid           = -32009
	CodePolicySignatureInvalid = -32010
	CodeTokenRevoked           = -32011
	CodeAudienceMismatch       = -32012
	CodeSchemaMismatch         = -32013
	CodeDLPRedactionFailed     = -32014
)

// CodeMessage returns the exact error message that JSON-RPC 2.0 or AIP
// prescribes for code. Other codes in the JSON-RPC server-error range
// -32099..-32000 get "Server error"; any other code gets "Unknown error".
func CodeMessage(code int) string {
	switch code {
	case CodeParseError:
		return "Parse error"
	case CodeInvalidRequest:
		return "Invalid Request"
	case CodeMethodNotFound:
		return "Method not found"
	case CodeInvalidParams:
		return "Invalid params"
	case CodeInternalError:
		return "Internal error"
	case CodeForbidden:
		return "Forbidden"
	case CodeRateLimited:
		return "Rate limit exceeded"
	case CodeUserDenied:
		return "User denied"
	case CodeUserTimeout:
		return "User approval timeout"
	case CodeMethodNotAllowed:
		return "Method not allowed"
	case CodeProtectedPath:
		return "Access denied: protected path"
	case CodeTokenRequired:
		return "Token required"
	case CodeTokenInvalid:
		return "Token invalid"
	case CodePolicySignatureInvalid:
		return "Policy signature invalid"
	case CodeTokenRevoked:
		return "Token revoked"
	case CodeAudienceMismatch:
		return "Audience mismatch"
	case CodeSchemaMismatch:
		return "Schema mismatch"
	case CodeDLPRedactionFailed:
		return "DLP redaction failed"
	}
	if -32099 <= code && code <= -32000 {
		return "Server error"
	}
	return "Unknown error"
}

// Error is a JSON-RPC error together with the id of the message it answers.
// Decode, CheckStrict and ParseToolCall return it so that the caller can
// answer with e.Response() without interpreting the failure.
type Error struct {
	Code    int
	Message string
	Data    any             // the error's data member; nil omits it
	ID      json.RawMessage // id to echo; nil answers with "id":null

	reason string // why, for Error() and logs
}

// newError returns an *Error for code whose data tells the client why.
func newError(code int, reason string) *Error {
	return &Error{
		Code:    code,
		Message: CodeMessage(code),
		Data:    map[string]string{"reason": reason},
		reason:  reason,
	}
}

// Error returns a description for logs, e.g.
// "jsonrpc: invalid request (-32600): duplicate key "Name" ... at offset 40".
func (e *Error) Error() string {
	s := "jsonrpc: " + strings.ToLower(e.Message) + " (" + strconv.Itoa(e.Code) + ")"
	if e.reason != "" {
		s += ": " + e.reason
	}
	return s
}

// Response returns the error response line for e, including the trailing
// newline.
func (e *Error) Response() []byte {
	return ErrorResponse(e.ID, e.Code, e.Message, e.Data)
}

// AIPError returns the error response line for code with the message that
// CodeMessage prescribes for it.
func AIPError(id json.RawMessage, code int, data any) []byte {
	return ErrorResponse(id, code, CodeMessage(code), data)
}

// ErrorResponse returns one complete error response line, including the
// trailing newline:
//
//	{"jsonrpc":"2.0","id":ID,"error":{"code":CODE,"message":MESSAGE,"data":DATA}}
//
// The id is copied byte for byte, so a client gets back exactly the id it
// sent (123 stays a number, "123" stays a string); an empty id, or one that
// is not a JSON string, integer or null, is written as null. Data is encoded
// with encoding/json (map keys sorted) without HTML escaping, and "data" is
// omitted when data is nil or cannot be encoded: the error itself must
// always reach the client.
func ErrorResponse(id json.RawMessage, code int, message string, data any) []byte {
	var enc *dataEncoder
	var d []byte
	if data != nil {
		enc = dataEncoders.Get().(*dataEncoder)
		defer dataEncoders.Put(enc)
		d = enc.encode(data)
	}
	b := make([]byte, 0, 80+len(id)+len(message)+len(d))
	b = append(b, `{"jsonrpc":"2.0","id":`...)
	if validID(id) {
		b = append(b, id...)
	} else {
		b = append(b, "null"...)
	}
	b = append(b, `,"error":{"code":`...)
	b = strconv.AppendInt(b, int64(code), 10)
	b = append(b, `,"message":`...)
	b = appendQuoted(b, message)
	if d != nil {
		b = append(b, `,"data":`...)
		b = append(b, d...)
	}
	return append(b, "}}\n"...)
}

// validID reports whether id may be echoed: a JSON string, an integer or null
// that passes the strict rules, with no surrounding whitespace.
func validID(id []byte) bool {
	if len(id) == 0 {
		return false
	}
	if string(id) == "null" {
		return true
	}
	s := getScanner(id, false)
	defer putScanner(s)
	switch c := id[0]; {
	case c == '"':
		_, err := s.str()
		return err == nil && s.pos == len(id)
	case c == '-' || '0' <= c && c <= '9':
		isInt, err := s.number()
		return err == nil && isInt && s.pos == len(id)
	}
	return false
}

// dataEncoder is an encoding/json Encoder bound to its own buffer, pooled
// so that an error response costs no Encoder allocation.
type dataEncoder struct {
	buf bytes.Buffer
	enc *json.Encoder
}

var dataEncoders = sync.Pool{New: func() any {
	e := new(dataEncoder)
	e.enc = json.NewEncoder(&e.buf)
	e.enc.SetEscapeHTML(false)
	return e
}}

// encode returns the JSON encoding of data, valid until the next call, or
// nil if it cannot be encoded.
func (e *dataEncoder) encode(data any) []byte {
	e.buf.Reset()
	if err := e.enc.Encode(data); err != nil {
		return nil
	}
	return bytes.TrimSuffix(e.buf.Bytes(), []byte("\n"))
}

// appendQuoted appends s as a JSON string, as encoding/json writes it
// without HTML escaping, except that it never needs to fail: invalid UTF-8
// becomes U+FFFD. U+2028 and U+2029 are escaped because JavaScript source
// treats them as line terminators.
func appendQuoted(b []byte, s string) []byte {
	return jsonstr.Append(b, s, jsonstr.EscapeJS)
}
