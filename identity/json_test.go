package identity

import (
	"errors"
	"strings"
	"testing"

	"github.com/agentid/agentid/internal/strictjson"
)

const sampleHeader = `{"alg":"ES256","typ":"aip+jwt","kid":"k"}`

// withMembers inserts members at the start of the object doc.
func withMembers(doc, members string) string {
	return strings.Replace(doc, `{`, `{`+members+`,`, 1)
}

// What decoding a header or the claims reports is the same whichever
// member the problem is in, in this order: a document that is not strict
// JSON (under the JOSE profile), whatever else is wrong with it; then the
// first member, in document order, that is forbidden or of the wrong type;
// then what is missing.
func TestDecodeReportsNotStrictFirstThenTheFirstMember(t *testing.T) {
	tests := []struct {
		name   string
		header bool
		in     string
		code   strictjson.Code // the scanner's finding, for a document that is not strict JSON
		want   string          // else the error's text
	}{
		{"a duplicate after a wrong type is not strict", false, withMembers(samplePayload, `"nbf":"0","x":1,"X":2`), strictjson.ErrDuplicateKey, ""},
		{"a syntax error after a wrong type is not strict", false, strings.TrimSuffix(withMembers(samplePayload, `"nbf":"0"`), `}`) + `,}`, strictjson.ErrExpectedKey, ""},
		{"an integer beyond 2^53 is not strict", false, withMembers(samplePayload, `"x":[9007199254740993]`), strictjson.ErrNumberRange, ""},
		{"65 levels of nesting are not strict", false, withMembers(samplePayload, `"x":`+strings.Repeat("[", 64)+strings.Repeat("]", 64)), strictjson.ErrTooDeep, ""},
		{"a forbidden member before a duplicate is not strict", true, withMembers(sampleHeader, `"jku":"u","x":1,"x":2`), strictjson.ErrDuplicateKey, ""},
		{"the first wrong type wins", false, withMembers(samplePayload, `"nbf":"0","x":1`), 0, "claim nbf must be an integer"},
		{"a wrong type in binding", false, strings.Replace(samplePayload, `"hostname":"h"`, `"hostname":["h"]`, 1), 0, "claim binding.hostname must be a string"},
		{"binding of the wrong type", false, strings.Replace(strings.TrimSuffix(samplePayload, `}`), `"binding":{`, `"binding":[{`, 1) + `]}`, 0, "claim binding must be an object"},
		{"a case variant of an optional claim", false, withMembers(samplePayload, `"Nbf":1`), 0, `claim "Nbf" differs from nbf only in letter case`},
		{"a case variant in binding", false, strings.Replace(samplePayload, `"pod_uid":""`, `"POD_UID":""`, 1), 0, `claim "POD_UID" differs from binding.pod_uid only in letter case`},
		{"a missing claim", false, strings.Replace(samplePayload, `"aud":"https://mcp.example.com",`, ``, 1), 0, "claim aud missing"},
		{"the payload is not an object", false, `["iss"]`, 0, "not a JSON object"},
		{"a forbidden member before a wrong type", true, `{"jku":"u","alg":1,"typ":"aip+jwt","kid":"k"}`, 0, "header jku (key URL) is not accepted"},
		{"a wrong type before a forbidden member", true, `{"alg":1,"jku":"u","typ":"aip+jwt","kid":"k"}`, 0, "claim alg must be a string"},
		{"a missing header member", true, `{"alg":"ES256","typ":"aip+jwt"}`, 0, "header must have alg, typ and kid"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var err error
			if tt.header {
				_, err = decodeHeader([]byte(tt.in))
			} else {
				_, err = decodeClaims([]byte(tt.in))
			}
			var ns errNotStrict
			var se *strictjson.Error
			switch {
			case err == nil:
				t.Fatalf("accepted %s", tt.in)
			case tt.code != 0:
				if !errors.As(err, &ns) || !errors.As(err, &se) || se.Code != tt.code {
					t.Fatalf("got %v, want not strict JSON with code %d", err, tt.code)
				}
			case errors.As(err, &ns) || err.Error() != tt.want:
				t.Fatalf("got %v, want %q", err, tt.want)
			}
		})
	}
}

// The sample documents decode, so that each case above fails for its own
// reason.
func TestDecodeAcceptsTheSamples(t *testing.T) {
	if _, err := decodeClaims([]byte(samplePayload)); err != nil {
		t.Errorf("claims: %v", err)
	}
	if h, err := decodeHeader([]byte(sampleHeader)); err != nil || h != (header{"ES256", "aip+jwt", "k"}) {
		t.Errorf("header: %+v, %v", h, err)
	}
}
