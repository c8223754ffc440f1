package jcs

import (
	"math"
	"slices"
	"strconv"
	"sync"
	"unicode/utf8"
	"unsafe"

	"github.com/agentid/agentid/internal/jsonstr"
	"github.com/agentid/agentid/internal/strictjson"
)

// Error reports why a document has no canonical form: the scanner's error,
// wrapped, when the document is not JSON or breaks a rule of RFC 8785's
// input (duplicate keys, numbers beyond the double range, ...), else Msg.
// It never quotes the document, which may be large or hostile and may end
// up in a log.
type Error struct {
	Offset int    // byte offset in the input at which the problem was found
	Msg    string // what is wrong, when Err is nil
	// Err is what the strict scanner found (strictjson.Canonical), if it
	// found the problem.
	Err *strictjson.Error
}

func (e *Error) Error() string {
	if e.Err != nil {
		return "jcs: " + e.Err.Error()
	}
	return "jcs: " + e.Msg + " at offset " + strconv.Itoa(e.Offset)
}

// Unwrap returns Err.
func (e *Error) Unwrap() error {
	if e.Err == nil {
		return nil // not a nil *strictjson.Error in a non-nil interface
	}
	return e.Err
}

// Transform returns the canonical form of the JSON document data in a new
// slice. It is a drop-in replacement for gowebpki/jcs.Transform.
func Transform(data []byte) ([]byte, error) {
	out, err := canonicalize(nil, data, "", false)
	if err != nil {
		return nil, err
	}
	return out, nil
}

// Canonicalize appends the canonical form of the JSON document data to dst
// and returns the extended slice. On error it returns dst unchanged.
func Canonicalize(dst, data []byte) ([]byte, error) {
	return canonicalize(dst, data, "", false)
}

// CanonicalizeWithout is Canonicalize with the top-level member named
// topLevelKey left out, if data is an object that has one; it is how a
// document that carries its own signatures is turned into the payload they
// sign. The omitted member must still be valid JSON, and still counts for
// duplicate detection. Nested members of that name are kept.
func CanonicalizeWithout(dst, data []byte, topLevelKey string) ([]byte, error) {
	return canonicalize(dst, data, topLevelKey, true)
}

// kind is the kind of a token.
type kind uint8

const (
	// kindRaw is input copied verbatim: true, false, null, a number that is
	// already canonical, or a string (quotes included) without escapes.
	kindRaw kind = iota
	// kindText is canonical text in the text buffer: a reformatted number.
	kindText
	// kindString is a string with escapes, decoded into the text buffer
	// and re-escaped when written.
	kindString
	// kindArray starts an array; its elements follow up to a kindEnd.
	kindArray
	// kindObject starts an object; its member values follow up to a
	// kindEnd, and its members, sorted, are in the members list.
	kindObject
	// kindEnd closes an array or an object.
	kindEnd
)

// token is one value of the document, in document order. Values are
// flattened into one slice instead of a tree so that parsing allocates
// nothing per value once the slice has grown.
type token struct {
	kind kind
	// start and end delimit the token's bytes in the input (kindRaw) or in
	// the text buffer (kindText, kindString). For kindObject they delimit
	// its members in state.members instead.
	start, end int32
	// next is, for kindObject, the index of the token after its kindEnd, so
	// that writing the object can jump past its values once it has written
	// them in key order.
	next int32
}

// member is one member of an object: its decoded key and its value token.
//
// Offsets are 32 bits, as the scanner refuses larger documents, so that
// sorting moves 16 bytes per member.
type member struct {
	keyStart, keyEnd int32 // the decoded key, in input or text
	value            int32 // index of the value's first token
	keyInText        bool  // whether the key is in the text buffer (it had escapes)
	omit             bool  // left out of the output (CanonicalizeWithout)
}

// state is the working memory of one canonicalization. It is pooled: after
// the first few documents, canonicalizing allocates nothing but the output.
type state struct {
	data    []byte
	tokens  []token
	members []member // sorted members of finished objects, object by object
	pending []member // members of the objects being parsed, innermost last
	scan    []strictjson.Token
	sc      strictjson.Scanner
	opens   []int  // index in tokens of each open object or array
	bases   []int  // len(pending) when each open object began
	text    []byte // decoded strings and keys, reformatted numbers
	omitKey string
	omit    bool
}

var statePool = sync.Pool{New: func() any { return new(state) }}

// maxPooled bounds the working memory kept in the pool, so that one huge
// document does not pin its token list for the life of the process.
const maxPooled = 1 << 16

func canonicalize(dst, data []byte, omitKey string, omit bool) ([]byte, error) {
	if data == nil {
		// gowebpki/jcs rejects nil explicitly; an empty slice fails below.
		return dst, &Error{Msg: "no JSON data"}
	}
	s := statePool.Get().(*state)
	s.data = data
	s.tokens, s.members, s.pending, s.text = s.tokens[:0], s.members[:0], s.pending[:0], s.text[:0]
	s.opens, s.bases = s.opens[:0], s.bases[:0]
	s.omitKey, s.omit = omitKey, omit

	err := s.parse()
	if err == nil {
		if dst == nil {
			// The canonical form is rarely longer than the input: only
			// whitespace is removed and escapes mostly shrink.
			dst = make([]byte, 0, len(data))
		}
		dst, _ = s.write(dst, 0)
	}

	s.data = nil
	if cap(s.tokens) <= maxPooled && cap(s.text) <= maxPooled*16 && cap(s.members) <= maxPooled && cap(s.pending) <= maxPooled && cap(s.opens) <= maxPooled && cap(s.scan) <= maxPooled {
		statePool.Put(s)
	}
	return dst, err
}

// parse reads the document with the strict scanner, under the profile of
// canonicalization input, and appends its tokens. The scanner validates
// everything, duplicate keys and the range of numbers included; parse only
// builds the token list.
func (s *state) parse() error {
	s.sc.Reset(strictjson.Canonical, s.data)
	toks, err := s.sc.AppendTokens(s.scan[:0])
	s.sc.Reset(strictjson.Canonical, nil)
	s.scan = toks
	if err != nil {
		return scanError(err)
	}
	for _, tok := range toks {
		switch tok.Kind {
		case strictjson.Object:
			s.opens = append(s.opens, len(s.tokens))
			s.bases = append(s.bases, len(s.pending))
			s.tokens = append(s.tokens, token{kind: kindObject})
		case strictjson.Array:
			s.opens = append(s.opens, len(s.tokens))
			s.tokens = append(s.tokens, token{kind: kindArray})
		case strictjson.ObjectEnd:
			s.closeObject()
		case strictjson.ArrayEnd:
			s.opens = s.opens[:len(s.opens)-1]
			s.tokens = append(s.tokens, token{kind: kindEnd})
		case strictjson.Key:
			m := member{keyStart: int32(tok.Start + 1), keyEnd: int32(tok.End - 1), value: int32(len(s.tokens))}
			if tok.Escaped() {
				start := len(s.text)
				s.text = jsonstr.AppendUnescaped(s.text, s.data[tok.Start+1:tok.End-1])
				m = member{keyStart: int32(start), keyEnd: int32(len(s.text)), keyInText: true, value: int32(len(s.tokens))}
			}
			if s.omit && len(s.opens) == 1 && string(s.key(&m)) == s.omitKey {
				m.omit = true
			}
			s.pending = append(s.pending, m)
		case strictjson.String:
			if tok.Escaped() {
				start := len(s.text)
				s.text = jsonstr.AppendUnescaped(s.text, s.data[tok.Start+1:tok.End-1])
				s.tokens = append(s.tokens, token{kind: kindString, start: int32(start), end: int32(len(s.text))})
			} else {
				s.tokens = append(s.tokens, token{kind: kindRaw, start: int32(tok.Start), end: int32(tok.End)})
			}
		case strictjson.Number:
			if err := s.number(tok); err != nil {
				return err
			}
		default: // true, false, null
			s.tokens = append(s.tokens, token{kind: kindRaw, start: int32(tok.Start), end: int32(tok.End)})
		}
	}
	return nil
}

// closeObject sorts the members of the object that ends and moves them to
// the members list.
func (s *state) closeObject() {
	open := s.opens[len(s.opens)-1]
	base := s.bases[len(s.bases)-1]
	s.opens, s.bases = s.opens[:len(s.opens)-1], s.bases[:len(s.bases)-1]
	ms := s.pending[base:]
	if len(ms) > 1 {
		// The scanner refused duplicate keys, so the order is total.
		slices.SortFunc(ms, s.compareMembers)
	}
	first := len(s.members)
	s.members = append(s.members, ms...)
	s.pending = s.pending[:base]
	s.tokens = append(s.tokens, token{kind: kindEnd})
	s.tokens[open] = token{kind: kindObject, start: int32(first), end: int32(len(s.members)), next: int32(len(s.tokens))}
}

// scanError wraps an error of the scanner.
func scanError(err error) error {
	e := err.(*strictjson.Error)
	return &Error{Offset: e.Offset, Err: e}
}

// key returns the decoded bytes of a member's key.
func (s *state) key(m *member) []byte {
	if m.keyInText {
		return s.text[m.keyStart:m.keyEnd]
	}
	return s.data[m.keyStart:m.keyEnd]
}

func (s *state) compareMembers(a, b member) int {
	return compareUTF16(s.key(&a), s.key(&b))
}

// compareUTF16 compares two valid UTF-8 strings as their UTF-16 encodings
// would compare, code unit by code unit, without converting them. UTF-8 byte
// order is code point order, and so is UTF-16 order except that a character
// beyond U+FFFF, written as a surrogate pair starting with 0xD800–0xDBFF,
// sorts before U+E000–U+FFFF. Only the first differing character decides.
func compareUTF16(a, b []byte) int {
	n := min(len(a), len(b))
	i := 0
	for i < n && a[i] == b[i] {
		i++
	}
	if i == n {
		return len(a) - len(b)
	}
	if a[i] < utf8.RuneSelf || b[i] < utf8.RuneSelf {
		// An ASCII byte is a whole character below every other one.
		return int(a[i]) - int(b[i])
	}
	// Back up to the start of the character the strings differ in; the
	// bytes before i are equal, so it starts at the same index in both.
	for i > 0 && !utf8.RuneStart(a[i]) {
		i--
	}
	ra, _ := utf8.DecodeRune(a[i:])
	rb, _ := utf8.DecodeRune(b[i:])
	return int(utf16Order(ra)) - int(utf16Order(rb))
}

// utf16Order maps a code point to a number that orders as its UTF-16
// encoding does: characters beyond U+FFFF move down to just above U+DFFF,
// keeping their order among themselves, and U+E000–U+FFFF move above them.
func utf16Order(r rune) rune {
	switch {
	case r >= 0x10000:
		return r - 0x10000 + 0xE000
	case r >= 0xE000:
		return r + 0x100000
	}
	return r
}

// number appends the number token t. RFC 8785 writes the IEEE 754 double
// nearest to it the way ECMAScript does. Short integers are already in that
// form and are copied; everything else goes through strconv.
func (s *state) number(t strictjson.Token) error {
	lit := s.data[t.Start:t.End]
	// An integer of at most 15 digits is exactly a double (2^53 has 16
	// digits) and ECMAScript writes it as it is, except for -0.
	digits := len(lit)
	if lit[0] == '-' {
		digits--
	}
	if t.Integer() && digits <= 15 && string(lit) != "-0" {
		s.tokens = append(s.tokens, token{kind: kindRaw, start: int32(t.Start), end: int32(t.End)})
		return nil
	}

	// The literal is only read during the call and the error, which would
	// keep it, is dropped, so it is safe to view the input as a string
	// instead of copying it.
	f, err := strconv.ParseFloat(unsafe.String(&lit[0], len(lit)), 64)
	if err != nil {
		// Overflow to ±Inf, which the scanner refuses already; JSON has no
		// infinities. Underflow to zero is not an error, as for
		// gowebpki/jcs and ECMAScript.
		return &Error{Offset: t.Start, Msg: "number out of the range of a double"}
	}
	textStart := len(s.text)
	s.text = appendNumber(s.text, f)
	s.tokens = append(s.tokens, token{kind: kindText, start: int32(textStart), end: int32(len(s.text))})
	return nil
}

// appendNumber appends f as ECMAScript's Number.prototype.toString writes it
// (ECMA-262 Number::toString, which RFC 8785 §3.2.2.3 adopts): the shortest
// digits that read back as f, in positional notation for 1e-6 ≤ |f| < 1e21
// and in exponential notation otherwise, with an exponent of at least one
// digit and always a sign.
func appendNumber(dst []byte, f float64) []byte {
	if f == 0 {
		return append(dst, '0') // -0 as well
	}
	if a := math.Abs(f); a >= 1e-6 && a < 1e21 {
		return strconv.AppendFloat(dst, f, 'f', -1, 64)
	}
	start := len(dst)
	dst = strconv.AppendFloat(dst, f, 'e', -1, 64)
	// strconv writes at least two exponent digits ("1e-07"); ECMAScript
	// writes no leading zero ("1e-7").
	for i := len(dst) - 1; i > start; i-- {
		if dst[i] == 'e' {
			if dst[i+2] == '0' {
				dst = append(dst[:i+2], dst[i+3:]...)
			}
			break
		}
	}
	return dst
}

// write appends the canonical form of the value starting at token t and
// returns the index of the token after it.
func (s *state) write(dst []byte, t int) ([]byte, int) {
	tok := s.tokens[t]
	switch tok.kind {
	case kindRaw:
		return append(dst, s.data[tok.start:tok.end]...), t + 1
	case kindText:
		return append(dst, s.text[tok.start:tok.end]...), t + 1
	case kindString:
		return appendString(dst, s.text[tok.start:tok.end]), t + 1
	case kindArray:
		dst = append(dst, '[')
		t++
		for first := true; s.tokens[t].kind != kindEnd; first = false {
			if !first {
				dst = append(dst, ',')
			}
			dst, t = s.write(dst, t)
		}
		return append(dst, ']'), t + 1
	case kindObject:
		dst = append(dst, '{')
		first := true
		for i := tok.start; i < tok.end; i++ {
			m := &s.members[i]
			if m.omit {
				continue
			}
			if !first {
				dst = append(dst, ',')
			}
			first = false
			if m.keyInText {
				dst = appendString(dst, s.text[m.keyStart:m.keyEnd])
			} else {
				// A key without escapes is canonical as written.
				dst = append(dst, s.data[m.keyStart-1:m.keyEnd+1]...)
			}
			dst = append(dst, ':')
			dst, _ = s.write(dst, int(m.value))
		}
		return append(dst, '}'), int(tok.next)
	}
	panic("jcs: corrupt token list")
}

// appendString appends the decoded string str, quoted and escaped as RFC
// 8785 §3.2.2.2 requires: only '"', '\\' and the control characters are
// escaped, with the short forms where JSON has them, which is exactly
// jsonstr's minimal escaping. str is valid UTF-8 (checked while scanning).
func appendString(dst, str []byte) []byte {
	return jsonstr.Append(dst, str, jsonstr.EscapeMinimal)
}
