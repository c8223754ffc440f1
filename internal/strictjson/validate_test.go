package strictjson

import (
	"encoding/json"
	"errors"
	"strconv"
	"strings"
	"testing"
)

var allProfiles = []Profile{MCP, AgentCard, JOSE, Canonical, Syntax}

func code(err error) Code {
	var e *Error
	if errors.As(err, &e) {
		return e.Code
	}
	if err != nil {
		return 255
	}
	return 0
}

func TestEveryProfileAcceptsRFC8259(t *testing.T) {
	for _, tt := range []struct{ name, in string }{
		{"a top-level string", `"x"`},
		{"a top-level number", `-12.5e3`},
		{"every literal", `[true,false,null]`},
		{"surrounding whitespace", " \r\n\t{} \n"},
		{"whitespace between every token", "{ \"a\" :\t[ 1 ,\r\n2 ] , \"b\" : { } }"},
		{"empty containers", `[{},[],""]`},
		{"numbers of every form", `[0,-0,1.5,-1e3,2E+10,3e-2,0.0,10,123456789]`},
		{"every short escape", `"\"\\\/\b\f\n\r\t"`},
		{"unicode escapes of either case", `"\u0041\u00e9\u20AC\u20ac"`},
		{"an escaped NUL", `"\u0000"`},
		{"an escaped surrogate pair", `"\ud83d\ude00\uD83D\uDE00"`},
		{"UTF-8 of every length", "\"a\u00e9\u20ac\U0001F600\""},
		{"U+FFFD written literally", "\"\uFFFD\""},
		{"DEL and U+2028 unescaped", "\"\x7f\u2028\""},
		{"the same key in sibling objects", `[{"a":1},{"a":2}]`},
		{"the same key at different depths", `{"a":{"a":{"a":1}}}`},
		{"keys that differ in more than case", `{"name":1,"names":2,"nam":3}`},
		{"64 levels of nesting", strings.Repeat("[", 64) + strings.Repeat("]", 64)},
		{"2^53 as an integer", `[9007199254740992,-9007199254740992]`},
		{"the largest double", `1.7976931348623157e308`},
		{"underflow to zero", `[1e-400,-1e-400,0.0000e99999999999]`},
	} {
		for _, p := range allProfiles {
			t.Run(p.String()+"/"+tt.name, func(t *testing.T) {
				if !json.Valid([]byte(tt.in)) {
					t.Fatalf("test bug: %q is not valid JSON", tt.in)
				}
				if err := Validate(p, []byte(tt.in)); err != nil {
					t.Errorf("Validate(%s, %q) = %v", p, tt.in, err)
				}
			})
		}
	}
}

func TestEveryProfileRejectsWhatIsNotJSON(t *testing.T) {
	for _, tt := range []struct {
		name   string
		in     string
		code   Code
		offset int
	}{
		{"empty input", ``, ErrExpectedValue, 0},
		{"whitespace only", `  `, ErrExpectedValue, 2},
		{"two values", `1 2`, ErrTrailingData, 2},
		{"a byte order mark", "\ufeff{}", ErrExpectedValue, 0},
		{"NaN", `NaN`, ErrExpectedValue, 0},
		{"Infinity", `[Infinity]`, ErrExpectedValue, 1},
		{"-Infinity", `[-Infinity]`, ErrInvalidNumber, 2},
		{"a leading plus", `+1`, ErrExpectedValue, 0},
		{"a leading zero", `01`, ErrTrailingData, 1},
		{"a bare dot", `1.`, ErrInvalidNumber, 2},
		{"a fraction without integer part", `.5`, ErrExpectedValue, 0},
		{"an empty exponent", `1e+`, ErrInvalidNumber, 3},
		{"a hex number", `0x10`, ErrTrailingData, 1},
		{"a bad literal", `[tru]`, ErrInvalidLiteral, 1},
		{"a capitalized literal", `True`, ErrExpectedValue, 0},
		{"single quotes", `{'a':1}`, ErrExpectedKey, 1},
		{"an unquoted key", `{a:1}`, ErrExpectedKey, 1},
		{"a non-string key", `{1:1}`, ErrExpectedKey, 1},
		{"a missing colon", `{"a" 1}`, ErrExpectedColon, 5},
		{"a trailing comma in an object", `{"a":1,}`, ErrExpectedKey, 7},
		{"a trailing comma in an array", `[1,]`, ErrExpectedValue, 3},
		{"a missing comma", `[1 2]`, ErrExpectedComma, 3},
		{"a mismatched bracket", `[1}`, ErrExpectedComma, 2},
		{"a comment", `{} // c`, ErrTrailingData, 3},
		{"an unterminated object", `{"a":1`, ErrExpectedComma, 6},
		{"an unterminated array", `[[`, ErrExpectedValue, 2},
		{"an unterminated string", `"abc`, ErrUnterminatedString, 4},
		{"a raw control character in a string", "\"a\tb\"", ErrControlCharacter, 2},
		{"a raw line feed in a string", "\"a\nb\"", ErrControlCharacter, 2},
		{"an unknown escape", `"\a"`, ErrInvalidEscape, 1},
		{"a backslash at the end", `"\`, ErrInvalidEscape, 1},
		{"a short \\u escape", `"\u12"`, ErrInvalidUnicodeEscape, 1},
		{"a non-hex \\u escape", `"\u12g4"`, ErrInvalidUnicodeEscape, 1},
		{"non-ASCII outside strings", "[1,\xc2\xa0 2]", ErrExpectedValue, 3},
		{"a NUL after the value", "{}\x00", ErrTrailingData, 2},
	} {
		for _, p := range allProfiles {
			t.Run(p.String()+"/"+tt.name, func(t *testing.T) {
				if json.Valid([]byte(tt.in)) {
					t.Fatalf("test bug: %q is valid JSON", tt.in)
				}
				err := Validate(p, []byte(tt.in))
				var e *Error
				if !errors.As(err, &e) || !e.Syntax() {
					t.Fatalf("Validate(%q) = %v, want a syntax error", tt.in, err)
				}
				if e.Code != tt.code || e.Offset != tt.offset {
					t.Errorf("Validate(%q) = %v (code %d), want code %d at offset %d", tt.in, err, e.Code, tt.code, tt.offset)
				}
			})
		}
	}
}

func TestStrictProfilesRejectInvalidUTF8AndLoneSurrogates(t *testing.T) {
	for _, tt := range []struct {
		name   string
		in     string
		code   Code
		offset int
	}{
		{"an invalid byte", "\"\xff\"", ErrInvalidUTF8, 1},
		{"a truncated sequence", "\"\xc3\"", ErrInvalidUTF8, 1},
		{"an overlong encoding", "\"\xc0\xaf\"", ErrInvalidUTF8, 1},
		{"a surrogate encoded in UTF-8", "\"\xed\xa0\x80\"", ErrInvalidUTF8, 1},
		{"invalid UTF-8 in a key", "{\"\xff\":1}", ErrInvalidUTF8, 2},
		{"invalid UTF-8 after valid non-ASCII", "\"\u00e9\xff\"", ErrInvalidUTF8, 3},
		{"a lone high surrogate escape", `"\ud800"`, ErrLoneSurrogate, 1},
		{"a high surrogate escape followed by a character", `"\ud800x"`, ErrLoneSurrogate, 1},
		{"a high surrogate escape followed by a non-low escape", `"\ud800\u0041"`, ErrLoneSurrogate, 1},
		{"two high surrogate escapes", `"\ud800\ud800"`, ErrLoneSurrogate, 1},
		{"a lone low surrogate escape", `"\udc00"`, ErrLoneSurrogate, 1},
		{"a reversed pair", `"\ude00\ud83d"`, ErrLoneSurrogate, 1},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if !json.Valid([]byte(tt.in)) {
				t.Fatalf("test bug: encoding/json rejects %q", tt.in)
			}
			if err := Validate(Syntax, []byte(tt.in)); err != nil {
				t.Errorf("Syntax rejects %q, which encoding/json accepts: %v", tt.in, err)
			}
			for _, p := range []Profile{MCP, AgentCard, JOSE, Canonical} {
				err := Validate(p, []byte(tt.in))
				var e *Error
				if !errors.As(err, &e) || e.Code != tt.code || e.Offset != tt.offset || !e.Syntax() {
					t.Errorf("Validate(%s, %q) = %v, want code %d at offset %d", p, tt.in, err, tt.code, tt.offset)
				}
			}
		})
	}
}

func TestEscapeErrorsReportWhereTheEscapeEnds(t *testing.T) {
	for _, tt := range []struct {
		in          string
		code        Code
		offset, end int
		eof         bool
	}{
		{`"\`, ErrInvalidEscape, 1, 2, true},
		{`"\x"`, ErrInvalidEscape, 1, 3, false},
		{`"\u12""`, ErrInvalidUnicodeEscape, 1, 3, false},
		{`"\u12"`, ErrInvalidUnicodeEscape, 1, 3, true},
		{`"\u12`, ErrInvalidUnicodeEscape, 1, 3, true},
		{`"\ud800"`, ErrLoneSurrogate, 1, 7, false},
		{`"\udc00"`, ErrLoneSurrogate, 1, 7, false},
		{`"\ud800\n"`, ErrLoneSurrogate, 1, 7, false},
		{`"\ud800\uzzzz"`, ErrLoneSurrogate, 1, 9, false},
		{`"\ud800\u12`, ErrLoneSurrogate, 1, 9, true},
		{`"\ud800\u0041"`, ErrLoneSurrogate, 1, 13, false},
	} {
		err := Validate(MCP, []byte(tt.in))
		var e *Error
		if !errors.As(err, &e) || e.Code != tt.code || e.Offset != tt.offset || e.End != tt.end || e.EOF != tt.eof {
			t.Errorf("Validate(%q) = %+v, want code %d, offset %d, end %d, eof %v", tt.in, e, tt.code, tt.offset, tt.end, tt.eof)
		}
	}
}

func TestDuplicateKeysAreRefusedAtAnyDepth(t *testing.T) {
	type want struct{ mcp, card, jose, canonical bool } // refused?
	fold := want{true, true, true, false}
	both := want{true, true, true, true}
	for _, tt := range []struct {
		name string
		in   string
		want want
	}{
		{"an exact duplicate", `{"a":1,"a":2}`, both},
		{"empty keys twice", `{"":1,"":2}`, both},
		{"a duplicate in an array element", `[{"a":1,"a":2}]`, both},
		{"a duplicate deep inside", `{"x":[{"p":1,"q":{"r":1,"r":2}}]}`, both},
		{"keys equal after unescaping", `{"a":1,"\u0061":2}`, both},
		{"keys equal after unescaping a pair", `{"😀":1,"\ud83d\ude00":2}`, both},
		{"a duplicate after the switch to a map", bigObject(40) + `,"k3":1}`, both},
		{"a case variant", `{"Path":"/a","path":"/b"}`, fold},
		{"an upper-case variant", `{"method":1,"METHOD":2}`, fold},
		{"an escaped case variant", `{"name":1,"\u004eame":2}`, fold},
		{"a case variant after the switch to a map", bigObject(40) + `,"K3":1}`, fold},
		{"a case variant deep inside", `{"x":[{"path":"/a","PATH":"/b"}]}`, fold},
		{"the Kelvin sign and k", `{"k":1,"\u212a":2}`, fold},
		{"the long s and s", `{"s":1,"ſ":2}`, fold},
		{"dotless i and i", `{"id":1,"ıd":2}`, fold},
		{"dotted capital I and i", `{"id":1,"İd":2}`, fold},
		{"non-ASCII case variants", `{"straße":1,"STRAßE":2}`, fold},
		{"Greek sigma forms", `{"σ":1,"ς":2}`, fold},
		{"a non-ASCII variant of an ASCII key", `{"SKIP":1,"ſkip":2}`, fold},
		{"a duplicate of a key that is not the last", `{"a":1,"b":2,"A":3}`, fold},
	} {
		t.Run(tt.name, func(t *testing.T) {
			for _, c := range []struct {
				p       Profile
				refused bool
			}{{MCP, tt.want.mcp}, {AgentCard, tt.want.card}, {JOSE, tt.want.jose}, {Canonical, tt.want.canonical}, {Syntax, false}} {
				err := Validate(c.p, []byte(tt.in))
				if got := code(err) == ErrDuplicateKey; got != c.refused || err != nil && !got {
					t.Errorf("Validate(%s, %.60q) = %v, want refused=%v", c.p, tt.in, err, c.refused)
				}
			}
		})
	}
}

// bigObject returns an unterminated object with n distinct keys.
func bigObject(n int) string {
	var b strings.Builder
	b.WriteByte('{')
	for i := range n {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(`"k` + strconv.Itoa(i) + `":0`)
	}
	return b.String()
}

func TestADuplicateKeyIsReportedWhereItIs(t *testing.T) {
	err := Validate(MCP, []byte(`{"name":1, "NAME":2}`))
	var e *Error
	if !errors.As(err, &e) || e.Code != ErrDuplicateKey || e.Offset != 11 || e.End != 17 || e.Syntax() {
		t.Fatalf("got %+v", e)
	}
}

// encoding/json matches struct fields case-insensitively. Every key it
// matches against the same field as its lower-case form must be a case
// variant under the folding rule.
func TestKeysThatEncodingJSONMatchesToOneFieldAreCaseVariants(t *testing.T) {
	for _, key := range []string{"ID", "iD", "ſkip", "SKIP", "\u212aind", "KIND", "\u0049d"} {
		var v struct{ Id, Skip, Kind string }
		if err := json.Unmarshal([]byte(`{"`+key+`":"x"}`), &v); err != nil || v.Id+v.Skip+v.Kind != "x" {
			t.Fatalf("encoding/json does not match %q to a field; the test is wrong", key)
		}
		lower := strings.ToLower(strings.NewReplacer("ſ", "s", "\\u212a", "k", "\\u0049", "i").Replace(key))
		if code(Validate(MCP, []byte(`{"`+lower+`":"a","`+key+`":"b"}`))) != ErrDuplicateKey {
			t.Errorf("encoding/json reads %q as %q, but MCP accepts both in one object", key, lower)
		}
	}
}

func TestDepthLimits(t *testing.T) {
	for _, p := range allProfiles {
		if p.MaxDepth() == 0 {
			continue
		}
		t.Run(p.String(), func(t *testing.T) {
			n := p.MaxDepth()
			if err := Validate(p, nest(n)); err != nil {
				t.Errorf("%d levels: %v", n, err)
			}
			if err := Validate(p, nest(n+1)); code(err) != ErrTooDeep {
				t.Errorf("%d levels of objects and arrays: %v", n+1, err)
			}
			err := Validate(p, []byte(strings.Repeat("[", n+1)+strings.Repeat("]", n+1)))
			var e *Error
			if !errors.As(err, &e) || e.Code != ErrTooDeep || e.Offset != n || e.Syntax() {
				t.Errorf("%d levels: %v, want ErrTooDeep at offset %d", n+1, err, n)
			}
			// Beyond the limit the syntax is still checked: a malformed deep
			// document is a syntax error, not a refusal.
			bad := append(nest(n+1), ',')
			if err := Validate(p, bad); code(err) != ErrTrailingData {
				t.Errorf("malformed deep document: %v, want a syntax error", err)
			}
		})
	}
}

// nest returns n nested containers, alternating objects and arrays.
func nest(n int) []byte {
	var b strings.Builder
	for i := range n {
		if i%2 == 0 {
			b.WriteString(`{"a":`)
		} else {
			b.WriteString(`[`)
		}
	}
	b.WriteString("0")
	for i := n - 1; i >= 0; i-- {
		if i%2 == 0 {
			b.WriteString(`}`)
		} else {
			b.WriteString(`]`)
		}
	}
	return []byte(b.String())
}

func TestDeepDocumentsDoNotRecurse(t *testing.T) {
	const n = 1_000_000
	deep := strings.Repeat("[", n) + strings.Repeat("]", n)
	if err := Validate(Syntax, []byte(deep)); err != nil {
		t.Errorf("Syntax: %v", err)
	}
	if err := Validate(MCP, []byte(deep)); code(err) != ErrTooDeep {
		t.Errorf("MCP: %v", err)
	}
	if err := Validate(MCP, []byte(strings.Repeat(`{"a":[`, n))); code(err) != ErrExpectedValue {
		t.Errorf("MCP, unclosed: %v", err)
	}
}

func TestWideObjectsStayLinear(t *testing.T) {
	// No clock here (timed assertions flake on shared machines): a
	// quadratic duplicate check would need some 10^10 comparisons and run
	// into the test timeout instead.
	wide := bigObject(100_000)
	if err := Validate(MCP, []byte(wide+"}")); err != nil {
		t.Errorf("100k distinct keys: %v", err)
	}
	if err := Validate(MCP, []byte(wide+`,"K99999":1}`)); code(err) != ErrDuplicateKey {
		t.Errorf("case variant as the 100001st key: %v", err)
	}
}

func TestNumberRules(t *testing.T) {
	type want struct{ mcp, ijson, canonical bool } // accepted by MCP/Syntax, AgentCard/JOSE, Canonical
	for _, tt := range []struct {
		in   string
		want want
	}{
		{`9007199254740992`, want{true, true, true}},
		{`-9007199254740992`, want{true, true, true}},
		{`9007199254740993`, want{true, false, true}},
		{`-9007199254740993`, want{true, false, true}},
		{`123456789012345678901234567890`, want{true, false, true}},
		{`999999999999999`, want{true, true, true}},
		{`9007199254740993.0`, want{true, true, true}},
		{`1e308`, want{true, true, true}},
		{`1.7976931348623157e308`, want{true, true, true}},
		{`1.7976931348623159e308`, want{true, false, false}},
		{`1.8e308`, want{true, false, false}},
		{`-1.8e308`, want{true, false, false}},
		{`1e309`, want{true, false, false}},
		{`1e400`, want{true, false, false}},
		{`0.1e309`, want{true, true, true}},
		{`0.01e311`, want{true, false, false}},
		{`1e99999999999999999999`, want{true, false, false}},
		{`1e-99999999999999999999`, want{true, true, true}},
		{`0e99999999999999999999`, want{true, true, true}},
		{`1` + strings.Repeat("0", 308), want{true, false, true}},
		{`1` + strings.Repeat("0", 309), want{true, false, false}},
		{`1E+0308`, want{true, true, true}},
	} {
		t.Run(tt.in[:min(len(tt.in), 30)], func(t *testing.T) {
			for _, c := range []struct {
				p  Profile
				ok bool
			}{{MCP, tt.want.mcp}, {Syntax, tt.want.mcp}, {AgentCard, tt.want.ijson}, {JOSE, tt.want.ijson}, {Canonical, tt.want.canonical}} {
				err := Validate(c.p, []byte(tt.in))
				if (err == nil) != c.ok || err != nil && code(err) != ErrNumberRange {
					t.Errorf("Validate(%s, %s) = %v, want accepted=%v", c.p, tt.in, err, c.ok)
				}
			}
		})
	}
}

func TestSizeLimits(t *testing.T) {
	for _, p := range allProfiles {
		if p.MaxSize() == 0 {
			continue
		}
		doc := []byte(`"` + strings.Repeat("a", p.MaxSize()-2) + `"`)
		if err := Validate(p, doc); err != nil {
			t.Errorf("%s: %d bytes: %v", p, len(doc), err)
		}
		doc = append(doc, ' ')
		if err := Validate(p, doc); code(err) != ErrTooLarge {
			t.Errorf("%s: %d bytes: %v, want ErrTooLarge", p, len(doc), err)
		}
	}
}

func TestASyntaxErrorWinsOverAnEarlierRefusal(t *testing.T) {
	for _, in := range []string{`{"a":1,"a":2,"b":NaN}`, `[1e400,]`, string(nest(1001)[:2000])} {
		if err := Validate(MCP, []byte(in)); err == nil || !err.(*Error).Syntax() {
			if err := Validate(AgentCard, []byte(in)); err == nil || !err.(*Error).Syntax() {
				t.Errorf("Validate(%.40q) = %v, want a syntax error", in, err)
			}
		}
	}
}

func TestTheFirstRefusalIsReported(t *testing.T) {
	err := Validate(AgentCard, []byte(`[{"a":1,"A":2},1e400]`))
	if e := err.(*Error); e.Code != ErrDuplicateKey || e.Offset != 8 {
		t.Fatalf("got %v", err)
	}
}

func TestAMissingCommaSaysWhichContainer(t *testing.T) {
	for in, obj := range map[string]bool{`[1 2]`: false, `{"a":1 "b":2}`: true, `[1`: false, `{"a":1`: true} {
		err := Validate(MCP, []byte(in))
		if e := err.(*Error); e.Code != ErrExpectedComma || e.InObject != obj {
			t.Errorf("Validate(%s) = %+v, want InObject %v", in, e, obj)
		}
	}
}
