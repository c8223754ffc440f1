package jsonrpc

import (
	"encoding/json"
	"strings"
	"testing"
	"unicode"
	"unicode/utf8"

	"github.com/agentid/agentid/aip"
)

func TestCheckStrict(t *testing.T) {
	tests := []struct {
		name string
		data string
		code int // 0 for valid
	}{
		{"scalar string is valid", `"x"`, 0},
		{"scalar number is valid", `-12.5e3`, 0},
		{"top-level array is valid", `[1,{"a":true},null]`, 0},
		{"surrounding whitespace is valid", " \r\n\t{} \n", 0},
		{"same key in sibling objects is valid", `[{"a":1},{"a":2}]`, 0},
		{"same key at different depths is valid", `{"a":{"a":{"a":1}}}`, 0},
		{"escaped NUL is valid", `"\u0000"`, 0},
		{"empty input is a parse error", ``, aip.CodeParseError},
		{"whitespace only is a parse error", `  `, aip.CodeParseError},
		{"NaN is a parse error", `NaN`, aip.CodeParseError},
		{"two values are a parse error", `1 2`, aip.CodeParseError},
		{"duplicate key in an array element is invalid", `[{"a":1,"a":2}]`, aip.CodeInvalidRequest},
		{"case-variant key is invalid", `{"Path":"/a","path":"/b"}`, aip.CodeInvalidRequest},
		{"empty keys twice are duplicates", `{"":1,"":2}`, aip.CodeInvalidRequest},
		{"duplicate key after the map switch is invalid", bigObject(40) + `,"K3":1}`, aip.CodeInvalidRequest},
		{"later syntax error wins over an earlier duplicate", `{"a":1,"a":2,"b":NaN}`, aip.CodeParseError},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := CheckStrict([]byte(tt.data))
			code := 0
			if err != nil {
				code = err.(*Error).Code
			}
			if code != tt.code {
				t.Errorf("CheckStrict(%.60q) code = %d, want %d (%v)", tt.data, code, tt.code, err)
			}
		})
	}
}

// bigObject returns an unterminated object with n distinct keys k0..k(n-1).
func bigObject(n int) string {
	var b strings.Builder
	b.WriteByte('{')
	for i := range n {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(`"k` + string(rune('0'+i%10)) + strings.Repeat("_", i/10) + `":0`)
	}
	return b.String()
}

// Two keys must be treated as the same whenever strings.EqualFold says so.
// Checked for every rune against every member of its simple-fold orbit.
func TestFoldCoversEqualFold(t *testing.T) {
	for r := rune(0); r <= unicode.MaxRune; r++ {
		if !utf8.ValidRune(r) {
			continue
		}
		want := foldRune(r)
		for f := unicode.SimpleFold(r); f != r; f = unicode.SimpleFold(f) {
			if got := foldRune(f); got != want {
				t.Fatalf("foldRune(%U) = %U but foldRune(%U) = %U, although EqualFold says they match", f, got, r, want)
			}
		}
	}
}

func TestFoldOfASCIIMatchesFoldOfRunes(t *testing.T) {
	for c := 0; c < utf8.RuneSelf; c++ {
		a := appendFoldASCII(nil, []byte{byte(c)})
		u := utf8.AppendRune(nil, foldRune(rune(c)))
		if string(a) != string(u) {
			t.Errorf("ASCII fold of %q = %q, rune fold = %q", rune(c), a, u)
		}
	}
}

// encoding/json matches struct fields case-insensitively. Every key it
// matches against the same field as its lower-case form must be a duplicate.
func TestKeysThatEncodingJSONMatchAreDuplicates(t *testing.T) {
	for _, key := range []string{"ID", "iD", "ſkip", "SKIP", "\u212aind", "KIND", "\u0049d"} {
		var v struct{ Id, Skip, Kind string }
		if err := json.Unmarshal([]byte(`{"`+key+`":"x"}`), &v); err != nil || v.Id+v.Skip+v.Kind != "x" {
			t.Fatalf("encoding/json does not match %q to a field; the test is wrong", key)
		}
		lower := strings.ToLower(strings.NewReplacer("ſ", "s", "\\u212a", "k", "\\u0049", "i").Replace(key))
		if err := CheckStrict([]byte(`{"` + lower + `":"a","` + key + `":"b"}`)); err == nil {
			t.Errorf("encoding/json reads %q as %q, but CheckStrict accepts both in one object", key, lower)
		}
	}
}

func TestAppendUnescaped(t *testing.T) {
	tests := []struct{ in, want string }{
		{`plain`, "plain"},
		{`a\"b\\c\/d`, `a"b\c/d`},
		{`\b\f\n\r\t`, "\b\f\n\r\t"},
		{`\u0041\u00e9\u20AC`, "Aé€"},
		{`\ud83d\ude00!`, "😀!"},
	}
	for _, tt := range tests {
		if got := string(appendUnescaped(nil, []byte(tt.in))); got != tt.want {
			t.Errorf("appendUnescaped(%q) = %q, want %q", tt.in, got, tt.want)
		}
		var want string
		if err := json.Unmarshal([]byte(`"`+tt.in+`"`), &want); err != nil || want != tt.want {
			t.Errorf("test table disagrees with encoding/json for %q: %q, %v", tt.in, want, err)
		}
	}
}
