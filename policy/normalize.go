package policy

import (
	"strings"
	"unicode"

	"golang.org/x/text/unicode/norm"
)

// NormalizeName normalizes a tool or method name for comparison (spec §4.1):
// NFKC, lowercase, removal of invisible and control characters, then trim.
// Invisible characters are removed before trimming so that a zero-width space
// cannot shield leading or trailing whitespace from the trim.
func NormalizeName(s string) string {
	if isPlainASCIIName(s) {
		return s
	}
	s = norm.NFKC.String(s)
	s = strings.ToLower(s)
	s = strings.Map(func(r rune) rune {
		if isInvisible(r) {
			return -1
		}
		return r
	}, s)
	return strings.TrimSpace(s)
}

// isPlainASCIIName reports whether s is already normalized: printable
// lowercase ASCII with no surrounding space. It keeps the hot path
// allocation-free for the common case.
func isPlainASCIIName(s string) bool {
	if s == "" {
		return true
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < 0x21 || c > 0x7e || ('A' <= c && c <= 'Z') {
			return false
		}
	}
	return true
}

// isInvisible reports characters that render as nothing: controls (Cc),
// format characters (Cf: zero-width space/joiners, BOM, bidi controls),
// and other non-printing code points. Ordinary spaces are kept here and
// handled by the trim.
func isInvisible(r rune) bool {
	if r == ' ' || unicode.Is(unicode.Zs, r) {
		return false
	}
	return unicode.IsControl(r) || unicode.Is(unicode.Cf, r) || !unicode.IsPrint(r) && !unicode.IsSpace(r)
}
