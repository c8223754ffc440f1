package strictjson

import (
	"unicode"
	"unicode/utf8"
)

// FoldRune maps r to the representative of its case-folding class: the
// smallest rune of the simple-fold orbit of unicode.ToUpper(unicode.ToLower(r)).
//
// Two keys are case variants when they fold to the same runes. The simple-fold
// orbit alone is exactly the rule of Go's encoding/json, which matches a JSON
// member to a struct field with bytes.EqualFold semantics (its foldName maps
// each rune to the smallest of its orbit, so "ſ" matches "S" and the Kelvin
// sign matches "K"). Going through ToUpper(ToLower(r)) first widens it to the
// folding of case-insensitive matchers that convert case instead (older Go
// releases, .NET's OrdinalIgnoreCase, Java's equalsIgnoreCase): under it "İ"
// and "ı" match "I" too. TestFoldRuneCoversEqualFold checks every rune.
func FoldRune(r rune) rune {
	if r < utf8.RuneSelf {
		if 'a' <= r && r <= 'z' {
			r -= 'a' - 'A'
		}
		return r
	}
	r = unicode.ToUpper(unicode.ToLower(r))
	min := r
	for f := unicode.SimpleFold(r); f != r; f = unicode.SimpleFold(f) {
		if f < min {
			min = f
		}
	}
	return min
}

// AppendFold appends the folded form of the valid UTF-8 key to dst: each
// rune replaced by FoldRune. Two keys are case variants exactly when their
// folded forms are equal.
func AppendFold(dst, key []byte) []byte {
	for i := 0; i < len(key); {
		if c := key[i]; c < utf8.RuneSelf {
			if 'a' <= c && c <= 'z' {
				c -= 'a' - 'A'
			}
			dst = append(dst, c)
			i++
			continue
		}
		r, n := utf8.DecodeRune(key[i:])
		dst = utf8.AppendRune(dst, FoldRune(r))
		i += n
	}
	return dst
}

// EqualFold reports whether the valid UTF-8 keys a and b are case variants
// of each other (or equal) under FoldRune. It does not allocate.
func EqualFold(a, b []byte) bool {
	for len(a) > 0 && len(b) > 0 {
		ca, cb := a[0], b[0]
		if ca < utf8.RuneSelf && cb < utf8.RuneSelf {
			if 'a' <= ca && ca <= 'z' {
				ca -= 'a' - 'A'
			}
			if 'a' <= cb && cb <= 'z' {
				cb -= 'a' - 'A'
			}
			if ca != cb {
				return false
			}
			a, b = a[1:], b[1:]
			continue
		}
		ra, na := utf8.DecodeRune(a)
		rb, nb := utf8.DecodeRune(b)
		if FoldRune(ra) != FoldRune(rb) {
			return false
		}
		a, b = a[na:], b[nb:]
	}
	return len(a) == len(b)
}
