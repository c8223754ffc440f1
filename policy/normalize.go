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
	// Invisible characters are removed first, so that NFKC composes what they
	// separated ("e\u200b\u0301" must become "é", as "é" does), and again at
	// the end. NFKC is applied again after lowercasing because lowercasing
	// can leave a string that is not in NFKC form. Without both, a name could
	// normalize to a string that itself normalizes differently, and a policy
	// name and a request name meant to be equal would not compare equal.
	s = removeInvisible(s)
	s = norm.NFKC.String(s)
	s = strings.ToLower(s)
	s = norm.NFKC.String(s)
	s = removeInvisible(s)
	return strings.TrimSpace(s)
}

func removeInvisible(s string) string {
	return strings.Map(func(r rune) rune {
		if isInvisible(r) {
			return -1
		}
		return r
	}, s)
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
