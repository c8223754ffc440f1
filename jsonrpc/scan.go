package jsonrpc

import (
	"bytes"
	"fmt"
	"strconv"
	"sync"
	"unicode"
	"unicode/utf8"

	"github.com/agentid/agentid/aip"
	"github.com/agentid/agentid/internal/jsonstr"
)

// maxDepth bounds the nesting of arrays and objects. Deeper documents are
// valid JSON but Python's json raises RecursionError near 1000 levels and
// nothing legitimate in MCP comes close, so they are refused as invalid.
const maxDepth = 1000

// mapThreshold is the number of keys after which an object's duplicate check
// switches from a linear scan (fastest for the handful of keys MCP messages
// have) to a map, so that a 100k-key object stays linear.
const mapThreshold = 32

// CheckStrict reports whether data is a single JSON value that every common
// parser reads the same way. It applies the rules of Decode that do not
// concern the JSON-RPC envelope: RFC 8259 syntax with valid UTF-8 and no lone
// surrogates, no duplicate or case-variant keys in any object, and at most
// 1000 levels of nesting. Surrounding JSON whitespace is allowed.
//
// The error, if any, is an *Error whose Code is aip.CodeParseError for syntax
// errors and aip.CodeInvalidRequest for valid JSON that breaks the stricter rules.
func CheckStrict(data []byte) error {
	s := getScanner(data, false)
	defer putScanner(s)
	if err := s.document(); err != nil {
		return err
	}
	if s.invalid != "" {
		return s.invalidError()
	}
	return nil
}

// span is a half-open byte range [start, end).
type span struct{ start, end int }

// member is one member of the outermost object: the raw key, including its
// quotes and escapes, and the raw value.
type member struct {
	key, val span
	escaped  bool // the key contains a backslash escape
}

// scanner is a recursive-descent validator. Syntax errors stop it at once.
// Structural problems (duplicate keys, excessive depth) are valid JSON, so it
// records the first one and keeps going: that way a later syntax error still
// wins, and the envelope, including the id to echo, is still captured.
type scanner struct {
	data []byte
	pos  int

	invalid   string // first structural problem, "" if none
	invalidAt int

	// keys holds, for every object being scanned, the folded form of each
	// key seen so far (as spans of fold). Objects nest, so their entries form
	// a stack: an object truncates both slices back when it ends.
	keys []span
	fold []byte
	buf  []byte // scratch for unescaping keys

	capture bool     // record the members of the outermost object
	members []member // the outermost object's members
	idDup   bool     // the outermost object has more than one key folding to "id"
}

var scannerPool = sync.Pool{New: func() any { return new(scanner) }}

func getScanner(data []byte, capture bool) *scanner {
	s := scannerPool.Get().(*scanner)
	s.data = data
	s.capture = capture
	return s
}

func putScanner(s *scanner) {
	// Do not let one huge message pin its scratch memory in the pool.
	if cap(s.fold) > 64<<10 || cap(s.buf) > 64<<10 || cap(s.keys) > 4096 || cap(s.members) > 4096 {
		*s = scanner{}
	} else {
		*s = scanner{keys: s.keys[:0], fold: s.fold[:0], buf: s.buf[:0], members: s.members[:0]}
	}
	scannerPool.Put(s)
}

// document scans one JSON value with optional surrounding whitespace.
func (s *scanner) document() *Error {
	s.ws()
	if err := s.value(0); err != nil {
		return err
	}
	s.ws()
	if s.pos != len(s.data) {
		return s.syntaxError("data after the top-level value")
	}
	return nil
}

func (s *scanner) syntaxError(reason string) *Error {
	return newError(aip.CodeParseError, reason+" at offset "+strconv.Itoa(s.pos))
}

func (s *scanner) unexpected() *Error {
	if s.pos >= len(s.data) {
		return s.syntaxError("unexpected end of input")
	}
	c := s.data[s.pos]
	if c < utf8.RuneSelf && c >= 0x20 {
		return s.syntaxError(fmt.Sprintf("invalid character %q", c))
	}
	return s.syntaxError(fmt.Sprintf("invalid byte 0x%02x", c))
}

// markInvalid records a structural problem found at offset at, unless one is
// already recorded.
func (s *scanner) markInvalid(reason string, at int) {
	if s.invalid == "" {
		s.invalid = reason
		s.invalidAt = at
	}
}

func (s *scanner) invalidError() *Error {
	return newError(aip.CodeInvalidRequest, s.invalid+" at offset "+strconv.Itoa(s.invalidAt))
}

func (s *scanner) ws() {
	for s.pos < len(s.data) {
		switch s.data[s.pos] {
		case ' ', '\t', '\n', '\r':
			s.pos++
		default:
			return
		}
	}
}

func (s *scanner) value(depth int) *Error {
	if s.pos >= len(s.data) {
		return s.unexpected()
	}
	switch c := s.data[s.pos]; {
	case c == '{':
		return s.object(depth + 1)
	case c == '[':
		return s.array(depth + 1)
	case c == '"':
		_, err := s.str()
		return err
	case c == '-' || '0' <= c && c <= '9':
		_, err := s.number()
		return err
	case c == 't':
		return s.literal("true")
	case c == 'f':
		return s.literal("false")
	case c == 'n':
		return s.literal("null")
	default:
		return s.unexpected()
	}
}

func (s *scanner) literal(lit string) *Error {
	if len(s.data)-s.pos >= len(lit) && string(s.data[s.pos:s.pos+len(lit)]) == lit {
		s.pos += len(lit)
		return nil
	}
	return s.unexpected()
}

// number scans an RFC 8259 number and reports whether it is an integer
// (no fraction, no exponent).
func (s *scanner) number() (isInt bool, err *Error) {
	d, i := s.data, s.pos
	if d[i] == '-' {
		i++
	}
	switch {
	case i < len(d) && d[i] == '0':
		i++ // no leading zeros: "01" ends the number after "0" and fails later
	case i < len(d) && '1' <= d[i] && d[i] <= '9':
		for i++; i < len(d) && '0' <= d[i] && d[i] <= '9'; i++ {
		}
	default:
		s.pos = i
		return false, s.unexpected()
	}
	isInt = true
	if i < len(d) && d[i] == '.' {
		isInt = false
		i++
		if i >= len(d) || d[i] < '0' || d[i] > '9' {
			s.pos = i
			return false, s.unexpected()
		}
		for ; i < len(d) && '0' <= d[i] && d[i] <= '9'; i++ {
		}
	}
	if i < len(d) && (d[i] == 'e' || d[i] == 'E') {
		isInt = false
		i++
		if i < len(d) && (d[i] == '+' || d[i] == '-') {
			i++
		}
		if i >= len(d) || d[i] < '0' || d[i] > '9' {
			s.pos = i
			return false, s.unexpected()
		}
		for ; i < len(d) && '0' <= d[i] && d[i] <= '9'; i++ {
		}
	}
	s.pos = i
	return isInt, nil
}

// plain marks the string bytes that need no further attention: printable
// ASCII other than the quote and the backslash.
var plain = func() (t [256]bool) {
	for c := 0x20; c < utf8.RuneSelf; c++ {
		t[c] = c != '"' && c != '\\'
	}
	return t
}()

// str scans a string starting at its opening quote and reports whether it
// contains escapes or non-ASCII characters, which decide how a key is folded.
func (s *scanner) str() (flags strFlags, err *Error) {
	d := s.data
	i := s.pos + 1
	for {
		for i < len(d) && plain[d[i]] {
			i++
		}
		if i >= len(d) {
			s.pos = i
			return 0, s.syntaxError("unterminated string")
		}
		switch c := d[i]; {
		case c == '"':
			s.pos = i + 1
			return flags, nil
		case c == '\\':
			flags |= strEscaped
			n, err := s.escape(i)
			if err != nil {
				return 0, err
			}
			i += n
		case c < 0x20:
			s.pos = i
			return 0, s.syntaxError("control character in string")
		default:
			// Invalid UTF-8 is refused rather than replaced: parsers differ
			// in how many U+FFFD they substitute, and some refuse it.
			// DecodeRune also refuses surrogates encoded in UTF-8.
			r, n := utf8.DecodeRune(d[i:])
			if r == utf8.RuneError && n == 1 {
				s.pos = i
				return 0, s.syntaxError("invalid UTF-8 in string")
			}
			flags |= strNonASCII
			i += n
		}
	}
}

type strFlags uint8

const (
	strEscaped strFlags = 1 << iota
	strNonASCII
)

// escape validates the escape sequence at d[i] (a backslash) and returns its
// length. A \u escape of a surrogate must be a high surrogate immediately
// followed by an escaped low surrogate: Python accepts a lone surrogate into a
// str that later fails to encode, Go replaces it with U+FFFD, and JavaScript
// keeps it, so the three would see three different strings.
func (s *scanner) escape(i int) (int, *Error) {
	d := s.data
	if i+1 >= len(d) {
		s.pos = len(d)
		return 0, s.syntaxError("unterminated string")
	}
	switch d[i+1] {
	case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
		return 2, nil
	case 'u':
	default:
		s.pos = i + 1
		return 0, s.syntaxError("invalid escape in string")
	}
	r, ok := jsonstr.Hex4(d[i+2:])
	if !ok {
		s.pos = i
		return 0, s.syntaxError(`invalid \u escape in string`)
	}
	switch {
	case 0xDC00 <= r && r <= 0xDFFF:
		s.pos = i
		return 0, s.syntaxError("lone low surrogate in string")
	case 0xD800 <= r && r <= 0xDBFF:
		if i+7 < len(d) && d[i+6] == '\\' && d[i+7] == 'u' {
			if r2, ok := jsonstr.Hex4(d[i+8:]); ok && 0xDC00 <= r2 && r2 <= 0xDFFF {
				return 12, nil
			}
		}
		s.pos = i
		return 0, s.syntaxError("lone high surrogate in string")
	}
	return 6, nil
}

func (s *scanner) array(depth int) *Error {
	if depth > maxDepth {
		s.markInvalid("nesting deeper than "+strconv.Itoa(maxDepth), s.pos)
		return s.skipDeep()
	}
	s.pos++ // '['
	s.ws()
	if s.pos < len(s.data) && s.data[s.pos] == ']' {
		s.pos++
		return nil
	}
	for {
		if err := s.value(depth); err != nil {
			return err
		}
		s.ws()
		if s.pos >= len(s.data) {
			return s.unexpected()
		}
		switch s.data[s.pos] {
		case ',':
			s.pos++
			s.ws()
		case ']':
			s.pos++
			return nil
		default:
			return s.unexpected()
		}
	}
}

func (s *scanner) object(depth int) *Error {
	if depth > maxDepth {
		s.markInvalid("nesting deeper than "+strconv.Itoa(maxDepth), s.pos)
		return s.skipDeep()
	}
	keyMark, foldMark := len(s.keys), len(s.fold)
	var seen map[string]struct{}
	s.pos++ // '{'
	s.ws()
	if s.pos < len(s.data) && s.data[s.pos] == '}' {
		s.pos++
		return nil
	}
	for {
		if s.pos >= len(s.data) || s.data[s.pos] != '"' {
			return s.unexpected()
		}
		keyStart := s.pos
		flags, err := s.str()
		if err != nil {
			return err
		}
		key := span{keyStart, s.pos}
		s.checkKey(key, flags, keyMark, &seen, depth)
		s.ws()
		if s.pos >= len(s.data) || s.data[s.pos] != ':' {
			return s.unexpected()
		}
		s.pos++
		s.ws()
		valStart := s.pos
		if err := s.value(depth); err != nil {
			return err
		}
		if depth == 1 && s.capture {
			s.members = append(s.members, member{key: key, val: span{valStart, s.pos}, escaped: flags&strEscaped != 0})
		}
		s.ws()
		if s.pos >= len(s.data) {
			return s.unexpected()
		}
		switch s.data[s.pos] {
		case ',':
			s.pos++
			s.ws()
		case '}':
			s.pos++
			s.keys, s.fold = s.keys[:keyMark], s.fold[:foldMark]
			return nil
		default:
			return s.unexpected()
		}
	}
}

// checkKey folds the key at k and records a structural problem if an earlier
// key of the same object folds to the same bytes. Keys are compared after
// unescaping, because "n\u0061me" is "name" to every parser.
func (s *scanner) checkKey(k span, flags strFlags, keyMark int, seen *map[string]struct{}, depth int) {
	start := len(s.fold)
	raw := s.data[k.start+1 : k.end-1]
	if flags == 0 {
		s.fold = appendFoldASCII(s.fold, raw)
	} else {
		if flags&strEscaped != 0 {
			s.buf = appendUnescaped(s.buf[:0], raw)
			raw = s.buf
		}
		s.fold = appendFold(s.fold, raw)
	}
	folded := s.fold[start:]

	dup := false
	if *seen != nil {
		_, dup = (*seen)[string(folded)]
	} else {
		for _, e := range s.keys[keyMark:] {
			if bytes.Equal(s.fold[e.start:e.end], folded) {
				dup = true
				break
			}
		}
	}
	if dup {
		s.fold = s.fold[:start]
		if depth == 1 && string(folded) == "ID" {
			s.idDup = true
		}
		if s.invalid == "" {
			s.markInvalid("duplicate key "+quoteShort(s.data[k.start+1:k.end-1])+" (keys must differ in more than letter case)", k.start)
		}
		return
	}
	s.keys = append(s.keys, span{start, len(s.fold)})
	switch n := len(s.keys) - keyMark; {
	case *seen != nil:
		(*seen)[string(folded)] = struct{}{}
	case n > mapThreshold:
		m := make(map[string]struct{}, 2*n)
		for _, e := range s.keys[keyMark:] {
			m[string(s.fold[e.start:e.end])] = struct{}{}
		}
		*seen = m
	}
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

// skipDeep validates the syntax of the container at s.pos without recursion
// or key checks. It runs only after the depth limit has already made the
// document invalid; it exists so that a deep and malformed document is still
// reported as a parse error, in linear time and constant stack.
func (s *scanner) skipDeep() *Error {
	var stack []byte // the closing bracket of each open container
	d := s.data
	push := func() {
		if d[s.pos] == '{' {
			stack = append(stack, '}')
		} else {
			stack = append(stack, ']')
		}
		s.pos++
	}
	push()
	opened := true
	for {
		// Expect a value (or a key and a value), or a close right after an open.
		s.ws()
		if s.pos >= len(d) {
			return s.unexpected()
		}
		top := stack[len(stack)-1]
		if opened && d[s.pos] == top {
			s.pos++
			stack = stack[:len(stack)-1]
		} else {
			if top == '}' {
				if d[s.pos] != '"' {
					return s.unexpected()
				}
				if _, err := s.str(); err != nil {
					return err
				}
				s.ws()
				if s.pos >= len(d) || d[s.pos] != ':' {
					return s.unexpected()
				}
				s.pos++
				s.ws()
			}
			if s.pos < len(d) && (d[s.pos] == '{' || d[s.pos] == '[') {
				push()
				opened = true
				continue
			}
			if err := s.value(0); err != nil { // a scalar: no recursion
				return err
			}
		}
		// After a value: commas and closes until another value is due.
		for {
			if len(stack) == 0 {
				return nil
			}
			s.ws()
			if s.pos >= len(d) {
				return s.unexpected()
			}
			if d[s.pos] == ',' {
				s.pos++
				opened = false
				break
			}
			if d[s.pos] != stack[len(stack)-1] {
				return s.unexpected()
			}
			s.pos++
			stack = stack[:len(stack)-1]
		}
	}
}

// appendUnescaped appends the decoded form of the body of a valid JSON string.
func appendUnescaped(dst, b []byte) []byte {
	return jsonstr.AppendUnescaped(dst, b)
}

// appendFoldASCII is appendFold for ASCII input.
func appendFoldASCII(dst, b []byte) []byte {
	for _, c := range b {
		if 'a' <= c && c <= 'z' {
			c -= 'a' - 'A'
		}
		dst = append(dst, c)
	}
	return dst
}

// appendFold appends a case-folded form of the valid UTF-8 b such that two
// keys fold to the same bytes whenever strings.EqualFold reports them equal.
// That is the folding encoding/json uses to match struct fields (the smallest
// rune of each simple-fold orbit, so "ſ" matches "S" and "\u212a" matches
// "K"). It is widened by ToUpper(ToLower(r)), the folding older Go releases
// and other case-insensitive matchers use, under which "İ" and "ı" match "I".
func appendFold(dst, b []byte) []byte {
	for i := 0; i < len(b); {
		if c := b[i]; c < utf8.RuneSelf {
			if 'a' <= c && c <= 'z' {
				c -= 'a' - 'A'
			}
			dst = append(dst, c)
			i++
			continue
		}
		r, n := utf8.DecodeRune(b[i:])
		dst = utf8.AppendRune(dst, foldRune(r))
		i += n
	}
	return dst
}

// foldRune maps r to the smallest rune of the simple-fold orbit of
// ToUpper(ToLower(r)). TestFoldCoversEqualFold checks every rune.
func foldRune(r rune) rune {
	r = unicode.ToUpper(unicode.ToLower(r))
	min := r
	for f := unicode.SimpleFold(r); f != r; f = unicode.SimpleFold(f) {
		if f < min {
			min = f
		}
	}
	return min
}
