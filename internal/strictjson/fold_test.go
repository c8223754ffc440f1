package strictjson

import (
	"strings"
	"testing"
	"unicode"
	"unicode/utf8"
)

// Two keys must be case variants whenever strings.EqualFold (and so
// encoding/json) says they match. Checked for every rune against every
// member of its simple-fold orbit.
func TestFoldRuneCoversEqualFold(t *testing.T) {
	for r := rune(0); r <= unicode.MaxRune; r++ {
		if !utf8.ValidRune(r) {
			continue
		}
		want := FoldRune(r)
		for f := unicode.SimpleFold(r); f != r; f = unicode.SimpleFold(f) {
			if got := FoldRune(f); got != want {
				t.Fatalf("FoldRune(%U) = %U but FoldRune(%U) = %U, although EqualFold says they match", f, got, r, want)
			}
		}
	}
}

// The folding rule is wider than EqualFold only through ToUpper(ToLower(r)).
// This pins exactly where, so that a Unicode update that widens it shows.
func TestFoldRuneGoesBeyondEqualFoldOnlyForTheDottedAndDotlessI(t *testing.T) {
	var extra []string
	for r := rune(0); r <= unicode.MaxRune; r++ {
		if !utf8.ValidRune(r) {
			continue
		}
		f := FoldRune(r)
		if !strings.EqualFold(string(r), string(f)) {
			extra = append(extra, string(r)+"→"+string(f))
		}
	}
	if got := strings.Join(extra, " "); got != "İ→I ı→I" {
		t.Errorf("runes folded beyond EqualFold: %s", got)
	}
}

func TestFoldOfASCIIIsItsUpperCase(t *testing.T) {
	for c := rune(0); c < utf8.RuneSelf; c++ {
		if got, want := FoldRune(c), unicode.ToUpper(c); got != want {
			t.Errorf("FoldRune(%q) = %q, want %q", c, got, want)
		}
	}
}

func TestEqualFoldAgreesWithAppendFold(t *testing.T) {
	keys := []string{"", "a", "A", "id", "ID", "ıd", "İd", "ſkip", "SKIP", "\u212aind", "kind", "straße", "STRAßE", "σ", "ς", "Σ", "ab", "abc", "é", "É"}
	for _, a := range keys {
		for _, b := range keys {
			want := string(AppendFold(nil, []byte(a))) == string(AppendFold(nil, []byte(b)))
			if got := EqualFold([]byte(a), []byte(b)); got != want {
				t.Errorf("EqualFold(%q, %q) = %v, want %v", a, b, got, want)
			}
			if strings.EqualFold(a, b) && !want {
				t.Errorf("%q and %q match under strings.EqualFold but do not fold alike", a, b)
			}
		}
	}
}
