package strictjson

import (
	"bytes"
	"unicode/utf8"

	"github.com/agentid/agentid/internal/jsonstr"
)

// Validate reports whether data is a single JSON value, with optional
// surrounding whitespace, that p accepts. The error, if any, is an *Error:
// the first syntax error, or else the first refusal.
func Validate(p Profile, data []byte) error {
	s := NewScanner(p, data)
	err := s.Finish()
	s.Release()
	return err
}

// Member reads the next member of the object the scanner is in, right
// after its opening brace or a previous member: the key, and the value read
// whole (as Skip reads it). At the end of the object it consumes the closing
// brace and returns ok false.
func (s *Scanner) Member() (key, val Token, ok bool, err error) {
	if s.err != nil {
		return Token{}, Token{}, false, s.err
	}
	e := s.next()
	if e == nil && s.tok.Kind != Key {
		return s.tok, Token{}, false, nil
	}
	if e == nil {
		key = s.tok
		e = s.skip()
	}
	if e != nil {
		s.err = e
		return Token{}, Token{}, false, e
	}
	return key, s.tok, true, nil
}

// AppendTokens reads the rest of the document, appends its tokens to dst
// (without the EOF token) and returns the extended slice and what Finish
// would return. Once a refusal has been found it appends no more tokens but
// still reads to the end, for a later syntax error. It is Next in a loop,
// for a caller that walks every token anyway: one call instead of one per
// token.
func (s *Scanner) AppendTokens(dst []Token) ([]Token, error) {
	for s.err == nil && s.state != stDone {
		if err := s.next(); err != nil {
			s.err = err
			break
		}
		if s.refusal == nil && s.tok.Kind != EOF {
			dst = append(dst, s.tok)
		}
	}
	return dst, s.Finish()
}

// AppendUnquote appends the text of the string literal lit (quotes
// included), which a Scanner has validated under any profile, and returns
// the extended buffer. It decodes exactly as encoding/json does: escapes
// are decoded, a lone surrogate escape becomes U+FFFD, and so does each
// byte that is not part of valid UTF-8. Under the strict profiles neither
// of the last two can occur.
func AppendUnquote(dst, lit []byte) []byte {
	body := lit[1 : len(lit)-1]
	n := len(dst)
	if bytes.IndexByte(body, '\\') < 0 {
		dst = append(dst, body...)
	} else {
		dst = jsonstr.AppendUnescaped(dst, body)
	}
	if utf8.Valid(dst[n:]) {
		return dst
	}
	bad := append([]byte(nil), dst[n:]...)
	dst = dst[:n]
	for len(bad) > 0 {
		r, size := utf8.DecodeRune(bad)
		dst = utf8.AppendRune(dst, r)
		bad = bad[size:]
	}
	return dst
}

// AppendCompact appends v, a JSON value that a Scanner has validated under
// any profile, without the whitespace between its tokens, and returns the
// extended buffer. The result is what encoding/json's Compact writes. It
// does not validate v again: it only tells strings from what lies between
// them.
func AppendCompact(dst, v []byte) []byte {
	i := 0
	for i < len(v) {
		// Copy up to the next whitespace outside strings.
		start := i
		for i < len(v) {
			c := v[i]
			if isSpace(c) {
				break
			}
			i++
			if c == '"' {
				i, _, _ = stringEnd(v, i)
			}
		}
		dst = append(dst, v[start:i]...)
		for i < len(v) && isSpace(v[i]) {
			i++
		}
	}
	return dst
}

// stringEnd returns the offset just past the closing quote of the valid
// string whose body starts at v[i], and whether the string holds an escape;
// ok is false, and end len(v), when v ends before the string does. Each
// escape is two bytes as far as quotes and backslashes go (the four hex
// digits of \u hold neither), and the next quote is searched for again only
// once an escaped one was passed, so the work is linear.
func stringEnd(v []byte, i int) (end int, escaped, ok bool) {
	q := -1 // the next quote at or after i, once searched for
	for {
		if q < i {
			k := bytes.IndexByte(v[i:], '"')
			if k < 0 {
				return len(v), escaped, false
			}
			q = i + k
		}
		b := bytes.IndexByte(v[i:q], '\\')
		if b < 0 {
			return q + 1, escaped, true
		}
		escaped = true
		if i += b + 2; i > len(v) {
			return len(v), escaped, false
		}
	}
}
