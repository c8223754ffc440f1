package policy

import (
	"bytes"
	"encoding/json"
	"errors"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/agentid/agentid/internal/jcs"
	"github.com/agentid/agentid/internal/strictjson"
)

// argMember is one top-level member of a tools/call arguments object. val is
// the member's raw JSON value, a sub-slice of the request bytes: the engine
// looks at arguments without building a map[string]any, which keeps the
// common decision path to a handful of allocations.
type argMember struct {
	key string
	val []byte
}

var (
	errArgsNotObject = errors.New("policy: arguments are not a JSON object")
	errArgsInvalid   = errors.New("policy: arguments are not valid JSON")
	errArgsDuplicate = errors.New("policy: arguments contain a duplicate key")
)

// argParseObject splits a raw JSON object into its members, sorted by key so
// that every check that reports a failing argument reports the same one for
// the same input. Absent arguments (nil, empty, or JSON null) are an empty
// object, as MCP allows tools/call without arguments.
//
// The arguments are validated under strictjson.MCP, the profile jsonrpc
// decodes messages with: the engine decides on one reading of them and the
// server reads them with another parser, so duplicate keys (also case
// variants, at any depth), invalid UTF-8 and lone surrogate escapes are
// refused rather than read one way here and another way there.
func argParseObject(raw []byte, dst []argMember) ([]argMember, error) {
	return argParseObjectValidated(raw, dst, false)
}

// argParseObjectValidated is argParseObject for raw that a strict decoder
// may already have validated (validated true). Such arguments are only
// split (strictjson.NextMember): the MCP rules are not checked a second
// time.
func argParseObjectValidated(raw []byte, dst []argMember, validated bool) ([]argMember, error) {
	raw = argTrimSpace(raw)
	if len(raw) == 0 || string(raw) == "null" {
		return dst[:0], nil
	}
	if raw[0] != '{' {
		return nil, errArgsNotObject
	}
	dst = dst[:0]
	if validated {
		for i := 1; ; {
			key, val, next, ok := strictjson.NextMember(raw, i)
			if !ok {
				break
			}
			dst = append(dst, argMember{key: argUnquote(key), val: val})
			i = next
		}
	} else {
		var err error
		if dst, err = argSplitStrict(raw, dst); err != nil {
			return nil, err
		}
	}
	if len(dst) > 1 {
		slices.SortFunc(dst, func(a, b argMember) int { return strings.Compare(a.key, b.key) })
		// Validated arguments have unique keys already; the check costs one
		// comparison per member and keeps the engine from ever choosing one
		// of two values, whoever validated them.
		for k := 1; k < len(dst); k++ {
			if dst[k].key == dst[k-1].key {
				return nil, errArgsDuplicate
			}
		}
	}
	return dst, nil
}

// argSplitStrict splits the object raw into dst while validating it under
// strictjson.MCP, in one pass.
func argSplitStrict(raw []byte, dst []argMember) ([]argMember, error) {
	s := strictjson.NewScanner(strictjson.MCP, raw)
	defer s.Release()
	if _, err := s.Next(); err != nil {
		return nil, errArgsInvalid
	}
	for {
		key, val, ok, err := s.Member()
		if err != nil {
			return nil, errArgsInvalid
		}
		if !ok {
			break
		}
		dst = append(dst, argMember{key: string(s.Text(key)), val: raw[val.Start:val.End]})
	}
	if err := s.Finish(); err != nil {
		if e, ok := err.(*strictjson.Error); ok && e.Code == strictjson.ErrDuplicateKey {
			return nil, errArgsDuplicate
		}
		return nil, errArgsInvalid
	}
	return dst, nil
}

// argLookup finds key in members sorted by argParseObject.
func argLookup(members []argMember, key string) ([]byte, bool) {
	i, ok := slices.BinarySearchFunc(members, key, func(m argMember, k string) int { return strings.Compare(m.key, k) })
	if !ok {
		return nil, false
	}
	return members[i].val, true
}

func argIsSpace(c byte) bool { return c == ' ' || c == '\t' || c == '\n' || c == '\r' }

func argTrimSpace(b []byte) []byte {
	for len(b) > 0 && argIsSpace(b[0]) {
		b = b[1:]
	}
	for len(b) > 0 && argIsSpace(b[len(b)-1]) {
		b = b[:len(b)-1]
	}
	return b
}

// argUnquote decodes a string literal that a strictjson.Scanner has
// validated, exactly as encoding/json decodes it (invalid UTF-8 and lone
// surrogate escapes become U+FFFD), so that the engine sees what a Go JSON
// decoder downstream would see.
func argUnquote(lit []byte) string {
	if argPlain(lit) {
		return string(lit[1 : len(lit)-1])
	}
	return string(strictjson.AppendUnquote(nil, lit))
}

// argPlain reports whether the string literal lit reads as its bytes
// between the quotes: no escapes, valid UTF-8.
func argPlain(lit []byte) bool {
	inner := lit[1 : len(lit)-1]
	return bytes.IndexByte(inner, '\\') < 0 && utf8.Valid(inner)
}

// argPlainString returns the bytes of a string literal that needs no
// decoding, so that a regex can run on the request bytes without a copy.
func argPlainString(val []byte) ([]byte, bool) {
	if len(val) < 2 || val[0] != '"' {
		return nil, false
	}
	inner := val[1 : len(val)-1]
	if bytes.IndexByte(inner, '\\') >= 0 || !utf8.Valid(inner) {
		return nil, false
	}
	return inner, true
}

// Stringify is the STRING() coercion of AIP §4.5, used to match allow_args
// patterns against argument values of any JSON type:
//
//   - string: the decoded string;
//   - number: an integer literal verbatim (so 2^64 keeps every digit), any
//     other number as the shortest decimal without exponent of its float64
//     value (1.0 → "1", 1e3 → "1000", 2.50 → "2.5"); a literal outside the
//     float64 range is kept verbatim;
//   - true/false: "true"/"false";
//   - null: "";
//   - array/object: RFC 8785 (JCS) serialization, which sorts keys and does
//     not HTML-escape, so a pattern can match "<" literally.
//
// Decimal without exponent was chosen for numbers because patterns such as
// "^[0-9]+$" (conformance args-040) are written against how people write
// numbers, not against JavaScript's exponent form.
func Stringify(raw json.RawMessage) (string, error) {
	raw = argTrimSpace(raw)
	if len(raw) == 0 {
		return "", errors.New("policy: empty JSON value")
	}
	if strictjson.Validate(strictjson.Syntax, raw) != nil {
		return "", errors.New("policy: invalid JSON value")
	}
	return argStringify(raw)
}

// argStringify is Stringify for a value already known to be valid JSON.
func argStringify(val []byte) (string, error) {
	switch val[0] {
	case '"':
		return argUnquote(val), nil
	case 't':
		return "true", nil
	case 'f':
		return "false", nil
	case 'n':
		return "", nil
	case '{', '[':
		canon, err := jcs.Transform(val)
		if err != nil {
			return "", errors.New("policy: cannot canonicalize JSON value: " + err.Error())
		}
		return string(canon), nil
	}
	return argFormatNumber(val), nil
}

func argFormatNumber(lit []byte) string {
	if argIsIntegerLiteral(lit) {
		return string(lit)
	}
	f, err := strconv.ParseFloat(string(lit), 64)
	if err != nil {
		return string(lit)
	}
	return strconv.FormatFloat(f, 'f', -1, 64)
}

func argIsIntegerLiteral(lit []byte) bool {
	if len(lit) > 0 && lit[0] == '-' {
		lit = lit[1:]
	}
	if len(lit) == 0 {
		return false
	}
	for _, c := range lit {
		if c < '0' || c > '9' {
			return false
		}
	}
	return true
}
