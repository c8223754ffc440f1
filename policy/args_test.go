package policy

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"
)

func TestStringify(t *testing.T) {
	for _, tc := range []struct{ name, in, want string }{
		{"a string is itself", `"hello"`, "hello"},
		{"a string's escapes are decoded", `"a\nb\u00e9\"\/"`, "a\nbé\"/"},
		{"surrounding whitespace is ignored", " \t\"x\"\n", "x"},
		{"an integer is verbatim", `8080`, "8080"},
		{"a negative integer is verbatim", `-42`, "-42"},
		{"an integer beyond 2^64 keeps every digit", `123456789012345678901234567890`, "123456789012345678901234567890"},
		{"a fraction is shortest decimal", `2.50`, "2.5"},
		{"a zero fraction is dropped", `1.0`, "1"},
		{"an exponent is expanded", `1e3`, "1000"},
		{"a small exponent is expanded", `1.5E-3`, "0.0015"},
		{"a number beyond float64 is verbatim", `1e400`, "1e400"},
		{"true", `true`, "true"},
		{"false", `false`, "false"},
		{"null is empty", `null`, ""},
		{"an array is JCS", `[ "a" , 1.0, true ]`, `["a",1,true]`},
		{"an object is JCS with sorted keys", `{"b":1,"a":{"d":2,"c":3}}`, `{"a":{"c":3,"d":2},"b":1}`},
		{"JCS does not HTML-escape", `{"h":"<script>&"}`, `{"h":"<script>&"}`},
		{"an empty object", `{}`, `{}`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := Stringify(json.RawMessage(tc.in))
			if err != nil || got != tc.want {
				t.Fatalf("Stringify(%s) = %q, %v; want %q", tc.in, got, err, tc.want)
			}
		})
	}
}

func TestStringifyRejects(t *testing.T) {
	for _, in := range []string{``, ` `, `{`, `"unterminated`, `tru`, `01`, `{"a":1,"a":2}`, `1 2`, `NaN`} {
		if got, err := Stringify(json.RawMessage(in)); err == nil {
			t.Errorf("Stringify(%q) = %q, want an error", in, got)
		}
	}
}

func TestArgParseObject(t *testing.T) {
	for _, tc := range []struct {
		name string
		in   string
		keys []string
		vals []string
		err  error
	}{
		{"absent arguments are empty", ``, nil, nil, nil},
		{"null arguments are empty", ` null `, nil, nil, nil},
		{"an empty object", `{ }`, nil, nil, nil},
		{"members come back sorted by key", `{"b": [1, {"x":"}"}] ,"a":"s\"}","c" :null}`, []string{"a", "b", "c"}, []string{`"s\"}"`, `[1, {"x":"}"}]`, `null`}, nil},
		{"escaped keys are decoded", `{"\u0061":1}`, []string{"a"}, []string{"1"}, nil},
		{"numbers end at a delimiter", `{"a":-1.5e3,"b":2}`, []string{"a", "b"}, []string{"-1.5e3", "2"}, nil},
		{"duplicate keys are rejected", `{"a":1,"a":2}`, nil, nil, errArgsDuplicate},
		{"keys equal after decoding are duplicates", `{"a":1,"\u0061":2}`, nil, nil, errArgsDuplicate},
		{"an array is not an object", `[1]`, nil, nil, errArgsNotObject},
		{"a string is not an object", `"{}"`, nil, nil, errArgsNotObject},
		{"truncated JSON is invalid", `{"a":1`, nil, nil, errArgsInvalid},
		{"trailing data is invalid", `{"a":1} {}`, nil, nil, errArgsInvalid},
		{"case-variant keys are duplicates", `{"path":"/tmp","PATH":"/etc"}`, nil, nil, errArgsDuplicate},
		{"duplicate keys inside a value are rejected", `{"o":{"k":1,"K":2}}`, nil, nil, errArgsDuplicate},
		{"a lone surrogate escape is invalid", `{"a":"\ud800"}`, nil, nil, errArgsInvalid},
		{"invalid UTF-8 is invalid", "{\"a\":\"\xff\"}", nil, nil, errArgsInvalid},
		{"nesting beyond 1000 levels is invalid", `{"a":` + strings.Repeat("[", 1001) + strings.Repeat("]", 1001) + `}`, nil, nil, errArgsInvalid},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ms, err := argParseObject([]byte(tc.in), nil)
			if !errors.Is(err, tc.err) {
				t.Fatalf("err = %v, want %v", err, tc.err)
			}
			if len(ms) != len(tc.keys) {
				t.Fatalf("got %d members, want %d", len(ms), len(tc.keys))
			}
			for i, m := range ms {
				if m.key != tc.keys[i] || string(m.val) != tc.vals[i] {
					t.Errorf("member %d = %q:%s, want %q:%s", i, m.key, m.val, tc.keys[i], tc.vals[i])
				}
			}
		})
	}
}

// Arguments that jsonrpc's strict decode validated are only split: what
// the MCP profile refuses is not looked for again, but exact duplicates of
// top-level keys, which the split sees anyway, still fail.
func TestArgParseObjectValidatedDoesNotRevalidate(t *testing.T) {
	for _, tc := range []struct {
		name, in string
		n        int
		err      error
	}{
		{"a lone surrogate is not looked for", `{"a":"\ud800"}`, 1, nil},
		{"case variants are not compared", `{"a":1,"A":2}`, 2, nil},
		{"exact duplicates still fail", `{"a":1,"a":2}`, 0, errArgsDuplicate},
		{"members are split as the strict path splits them", `{ "b" : [1, {"x":"}"}] ,"\u0061":"s\"}"}`, 2, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ms, err := argParseObjectValidated([]byte(tc.in), nil, true)
			if !errors.Is(err, tc.err) || len(ms) != tc.n {
				t.Fatalf("got %d members, err %v; want %d, %v", len(ms), err, tc.n, tc.err)
			}
		})
	}
}

func TestArgUnquoteDecodesAsEncodingJSON(t *testing.T) {
	for _, lit := range []string{`"plain"`, `"a\u00e9\n"`, `"\ud83d\ude00"`, `"\ud800x"`, "\"\xff\xfeé\"", `""`} {
		var want string
		if err := json.Unmarshal([]byte(lit), &want); err != nil {
			t.Fatalf("test bug: %q: %v", lit, err)
		}
		if got := argUnquote([]byte(lit)); got != want {
			t.Errorf("argUnquote(%q) = %q, want %q", lit, got, want)
		}
	}
}
