package jcs

import (
	"bytes"
	"encoding/json"
	"testing"

	gowebpki "github.com/gowebpki/jcs"
)

// FuzzCanonicalize checks this package against gowebpki/jcs: on any input
// both must fail or both must succeed with the same bytes. Beyond that,
// whatever is accepted must be valid JSON, and the output must be canonical
// (a fixed point) and valid JSON itself.
func FuzzCanonicalize(f *testing.F) {
	for _, seed := range []string{
		`{}`, `[]`, `null`, `true`, `false`, `0`, `-0`, `-1.5e-7`, `1e21`, `5e-324`,
		`9007199254740993`, `0.30000000000000004`, `1e309`, `1e-400`,
		`{"a":1,"b":[1,2,3]}`, `{"b":{"a":[{},[]]},"a":"x"}`,
		`{"\uffff":1,"😀":2,"\ue000":3}`, `{"a":1,"\u0061":2}`,
		`["\u0000\u001f\"\\\/\b\f\n\r\t\u00e9\ud83d\ude00"]`,
		`"\ud800"`, `"\udc00"`, `"\ud800\u0041"`, "\"\xed\xa0\x80\"", "\"\xff\"",
		`  {"a" : 1}  `, `{"signatures":[],"a":0}`,
		string(card),
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		got, err := Transform(data)
		want, refErr := gowebpki.Transform(data)
		valid := json.Valid(data)
		if err != nil {
			if refErr == nil && valid {
				t.Fatalf("rejected %q (%v); gowebpki/jcs gives %q", data, err, want)
			}
			return
		}
		if !valid {
			t.Fatalf("accepted invalid JSON %q", data)
		}
		if refErr != nil {
			t.Fatalf("accepted %q as %q; gowebpki/jcs: %v", data, got, refErr)
		}
		if !bytes.Equal(got, want) {
			t.Fatalf("input %q\n got %q\nwant %q", data, got, want)
		}
		if again, err := Transform(got); err != nil || !bytes.Equal(again, got) {
			t.Fatalf("output %q is not a fixed point: %q, %v", got, again, err)
		}
		// Leaving out a top-level member is the same as deleting it first.
		if data := bytes.TrimSpace(data); len(data) > 0 && data[0] == '{' {
			var m map[string]json.RawMessage
			if json.Unmarshal(data, &m) == nil && len(m) > 0 {
				for k := range m {
					without, err := CanonicalizeWithout(nil, data, k)
					if err != nil {
						t.Fatalf("CanonicalizeWithout %q: %v", k, err)
					}
					delete(m, k)
					re, _ := json.Marshal(m)
					ref, err := Transform(re)
					if err != nil || !bytes.Equal(without, ref) {
						t.Fatalf("CanonicalizeWithout(%q, %q) = %q, want %q (%v)", data, k, without, ref, err)
					}
					break
				}
			}
		}
	})
}
