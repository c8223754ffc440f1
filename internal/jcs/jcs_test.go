package jcs

import (
	"bytes"
	"errors"
	"strings"
	"testing"

	"github.com/agentid/agentid/internal/strictjson"
	"github.com/agentid/agentid/internal/testenv"
	gowebpki "github.com/gowebpki/jcs"
)

func TestOutputEqualsTheRFC8785TestVectors(t *testing.T) {
	for _, v := range testenv.RFC8785Vectors(t) {
		input, want := v.Input, v.Want
		t.Run(v.Name, func(t *testing.T) {
			got, err := Transform(input)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, want) {
				t.Fatalf("got  %q\nwant %q", got, want)
			}
		})
	}
}

func TestCanonicalForm(t *testing.T) {
	tests := []struct {
		name, in, want string
	}{
		// Structure and whitespace.
		{"whitespace around and inside values is removed", " \t\r\n{ \"a\" : [ 1 , 2 ] , \"b\" : { } }\n", `{"a":[1,2],"b":{}}`},
		{"a top-level scalar is canonicalized", ` "x" `, `"x"`},
		{"empty containers stay empty", `[{},[],""]`, `[{},[],""]`},
		{"array order is kept", `[3,1,2]`, `[3,1,2]`},
		{"nested objects are sorted at every level", `{"b":{"z":1,"y":{"d":0,"c":0}},"a":[{"b":1,"a":2}]}`, `{"a":[{"a":2,"b":1}],"b":{"y":{"c":0,"d":0},"z":1}}`},

		// Key order.
		{"keys sort by code unit, shorter prefix first", `{"ab":1,"a":2,"b":3,"":4}`, `{"":4,"a":2,"ab":1,"b":3}`},
		{"uppercase sorts before lowercase", `{"a":1,"B":2}`, `{"B":2,"a":1}`},
		{"control characters sort first", `{"a":1,"\r":2}`, `{"\r":2,"a":1}`},
		{"astral characters sort before U+E000-U+FFFF (UTF-16, not UTF-8, order)", `{"\uffff":1,"😀":2,"\ue000":3,"\ud7ff":4}`, "{\"\ud7ff\":4,\"😀\":2,\"\ue000\":3,\"\uffff\":1}"},
		{"astral characters sort among themselves by code point", `{"\ud83d\ude03":1,"\ud83d\ude00":2,"𐀀":3}`, `{"𐀀":3,"😀":2,"😃":1}`},
		{"keys compare after unescaping", `{"\u0062":1,"a":2}`, `{"a":2,"b":1}`},
		{"a key that differs inside a multi-byte character", `{"é":1,"è":2}`, `{"è":2,"é":1}`},
		{"cyberphone's sorting example", `{"\u20ac":"Euro Sign","\r":"Carriage Return","\ufb33":"Hebrew Letter Dalet With Dagesh","1":"One","\ud83d\ude00":"Emoji: Grinning Face","\u0080":"Control","\u00f6":"Latin Small Letter O With Diaeresis"}`,
			"{\"\\r\":\"Carriage Return\",\"1\":\"One\",\"\u0080\":\"Control\",\"ö\":\"Latin Small Letter O With Diaeresis\",\"€\":\"Euro Sign\",\"😀\":\"Emoji: Grinning Face\",\"\ufb33\":\"Hebrew Letter Dalet With Dagesh\"}"},

		// Strings.
		{"only the mandatory escapes are written", `"\"\\\b\f\n\r\t"`, `"\"\\\b\f\n\r\t"`},
		{"other control characters are written as lowercase hex escapes", `"\u0000\u001F\u000b"`, `"\u0000\u001f\u000b"`},
		{"escaped printable characters are written literally", `"\u00e9\u0041\/\u20AC"`, `"éA/€"`},
		{"a surrogate pair escape becomes UTF-8", `"\uD83D\uDE00"`, `"😀"`},
		{"DEL, U+2028 and HTML characters are not escaped", "\"\x7f\u2028<>&'\"", "\"\x7f\u2028<>&'\""},
		{"escaped keys are re-escaped minimally", `{"\u000a\u0022":1}`, `{"\n\"":1}`},

		// Numbers (ECMAScript Number::toString of the nearest double).
		{"short integers are kept", `[0,-1,123456789012345]`, `[0,-1,123456789012345]`},
		{"negative zero is 0", `[-0,-0.0,-0e5]`, `[0,0,0]`},
		{"fractions and exponents are normalized", `[1.0,1.50,10e-1,1E2,0.5e1]`, `[1,1.5,1,100,5]`},
		{"1e21 is the first exponential", `[1e21,999999999999999900000,1e20]`, `[1e+21,999999999999999900000,100000000000000000000]`},
		{"1e-6 is positional, 1e-7 exponential", `[1e-6,1e-7,0.0000001234]`, `[0.000001,1e-7,1.234e-7]`},
		{"the smallest subnormal", `[5e-324,-5e-324]`, `[5e-324,-5e-324]`},
		{"the largest double", `1.7976931348623157e308`, `1.7976931348623157e+308`},
		{"shortest round-trip digits", `[0.30000000000000004,0.1000000000000000055511151231257827,4.35,0.000001000000000000001]`, `[0.30000000000000004,0.1,4.35,0.000001000000000000001]`},
		{"integers beyond 2^53 round to a double", `[9007199254740993,9007199254740992,18014398509481985,1234567890123456789]`, `[9007199254740992,9007199254740992,18014398509481984,1234567890123456800]`},
		{"sixteen-digit integers go through the double", `[1000000000000001,-9999999999999999]`, `[1000000000000001,-10000000000000000]`},
		{"underflow is zero", `[1e-400,-1e-400]`, `[0,0]`},
		{"exponent with many digits", `[1e0000000000000000000001,123e-0002]`, `[10,1.23]`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Transform([]byte(tt.in))
			if err != nil {
				t.Fatal(err)
			}
			if string(got) != tt.want {
				t.Fatalf("got  %s\nwant %s", got, tt.want)
			}
			// The reference implementation agrees.
			ref, err := gowebpki.Transform([]byte(tt.in))
			if err != nil || !bytes.Equal(ref, got) {
				t.Fatalf("gowebpki/jcs: %s (%v)", ref, err)
			}
		})
	}
}

func TestRejects(t *testing.T) {
	tests := []struct {
		name, in string
	}{
		{"nil input", "\x00nil"},
		{"empty input", ""},
		{"only whitespace", " \n"},
		{"trailing data", `{} {}`},
		{"a trailing comma in an array", `[1,]`},
		{"a trailing comma in an object", `{"a":1,}`},
		{"an unterminated object", `{"a":1`},
		{"an unterminated string", `"abc`},
		{"a missing colon", `{"a" 1}`},
		{"a non-string key", `{1:1}`},
		{"a bad literal", `[tru]`},
		{"a number with a leading zero", `01`},
		{"a number with a bare dot", `1.`},
		{"a number with an empty exponent", `1e+`},
		{"a plus sign", `+1`},
		{"a hex number", `0x10`},
		{"NaN", `NaN`},
		{"a number beyond the double range", `1e309`},
		{"a negative number beyond the double range", `-1.8e308`},
		{"a raw control character in a string", "\"a\tb\""},
		{"an unknown escape", `"\a"`},
		{"a short \\u escape", `"\u12"`},
		{"a non-hex \\u escape", `"\u12g4"`},
		{"duplicate keys", `{"a":1,"a":2}`},
		{"keys equal after unescaping", `{"a":1,"\u0061":2}`},
		{"duplicate keys in a nested object", `[{"x":{"b":1,"c":2,"b":3}}]`},
		{"a lone high surrogate escape", `"\ud800"`},
		{"a high surrogate escape followed by a character", `"\ud800x"`},
		{"a high surrogate escape followed by a non-low escape", `"\ud800\u0041"`},
		{"two high surrogate escapes", `"\ud800\ud800"`},
		{"a lone low surrogate escape", `"\udc00"`},
		{"invalid UTF-8", "\"\xff\""},
		{"a truncated UTF-8 sequence", "\"\xc3\""},
		{"an overlong UTF-8 encoding", "\"\xc0\xaf\""},
		{"an encoded surrogate", "\"\xed\xa0\x80\""},
		{"invalid UTF-8 in a key", "{\"\xff\":1}"},
		{"non-ASCII outside strings", "[1,\xc2\xa0 2]"},
		{"a byte order mark", "\ufeff{}"},
		{"nesting beyond 10000 levels", strings.Repeat("[", 10001) + strings.Repeat("]", 10001)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in := []byte(tt.in)
			if tt.in == "\x00nil" {
				in = nil
			}
			got, err := Transform(in)
			var e *Error
			if !errors.As(err, &e) {
				t.Fatalf("got %q, %v; want an *Error", got, err)
			}
			if got != nil {
				t.Fatalf("got output %q with the error", got)
			}
			if _, err := gowebpki.Transform(in); err == nil {
				t.Fatal("gowebpki/jcs accepts it")
			}
		})
	}
}

func TestNestingTo10000LevelsIsAccepted(t *testing.T) {
	in := strings.Repeat(`{"a":[`, 5000) + strings.Repeat("]}", 5000)
	got, err := Transform([]byte(in))
	if err != nil || string(got) != in {
		t.Fatalf("got %d bytes, %v", len(got), err)
	}
}

func TestCanonicalizeAppendsToDst(t *testing.T) {
	dst := []byte("prefix:")
	got, err := Canonicalize(dst, []byte(`{"b":1,"a":2}`))
	if err != nil || string(got) != `prefix:{"a":2,"b":1}` {
		t.Fatalf("got %q, %v", got, err)
	}
	got, err = Canonicalize(dst, []byte(`{"b":1,"b":2}`))
	if err == nil || string(got) != "prefix:" {
		t.Fatalf("on error got %q, %v; want dst unchanged and an error", got, err)
	}
}

func TestCanonicalizeWithout(t *testing.T) {
	tests := []struct {
		name, in, key, want string
	}{
		{"the top-level member is left out", `{"signatures":[1],"b":1,"a":2}`, "signatures", `{"a":2,"b":1}`},
		{"it may be the last member", `{"b":1,"signatures":{}}`, "signatures", `{"b":1}`},
		{"it may be the only member", `{"signatures":[]}`, "signatures", `{}`},
		{"a document without it is unchanged", `{"b":1,"a":2}`, "signatures", `{"a":2,"b":1}`},
		{"nested members of that name are kept", `{"x":{"signatures":1},"signatures":2}`, "signatures", `{"x":{"signatures":1}}`},
		{"the key matches after unescaping", `{"\u0073ignatures":1,"a":2}`, "signatures", `{"a":2}`},
		{"the match is exact", `{"Signatures":1,"signatures ":2}`, "signatures", `{"Signatures":1,"signatures ":2}`},
		{"a non-object document is canonicalized whole", `[{"signatures":1}]`, "signatures", `[{"signatures":1}]`},
		{"the empty key can be left out", `{"":1,"a":2}`, "", `{"a":2}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := CanonicalizeWithout(nil, []byte(tt.in), tt.key)
			if err != nil || string(got) != tt.want {
				t.Fatalf("got %s, %v; want %s", got, err, tt.want)
			}
		})
	}
	for _, in := range []string{`{"signatures":[1,],"a":1}`, `{"signatures":1,"signatures":2}`, `{"signatures":"\ud800"}`} {
		if got, err := CanonicalizeWithout(nil, []byte(in), "signatures"); err == nil {
			t.Errorf("%s: got %s; the omitted member must still be valid", in, got)
		}
	}
}

func TestCompareUTF16MatchesEncodingToUTF16(t *testing.T) {
	// Characters at the boundaries where UTF-8 and UTF-16 order differ.
	chars := []string{"", "\x00", "a", "\u007f", "\u0080", "\u07ff", "\u0800", "\ud7ff", "\ue000", "\uffff", "\U00010000", "\U0001f600", "\U0010ffff"}
	var strs []string
	for _, a := range chars {
		for _, b := range chars {
			strs = append(strs, a+b, "x"+a+b)
		}
	}
	ref := func(a, b string) int {
		ua, ub := utf16Units(a), utf16Units(b)
		for i := 0; i < len(ua) && i < len(ub); i++ {
			if ua[i] != ub[i] {
				return int(ua[i]) - int(ub[i])
			}
		}
		return len(ua) - len(ub)
	}
	sign := func(x int) int { return min(max(x, -1), 1) }
	for _, a := range strs {
		for _, b := range strs {
			if got, want := sign(compareUTF16([]byte(a), []byte(b))), sign(ref(a, b)); got != want {
				t.Fatalf("compare(%q, %q) = %d, want %d", a, b, got, want)
			}
		}
	}
}

func utf16Units(s string) []uint16 {
	var u []uint16
	for _, r := range s {
		if r >= 0x10000 {
			r -= 0x10000
			u = append(u, uint16(0xD800+r>>10), uint16(0xDC00+r&0x3FF))
		} else {
			u = append(u, uint16(r))
		}
	}
	return u
}

func TestSmallDocumentAllocatesOnlyItsOutput(t *testing.T) {
	if raceEnabled {
		t.Skip("sync.Pool drops items at random under -race")
	}
	Transform(card) // warm the pool
	allocs := testing.AllocsPerRun(100, func() {
		if _, err := CanonicalizeWithout(nil, card, "signatures"); err != nil {
			t.Fatal(err)
		}
	})
	if allocs > 1 {
		t.Fatalf("%v allocations per call, want 1", allocs)
	}
	buf := make([]byte, 0, 2*len(card))
	allocs = testing.AllocsPerRun(100, func() {
		if _, err := Canonicalize(buf[:0], card); err != nil {
			t.Fatal(err)
		}
	})
	if allocs > 0 {
		t.Fatalf("%v allocations per call into a large enough dst, want 0", allocs)
	}
}

// What the strict scanner refuses is reported with its error, under this
// package's prefix, not described again.
func TestScannerErrorsAreWrapped(t *testing.T) {
	_, err := Transform([]byte(`{"a":1,"a":2}`))
	var se *strictjson.Error
	if !errors.As(err, &se) || se.Code != strictjson.ErrDuplicateKey {
		t.Fatalf("got %v, want a wrapped duplicate key error", err)
	}
	if got, want := err.Error(), "jcs: strictjson: duplicate key at offset 7"; got != want {
		t.Errorf("Error() = %q, want %q", got, want)
	}
	if _, err := Transform(nil); errors.As(err, &se) || err.Error() != "jcs: no JSON data at offset 0" {
		t.Errorf("Transform(nil) = %v, want the package's own error", err)
	}
}
