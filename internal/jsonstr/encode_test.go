package jsonstr

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"unicode/utf8"
)

var levels = []Escape{EscapeMinimal, EscapeJS, EscapeTerminal}

func (e Escape) String() string {
	switch e {
	case EscapeMinimal:
		return "EscapeMinimal"
	case EscapeJS:
		return "EscapeJS"
	case EscapeTerminal:
		return "EscapeTerminal"
	}
	return fmt.Sprintf("Escape(%d)", uint8(e))
}

// escapedBy is the specification of Escape, written independently of the
// code under test: whether level e writes the valid rune r as an escape.
func escapedBy(r rune, e Escape) bool {
	switch {
	case r < 0x20 || r == '"' || r == '\\':
		return true
	case r == 0x2028 || r == 0x2029:
		return e >= EscapeJS
	case r == 0x7f, 0x80 <= r && r <= 0x9f,
		r == 0x061c, r == 0x200e, r == 0x200f,
		0x202a <= r && r <= 0x202e, 0x2066 <= r && r <= 0x2069:
		return e >= EscapeTerminal
	}
	return false
}

// replaceInvalid is s with each byte that is not part of valid UTF-8
// replaced by U+FFFD, which is how a []rune conversion reads it.
func replaceInvalid(s string) string { return string([]rune(s)) }

func TestAppendWritesEachLevelsEscapes(t *testing.T) {
	tests := []struct {
		name string
		in   string
		e    Escape
		want string
	}{
		{"empty string", "", EscapeMinimal, `""`},
		{"quote and backslash", `say "a\b"`, EscapeMinimal, `"say \"a\\b\""`},
		{"short forms for the five named controls", "\n\r\t\b\f", EscapeMinimal, `"\n\r\t\b\f"`},
		{"other C0 controls as \\u00XX", "\x00\x01\x1b\x1f", EscapeMinimal, `"\u0000\u0001\u001b\u001f"`},
		{"no HTML escaping", "<a href='x'>&amp;</a>", EscapeMinimal, `"<a href='x'>&amp;</a>"`},
		{"slash is not escaped", "a/b", EscapeMinimal, `"a/b"`},
		{"non-ASCII kept", "é€😀 日本", EscapeMinimal, `"é€😀 日本"`},
		{"invalid UTF-8 becomes \\ufffd per byte", "a\xffb\xc3(\xed\xa0\x80", EscapeMinimal, `"a\ufffdb\ufffd(\ufffd\ufffd\ufffd"`},
		{"truncated sequence at the end", "ab\xe2\x82", EscapeMinimal, `"ab\ufffd\ufffd"`},
		{"literal U+FFFD kept", "\ufffd", EscapeJS, "\"\ufffd\""},
		{"minimal keeps line separators", "a\u2028b\u2029", EscapeMinimal, "\"a\u2028b\u2029\""},
		{"JS escapes line separators", "a\u2028b\u2029", EscapeJS, `"a\u2028b\u2029"`},
		{"JS keeps DEL, C1 and bidi", "\x7f\u009b\u202e", EscapeJS, "\"\x7f\u009b\u202e\""},
		{"terminal escapes DEL", "del\x7f", EscapeTerminal, `"del\u007f"`},
		{"terminal escapes C1", "\u0080\u009b31m\u009f\u00a0", EscapeTerminal, "\"\\u0080\\u009b31m\\u009f\u00a0\""},
		{"terminal escapes bidi controls", "\u202a\u202e\u2066\u2069\u200e\u200f\u061c", EscapeTerminal,
			`"\u202a\u202e\u2066\u2069\u200e\u200f\u061c"`},
		{"terminal escapes line separators", "\u2028\u2029", EscapeTerminal, `"\u2028\u2029"`},
		{"terminal keeps neighbours of the bidi ranges", "\u2027\u202f\u2065\u206a\u200d\u2010", EscapeTerminal,
			"\"\u2027\u202f\u2065\u206a\u200d\u2010\""},
		{"escape after a long ASCII run", strings.Repeat("x", 17) + "\x01" + strings.Repeat("y", 9), EscapeMinimal,
			`"` + strings.Repeat("x", 17) + `\u0001` + strings.Repeat("y", 9) + `"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := string(Append(nil, tt.in, tt.e)); got != tt.want {
				t.Errorf("Append(%q, %v) = %s, want %s", tt.in, tt.e, got, tt.want)
			}
			if got := string(Append(nil, []byte(tt.in), tt.e)); got != tt.want {
				t.Errorf("Append([]byte(%q), %v) = %s, want %s", tt.in, tt.e, got, tt.want)
			}
		})
	}
}

func TestAppendAppendsToDst(t *testing.T) {
	if got := string(Append([]byte("x:"), "a", EscapeMinimal)); got != `x:"a"` {
		t.Errorf("got %s", got)
	}
}

// TestAppendEscapesExactlyTheSpecifiedRunes checks every Unicode scalar
// value at every level, at each position relative to the 8-byte fast path.
func TestAppendEscapesExactlyTheSpecifiedRunes(t *testing.T) {
	for _, e := range levels {
		var buf []byte
		for r := rune(0); r <= utf8.MaxRune; r++ {
			if !utf8.ValidRune(r) {
				continue
			}
			s := string(r)
			buf = Append(buf[:0], s, e)
			literal := len(buf) == len(s)+2 && string(buf[1:len(buf)-1]) == s
			if literal == escapedBy(r, e) {
				t.Errorf("%v: Append(%U) = %s, escaped: %v, want %v", e, r, buf, !literal, escapedBy(r, e))
			}
			if !literal && r > 0x7f && string(buf) != fmt.Sprintf(`"\u%04x"`, r) {
				t.Errorf("%v: Append(%U) = %s, want a lower-case \\u escape", e, r, buf)
			}
		}
		// The ASCII fast path looks at 8 bytes at a time: put each byte
		// value at every offset of a 16-byte run.
		for c := 0; c < 0x100; c++ {
			for off := range 16 {
				in := []byte(strings.Repeat("a", 16))
				in[off] = byte(c)
				want := `"` + string(in[:off]) + string(Append(nil, []byte{byte(c)}, e)[1:]) // ends in the closing quote
				want = want[:len(want)-1] + string(in[off+1:]) + `"`
				if got := string(Append(nil, in, e)); got != want {
					t.Fatalf("%v: byte %#x at offset %d: got %s, want %s", e, c, off, got, want)
				}
			}
		}
	}
}

// TestAppendRoundTripsThroughEncodingJSON decodes the output of every rune,
// grouped by class, with encoding/json.
func TestAppendRoundTripsThroughEncodingJSON(t *testing.T) {
	classes := map[string]string{
		"ASCII":             asciiAll(),
		"C1 and Latin-1":    runeRange(0x80, 0xff),
		"ALM, LRM, RLM":     "\u061c\u200e\u200f",
		"line separators":   "\u2028\u2029",
		"bidi embeddings":   runeRange(0x202a, 0x202e),
		"bidi isolates":     runeRange(0x2066, 0x2069),
		"BMP sample":        "é€日本語한국어ـ\ufeff\ufffd\uffff",
		"astral":            "😀\U00010000\U0010ffff",
		"invalid UTF-8":     "\xff\xfe\xc0\xaf\xed\xa0\x80\xf4\x90\x80\x80",
		"mixed with quotes": "\"\\/\n<&>\u2028",
	}
	for name, s := range classes {
		for _, e := range levels {
			out := Append(nil, s, e)
			var got string
			if err := json.Unmarshal(out, &got); err != nil {
				t.Errorf("%s, %v: %s is not valid JSON: %v", name, e, out, err)
				continue
			}
			if want := replaceInvalid(s); got != want {
				t.Errorf("%s, %v: decodes to %q, want %q", name, e, got, want)
			}
		}
	}
}

// TestAppendEscapeJSMatchesEncodingJSON holds EscapeJS to its promise of
// writing what encoding/json writes with HTML escaping off.
func TestAppendEscapeJSMatchesEncodingJSON(t *testing.T) {
	for _, s := range []string{asciiAll(), runeRange(0x80, 0x3ff), runeRange(0x2000, 0x2070), "\xff\xed\xa0\x80a\xc3", "<&>😀"} {
		if got, want := Append(nil, s, EscapeJS), encodingJSON(s); !bytes.Equal(got, want) {
			t.Errorf("Append(%q, EscapeJS) = %s, encoding/json writes %s", s, got, want)
		}
	}
}

func TestAppendDoesNotAllocateWithRoom(t *testing.T) {
	if raceEnabled {
		t.Skip("allocation count: not meaningful under -race")
	}
	s := strings.Repeat("mixed é\u2028\x01\xff text ", 20)
	b := []byte(s)
	dst := make([]byte, 0, 4*len(s))
	for _, e := range levels {
		if n := testing.AllocsPerRun(20, func() { Append(dst, s, e) }); n != 0 {
			t.Errorf("%v, string: %v allocations", e, n)
		}
		if n := testing.AllocsPerRun(20, func() { Append(dst, b, e) }); n != 0 {
			t.Errorf("%v, []byte: %v allocations", e, n)
		}
	}
}

func FuzzAppend(f *testing.F) {
	for _, s := range []string{"", "plain", "\"\\\n\x00\x7f", "\xff\u2028\u202e\u009b", "é😀\xed\xa0\x80", strings.Repeat("a", 20) + "\x1b[2J"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		want := replaceInvalid(s)
		for _, e := range levels {
			out := Append(nil, s, e)
			if !bytes.Equal(out, Append(nil, []byte(s), e)) {
				t.Fatalf("%v: string and []byte forms differ for %q", e, s)
			}
			if !utf8.Valid(out) {
				t.Fatalf("%v: output is not valid UTF-8: %q", e, out)
			}
			var got string
			if err := json.Unmarshal(out, &got); err != nil {
				t.Fatalf("%v: %q is not valid JSON: %v", e, out, err)
			}
			if got != want {
				t.Fatalf("%v: %q decodes to %q, want %q", e, out, got, want)
			}
			for _, r := range string(out[1 : len(out)-1]) {
				if escapedBy(r, e) && r != '"' && r != '\\' {
					t.Fatalf("%v: %U written unescaped in %q", e, r, out)
				}
			}
			if back := string(AppendUnescaped(nil, out[1:len(out)-1])); back != want {
				t.Fatalf("%v: AppendUnescaped(%q) = %q, want %q", e, out, back, want)
			}
		}
		if got, want := Append(nil, s, EscapeJS), encodingJSON(s); !bytes.Equal(got, want) {
			t.Fatalf("Append(%q, EscapeJS) = %s, encoding/json writes %s", s, got, want)
		}
	})
}

func asciiAll() string { return runeRange(0, 0x7f) }

func runeRange(lo, hi rune) string {
	var b strings.Builder
	for r := lo; r <= hi; r++ {
		b.WriteRune(r)
	}
	return b.String()
}

func encodingJSON(s string) []byte {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(s); err != nil {
		panic(err)
	}
	return bytes.TrimSuffix(buf.Bytes(), []byte("\n"))
}
