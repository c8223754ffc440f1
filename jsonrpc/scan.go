package jsonrpc

import (
	"fmt"
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
		return scanError(data, err)
	}
	return nil
}

// scanError turns an error of the strict scanner into the *Error to answer
// with, with the reasons this package has always given.
func scanError(data []byte, err error) *Error {
	e := err.(*strictjson.Error)
	if !e.Syntax() {
		return newError(aip.CodeInvalidRequest, refusalReason(data, e))
	}
	return newError(aip.CodeParseError, syntaxReason(data, e))
}

func refusalReason(data []byte, e *strictjson.Error) string {
	switch e.Code {
	case strictjson.ErrDuplicateKey:
		return "duplicate key " + quoteShort(data[e.Offset+1:e.End-1]) + " (keys must differ in more than letter case) at offset " + strconv.Itoa(e.Offset)
	case strictjson.ErrTooDeep:
		return "nesting deeper than " + strconv.Itoa(profile.MaxDepth()) + " at offset " + strconv.Itoa(e.Offset)
	}
	return e.Error() // not under this profile
}

func syntaxReason(data []byte, e *strictjson.Error) string {
	at := e.Offset
	var reason string
	switch e.Code {
	case strictjson.ErrExpectedValue, strictjson.ErrExpectedKey, strictjson.ErrExpectedColon, strictjson.ErrExpectedComma,
		strictjson.ErrInvalidLiteral, strictjson.ErrInvalidNumber:
		reason = unexpected(data, at)
	case strictjson.ErrTrailingData:
		reason = "data after the top-level value"
	case strictjson.ErrUnterminatedString:
		reason = "unterminated string"
	case strictjson.ErrControlCharacter:
		reason = "control character in string"
	case strictjson.ErrInvalidUTF8:
		reason = "invalid UTF-8 in string"
	case strictjson.ErrInvalidEscape:
		if e.EOF {
			reason, at = "unterminated string", len(data)
		} else {
			reason, at = "invalid escape in string", at+1
		}
	case strictjson.ErrInvalidUnicodeEscape:
		reason = `invalid \u escape in string`
	case strictjson.ErrLoneSurrogate:
		reason = "lone high surrogate in string"
		if r, _ := jsonstr.Hex4(data[at+2:]); r >= 0xDC00 {
			reason = "lone low surrogate in string"
		}
	default:
		reason = e.Error()
	}
	return reason + " at offset " + strconv.Itoa(at)
}

// unexpected describes the byte at data[at], or the end of the input.
func unexpected(data []byte, at int) string {
	if at >= len(data) {
		return "unexpected end of input"
	}
	c := data[at]
	if c < utf8.RuneSelf && c >= 0x20 {
		return fmt.Sprintf("invalid character %q", c)
	}
	return fmt.Sprintf("invalid byte 0x%02x", c)
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
