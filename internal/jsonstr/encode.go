package jsonstr

import "unicode/utf8"

// Escape selects which characters Append escapes beyond those that JSON
// requires. Each level escapes everything the one before it does.
type Escape uint8

const (
	// EscapeMinimal escapes only what RFC 8259 requires: the quotation
	// mark, the backslash and the C0 controls U+0000 to U+001F.
	EscapeMinimal Escape = iota

	// EscapeJS also escapes U+2028 and U+2029, which end a line in
	// JavaScript source before ES2019. The output is then byte for byte
	// what encoding/json writes with HTML escaping turned off.
	EscapeJS

	// EscapeTerminal also escapes DEL, the C1 controls U+0080 to U+009F
	// (U+009B is CSI to some terminals) and the Unicode bidirectional
	// controls, so that the text cannot move the cursor, change colours or
	// reorder what a person sees when the JSON is shown in a terminal.
	EscapeTerminal
)

const hexDigits = "0123456789abcdef"

// Word-at-a-time constants: one bit or one unit per byte of a uint64.
const (
	lsb = 0x0101010101010101
	msb = 0x8080808080808080
)

// plain marks the ASCII bytes that are copied as they are at every level.
// DEL is left out so that the byte loop sees it and decides by level.
var plain = func() (t [utf8.RuneSelf]bool) {
	for c := 0x20; c < 0x7f; c++ {
		t[c] = c != '"' && c != '\\'
	}
	return t
}()

// Append appends s to dst as a quoted JSON string and returns the extended
// buffer. The quotation mark, the backslash and control characters are
// escaped (\n, \r, \t, \b and \f in their short forms, the others as \u00XX);
// '<', '>' and '&' are not, since the output is not meant for HTML. Bytes
// that are not valid UTF-8 are each written as \ufffd. Level e adds the
// escapes described at [Escape].
func Append[S ~string | ~[]byte](dst []byte, s S, e Escape) []byte {
	dst = append(dst, '"')
	start := 0 // s[start:i] is pending, to be copied as it is
	for i := 0; i < len(s); {
		// Most text is printable ASCII: skip it 8 bytes at a time. The
		// test stops at any byte that needs a closer look, DEL included.
		for i+8 <= len(s) && !special(load64(s[i:i+8])) {
			i += 8
		}
		// Then go byte by byte until 8 plain bytes in a row suggest that
		// the word test would pay again. Trying it after every escape or
		// non-ASCII rune halves the speed on text dense with them.
		for run := 0; i < len(s) && run < 8; {
			c := s[i]
			if c < utf8.RuneSelf {
				if plain[c] || c == 0x7f && e < EscapeTerminal {
					i++
					run++
					continue
				}
				dst = append(dst, s[start:i]...)
				switch c {
				case '"', '\\':
					dst = append(dst, '\\', c)
				case '\n':
					dst = append(dst, '\\', 'n')
				case '\r':
					dst = append(dst, '\\', 'r')
				case '\t':
					dst = append(dst, '\\', 't')
				case '\b':
					dst = append(dst, '\\', 'b')
				case '\f':
					dst = append(dst, '\\', 'f')
				default:
					dst = append(dst, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
				}
				i++
				start, run = i, 0
				continue
			}
			run = 0
			// Only the next rune is converted, so that for a []byte the
			// conversion stays small enough not to allocate.
			next := s[i:]
			if len(next) > utf8.UTFMax {
				next = next[:utf8.UTFMax]
			}
			r, n := utf8.DecodeRuneInString(string(next))
			switch {
			case r == utf8.RuneError && n == 1:
				dst = append(dst, s[start:i]...)
				dst = append(dst, `\ufffd`...)
			case e > EscapeMinimal && escapeRune(r, e):
				// Every rune escaped here is in the Basic Multilingual Plane.
				dst = append(dst, s[start:i]...)
				dst = append(dst, '\\', 'u',
					hexDigits[r>>12&0xf], hexDigits[r>>8&0xf], hexDigits[r>>4&0xf], hexDigits[r&0xf])
			default:
				i += n
				continue
			}
			i += n
			start = i
		}
	}
	dst = append(dst, s[start:]...)
	return append(dst, '"')
}

// escapeRune reports whether level e (not EscapeMinimal) escapes the
// non-ASCII rune r.
func escapeRune(r rune, e Escape) bool {
	if r == '\u2028' || r == '\u2029' {
		return true
	}
	if e < EscapeTerminal || r > '\u2069' {
		return false // the common case: everything above the bidi controls
	}
	switch {
	case r <= '\u009f': // C1 controls
		return true
	case r >= '\u202a' && r <= '\u202e': // LRE, RLE, PDF, LRO, RLO
		return true
	case r >= '\u2066': // LRI, RLI, FSI, PDI
		return true
	case r == '\u200e' || r == '\u200f' || r == '\u061c': // LRM, RLM, ALM
		return true
	}
	return false
}

// load64 returns the 8 bytes of b as a little-endian uint64; the compiler
// turns it into a single load.
func load64[S ~string | ~[]byte](b S) uint64 {
	_ = b[7]
	return uint64(b[0]) | uint64(b[1])<<8 | uint64(b[2])<<16 | uint64(b[3])<<24 |
		uint64(b[4])<<32 | uint64(b[5])<<40 | uint64(b[6])<<48 | uint64(b[7])<<56
}

// special reports whether any of the 8 bytes in v is not printable ASCII
// other than the quotation mark and the backslash: a control character, DEL,
// a non-ASCII byte, '"' or '\\'.
//
// (x - lsb) &^ x sets the top bit of each zero byte of x (and possibly of
// bytes above one, which does not change the answer), so it finds the bytes
// equal to '"' or '\\' after an XOR; subtracting 0x20 instead of 1 finds
// the bytes below 0x20. v + lsb sets the top bit of bytes 0x7f and up; a
// carry out of a byte 0xff is harmless since v has that byte's top bit set.
func special(v uint64) bool {
	q := v ^ (lsb * '"')
	bs := v ^ (lsb * '\\')
	return (v|(v+lsb)|(v-lsb*0x20)&^v|(q-lsb)&^q|(bs-lsb)&^bs)&msb != 0
}
