package strictjson

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"math/big"
	"strconv"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/agentid/agentid/internal/jsonstr"
)

// FuzzValidate is the contract of the package against encoding/json. Syntax
// must accept exactly what json.Valid accepts (beyond json.Valid's 10000
// levels of nesting, which Syntax does not limit), and the strict profiles
// must accept exactly that minus their documented extras, each reported
// with its own code: invalid UTF-8 and lone surrogate escapes (syntax
// errors for them), and the refusals of duplicate or case-variant keys,
// nesting, numbers and size, computed here independently from
// encoding/json's tokens. Whatever is accepted must also tokenize as
// encoding/json's Decoder reads it, and compact as json.Compact does.
func FuzzValidate(f *testing.F) {
	for _, seed := range []string{
		`{}`, `[]`, `null`, `0`, `-0.5e-3`, `"x"`, ` [1, "a", {"b": null}] `,
		`{"a":1,"a":2}`, `{"a":1,"A":2}`, `{"k":1,"\u212a":2}`, `{"id":1,"ıd":2}`, `{"a":1,"\u0061":2}`,
		`"\ud800"`, `"\udc00"`, `"\ud83d\ude00"`, "\"\xff\"", "\"\xed\xa0\x80\"", `"\u12"`, `"\x"`,
		`9007199254740993`, `1e309`, `1e-400`, `1.7976931348623159e308`,
		`[1,]`, `{"a" 1}`, `01`, `1.`, `tru`, "\ufeff{}", `{"a":[{"b":{"c":[]}}]}`,
		strings.Repeat("[", 70) + strings.Repeat("]", 70),
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		orig := bytes.Clone(data)
		valid := json.Valid(data)
		for _, p := range allProfiles {
			err := Validate(p, data)
			if !bytes.Equal(data, orig) {
				t.Fatal("Validate modified its input")
			}
			var e *Error
			if err != nil && !errors.As(err, &e) {
				t.Fatalf("%s: error %v is a %T", p, err, err)
			}
			if !valid {
				if err == nil && !(p == Syntax && depth(data) > 10000) {
					t.Fatalf("%s accepts what encoding/json rejects: %q", p, data)
				}
				if err != nil && !e.Syntax() && e.Code != ErrTooLarge && e.Code != ErrTooDeep {
					t.Fatalf("%s: invalid JSON %q refused with %v, want a syntax error", p, data, err)
				}
				continue
			}
			want := expected(p, data)
			switch {
			case len(want) == 0 && err != nil:
				t.Fatalf("%s rejects %q: %v; encoding/json finds nothing wrong with it under the profile", p, data, err)
			case len(want) > 0 && err == nil:
				t.Fatalf("%s accepts %q, want one of %v", p, data, want)
			case err != nil && !want[e.Code]:
				t.Fatalf("%s: %q: %v (code %d), want one of %v", p, data, err, e.Code, want)
			}
			if err == nil {
				checkTokens(t, p, data)
			}
		}
		// Validated walks admitted documents exactly as the others do, and
		// on anything else it must only fail cleanly.
		if err := Validate(Validated, data); valid && err != nil {
			t.Fatalf("Validated rejects valid JSON %q: %v", data, err)
		}
		if valid {
			checkTokens(t, Validated, data)
		}
		if valid {
			var want bytes.Buffer
			json.Compact(&want, data)
			if got := AppendCompact(nil, data); !bytes.Equal(got, want.Bytes()) {
				t.Fatalf("AppendCompact(%q) = %q, json.Compact: %q", data, got, want.Bytes())
			}
		}
	})
}

// depth returns the deepest nesting of brackets outside strings.
func depth(data []byte) int {
	d, max := 0, 0
	in := false
	for i := 0; i < len(data); i++ {
		switch c := data[i]; {
		case in && c == '\\':
			i++
		case c == '"':
			in = !in
		case !in && (c == '[' || c == '{'):
			d++
			max = maxInt(max, d)
		case !in && (c == ']' || c == '}'):
			d--
		}
	}
	return max
}

func maxInt(a, b int) int {
	if a > b {
		return a
	}
	return b
}

// expected returns the codes with which p may reject data, which
// encoding/json accepts; none if p must accept it.
func expected(p Profile, data []byte) map[Code]bool {
	if p.maxSize > 0 && len(data) > p.maxSize {
		return map[Code]bool{ErrTooLarge: true}
	}
	if p.strict {
		// Whichever comes first is reported.
		want := map[Code]bool{}
		if !utf8.Valid(data) {
			want[ErrInvalidUTF8] = true
		}
		if loneSurrogate(data) {
			want[ErrLoneSurrogate] = true
		}
		if len(want) > 0 {
			return want
		}
	}
	want := map[Code]bool{}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	type object struct {
		seen   map[string]bool
		folded []string
		key    bool // the next string token is a key
	}
	var stack []*object
	for {
		tok, err := dec.Token()
		if err == io.EOF {
			break
		}
		if err != nil {
			panic(err) // json.Valid accepted it
		}
		var top *object
		if len(stack) > 0 {
			top = stack[len(stack)-1]
		}
		isKey := top != nil && top.key
		if top != nil {
			top.key = !top.key
		}
		switch v := tok.(type) {
		case json.Delim:
			switch v {
			case '{', '[':
				if top != nil {
					top.key = true // the value just begun takes the place of one
				}
				if p.maxDepth > 0 && len(stack) >= p.maxDepth {
					want[ErrTooDeep] = true
				}
				o := &object{seen: map[string]bool{}}
				if v == '{' {
					o.key = true
				} else {
					o = &object{}
				}
				stack = append(stack, o)
			default:
				stack = stack[:len(stack)-1]
				if len(stack) > 0 {
					stack[len(stack)-1].key = true
				}
			}
			continue
		case string:
			if !isKey || top.seen == nil || p.keys == keysAny || p.maxDepth > 0 && len(stack) > p.maxDepth {
				continue
			}
			k := v
			if p.keys == keysFold {
				for _, prev := range top.folded {
					if strings.EqualFold(prev, v) {
						want[ErrDuplicateKey] = true
					}
				}
				top.folded = append(top.folded, v)
				k = string(AppendFold(nil, []byte(v)))
			}
			if top.seen[k] {
				want[ErrDuplicateKey] = true
			}
			top.seen[k] = true
		case json.Number:
			if !numberOK(p, string(v)) {
				want[ErrNumberRange] = true
			}
		}
	}
	return want
}

func numberOK(p Profile, lit string) bool {
	_, ferr := strconv.ParseFloat(lit, 64)
	switch p.numbers {
	case numbersFinite:
		return ferr == nil
	case numbersIJSON:
		if !strings.ContainsAny(lit, ".eE") {
			n, _ := new(big.Int).SetString(lit, 10)
			return n.CmpAbs(big.NewInt(maxSafeInteger)) <= 0
		}
		return ferr == nil
	}
	return true
}

// loneSurrogate reports whether the valid JSON data has a \u escape of a
// surrogate that is not half of an escaped pair. Backslashes occur only in
// strings, where each starts an escape.
func loneSurrogate(data []byte) bool {
	for i := 0; i < len(data); i++ {
		if data[i] != '\\' {
			continue
		}
		if data[i+1] != 'u' {
			i++
			continue
		}
		r, _ := jsonstr.Hex4(data[i+2:])
		switch {
		case 0xDC00 <= r && r <= 0xDFFF:
			return true
		case 0xD800 <= r && r <= 0xDBFF:
			if i+12 > len(data) || data[i+6] != '\\' || data[i+7] != 'u' {
				return true
			}
			if r2, _ := jsonstr.Hex4(data[i+8:]); r2 < 0xDC00 || r2 > 0xDFFF {
				return true
			}
			i += 11
		default:
			i += 5
		}
	}
	return false
}

// checkTokens compares the tokens of an accepted document with those of
// encoding/json's Decoder.
func checkTokens(t *testing.T, p Profile, data []byte) {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	s := NewScanner(p, data)
	defer s.Release()
	for {
		tok, err := s.Next()
		if err != nil {
			t.Fatalf("%s: Next after Validate accepted: %v", p, err)
		}
		ref, rerr := dec.Token()
		if tok.Kind == EOF {
			if rerr != io.EOF {
				t.Fatalf("%s: EOF where encoding/json reads %v (%v)", p, ref, rerr)
			}
			return
		}
		lit := data[tok.Start:tok.End]
		var got any
		switch tok.Kind {
		case Object:
			got = json.Delim('{')
		case ObjectEnd:
			got = json.Delim('}')
		case Array:
			got = json.Delim('[')
		case ArrayEnd:
			got = json.Delim(']')
		case Key, String:
			got = string(AppendUnquote(nil, lit))
			if p.strict && string(s.Text(tok)) != got {
				t.Fatalf("%s: Text(%q) = %q, want %q", p, lit, s.Text(tok), got)
			}
		case Number:
			got = json.Number(lit)
		case True:
			got = true
		case False:
			got = false
		case Null:
			got = nil
		}
		if got != ref {
			t.Fatalf("%s: token %v (%q), encoding/json reads %v", p, got, lit, ref)
		}
	}
}
