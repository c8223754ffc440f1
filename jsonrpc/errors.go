package jsonrpc

import (
	"bytes"
	"encoding/json"
	"strconv"
	"strings"
	"sync"

	"github.com/agentid/agentid/aip"
	"github.com/agentid/agentid/internal/jsonstr"
	"github.com/agentid/agentid/internal/strictjson"
)

// Error is a JSON-RPC error together with the id of the message it answers.
// Decode, CheckStrict and ParseToolCall return it so that the caller can
// answer with e.Response() without interpreting the failure.
type Error struct {
	Code    int
	Message string
	Data    any             // the error's data member; nil omits it
	ID      json.RawMessage // id to echo; nil answers with "id":null

	reason string // why, for Error() and logs
	cause  error  // what found it, if another package did
}

// newError returns an *Error for code whose data tells the client why.
func newError(code int, reason string) *Error {
	return &Error{
		Code:    code,
		Message: aip.Message(code),
		Data:    map[string]string{"reason": reason},
		reason:  reason,
	}
}

// withCause sets e's cause, for Unwrap.
func withCause(e *Error, cause error) *Error {
	e.cause = cause
	return e
}

// Unwrap returns the error that the reason comes from, if any: the strict
// scanner's *strictjson.Error for a message that is not strict JSON.
func (e *Error) Unwrap() error { return e.cause }

// Error returns a description for logs, e.g. "jsonrpc: invalid request
// (-32600): duplicate key (keys must differ in more than letter case) at
// offset 40".
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
// aip.Message prescribes for it.
func AIPError(id json.RawMessage, code int, data any) []byte {
	return ErrorResponse(id, code, aip.Message(code), data)
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
	s := strictjson.NewScanner(profile, id)
	defer s.Release()
	tok, err := s.Next()
	return err == nil && tok.Start == 0 && tok.End == len(id) && (tok.Kind == strictjson.String || tok.Integer())
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
