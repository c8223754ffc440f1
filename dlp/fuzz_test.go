package dlp

import (
	"bytes"
	"encoding/json"
	"errors"
	"reflect"
	"testing"

	"github.com/agentid/agentid/internal/strictjson"
	"github.com/agentid/agentid/policy"
)

// idempotentPatterns cannot match any character of a marker ("[", "]", ":"
// or the upper-case names and "REDACTED" in the positions they occur) and
// use no assertions, so no match can appear in redacted output: text
// outside the markers is unchanged, every potential match in it overlapped
// a redacted match, and a match cannot cross a marker's brackets. For
// patterns in general a second pass can find something new (a marker can
// create a \b, or a pattern can match the marker), so the property is
// asserted only for these.
var idempotentPatterns = []string{
	"AWS", `AKIA[0-9A-Z]{16}`,
	"MAIL", `[a-z0-9.]+@[a-z0-9.]+`,
	"SK", `sk-[a-zA-Z0-9]{8}`,
	"SSN", `\d{3}-\d{2}-\d{4}`,
}

func FuzzRedactJSON(f *testing.F) {
	for _, seed := range []string{
		`{"content":[{"type":"text","text":"AKIAIOSFODNN7EXAMPLE a@b.co"}]}`,
		`["\u0041KIAIOSFODNN7EXAMPLE", 1, -2.5e3, true, null, {"k":"sk-abcdefgh"}]`,
		`"123-45-6789\n\ud83d\ude00\ud800"`, `{"a":"QUtJQUlPU0ZPRE5ON0VYQU1QTEU="}`, `[{]`, "\"\xff\"", ``,
		`{"card":4111111111111111,"n":[-1.5e10,0,123456789]}`, `-4111111111111111.0e-1`,
		`{"AKIAIOSFODNN7EXAMPLE":1,"[REDACTED:AWS]":2}`, `{"a@b.co":{"c@d.co":1},"[redacted:mail]":[]}`,
	} {
		f.Add([]byte(seed))
	}
	simple := newScanner(f, nil, idempotentPatterns...)
	typical := newScanner(f, &policy.DLP{DetectEncoding: ptr(true)}, typicalPatterns...)
	f.Fuzz(func(t *testing.T, data []byte) {
		in := bytes.Clone(data)
		valid := json.Valid(data)
		strict := strictjson.Validate(strictjson.MCP, data) == nil
		for _, s := range []*Scanner{simple, typical} {
			res, err := s.RedactJSON(Response, data)
			if !bytes.Equal(in, data) {
				t.Fatal("input modified")
			}
			if errors.Is(err, ErrDuplicateKey) {
				if !valid || len(res.Findings) == 0 || res.Data != nil {
					t.Fatalf("ErrDuplicateKey for %q with findings %v, data %q", data, res.Findings, res.Data)
				}
				continue
			}
			if valid && err != nil {
				t.Fatalf("valid JSON rejected: %v", err)
			}
			if valid {
				// Valid JSON is redacted the same without validating its
				// strings again.
				v, verr := s.RedactJSONValidated(Response, data)
				if !errors.Is(verr, err) || !bytes.Equal(v.Data, res.Data) || v.Changed != res.Changed ||
					!reflect.DeepEqual(v.Findings, res.Findings) || v.Truncated != res.Truncated {
					t.Fatalf("RedactJSONValidated(%q) = %q, %v, %v; RedactJSON: %q, %v, %v", data, v.Data, v.Findings, verr, res.Data, res.Findings, err)
				}
			}
			if err != nil {
				continue
			}
			if valid {
				checkNumbersClean(t, s, res.Data)
			}
			if !valid && bytes.Count(data, []byte("["))+bytes.Count(data, []byte("{")) <= 10000 {
				t.Fatalf("invalid JSON accepted: %q", data)
			}
			if !res.Changed {
				if len(res.Data) != len(data) || (len(data) > 0 && &res.Data[0] != &data[0]) || res.Findings != nil {
					t.Fatal("unchanged result is not the input")
				}
				continue
			}
			if valid && !json.Valid(res.Data) {
				t.Fatalf("output is not valid JSON: %q -> %q", data, res.Data)
			}
			// What the strict decoders admitted, redacted, they still
			// admit: in particular redacted keys create no duplicate.
			if strict {
				if err := strictjson.Validate(strictjson.MCP, res.Data); err != nil {
					t.Fatalf("output refused under MCP (%v): %q -> %q", err, data, res.Data)
				}
			}
			if len(res.Findings) == 0 {
				t.Fatal("changed without findings")
			}
			if s == simple {
				again, err := s.RedactJSON(Response, res.Data)
				if err != nil || again.Changed {
					t.Fatalf("second pass changed %q -> %q (err %v)", res.Data, again.Data, err)
				}
			}
		}
	})
}

// checkNumbersClean fails when a number left in data holds something a
// pattern matches: such a number must have become a marker string.
func checkNumbersClean(t *testing.T, s *Scanner, data []byte) {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	for {
		tok, err := dec.Token()
		if err != nil {
			return
		}
		if n, ok := tok.(json.Number); ok {
			if _, f := s.RedactString(Response, string(n)); f != nil {
				t.Fatalf("number %s survived in %q (%v)", n, data, f)
			}
		}
	}
}

func FuzzRedactString(f *testing.F) {
	f.Add(`\d{3}-\d{2}-\d{4}`, "ssn 123-45-6789")
	f.Add(`(?i)token\s*[:=]\s*\S+`, "to\u212Aen: x")
	f.Add(`\bfoo\b`, "afoo foo")
	f.Add(`(?m)^a+$`, "b\naaa\n")
	f.Add(`[^a]+`, "\xff\xfeaé")
	s := newScanner(f, &policy.DLP{DetectEncoding: ptr(true)}, typicalPatterns...)
	plain := newScanner(f, nil, append(typicalPatterns, "Digits", `\d{2,}`)...)
	f.Fuzz(func(t *testing.T, expr, text string) {
		// The prefilter must find exactly what a whole-text scan finds,
		// for any pattern.
		checkPrefilterAgrees(t, expr, []byte(text))
		checkScannerAgrees(t, plain, []byte(text))
		out, findings := s.RedactString(Response, text)
		if (out == text) != (findings == nil) {
			t.Fatalf("output changed=%v but findings %v", out != text, findings)
		}
	})
}
