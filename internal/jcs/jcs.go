package jcs

import (
	"math"
	"slices"
	"strconv"
	"sync"
	"unicode/utf8"
	"unsafe"

	"github.com/agentid/agentid/internal/jsonstr"
)

// maxDepth is the deepest nesting of arrays and objects accepted. It is the
// limit of encoding/json and of gowebpki/jcs, so the three agree on which
// documents are too deep; parsing and writing recurse once per level.
const maxDepth = 10000

// Error reports why a document has no canonical form. It never quotes the
// document, which may be large or hostile and may end up in a log.
type Error struct {
	Offset int // byte offset in the input at which the problem was found
	Msg    string
}

func (e *Error) Error() string {
	return "jcs: " + e.Msg + " at offset " + strconv.Itoa(e.Offset)
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
	start, end int
	// next is, for kindObject, the index of the token after its kindEnd, so
	// that writing the object can jump past its values once it has written
	// them in key order.
	next int
}

// member is one member of an object: its decoded key and its value token.
type member struct {
	keyStart, keyEnd int  // the decoded key, in input or text
	keyInText        bool // whether the key is in the text buffer (it had escapes)
	omit             bool // left out of the output (CanonicalizeWithout)
	value            int  // index of the value's first token
}

// state is the working memory of one canonicalization. It is pooled: after
// the first few documents, canonicalizing allocates nothing but the output.
type state struct {
	data    []byte
	pos     int
	depth   int
	tokens  []token
	members []member // sorted members of finished objects, object by object
	pending []member // members of the objects being parsed, innermost last
	text    []byte   // decoded strings and keys, reformatted numbers
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
	s.data, s.pos, s.depth = data, 0, 0
	s.tokens, s.members, s.pending, s.text = s.tokens[:0], s.members[:0], s.pending[:0], s.text[:0]
	s.omitKey, s.omit = omitKey, omit

	err := s.document()
	if err == nil {
		if dst == nil {
			// The canonical form is rarely longer than the input: only
			// whitespace is removed and escapes mostly shrink.
			dst = make([]byte, 0, len(data))
		}
		dst, _ = s.write(dst, 0)
	}

	s.data = nil
	if cap(s.tokens) <= maxPooled && cap(s.text) <= maxPooled*16 && cap(s.members) <= maxPooled && cap(s.pending) <= maxPooled {
		statePool.Put(s)
	}
	return dst, err
}

func (s *state) fail(msg string) error {
	return &Error{Offset: s.pos, Msg: msg}
}

func (s *state) skipSpace() {
	for s.pos < len(s.data) {
		switch s.data[s.pos] {
		case ' ', '\t', '\n', '\r':
			s.pos++
		default:
			return
		}
	}
}

func (s *state) document() error {
	s.skipSpace()
	if err := s.value(); err != nil {
		return err
	}
	s.skipSpace()
	if s.pos != len(s.data) {
		return s.fail("data after the JSON value")
	}
	return nil
}

// value parses one value at s.pos, which is not whitespace, and appends its
// tokens.
func (s *state) value() error {
	if s.pos >= len(s.data) {
		return s.fail("unexpected end of JSON input")
	}
	switch c := s.data[s.pos]; c {
	case '{':
		return s.object()
	case '[':
		return s.array()
	case '"':
		start := s.pos
		textStart := len(s.text)
		escaped, err := s.str()
		if err != nil {
			return err
		}
		if escaped {
			s.tokens = append(s.tokens, token{kind: kindString, start: textStart, end: len(s.text)})
		} else {
			s.tokens = append(s.tokens, token{kind: kindRaw, start: start, end: s.pos})
		}
		return nil
	case 't':
		return s.literal("true")
	case 'f':
		return s.literal("false")
	case 'n':
		return s.literal("null")
	default:
		if c == '-' || (c >= '0' && c <= '9') {
			return s.number()
		}
		return s.fail("invalid character")
	}
}

func (s *state) literal(lit string) error {
	if len(s.data)-s.pos < len(lit) || string(s.data[s.pos:s.pos+len(lit)]) != lit {
		return s.fail("invalid literal")
	}
	s.tokens = append(s.tokens, token{kind: kindRaw, start: s.pos, end: s.pos + len(lit)})
	s.pos += len(lit)
	return nil
}

func (s *state) enter() error {
	s.depth++
	if s.depth > maxDepth {
		return s.fail("nesting deeper than 10000 levels")
	}
	return nil
}

func (s *state) array() error {
	if err := s.enter(); err != nil {
		return err
	}
	s.tokens = append(s.tokens, token{kind: kindArray})
	s.pos++ // '['
	s.skipSpace()
	if s.pos < len(s.data) && s.data[s.pos] == ']' {
		s.pos++
	} else {
		for {
			if err := s.value(); err != nil {
				return err
			}
			s.skipSpace()
			if s.pos >= len(s.data) {
				return s.fail("unexpected end of JSON input")
			}
			c := s.data[s.pos]
			s.pos++
			if c == ']' {
				break
			}
			if c != ',' {
				s.pos--
				return s.fail("expected ',' or ']'")
			}
			s.skipSpace()
		}
	}
	s.tokens = append(s.tokens, token{kind: kindEnd})
	s.depth--
	return nil
}

func (s *state) object() error {
	if err := s.enter(); err != nil {
		return err
	}
	open := len(s.tokens)
	s.tokens = append(s.tokens, token{kind: kindObject})
	// This object's members collect on top of the pending stack, above
	// those of the objects that enclose it.
	base := len(s.pending)
	top := s.depth == 1 && s.omit
	s.pos++ // '{'
	s.skipSpace()
	if s.pos < len(s.data) && s.data[s.pos] == '}' {
		s.pos++
	} else {
		for {
			if s.pos >= len(s.data) || s.data[s.pos] != '"' {
				return s.fail("expected a string key")
			}
			raw := s.pos + 1
			textStart := len(s.text)
			escaped, err := s.str()
			if err != nil {
				return err
			}
			m := member{keyStart: raw, keyEnd: s.pos - 1}
			if escaped {
				m = member{keyStart: textStart, keyEnd: len(s.text), keyInText: true}
			}
			if top && string(s.key(&m)) == s.omitKey {
				m.omit = true
			}
			s.skipSpace()
			if s.pos >= len(s.data) || s.data[s.pos] != ':' {
				return s.fail("expected ':'")
			}
			s.pos++
			s.skipSpace()
			m.value = len(s.tokens)
			if err := s.value(); err != nil {
				return err
			}
			s.pending = append(s.pending, m)
			s.skipSpace()
			if s.pos >= len(s.data) {
				return s.fail("unexpected end of JSON input")
			}
			c := s.data[s.pos]
			s.pos++
			if c == '}' {
				break
			}
			if c != ',' {
				s.pos--
				return s.fail("expected ',' or '}'")
			}
			s.skipSpace()
		}
	}
	ms := s.pending[base:]
	if len(ms) > 1 {
		slices.SortFunc(ms, s.compareMembers)
		for i := 1; i < len(ms); i++ {
			if s.compareMembers(ms[i-1], ms[i]) == 0 {
				// The offset is the end of the object: the sort has lost
				// where the second occurrence was.
				return s.fail("duplicate key in the object ending here")
			}
		}
	}
	first := len(s.members)
	s.members = append(s.members, ms...)
	s.pending = s.pending[:base]
	s.tokens = append(s.tokens, token{kind: kindEnd})
	s.tokens[open] = token{kind: kindObject, start: first, end: len(s.members), next: len(s.tokens)}
	s.depth--
	return nil
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

// str parses the string starting at s.pos (on its opening quote) and leaves
// s.pos after its closing quote. A string without escapes is canonical as
// written once its UTF-8 is known to be valid, so it is only validated; one
// with escapes is decoded onto s.text, and escaped reports which happened.
func (s *state) str() (escaped bool, err error) {
	data := s.data
	i := s.pos + 1
	start := i
	for {
		// Skip the run of bytes that need no attention.
		for i < len(data) && safeASCII[data[i]] {
			i++
		}
		if i >= len(data) {
			s.pos = i
			return false, s.fail("unterminated string")
		}
		c := data[i]
		switch {
		case c == '"':
			if escaped {
				s.text = append(s.text, data[start:i]...)
			}
			s.pos = i + 1
			return escaped, nil
		case c == '\\':
			if !escaped {
				escaped = true
			}
			s.text = append(s.text, data[start:i]...)
			s.pos = i
			n, err := s.escape()
			if err != nil {
				return false, err
			}
			i += n
			start = i
		case c < 0x20:
			s.pos = i
			return false, s.fail("control character in string")
		default:
			r, size := utf8.DecodeRune(data[i:])
			if r == utf8.RuneError && size <= 1 {
				s.pos = i
				return false, s.fail("invalid UTF-8 in string")
			}
			i += size
		}
	}
}

// safeASCII marks the bytes that stand for themselves inside a string and in
// its canonical form: printable ASCII other than '"' and '\\'.
var safeASCII = func() (t [256]bool) {
	for c := 0x20; c < utf8.RuneSelf; c++ {
		t[c] = c != '"' && c != '\\'
	}
	return t
}()

// escape decodes the escape sequence at s.pos onto s.text and returns its
// length in the input.
func (s *state) escape() (int, error) {
	data := s.data[s.pos:]
	if len(data) < 2 {
		return 0, s.fail("unterminated string")
	}
	var c byte
	switch data[1] {
	case '"', '\\', '/':
		c = data[1]
	case 'b':
		c = '\b'
	case 'f':
		c = '\f'
	case 'n':
		c = '\n'
	case 'r':
		c = '\r'
	case 't':
		c = '\t'
	case 'u':
		r, ok := hex4(data[2:])
		if !ok {
			return 0, s.fail("invalid \\u escape")
		}
		switch {
		case r >= 0xDC00 && r <= 0xDFFF:
			return 0, s.fail("unpaired low surrogate escape")
		case r >= 0xD800 && r <= 0xDBFF:
			// A high surrogate must be followed by an escaped low one.
			if len(data) < 12 || data[6] != '\\' || data[7] != 'u' {
				return 0, s.fail("unpaired high surrogate escape")
			}
			lo, ok := hex4(data[8:])
			if !ok || lo < 0xDC00 || lo > 0xDFFF {
				return 0, s.fail("unpaired high surrogate escape")
			}
			s.text = utf8.AppendRune(s.text, 0x10000+(r-0xD800)<<10+(lo-0xDC00))
			return 12, nil
		}
		s.text = utf8.AppendRune(s.text, r)
		return 6, nil
	default:
		return 0, s.fail("invalid escape")
	}
	s.text = append(s.text, c)
	return 2, nil
}

// hex4 decodes four hex digits.
func hex4(b []byte) (rune, bool) {
	if len(b) < 4 {
		return 0, false
	}
	var r rune
	for _, c := range b[:4] {
		switch {
		case c >= '0' && c <= '9':
			c -= '0'
		case c >= 'a' && c <= 'f':
			c -= 'a' - 10
		case c >= 'A' && c <= 'F':
			c -= 'A' - 10
		default:
			return 0, false
		}
		r = r<<4 | rune(c)
	}
	return r, true
}

// number parses the number at s.pos. RFC 8785 writes the IEEE 754 double
// nearest to it the way ECMAScript does. Short integers are already in that
// form and are copied; everything else goes through strconv.
func (s *state) number() error {
	data := s.data
	start := s.pos
	i := start
	if data[i] == '-' {
		i++
	}
	switch {
	case i < len(data) && data[i] == '0':
		i++
	case i < len(data) && data[i] >= '1' && data[i] <= '9':
		for i < len(data) && data[i] >= '0' && data[i] <= '9' {
			i++
		}
	default:
		s.pos = i
		return s.fail("invalid number")
	}
	integer := i
	if i < len(data) && data[i] == '.' {
		i++
		d := i
		for i < len(data) && data[i] >= '0' && data[i] <= '9' {
			i++
		}
		if i == d {
			s.pos = i
			return s.fail("invalid number")
		}
	}
	if i < len(data) && (data[i] == 'e' || data[i] == 'E') {
		i++
		if i < len(data) && (data[i] == '+' || data[i] == '-') {
			i++
		}
		d := i
		for i < len(data) && data[i] >= '0' && data[i] <= '9' {
			i++
		}
		if i == d {
			s.pos = i
			return s.fail("invalid number")
		}
	}
	s.pos = i
	lit := data[start:i]

	// An integer of at most 15 digits is exactly a double (2^53 has 16
	// digits) and ECMAScript writes it as it is, except for -0.
	digits := integer - start
	if data[start] == '-' {
		digits--
	}
	if i == integer && digits <= 15 && string(lit) != "-0" {
		s.tokens = append(s.tokens, token{kind: kindRaw, start: start, end: i})
		return nil
	}

	// The literal is only read during the call and the error, which would
	// keep it, is dropped, so it is safe to view the input as a string
	// instead of copying it.
	f, err := strconv.ParseFloat(unsafe.String(&lit[0], len(lit)), 64)
	if err != nil {
		// Overflow to ±Inf; JSON has no infinities. Underflow to zero is
		// not an error, as for gowebpki/jcs and ECMAScript.
		s.pos = start
		return s.fail("number out of the range of a double")
	}
	textStart := len(s.text)
	s.text = appendNumber(s.text, f)
	s.tokens = append(s.tokens, token{kind: kindText, start: textStart, end: len(s.text)})
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
			dst, _ = s.write(dst, m.value)
		}
		return append(dst, '}'), tok.next
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
