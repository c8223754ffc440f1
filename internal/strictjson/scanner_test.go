package strictjson

import (
	"bytes"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"testing"
)

// tokens returns the kinds and bytes of every token of data.
func tokens(t *testing.T, p Profile, data string) string {
	t.Helper()
	s := NewScanner(p, []byte(data))
	defer s.Release()
	var out []string
	for {
		tok, err := s.Next()
		if err != nil {
			t.Fatalf("Next: %v", err)
		}
		if tok.Kind == EOF {
			break
		}
		out = append(out, fmt.Sprintf("%s %s", tok.Kind, data[tok.Start:tok.End]))
	}
	return strings.Join(out, " | ")
}

func TestNextReturnsEveryTokenInOrder(t *testing.T) {
	got := tokens(t, MCP, ` {"a" : [1, "x", true, false, null, {}], "b":{"c":-2.5e3}} `)
	want := `object { | key "a" | array [ | number 1 | string "x" | true true | false false | null null | object { | end of object } | end of array ] | key "b" | object { | key "c" | number -2.5e3 | end of object } | end of object }`
	if got != want {
		t.Errorf("got  %s\nwant %s", got, want)
	}
}

func TestNextReturnsEOFAfterTheValueAndAgain(t *testing.T) {
	s := NewScanner(MCP, []byte(" 1 "))
	defer s.Release()
	for i, want := range []Kind{Number, EOF, EOF} {
		if tok, err := s.Next(); err != nil || tok.Kind != want {
			t.Fatalf("call %d: %v, %v; want %v", i, tok.Kind, err, want)
		}
	}
}

func TestASyntaxErrorIsSticky(t *testing.T) {
	s := NewScanner(MCP, []byte(`[1,]`))
	defer s.Release()
	s.Next()
	s.Next()
	_, err1 := s.Next()
	_, err2 := s.Next()
	if err1 == nil || err1 != err2 || s.Finish() != err1 {
		t.Fatalf("errors %v, %v, %v", err1, err2, s.Finish())
	}
}

func TestTokenFlags(t *testing.T) {
	s := NewScanner(MCP, []byte(`["plain","\n","é",1,1.5,1e2,-0]`))
	defer s.Release()
	s.Next()
	for _, want := range []struct{ escaped, ascii, integer bool }{
		{false, true, false}, {true, true, false}, {false, false, false},
		{false, true, true}, {false, true, false}, {false, true, false}, {false, true, true},
	} {
		tok, _ := s.Next()
		if tok.Escaped() != want.escaped || tok.ASCII() != want.ascii || tok.Integer() != want.integer {
			t.Errorf("%s: escaped=%v ascii=%v integer=%v, want %+v", s.Data()[tok.Start:tok.End], tok.Escaped(), tok.ASCII(), tok.Integer(), want)
		}
	}
}

func TestSkipReadsAWholeValue(t *testing.T) {
	doc := `{"a":[1,{"b":"]}"}],"c":"d","e":{}}`
	s := NewScanner(MCP, []byte(doc))
	defer s.Release()
	s.Next()
	var got []string
	for {
		key, val, ok, err := s.Member()
		if err != nil {
			t.Fatal(err)
		}
		if !ok {
			break
		}
		got = append(got, string(s.Text(key))+"="+doc[val.Start:val.End]+"("+val.Kind.String()+")")
	}
	if want := `a=[1,{"b":"]}"}](array) c="d"(string) e={}(object)`; strings.Join(got, " ") != want {
		t.Errorf("got %s, want %s", strings.Join(got, " "), want)
	}
	if err := s.Finish(); err != nil {
		t.Fatal(err)
	}
}

func TestSkipStillChecksTheSkippedValue(t *testing.T) {
	s := NewScanner(MCP, []byte(`{"a":{"x":1,"X":2},"b":[1,]}`))
	defer s.Release()
	s.Next()
	if _, _, ok, err := s.Member(); !ok || err != nil {
		t.Fatalf("first member: %v %v", ok, err)
	}
	if s.Refusal() == nil || s.Refusal().Code != ErrDuplicateKey {
		t.Errorf("refusal %v, want the duplicate inside the skipped value", s.Refusal())
	}
	if _, _, _, err := s.Member(); code(err) != ErrExpectedValue {
		t.Errorf("second member: %v, want the syntax error inside it", err)
	}
}

func TestTextDecodesEscapes(t *testing.T) {
	for _, lit := range []string{`"plain"`, `"a\"b\\c\/d"`, `"\b\f\n\r\t"`, `"\u0041\u00e9\u20AC"`, `"\ud83d\ude00!"`, `"日本\n語"`, `"\\u0041"`, `""`} {
		s := NewScanner(MCP, []byte(lit))
		tok, err := s.Next()
		if err != nil {
			t.Fatal(err)
		}
		var want string
		if err := json.Unmarshal([]byte(lit), &want); err != nil {
			t.Fatal(err)
		}
		if got := string(s.Text(tok)); got != want {
			t.Errorf("Text(%s) = %q, want %q", lit, got, want)
		}
		s.Release()
	}
}

func TestAppendUnquoteDecodesLikeEncodingJSON(t *testing.T) {
	for _, lit := range []string{`"plain"`, `"a\"b\\c\/d"`, `"\u00e9\ud83d\ude00"`, `"\ud800"`, `"\udc00x\ud800\u0041"`, "\"\xff\xfe\"", "\"a\xc3\"", "\"\xed\xa0\x80\"", `""`} {
		if err := Validate(Syntax, []byte(lit)); err != nil {
			t.Fatal(err)
		}
		var want string
		if err := json.Unmarshal([]byte(lit), &want); err != nil {
			t.Fatal(err)
		}
		if got := string(AppendUnquote([]byte("x"), []byte(lit))); got != "x"+want {
			t.Errorf("AppendUnquote(%q) = %q, want %q", lit, got, "x"+want)
		}
	}
}

func TestAppendCompactWritesWhatEncodingJSONCompactWrites(t *testing.T) {
	for _, in := range []string{
		`{}`, ` { "a" : [ 1 , 2 ] , "b" : "x y\t\"\\ z" } `, "[\n  1,\n  \"\\\\\",\r\n  {\"k\": \"\\\"\"}\n]", `"  "`, ` 12 `,
		`{"long":"` + strings.Repeat("abc ", 40) + `\" ` + strings.Repeat(" ", 20) + `"}`,
	} {
		var want bytes.Buffer
		if err := json.Compact(&want, []byte(in)); err != nil {
			t.Fatal(err)
		}
		if got := AppendCompact([]byte("x"), []byte(in)); string(got) != "x"+want.String() {
			t.Errorf("AppendCompact(%q) = %q, want %q", in, got, "x"+want.String())
		}
		s := NewScanner(MCP, []byte(in))
		s.Finish()
		if s.Spaced() != (want.String() != in) {
			t.Errorf("Spaced() = %v for %q", s.Spaced(), in)
		}
		s.Release()
	}
}

func TestScanningAllocatesNothingOnceWarm(t *testing.T) {
	if raceEnabled {
		t.Skip("allocation count: sync.Pool drops items at random under -race")
	}
	doc := []byte(`{"jsonrpc":"2.0","id":42,"method":"tools/call","params":{"name":"read_file","arguments":{"path":"/home/user/README.md","Encoding":"utf-8","\u00e9t\u00e9":"\u00e9","max_bytes":65536,"tags":["a","b"]},"_meta":{"progressToken":"tok-123"}}}`)
	for _, p := range allProfiles {
		Validate(p, doc)
		if allocs := testing.AllocsPerRun(100, func() {
			if err := Validate(p, doc); err != nil {
				t.Fatal(err)
			}
		}); allocs > 0 {
			t.Errorf("%s: %v allocations per Validate", p, allocs)
		}
	}
}

func TestValidatedFindsEachStringEndAndItsEscapes(t *testing.T) {
	for _, tt := range []struct {
		doc     string
		escaped []bool // per string token
	}{
		{`"plain"`, []bool{false}},
		{`"a\"b"`, []bool{true}},
		{`"\\"`, []bool{true}},
		{`"\\\""`, []bool{true}},
		{`["\u0022", "x\\", "\"\"\""]`, []bool{true, true, true}},
		{`{"k\n":"v","q":"` + strings.Repeat(`ab\"`, 40) + `"}`, []bool{true, false, false, true}},
	} {
		var got []bool
		sc := NewScanner(Validated, []byte(tt.doc))
		for {
			tok, err := sc.Next()
			if err != nil {
				t.Fatalf("%s: %v", tt.doc, err)
			}
			if tok.Kind == EOF {
				break
			}
			if tok.Kind == String || tok.Kind == Key {
				got = append(got, tok.Escaped())
				if !json.Valid([]byte(tt.doc[tok.Start:tok.End])) {
					t.Errorf("%s: token %q is not the whole string", tt.doc, tt.doc[tok.Start:tok.End])
				}
			}
		}
		sc.Release()
		if !slices.Equal(got, tt.escaped) {
			t.Errorf("%s: escaped %v, want %v", tt.doc, got, tt.escaped)
		}
	}
	for _, doc := range []string{`"abc`, `"abc\`, `"abc\"`, `["a`} {
		if err := Validate(Validated, []byte(doc)); err == nil {
			t.Errorf("Validated accepts the unterminated %q", doc)
		}
	}
}

// Strings are scanned 8 or 32 bytes at a time after a run of plain bytes; every
// kind of byte that ends such a run must be found at every position.
func TestLongStringsAreScannedExactly(t *testing.T) {
	for _, tail := range []string{`"`, `\n"`, `\u00e9"`, "\u00e9\"", "\x01\"", "\xff\"", "\xed\xa0\x80\"", `\ud800"`, "\u2028\""} {
		for n := 0; n < 100; n++ {
			for _, pre := range []string{"", "x", "\u00e9"} {
				doc := []byte(`"` + pre + strings.Repeat("a", n) + tail + `  `)
				for _, p := range []Profile{MCP, Syntax} {
					err := Validate(p, doc)
					want := json.Valid(doc) && (p == Syntax || (utf8Valid(doc) && !strings.Contains(tail, `\ud800`)))
					if (err == nil) != want {
						t.Errorf("%s: Validate(%q) = %v, want accepted=%v", p, doc, err, want)
					}
				}
			}
		}
	}
}

func utf8Valid(b []byte) bool { return strings.ToValidUTF8(string(b), "\x00") == string(b) }

func TestAppendTokensReturnsWhatNextReturns(t *testing.T) {
	doc := ` {"a" : [1, "x\n", true, false, null, {}], "b":{"c":-2.5e3}} `
	s := NewScanner(MCP, []byte(doc))
	var want []Token
	for {
		tok, err := s.Next()
		if err != nil {
			t.Fatal(err)
		}
		if tok.Kind == EOF {
			break
		}
		want = append(want, tok)
	}
	s.Reset(MCP, []byte(doc))
	got, err := s.AppendTokens(nil)
	if err != nil || fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("AppendTokens = %v, %v\nNext gives %v", got, err, want)
	}
	s.Reset(MCP, []byte(`[{"a":1,"A":2},3,4]`))
	if got, err := s.AppendTokens(nil); code(err) != ErrDuplicateKey || len(got) != 4 {
		t.Errorf("after a refusal: %d tokens, %v; want the 4 before it and the refusal", len(got), err)
	}
	s.Reset(MCP, []byte(`[{"a":1,"A":2},3,]`))
	if _, err := s.AppendTokens(nil); code(err) != ErrExpectedValue {
		t.Errorf("a later syntax error: %v", err)
	}
	s.Release()
}
