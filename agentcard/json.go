package agentcard

import (
	"bytes"
	"errors"
	"fmt"
	"strconv"
	"unicode"
	"unicode/utf16"
	"unicode/utf8"

	"github.com/agentid/agentid/internal/jsonstr"
)

// maxDepth bounds nesting in cards, protected headers and bundles. Real cards
// nest a handful of levels; the cap keeps the recursive canonicalizer and the
// Kagenti compatibility decoder far away from stack and time exhaustion.
const maxDepth = 64

// maxSafeInteger is 2^53. RFC 8785 works on IEEE-754 doubles, so two integer
// literals above it can canonicalize to the same bytes while a big-number
// parser reads different values: a signed card could then be altered without
// breaking its signature. RFC 7493 (I-JSON) already says not to send them.
const maxSafeInteger = 1 << 53

// member is one member of a JSON object: its decoded key and the byte spans
// of the whole member and of its value in the document.
type member struct {
	key        string
	start      int // index of the key's opening quote
	valueStart int
	valueEnd   int // exclusive
}

// strictScanner validates a JSON document in one pass and rejects everything
// on which two common parsers could disagree about the document's meaning.
// The signature covers the canonical form computed by one parser (ours); a
// consumer that parses the card with another parser must see the same card,
// or a signed card could say one thing to the verifier and another to the
// consumer. It therefore rejects, in addition to RFC 8259 syntax errors:
// invalid UTF-8, unpaired surrogate escapes, duplicate keys and keys that
// differ only in letter case (Go's encoding/json matches struct fields
// case-insensitively and keeps the last duplicate, JavaScript keeps the last,
// some parsers keep the first), integers beyond 2^53, and deep nesting.
type strictScanner struct {
	data  []byte
	pos   int
	depth int
	// top receives the members of the top-level object, when it is one.
	top []member
}

// syntaxError reports where the document went wrong. The offset helps a
// human find the problem; the message never quotes the document, which may
// be large or hostile.
type syntaxError struct {
	msg    string
	offset int
}

func (e *syntaxError) Error() string {
	return fmt.Sprintf("invalid JSON at offset %d: %s", e.offset, e.msg)
}

func (s *strictScanner) fail(format string, args ...any) error {
	return &syntaxError{msg: fmt.Sprintf(format, args...), offset: s.pos}
}

// scanStrict validates data as a single JSON value and, if the value is an
// object, returns its top-level members in document order.
func scanStrict(data []byte) ([]member, error) {
	s := &strictScanner{data: data}
	s.skipSpace()
	if err := s.value(true); err != nil {
		return nil, err
	}
	s.skipSpace()
	if s.pos != len(s.data) {
		return nil, s.fail("data after the JSON value")
	}
	return s.top, nil
}

func (s *strictScanner) skipSpace() {
	for s.pos < len(s.data) {
		switch s.data[s.pos] {
		case ' ', '\t', '\n', '\r':
			s.pos++
		default:
			return
		}
	}
}

func (s *strictScanner) value(top bool) error {
	if s.pos >= len(s.data) {
		return s.fail("unexpected end of input")
	}
	switch c := s.data[s.pos]; {
	case c == '{':
		return s.object(top)
	case c == '[':
		return s.array()
	case c == '"':
		_, err := s.str(false)
		return err
	case c == '-' || (c >= '0' && c <= '9'):
		return s.number()
	case c == 't':
		return s.literal("true")
	case c == 'f':
		return s.literal("false")
	case c == 'n':
		return s.literal("null")
	default:
		return s.fail("unexpected character %q", c)
	}
}

func (s *strictScanner) literal(lit string) error {
	if len(s.data)-s.pos < len(lit) || string(s.data[s.pos:s.pos+len(lit)]) != lit {
		return s.fail("invalid literal")
	}
	s.pos += len(lit)
	return nil
}

func (s *strictScanner) enter() error {
	s.depth++
	if s.depth > maxDepth {
		return s.fail("nesting deeper than %d levels", maxDepth)
	}
	return nil
}

func (s *strictScanner) object(top bool) error {
	if err := s.enter(); err != nil {
		return err
	}
	s.pos++ // '{'
	// keys holds the keys seen so far. Small objects are checked pairwise
	// with bytes.EqualFold, without allocating; large ones switch to a map
	// of case-folded keys so that a hostile object with many keys stays
	// linear.
	var small [16][]byte
	keys := small[:0]
	var seen map[string]struct{}
	var members []member

	s.skipSpace()
	if s.pos < len(s.data) && s.data[s.pos] == '}' {
		s.pos++
		s.depth--
		if top {
			s.top = []member{}
		}
		return nil
	}
	for {
		s.skipSpace()
		if s.pos >= len(s.data) || s.data[s.pos] != '"' {
			return s.fail("expected a string key")
		}
		start := s.pos
		key, err := s.key()
		if err != nil {
			return err
		}
		if seen != nil {
			folded := foldKey(string(key))
			if _, dup := seen[folded]; dup {
				return s.duplicate(string(key))
			}
			seen[folded] = struct{}{}
		} else {
			for _, k := range keys {
				if bytes.EqualFold(k, key) {
					return s.duplicate(string(key))
				}
			}
			keys = append(keys, key)
			if len(keys) == len(small) {
				seen = make(map[string]struct{}, 2*len(small))
				for _, k := range keys {
					seen[foldKey(string(k))] = struct{}{}
				}
			}
		}
		s.skipSpace()
		if s.pos >= len(s.data) || s.data[s.pos] != ':' {
			return s.fail("expected ':' after an object key")
		}
		s.pos++
		s.skipSpace()
		valueStart := s.pos
		if err := s.value(false); err != nil {
			return err
		}
		if top {
			members = append(members, member{key: string(key), start: start, valueStart: valueStart, valueEnd: s.pos})
		}
		s.skipSpace()
		if s.pos >= len(s.data) {
			return s.fail("unexpected end of input in an object")
		}
		switch s.data[s.pos] {
		case ',':
			s.pos++
		case '}':
			s.pos++
			s.depth--
			if top {
				s.top = members
			}
			return nil
		default:
			return s.fail("expected ',' or '}' in an object")
		}
	}
}

func (s *strictScanner) duplicate(key string) error {
	// The key is attacker-controlled: quote it and cap its length.
	if len(key) > 64 {
		key = key[:64] + "..."
	}
	return s.fail("duplicate or case-variant key %q", key)
}

func (s *strictScanner) array() error {
	if err := s.enter(); err != nil {
		return err
	}
	s.pos++ // '['
	s.skipSpace()
	if s.pos < len(s.data) && s.data[s.pos] == ']' {
		s.pos++
		s.depth--
		return nil
	}
	for {
		s.skipSpace()
		if err := s.value(false); err != nil {
			return err
		}
		s.skipSpace()
		if s.pos >= len(s.data) {
			return s.fail("unexpected end of input in an array")
		}
		switch s.data[s.pos] {
		case ',':
			s.pos++
		case ']':
			s.pos++
			s.depth--
			return nil
		default:
			return s.fail("expected ',' or ']' in an array")
		}
	}
}

// str validates a string value starting at its opening quote.
func (s *strictScanner) str(_ bool) (string, error) {
	_, err := s.scanString(false)
	return "", err
}

// key scans an object key and returns its decoded bytes: a view into the
// document when the key has no escapes (no allocation), a fresh slice
// otherwise.
func (s *strictScanner) key() ([]byte, error) {
	return s.scanString(true)
}

// scanString validates the string literal at s.pos and, if decode is set,
// returns its decoded text. Validation is all here: the literal must be
// valid UTF-8 and its escapes complete, with surrogates only in pairs, so
// that jsonstr.AppendUnescaped, which would replace a lone surrogate or
// pass invalid UTF-8 through, decodes it exactly.
func (s *strictScanner) scanString(decode bool) ([]byte, error) {
	s.pos++ // opening quote
	start := s.pos
	escaped := false
	for {
		// Fast path: plain printable ASCII, the bulk of every card and of
		// the long base64 strings in signatures.
		for s.pos < len(s.data) {
			c := s.data[s.pos]
			if c < 0x20 || c >= utf8.RuneSelf || c == '"' || c == '\\' {
				break
			}
			s.pos++
		}
		if s.pos >= len(s.data) {
			return nil, s.fail("unterminated string")
		}
		c := s.data[s.pos]
		switch {
		case c == '"':
			end := s.pos
			s.pos++
			if !decode {
				return nil, nil
			}
			if !escaped {
				return s.data[start:end], nil
			}
			// Decoding never lengthens the text: one allocation.
			body := s.data[start:end]
			return jsonstr.AppendUnescaped(make([]byte, 0, len(body)), body), nil
		case c == '\\':
			escaped = true
			if err := s.escape(); err != nil {
				return nil, err
			}
		case c < 0x20:
			return nil, s.fail("control character in a string")
		default:
			r, size := utf8.DecodeRune(s.data[s.pos:])
			if r == utf8.RuneError && size <= 1 {
				return nil, s.fail("invalid UTF-8")
			}
			s.pos += size
		}
	}
}

// escape validates the escape at s.pos and moves past it; a \u escape of a
// high surrogate must be followed by one of a low surrogate.
func (s *strictScanner) escape() error {
	if s.pos+1 >= len(s.data) {
		return s.fail("unterminated escape")
	}
	c := s.data[s.pos+1]
	s.pos += 2
	switch c {
	case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
		return nil
	case 'u':
		r, err := s.hex4()
		if err != nil {
			return err
		}
		switch {
		case utf16.IsSurrogate(r) && r < 0xdc00:
			// A high surrogate must be followed by an escaped low one.
			if s.pos+1 >= len(s.data) || s.data[s.pos] != '\\' || s.data[s.pos+1] != 'u' {
				return s.fail("unpaired surrogate escape")
			}
			s.pos += 2
			r2, err := s.hex4()
			if err != nil {
				return err
			}
			if r2 < 0xdc00 || r2 > 0xdfff {
				return s.fail("unpaired surrogate escape")
			}
		case utf16.IsSurrogate(r):
			return s.fail("unpaired surrogate escape")
		}
		return nil
	default:
		return s.fail("invalid escape")
	}
}

func (s *strictScanner) hex4() (rune, error) {
	if len(s.data)-s.pos < 4 {
		return 0, s.fail("short unicode escape")
	}
	r, ok := jsonstr.Hex4(s.data[s.pos:])
	if !ok {
		return 0, s.fail("invalid unicode escape")
	}
	s.pos += 4
	return r, nil
}

func (s *strictScanner) number() error {
	start := s.pos
	if s.data[s.pos] == '-' {
		s.pos++
	}
	digits := s.pos
	switch {
	case s.pos < len(s.data) && s.data[s.pos] == '0':
		s.pos++
	case s.pos < len(s.data) && s.data[s.pos] >= '1' && s.data[s.pos] <= '9':
		for s.pos < len(s.data) && s.data[s.pos] >= '0' && s.data[s.pos] <= '9' {
			s.pos++
		}
	default:
		return s.fail("invalid number")
	}
	integer := true
	if s.pos < len(s.data) && s.data[s.pos] == '.' {
		integer = false
		s.pos++
		if !s.digits() {
			return s.fail("invalid number")
		}
	}
	if s.pos < len(s.data) && (s.data[s.pos] == 'e' || s.data[s.pos] == 'E') {
		integer = false
		s.pos++
		if s.pos < len(s.data) && (s.data[s.pos] == '+' || s.data[s.pos] == '-') {
			s.pos++
		}
		if !s.digits() {
			return s.fail("invalid number")
		}
	}
	lit := s.data[start:s.pos]
	if integer {
		// Up to 15 digits cannot exceed 2^53; only longer ones need parsing.
		if s.pos-digits > 15 {
			n, err := strconv.ParseUint(string(s.data[digits:s.pos]), 10, 64)
			if err != nil || n > maxSafeInteger {
				return s.fail("integer beyond 2^53 cannot be signed exactly")
			}
		}
		return nil
	}
	if _, err := strconv.ParseFloat(string(lit), 64); err != nil {
		// ParseFloat fails only on range errors here: the grammar is checked.
		return s.fail("number out of the IEEE-754 double range")
	}
	return nil
}

func (s *strictScanner) digits() bool {
	start := s.pos
	for s.pos < len(s.data) && s.data[s.pos] >= '0' && s.data[s.pos] <= '9' {
		s.pos++
	}
	return s.pos > start
}

// foldKey maps a key to a representative of its case-folding class, so that
// two keys compare equal exactly when strings.EqualFold says they match. Each
// rune is replaced by the smallest rune of its simple-folding orbit, which
// also catches the Kelvin sign (K) and the long s (ſ). For ASCII that
// representative is the upper-case letter, which gives a fast path.
func foldKey(key string) string {
	lower := false
	for i := 0; i < len(key); i++ {
		c := key[i]
		if c >= utf8.RuneSelf {
			return foldSlow(key)
		}
		if c >= 'a' && c <= 'z' {
			lower = true
		}
	}
	if !lower {
		return key
	}
	out := []byte(key)
	for i, c := range out {
		if c >= 'a' && c <= 'z' {
			out[i] = c - 'a' + 'A'
		}
	}
	return string(out)
}

func foldSlow(key string) string {
	out := make([]byte, 0, len(key))
	for _, r := range key {
		min := r
		for f := unicode.SimpleFold(r); f != r; f = unicode.SimpleFold(f) {
			if f < min {
				min = f
			}
		}
		out = utf8.AppendRune(out, min)
	}
	return string(out)
}

// errNotObject is returned when a card or header is valid JSON but not an
// object.
var errNotObject = errors.New("not a JSON object")

// arrayElements returns the spans of the elements of a JSON array that
// scanStrict has already validated. It re-walks the array with the same
// scanner, which is cheaper than decoding it with encoding/json.
func arrayElements(data []byte) ([][2]int, error) {
	s := &strictScanner{data: data}
	s.skipSpace()
	if s.pos >= len(data) || data[s.pos] != '[' {
		return nil, errors.New("not a JSON array")
	}
	s.pos++
	var out [][2]int
	s.skipSpace()
	if s.pos < len(data) && data[s.pos] == ']' {
		return out, nil
	}
	for {
		s.skipSpace()
		start := s.pos
		if err := s.value(false); err != nil {
			return nil, err
		}
		out = append(out, [2]int{start, s.pos})
		s.skipSpace()
		if s.pos >= len(data) {
			return nil, s.fail("unexpected end of input in an array")
		}
		switch data[s.pos] {
		case ',':
			s.pos++
		case ']':
			return out, nil
		default:
			return nil, s.fail("expected ',' or ']' in an array")
		}
	}
}

// jsonStringValue decodes a JSON string that scanStrict has validated. The
// common case, with no escapes, is the bytes between the quotes.
// Validation matters: it rules out the lone surrogates and invalid UTF-8
// that jsonstr.AppendUnescaped would decode differently from encoding/json.
func jsonStringValue(v []byte) (string, error) {
	if len(v) < 2 || v[0] != '"' || v[len(v)-1] != '"' {
		return "", errors.New("not a string")
	}
	inner := v[1 : len(v)-1]
	if bytes.IndexByte(inner, '\\') < 0 {
		return string(inner), nil
	}
	return string(jsonstr.AppendUnescaped(make([]byte, 0, len(inner)), inner)), nil
}
