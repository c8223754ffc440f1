package identity

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/agentid/agentid/internal/strictjson"
)

const samplePayload = `{"iss":"agentid","sub":"a","aud":"https://mcp.example.com","iat":1769250600,"exp":1769250900,"jti":"0123456789abcdef0123456789abcdef","version":"aip/v1alpha2","policy_hash":"` + "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa" + `","session_id":"550e8400-e29b-41d4-a716-446655440000","agent_id":"a","issued_at":"2026-01-24T10:30:00.000Z","expires_at":"2026-01-24T10:35:00.000Z","nonce":"0123456789abcdef0123456789abcdef","binding":{"process_id":12,"policy_path":"/p.yaml","hostname":"h","container_id":"","pod_uid":""}}`

// FuzzDecodePayload checks the claims decoder against encoding/json: whatever it accepts, encoding/json must decode to the same
// values (so no parser differential lets one claim mean two things), and it
// never panics.
func FuzzDecodePayload(f *testing.F) {
	f.Add([]byte(samplePayload))
	f.Add([]byte(strings.Replace(samplePayload, `"iss":"agentid"`, `"iss":"agent\u0069d","x":[1,{"y":"}"}],"z":null`, 1)))
	f.Add([]byte(strings.Replace(samplePayload, `"iat":1769250600`, `"iat":1769250600.0`, 1)))
	f.Add([]byte(`{"binding":{}}`))
	f.Add([]byte(`[]`))
	f.Fuzz(func(t *testing.T, data []byte) {
		c, verr := decodePayload(data)
		if verr != nil {
			return
		}
		if err := strictjson.Validate(strictjson.JOSE, data); err != nil {
			t.Fatalf("accepted what the JOSE profile refuses: %v", err)
		}
		var w wireClaims
		if err := json.Unmarshal(data, &w); err != nil {
			t.Fatalf("encoding/json rejects what we accepted: %v", err)
		}
		if w.Iss != c.Issuer || w.Sub != c.Subject || w.Aud != c.Audience || w.Iat != c.IssuedAtUnix || w.Exp != c.ExpiresAtUnix ||
			w.Jti != c.JWTID || w.Version != c.Version || w.PolicyHash != c.PolicyHash || w.SessionID != c.SessionID ||
			w.AgentID != c.AgentID || w.Nonce != c.Nonce || w.Binding != c.Binding {
			t.Fatalf("differential:\n ours %+v\n json %+v", c, w)
		}
		if (w.Nbf == nil) != (c.NotBefore == nil) || w.Nbf != nil && *w.Nbf != *c.NotBefore {
			t.Fatal("nbf differential")
		}
		// Re-encoding and decoding gives the same claims.
		b, err := c.MarshalJSON()
		if err != nil {
			t.Fatal(err)
		}
		c2, verr := decodePayload(b)
		if verr != nil {
			t.Fatalf("re-encoded claims rejected: %v\n%s", verr, b)
		}
		c.NotBefore, c2.NotBefore = nil, nil
		if !c.IssuedAt.Equal(c2.IssuedAt) || !c.ExpiresAt.Equal(c2.ExpiresAt) {
			t.Fatal("times changed on re-encoding")
		}
		c.IssuedAt, c.ExpiresAt = c2.IssuedAt, c2.ExpiresAt
		if *c != *c2 {
			t.Fatalf("round trip changed claims")
		}
	})
}

// FuzzHeader: the header decoder never panics, accepts only what the JOSE
// profile accepts, and agrees with encoding/json on alg/typ/kid.
func FuzzHeader(f *testing.F) {
	f.Add([]byte(`{"alg":"ES256","typ":"aip+jwt","kid":"k"}`))
	f.Add([]byte(`{"alg":"ES256","typ":"aip+jwt","kid":"k","x":{"a":[1,"]"]}}`))
	f.Add([]byte(`{"alg":"ES256","typ":"aip+jwt","kid":"k","jku":"u"}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		h, err := decodeHeader(data)
		if err != nil {
			return
		}
		if err := strictjson.Validate(strictjson.JOSE, data); err != nil {
			t.Fatalf("accepted what the JOSE profile refuses: %v", err)
		}
		var w struct{ Alg, Typ, Kid string }
		if err := json.Unmarshal(data, &w); err != nil {
			t.Fatalf("encoding/json: %v", err)
		}
		if w.Alg != h.Alg || w.Typ != h.Typ || w.Kid != h.Kid {
			t.Fatalf("differential: %+v vs %+v", h, w)
		}
		for k := range forbiddenHeaders {
			if strings.Contains(string(data), `"`+k+`"`) {
				var m map[string]json.RawMessage
				if json.Unmarshal(data, &m) == nil {
					if _, ok := m[k]; ok {
						t.Fatalf("forbidden header %s accepted", k)
					}
				}
			}
		}
	})
}
