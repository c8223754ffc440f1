package agentcard

import (
	"encoding/json"
	"strings"
	"testing"
	"time"
)

// kagentiCard is a card as the Kagenti signer writes it (json.MarshalIndent
// of its struct), before the signatures are added.
var kagentiCard = []byte(`{
  "name": "A & B <agent>",
  "description": "",
  "version": "1.0.0",
  "url": "http://weather-agent.agents.svc.cluster.local:8000",
  "capabilities": {
    "streaming": false,
    "pushNotifications": true
  },
  "defaultInputModes": [
    "text"
  ],
  "skills": [
    {
      "id": "forecast",
      "name": "Forecast",
      "description": "",
      "tags": []
    }
  ]
}`)

// kagentiGolden is Kagenti's canonical JSON of kagentiCard, written out by
// hand from the algorithm in reference/kagenti.md §1.1: sorted keys, "" and
// [] removed from objects but not inside arrays, HTML characters escaped.
const kagentiGolden = `{"capabilities":{"pushNotifications":true,"streaming":false},"defaultInputModes":["text"],` +
	`"name":"A \u0026 B \u003cagent\u003e","skills":[{"description":"","id":"forecast","name":"Forecast","tags":[]}],` +
	`"url":"http://weather-agent.agents.svc.cluster.local:8000","version":"1.0.0"}`

func TestKagentiCanonicalFormMatchesItsAlgorithm(t *testing.T) {
	c, err := ParseCard(kagentiCard)
	if err != nil {
		t.Fatal(err)
	}
	got, err := kagentiPayload(c)
	if err != nil {
		t.Fatal(err)
	}
	if string(got) != kagentiGolden {
		t.Fatalf("kagenti payload\n got %s\nwant %s", got, kagentiGolden)
	}
	// And it is not RFC 8785, which is why our signer never uses it.
	jcsForm, _ := c.Payload()
	if string(jcsForm) == kagentiGolden {
		t.Fatal("forms should differ on this card")
	}
}

func TestKagentiKeyIDIsSixteenHexChars(t *testing.T) {
	f := newFixture(t)
	h := kagentiHeader(f.svid, ES256)
	kid := h["kid"].(string)
	if len(kid) != 16 || strings.Trim(kid, "0123456789abcdef") != "" {
		t.Fatalf("kid %q", kid)
	}
}

// kagentiSigned signs kagentiCard as the Kagenti signer does: header fields
// in its struct order, payload in its canonical form.
func kagentiSigned(t *testing.T, s svid, alg Algorithm) []byte {
	t.Helper()
	h := kagentiHeader(s, alg)
	hj, err := json.Marshal(struct {
		Alg string   `json:"alg"`
		Typ string   `json:"typ"`
		Kid string   `json:"kid"`
		X5C []string `json:"x5c"`
	}{h["alg"].(string), h["typ"].(string), h["kid"].(string), h["x5c"].([]string)})
	if err != nil {
		t.Fatal(err)
	}
	p, sig := handSign(t, kagentiCard, jwsSpec{rawHdr: hj, key: s.key, alg: alg, payload: []byte(kagentiGolden)})
	return withSigs(t, kagentiCard, [2]string{p, sig})
}

func TestCompatKagenti(t *testing.T) {
	f := newFixture(t)
	rsaSVID := f.ca.issue(t, testID, rsa2048)
	expired := f.ca.issue(t, testID, p256, withValidity(testNow.Add(-3*time.Hour), testNow.Add(-time.Hour)))

	t.Run("a Kagenti-signed ES256 card verifies with --compat kagenti", func(t *testing.T) {
		res, err := f.verifier(t, WithCompat(CompatKagenti), WithTrustDomain(f.ca.td)).Verify(kagentiSigned(t, f.svid, ES256))
		if err != nil || res.Signatures[0].Canonicalization != "kagenti" || !res.Binding.Bound {
			t.Fatalf("%v %+v", err, res)
		}
		if len(res.KeyID) != 16 || res.IssuedAt != nil {
			t.Fatalf("%+v", res)
		}
	})
	t.Run("a Kagenti-signed RS256 card verifies with --compat kagenti", func(t *testing.T) {
		if _, err := f.verifier(t, WithCompat(CompatKagenti)).Verify(kagentiSigned(t, rsaSVID, RS256)); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("a Kagenti-signed card is refused without the compat option", func(t *testing.T) {
		res, err := f.verifier(t).Verify(kagentiSigned(t, f.svid, ES256))
		if err == nil || res.Signatures[0].Reason != ReasonThumbprint {
			t.Fatalf("%v %+v", err, res)
		}
	})
	t.Run("a Kagenti-signed card with an expired SVID is refused even in compat mode", func(t *testing.T) {
		res, err := f.verifier(t, WithCompat(CompatKagenti)).Verify(kagentiSigned(t, expired, ES256))
		if err == nil || res.Signatures[0].Reason != ReasonLeafExpired {
			t.Fatalf("%v %+v", err, res)
		}
	})
	t.Run("a field added to a Kagenti-signed card is not ignored", func(t *testing.T) {
		card := strings.Replace(string(kagentiSigned(t, f.svid, ES256)), `"name"`, `"securitySchemes":{"oauth":{"type":"oauth2"}},"name"`, 1)
		res, err := f.verifier(t, WithCompat(CompatKagenti)).Verify([]byte(card))
		if err == nil || res.Signatures[0].Reason != ReasonBadSignature {
			t.Fatalf("%v %+v", err, res)
		}
	})
	t.Run("a Kagenti header with a kid for another certificate is refused", func(t *testing.T) {
		h := kagentiHeader(f.svid, ES256)
		h["kid"] = "0000000000000000"
		p, s := handSign(t, kagentiCard, jwsSpec{header: h, key: f.svid.key, alg: ES256, payload: []byte(kagentiGolden)})
		res, err := f.verifier(t, WithCompat(CompatKagenti)).Verify(withSigs(t, kagentiCard, [2]string{p, s}))
		if err == nil || res.Signatures[0].Reason != ReasonKeyID {
			t.Fatalf("%v %+v", err, res)
		}
	})
	t.Run("alg none is refused in compat mode too", func(t *testing.T) {
		h := kagentiHeader(f.svid, ES256)
		h["alg"] = "none"
		p, s := handSign(t, kagentiCard, jwsSpec{header: h, payload: []byte(kagentiGolden)})
		res, err := f.verifier(t, WithCompat(CompatKagenti)).Verify(withSigs(t, kagentiCard, [2]string{p, s}))
		if err == nil || res.Signatures[0].Reason != ReasonAlgorithm {
			t.Fatalf("%v %+v", err, res)
		}
	})
	t.Run("our own cards still verify in compat mode", func(t *testing.T) {
		res, err := f.verifier(t, WithCompat(CompatKagenti)).Verify(f.sign(t, baseCard))
		if err != nil || res.Signatures[0].Canonicalization != "rfc8785" {
			t.Fatalf("%v %+v", err, res)
		}
	})
}
