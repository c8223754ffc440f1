package jsonrpc

import (
	"strconv"
	"unicode/utf8"

	"github.com/agentid/agentid/aip"
	"github.com/agentid/agentid/internal/jsonstr"
	"github.com/agentid/agentid/internal/strictjson"
)

// profile is the rule set of every message and message part: strict
// UTF-8, no duplicate or case-variant keys at any depth, at most 1000
// levels of nesting (strictjson.MCP documents why).
var profile = strictjson.MCP

// CheckStrict reports whether data is a single JSON value that every common
// parser reads the same way. It applies the rules of Decode that do not
// concern the JSON-RPC envelope: RFC 8259 syntax with valid UTF-8 and no lone
// surrogates, no duplicate or case-variant keys in any object, and at most
// 1000 levels of nesting. Surrounding JSON whitespace is allowed.
//
// The error, if any, is an *Error whose Code is aip.CodeParseError for syntax
// errors and aip.CodeInvalidRequest for valid JSON that breaks the stricter rules.
func CheckStrict(data []byte) error {
	if err := strictjson.Validate(profile, data); err != nil {
		return scanError(err)
	}
	return nil
}

// scanError turns an error of the strict scanner into the *Error to answer
// with: a parse error for a syntax error, an invalid request for valid JSON
// the profile refuses. The reason sent to the client is the scanner's own
// message, without the name of a package the client does not know; the
// scanner's *strictjson.Error is the cause.
func scanError(err error) *Error {
	e := err.(*strictjson.Error)
	code := aip.CodeParseError
	if !e.Syntax() {
		code = aip.CodeInvalidRequest
	}
	return withCause(newError(code, e.Message()), e)
}

// quoteShort quotes raw key bytes for an error message, cut to a sane length.
func quoteShort(b []byte) string {
	const max = 64
	if len(b) > max {
		n := max
		for n > 0 && !utf8.RuneStart(b[n]) {
			n--
		}
		return strconv.Quote(string(b[:n])) + "..."
	}
	return strconv.Quote(string(b))
}

// name returns the unescaped name of a key token. The result may live in
// the scanner's buffer and is valid until the next call.
func name(s *strictjson.Scanner, key strictjson.Token) []byte {
	return s.Text(key)
}

// appendUnescaped appends the decoded form of the body of a valid JSON string.
func appendUnescaped(dst, b []byte) []byte {
	return jsonstr.AppendUnescaped(dst, b)
}

// appendFoldASCII is appendFold for ASCII input.
func appendFoldASCII(dst, b []byte) []byte {
	return strictjson.AppendFold(dst, b)
}

// foldRune is the case folding under which two keys are the same key
// (strictjson.FoldRune).
func foldRune(r rune) rune {
	return strictjson.FoldRune(r)
}
