package jsonstr

import (
	"encoding/json"
	"strings"
	"testing"
	"unicode/utf8"
)

func TestAppendUnescapedDecodesLikeEncodingJSON(t *testing.T) {
	tests := []struct{ name, in, want string }{
		{"no escapes", `plain`, "plain"},
		{"empty", ``, ""},
		{"quote, backslash, slash", `a\"b\\c\/d`, `a"b\c/d`},
		{"named controls", `\b\f\n\r\t`, "\b\f\n\r\t"},
		{"\\u escapes in either case", `\u0041\u00e9\u20AC\u20ac`, "Aé€€"},
		{"NUL", `\u0000`, "\x00"},
		{"surrogate pair", `\ud83d\ude00!`, "😀!"},
		{"upper-case surrogate pair", `\uD83D\uDE00`, "😀"},
		{"lone high surrogate", `\ud800x`, "\ufffdx"},
		{"lone high surrogate at the end", `x\ud800`, "x\ufffd"},
		{"lone low surrogate", `\udc00`, "\ufffd"},
		{"high surrogate then a non-surrogate escape", `\ud800\u0041`, "\ufffdA"},
		{"two high surrogates then a low one", `\ud800\ud83d\ude00`, "\ufffd😀"},
		{"escaped backslash before u", `\\u0041`, `\u0041`},
		{"non-ASCII text kept", `日本\n語`, "日本\n語"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := string(AppendUnescaped(nil, []byte(tt.in))); got != tt.want {
				t.Errorf("AppendUnescaped(%q) = %q, want %q", tt.in, got, tt.want)
			}
			var want string
			if err := json.Unmarshal([]byte(`"`+tt.in+`"`), &want); err != nil || want != tt.want {
				t.Errorf("test table disagrees with encoding/json for %q: %q, %v", tt.in, want, err)
			}
		})
	}
}

func TestAppendUnescapedCopiesInvalidUTF8(t *testing.T) {
	// The caller decides what invalid UTF-8 means; decoding must not hide it.
	if got := string(AppendUnescaped([]byte("p:"), []byte("a\xff\\n"))); got != "p:a\xff\n" {
		t.Errorf("got %q", got)
	}
}

func TestAppendUnescapedPrefixStopsBeforeAnEscapeThatCrossesTheLimit(t *testing.T) {
	const body = `ab\ncd\u00e9\ud83d\ude00e`
	tests := []struct {
		n        int
		want     string
		wantUsed int
	}{
		{-1, "", 0},
		{0, "", 0},
		{1, "a", 1},
		{2, "ab", 2},
		{3, "ab", 2}, // inside \n
		{4, "ab\n", 4},
		{6, "ab\ncd", 6},
		{11, "ab\ncd", 6}, // inside \u00e9
		{12, "ab\ncdé", 12},
		{18, "ab\ncdé", 12}, // a lone-looking high surrogate is still half of the pair
		{23, "ab\ncdé", 12},
		{24, "ab\ncdé😀", 24},
		{25, "ab\ncdé😀e", 25},
		{99, "ab\ncdé😀e", 25},
	}
	for _, tt := range tests {
		got, used := AppendUnescapedPrefix(nil, []byte(body), tt.n)
		if string(got) != tt.want || used != tt.wantUsed {
			t.Errorf("n=%d: got %q, %d; want %q, %d", tt.n, got, used, tt.want, tt.wantUsed)
		}
	}
}

func TestAppendUnescapedPrefixCutsTextAnywhere(t *testing.T) {
	got, used := AppendUnescapedPrefix(nil, []byte("é\\n"), 1)
	if string(got) != "\xc3" || used != 1 {
		t.Errorf("got %q, %d; want the first byte of é", got, used)
	}
}

// TestAppendUnescapedPrefixAndRestMakeTheWhole checks the promise that
// body[used:] completes the text, for every limit.
func TestAppendUnescapedPrefixAndRestMakeTheWhole(t *testing.T) {
	quoted := Append(nil, "a\"\\/\b\f\n\r\t\x01é😀\u2028\u202e", EscapeTerminal)
	for _, s := range []string{string(quoted[1 : len(quoted)-1]), strings.Repeat(`x\u0041`, 5), `\ud800\ud83d\ude00\udc00 `} {
		body := []byte(s)
		whole := string(AppendUnescaped(nil, body))
		for n := 0; n <= len(body); n++ {
			prefix, used := AppendUnescapedPrefix(nil, body, n)
			if used > n {
				t.Fatalf("%q, n=%d: used %d", body, n, used)
			}
			if got := string(AppendUnescaped(prefix, body[used:])); got != whole {
				t.Fatalf("%q, n=%d: prefix and rest give %q, want %q", body, n, got, whole)
			}
		}
	}
}

func TestAppendUnescapedRoundTripsAppend(t *testing.T) {
	for r := rune(0); r <= utf8.MaxRune; r += 7 {
		s := "<" + string(r) + ">"
		for _, e := range levels {
			out := Append(nil, s, e)
			if got := string(AppendUnescaped(nil, out[1:len(out)-1])); got != s {
				t.Fatalf("%v: %U: got %q, want %q", e, r, got, s)
			}
		}
	}
}

func TestHex4AcceptsExactlyFourHexDigits(t *testing.T) {
	tests := []struct {
		in     string
		want   rune
		wantOK bool
	}{
		{"0041", 'A', true},
		{"00e9", 'é', true},
		{"20AC", '€', true},
		{"fFfF", 0xffff, true},
		{"d83dmore", 0xd83d, true},
		{"", 0, false},
		{"123", 0, false},
		{"12g4", 0, false},
		{"-123", 0, false},
		{" 123", 0, false},
	}
	for _, tt := range tests {
		if got, ok := Hex4([]byte(tt.in)); got != tt.want || ok != tt.wantOK {
			t.Errorf("Hex4(%q) = %#x, %v; want %#x, %v", tt.in, got, ok, tt.want, tt.wantOK)
		}
	}
}
