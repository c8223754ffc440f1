package jsonstr

import (
	"bytes"
	"unicode/utf16"
	"unicode/utf8"
)

// AppendUnescaped appends to dst the text that body stands for, where body
// is what lies between the quotation marks of a JSON string literal, and
// returns the extended buffer.
//
// body must already be known to be valid: every backslash begins a complete
// escape. A \u escape of a surrogate that is not half of a pair decodes to
// U+FFFD, as in encoding/json. Bytes outside escapes are copied as they are,
// even where they are not valid UTF-8.
func AppendUnescaped(dst, body []byte) []byte {
	dst, _ = AppendUnescapedPrefix(dst, body, len(body))
	return dst
}

// AppendUnescapedPrefix is like AppendUnescaped but decodes only as much of
// body as lies within its first n bytes, and reports how many bytes of body
// it decoded. It stops before an escape that would cross n; a surrogate pair
// counts as one escape. Text outside escapes may be cut anywhere, even
// inside a UTF-8 sequence, so that a caller scanning a byte budget sees
// exactly the bytes within it. The rest, body[used:], can be passed to
// AppendUnescaped to complete the text.
func AppendUnescapedPrefix(dst, body []byte, n int) (out []byte, used int) {
	n = max(min(n, len(body)), 0)
	i := 0
	for i < n {
		k := bytes.IndexByte(body[i:n], '\\')
		if k < 0 {
			return append(dst, body[i:n]...), n
		}
		dst = append(dst, body[i:i+k]...)
		i += k
		r, size := unescape(body[i:])
		if i+size > n {
			break
		}
		if r < utf8.RuneSelf {
			dst = append(dst, byte(r))
		} else {
			dst = utf8.AppendRune(dst, r)
		}
		i += size
	}
	return dst, i
}

// unescape decodes the valid escape at the start of b and returns the rune
// and the length of the escape: 2, 6, or 12 for a surrogate pair.
func unescape(b []byte) (rune, int) {
	switch c := b[1]; c {
	case 'b':
		return '\b', 2
	case 'f':
		return '\f', 2
	case 'n':
		return '\n', 2
	case 'r':
		return '\r', 2
	case 't':
		return '\t', 2
	case 'u':
	default: // '"', '\\', '/'
		return rune(c), 2
	}
	r, _ := Hex4(b[2:])
	if !utf16.IsSurrogate(r) {
		return r, 6
	}
	if len(b) >= 12 && b[6] == '\\' && b[7] == 'u' {
		if r2, ok := Hex4(b[8:]); ok {
			if p := utf16.DecodeRune(r, r2); p != utf8.RuneError {
				return p, 12
			}
		}
	}
	return utf8.RuneError, 6
}

// Hex4 returns the value of the four hexadecimal digits at the start of b,
// the XXXX of a \uXXXX escape. ok is false if b is shorter than four bytes
// or they are not all hexadecimal digits of either case. It is for JSON
// scanners, which must check \u escapes before AppendUnescaped may decode
// them.
func Hex4(b []byte) (r rune, ok bool) {
	if len(b) < 4 {
		return 0, false
	}
	for _, c := range b[:4] {
		switch {
		case '0' <= c && c <= '9':
			c -= '0'
		case 'a' <= c && c <= 'f':
			c = c - 'a' + 10
		case 'A' <= c && c <= 'F':
			c = c - 'A' + 10
		default:
			return 0, false
		}
		r = r<<4 | rune(c)
	}
	return r, true
}
