package dlp

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"sync"
	"testing"

	"github.com/agentid/agentid/policy"
)

func TestRedactJSONRedactsEveryStringValueAndKeepsEveryOtherByte(t *testing.T) {
	s := newScanner(t, nil, "AWS Key", `AKIA[0-9A-Z]{16}`, "Email", `[a-z]+@[a-z]+\.[a-z]{2,}`)
	tests := []struct{ name, in, want string }{
		{"content text",
			`{"content":[{"type":"text","text":"key AKIAIOSFODNN7EXAMPLE"}]}`,
			`{"content":[{"type":"text","text":"key [REDACTED:AWS Key]"}]}`},
		{"structuredContent, resources, other fields survive",
			`{ "content" : [ {"type":"image","data":"aGk=","mimeType":"image/png"}, {"type":"resource","resource":{"uri":"file:///x","text":"a@b.com"}} ],
  "structuredContent": {"z":1.50e3, "deep":[[["AKIAIOSFODNN7EXAMPLE"]]], "n":null, "t":true}, "isError":false }`,
			`{ "content" : [ {"type":"image","data":"aGk=","mimeType":"image/png"}, {"type":"resource","resource":{"uri":"file:///x","text":"[REDACTED:Email]"}} ],
  "structuredContent": {"z":1.50e3, "deep":[[["[REDACTED:AWS Key]"]]], "n":null, "t":true}, "isError":false }`},
		{"error object", `{"code":-32000,"message":"bad a@b.com","data":{"k":"AKIAIOSFODNN7EXAMPLE"}}`,
			`{"code":-32000,"message":"bad [REDACTED:Email]","data":{"k":"[REDACTED:AWS Key]"}}`},
		{"keys are redacted like values", `{"a@b.com":"x", "AKIAIOSFODNN7EXAMPLE" :1,"k":{"\u0041KIAIOSFODNN7EXAMPLE":[]}}`,
			`{"[REDACTED:Email]":"x", "[REDACTED:AWS Key]" :1,"k":{"[REDACTED:AWS Key]":[]}}`},
		{"secret spelled with escapes is found", `["\u0041KIAIOSFODNN7EXAMPLE"]`, `["[REDACTED:AWS Key]"]`},
		{"escapes elsewhere in a changed string are re-encoded", `"line1\nAKIAIOSFODNN7EXAMPLE\t\"q\" \u00e9 \ud83d\ude00 <&> \u2028"`,
			"\"line1\\n[REDACTED:AWS Key]\\t\\\"q\\\" \u00e9 \U0001F600 <&> \u2028\""},
		{"top-level string", `"a@b.com"`, `"[REDACTED:Email]"`},
		{"scalars only", ` 12 `, ` 12 `},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res, err := s.RedactJSON(Response, []byte(tt.in))
			if err != nil {
				t.Fatal(err)
			}
			if string(res.Data) != tt.want {
				t.Errorf("got  %s\nwant %s", res.Data, tt.want)
			}
			if res.Changed != (tt.in != tt.want) {
				t.Errorf("Changed = %v", res.Changed)
			}
			if !json.Valid(res.Data) {
				t.Errorf("output is not valid JSON")
			}
		})
	}
}

func TestRedactJSONReturnsInputWhenNothingMatches(t *testing.T) {
	s := newScanner(t, nil, typicalPatterns...)
	raw := toolResult4KB("")
	res, err := s.RedactJSON(Response, raw)
	if err != nil || res.Changed || res.Findings != nil || &res.Data[0] != &raw[0] || len(res.Data) != len(raw) {
		t.Fatalf("changed=%v findings=%v err=%v, same slice=%v", res.Changed, res.Findings, err, &res.Data[0] == &raw[0])
	}
}

func TestRedactJSONAllocatesAtMostOnceWhenNothingMatches(t *testing.T) {
	if raceEnabled {
		t.Skip("allocation count: sync.Pool drops items at random under -race")
	}
	s := newScanner(t, nil, typicalPatterns...)
	raw := toolResult4KB("")
	allocs := testing.AllocsPerRun(100, func() { s.RedactJSON(Response, raw) })
	if allocs > 1 {
		t.Errorf("no-match path allocates %v times per call", allocs)
	}
}

func TestRedactJSONCountsFindingsAcrossStrings(t *testing.T) {
	s := newScanner(t, nil, "Email", `[a-z]+@[a-z]+\.[a-z]{2,}`, "AWS Key", `AKIA[0-9A-Z]{16}`)
	res, err := s.RedactJSON(Response, []byte(`{"a":"x@y.com","b":["p@q.org r@s.net"],"c":"AKIAIOSFODNN7EXAMPLE"}`))
	if err != nil {
		t.Fatal(err)
	}
	if want := []Finding{{"Email", 3}, {"AWS Key", 1}}; !reflect.DeepEqual(res.Findings, want) {
		t.Errorf("findings %v, want %v", res.Findings, want)
	}
}

func TestRedactJSONRejectsInvalidJSON(t *testing.T) {
	s := newScanner(t, nil, "X", `x`)
	for _, in := range []string{
		``, ` `, `{`, `[1,]`, `{"a":1,}`, `{"a" 1}`, `{1:2}`, `"abc`, `"\x"`, `"\u12"`, "\"a\x01\"", `01`, `1.`, `-`, `1e`,
		`tru`, `nul`, `[1 2]`, `{"a":1}}`, `[}`, `{]`, `NaN`, `"a" "b"`, `[1]x`, `{"a":"b"`, `[[[`, `+1`, `.5`,
	} {
		if _, err := s.RedactJSON(Response, []byte(in)); err == nil || !strings.HasPrefix(err.Error(), "dlp: ") {
			t.Errorf("RedactJSON(%q) err = %v, want a dlp: error", in, err)
		}
		if json.Valid([]byte(in)) {
			t.Errorf("test bug: %q is valid JSON", in)
		}
	}
}

func TestRedactJSONAcceptsWhatEncodingJSONAccepts(t *testing.T) {
	s := newScanner(t, nil, "X", `zzz`)
	for _, in := range []string{
		`0`, `-0.0e+0`, `1E-7`, `true`, `false`, `null`, `""`, `[]`, `{}`, ` [ {} , [ ] , "" ] `, "\"\xff\xfe\"",
		`{"a":{"b":{"c":[1,{"d":[]}]}}}`, `"\/\b\f\n\r\t\\\""`, strings.Repeat("[", 10000) + strings.Repeat("]", 10000),
	} {
		if !json.Valid([]byte(in)) {
			t.Fatalf("test bug: %.40q is not valid JSON", in)
		}
		if _, err := s.RedactJSON(Response, []byte(in)); err != nil {
			t.Errorf("RedactJSON(%.40q): %v", in, err)
		}
	}
}

func TestRedactJSONHandlesDeepNestingWithoutRecursion(t *testing.T) {
	s := newScanner(t, &policy.DLP{MaxScanSize: "10MB"}, "X", `secret`)
	in := strings.Repeat(`[{"a":`, 200000) + `"secret"` + strings.Repeat(`}]`, 200000)
	res, err := s.RedactJSON(Response, []byte(in))
	if err != nil || !strings.Contains(string(res.Data), `"[REDACTED:X]"`) {
		t.Errorf("err=%v changed=%v", err, res.Changed)
	}
}

func TestRedactJSONMaxScanSizeScansOnlyTheBeginning(t *testing.T) {
	s := newScanner(t, &policy.DLP{MaxScanSize: "1KB"}, "Key", `KEY[0-9]+`)
	pad := strings.Repeat("p", 2000)
	// KEY1 before the limit; KEY22 crosses the limit (only "KEY2" lies
	// before it); KEY3 is in a string that starts after the limit.
	in := `["KEY1","` + pad[:1024-len(`["KEY1","`)-len("KEY2")] + `KEY22","` + pad + `KEY3"]`
	res, err := s.RedactJSON(Response, []byte(in))
	if err != nil {
		t.Fatal(err)
	}
	if !res.Truncated {
		t.Error("Truncated = false for input over max_scan_size")
	}
	out := string(res.Data)
	if !strings.HasPrefix(out, `["[REDACTED:Key]",`) || !strings.Contains(out, `[REDACTED:Key]2","`) || !strings.HasSuffix(out, `KEY3"]`) {
		t.Errorf("got %s", out)
	}
	if _, err := s.RedactJSON(Response, []byte(`["KEY1",`+strings.Repeat(" ", 2000)+`}`)); err == nil {
		t.Error("invalid JSON after the limit was accepted")
	}
}

func TestRedactJSONEncodesWithoutHTMLEscaping(t *testing.T) {
	s := newScanner(t, nil, "Tok", `tok_[a-z]+`)
	res, err := s.RedactJSON(Response, []byte(`"<a href='x'>tok_abc</a> & \u0001 \ud800"`))
	if err != nil {
		t.Fatal(err)
	}
	// A lone surrogate decodes to U+FFFD, as in encoding/json.
	if want := "\"<a href='x'>[REDACTED:Tok]</a> & \\u0001 \ufffd\""; string(res.Data) != want {
		t.Errorf("got %s, want %s", res.Data, want)
	}
	var v string
	if err := json.Unmarshal(res.Data, &v); err != nil || !bytes.Contains([]byte(v), []byte("<a href")) {
		t.Errorf("round trip %q %v", v, err)
	}
}

func TestRedactJSONReplacesANumberHoldingASecretWithAMarkerString(t *testing.T) {
	s := newScanner(t, nil, "Credit Card", `\b(?:\d{4}[- ]?){3}\d{4}\b`, "Long digits", `\d{12,}`, "Exp", `e-7`)
	tests := []struct{ name, in, want string }{
		{"card number as a JSON number", `{"card": 4111111111111111}`, `{"card": "[REDACTED:Credit Card]"}`},
		{"sign, fraction and exponent go with it", `[-4111111111111111, 4111111111111111.25, 4111111111111111e3]`,
			// No \b between the digits and "e", so only the second pattern
			// matches the last one.
			`["[REDACTED:Credit Card]", "[REDACTED:Credit Card]", "[REDACTED:Long digits]"]`},
		{"a match on part of the spelling replaces the whole number", `[1.5e-7]`, `["[REDACTED:Exp]"]`},
		{"the first listed pattern names a number several match", `[41111111111111111111]`, `["[REDACTED:Long digits]"]`},
		{"top-level number", ` 4111111111111111 `, ` "[REDACTED:Credit Card]" `},
		{"other numbers keep their spelling", `{"z":1.50e3,"n":-0,"big":123456789012345678901234567890e-2}`,
			`{"z":1.50e3,"n":-0,"big":"[REDACTED:Long digits]"}`},
		{"a key spelled like a number is a string", `{"4111111111111111":4111111111111111}`,
			`{"[REDACTED:Credit Card]":"[REDACTED:Credit Card]"}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res, err := s.RedactJSON(Response, []byte(tt.in))
			if err != nil {
				t.Fatal(err)
			}
			if string(res.Data) != tt.want {
				t.Errorf("got  %s\nwant %s", res.Data, tt.want)
			}
			if !json.Valid(res.Data) || res.Changed != (tt.in != tt.want) {
				t.Errorf("valid=%v changed=%v", json.Valid(res.Data), res.Changed)
			}
		})
	}
}

func TestRedactJSONCountsNumberFindingsLikeStringFindings(t *testing.T) {
	s := newScanner(t, nil, "Card", `\d{16}`)
	res, err := s.RedactJSON(Response, []byte(`[4111111111111111, "4111111111111111", 12]`))
	if err != nil {
		t.Fatal(err)
	}
	if want := []Finding{{"Card", 2}}; !reflect.DeepEqual(res.Findings, want) {
		t.Errorf("findings %v, want %v", res.Findings, want)
	}
}

func TestRedactJSONScansOnlyTheDigitsOfANumberBeforeMaxScanSize(t *testing.T) {
	s := newScanner(t, &policy.DLP{MaxScanSize: "1KB"}, "Digits", `\d{8}`)
	pad := `"` + strings.Repeat("p", 1024-len(`["`)-len(`",`)-4) + `",`
	// The first number has 4 digits before the limit, too few to match,
	// so it is kept although it matches as a whole.
	in := `[` + pad + `12345678, 87654321]`
	res, err := s.RedactJSON(Response, []byte(in))
	if err != nil || res.Changed || !res.Truncated {
		t.Errorf("changed=%v truncated=%v err=%v: %s", res.Changed, res.Truncated, err, res.Data)
	}
}

func TestRedactJSONRefusesToCreateDuplicateKeys(t *testing.T) {
	s := newScanner(t, nil, "AWS Key", `AKIA[0-9A-Z]{16}`, "Email", `[a-z]+@[a-z]+\.[a-z]{2,}`)
	for _, tt := range []struct {
		name, in string
		findings []Finding
	}{
		{"two secrets redact to one marker", `{"AKIAIOSFODNN7EXAMPLE":1,"AKIAIOSFODNN7EXAMPLF":2}`, []Finding{{"AWS Key", 2}}},
		{"a marker next to a key that already reads the same", `{"[REDACTED:Email]":1,"a@b.com":2}`, []Finding{{"Email", 1}}},
		{"a case variant of the marker", `{"[redacted:email]":1,"a@b.com":2}`, []Finding{{"Email", 1}}},
		{"an escaped spelling of the marker", `{"a@b.com":1,"\u005bREDACTED:Email]":2}`, []Finding{{"Email", 1}}},
		{"in a nested object", `[{"a":{"a@b.com":1,"c@d.org":{}}}]`, []Finding{{"Email", 2}}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			res, err := s.RedactJSON(Response, []byte(tt.in))
			if !errors.Is(err, ErrDuplicateKey) {
				t.Fatalf("err = %v, want ErrDuplicateKey (data %s)", err, res.Data)
			}
			if res.Data != nil || res.Changed || !reflect.DeepEqual(res.Findings, tt.findings) {
				t.Errorf("result %+v, want no data and findings %v", res, tt.findings)
			}
		})
	}
	// Equal markers in different objects, or a marker equal to a key of
	// another object, are not duplicates.
	for _, in := range []string{
		`[{"a@b.com":1},{"c@d.org":2}]`,
		`{"[REDACTED:Email]":{"a@b.com":1},"x":{"c@d.org":2}}`,
		`{"a@b.com":{"[REDACTED:Email]":1}}`,
		`{"a":1,"a":2,"a@b.com":3}`, // a duplicate DLP did not create is not DLP's to refuse
	} {
		if res, err := s.RedactJSON(Response, []byte(in)); err != nil || !res.Changed {
			t.Errorf("RedactJSON(%s) = %s, %v; want a redaction", in, res.Data, err)
		}
	}
}

func TestRedactJSONRemembersOnlyShortCleanKeysAndOnlySoMany(t *testing.T) {
	s := newScanner(t, nil, "AWS Key", `AKIA[0-9A-Z]{16}`)
	long := strings.Repeat("k", maxCachedKeyLen+1)
	doc := `{"clean":1,"AKIAIOSFODNN7EXAMPLE":2,"` + long + `":3}`
	for range 2 { // the second time from the cache
		res, err := s.RedactJSON(Response, []byte(doc))
		if err != nil || string(res.Data) != `{"clean":1,"[REDACTED:AWS Key]":2,"`+long+`":3}` {
			t.Fatalf("got %s, %v", res.Data, err)
		}
	}
	c := s.cleanKeys[Response]
	if !c.clean([]byte("clean")) || c.clean([]byte("AKIAIOSFODNN7EXAMPLE")) || c.clean([]byte(long)) {
		t.Errorf("cache holds %v", c.m)
	}
	if s.cleanKeys[Request].clean([]byte("clean")) {
		t.Error("a key clean for responses was remembered for requests")
	}
	var b strings.Builder
	b.WriteString("{")
	for i := range maxCachedKeys + 100 {
		fmt.Fprintf(&b, `"k%d":0,`, i)
	}
	b.WriteString(`"last":0}`)
	if _, err := s.RedactJSON(Response, []byte(b.String())); err != nil {
		t.Fatal(err)
	}
	if len(c.m) != maxCachedKeys {
		t.Errorf("cache holds %d keys, want the cap %d", len(c.m), maxCachedKeys)
	}
}

func TestRedactJSONIsSafeForConcurrentUse(t *testing.T) {
	s := newScanner(t, nil, "AWS Key", `AKIA[0-9A-Z]{16}`)
	var wg sync.WaitGroup
	for g := range 4 {
		wg.Go(func() {
			for i := range 200 {
				doc := fmt.Sprintf(`{"k%d_%d":"AKIAIOSFODNN7EXAMPLE","common":1}`, g, i)
				if res, err := s.RedactJSON(Response, []byte(doc)); err != nil || !res.Changed {
					t.Errorf("%s: %v", res.Data, err)
					return
				}
			}
		})
	}
	wg.Wait()
}
