package agentcard

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/gowebpki/jcs"
	"github.com/spiffe/go-spiffe/v2/spiffeid"
)

// FuzzParseCard checks the strict card parser against the canonicalizer and
// the standard library: whatever we accept must be valid JSON to
// encoding/json, must canonicalize, and its canonical form must be a fixed
// point that we accept again.
func FuzzParseCard(f *testing.F) {
	for _, seed := range []string{
		string(baseCard), string(kagentiCard), `{}`, `{"a":[1,2.5e-3,{"b":null}],"signatures":[]}`,
		`{"n":9007199254740992}`, `{"s":"\ud83d\ude02\u00e9"}`, `{"k":1,"K":2}`, `{"a":{"a":{"a":[]}}}`,
		`{"signatures":[{"protected":"e30","signature":"AA"}],"x":"y"}`,
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := ParseCard(data)
		if err != nil {
			return
		}
		if !json.Valid(data) {
			t.Fatalf("accepted invalid JSON %q", data)
		}
		payload, err := c.Payload()
		if err != nil {
			t.Fatalf("accepted card does not canonicalize: %v", err)
		}
		again, err := jcs.Transform(payload)
		if err != nil || !bytes.Equal(again, payload) {
			t.Fatalf("canonical form is not a fixed point: %q -> %q (%v)", payload, again, err)
		}
		c2, err := ParseCard(payload)
		if err != nil {
			t.Fatalf("canonical form rejected: %v", err)
		}
		if p2, _ := c2.Payload(); !bytes.Equal(p2, payload) {
			t.Fatal("payload changed on reparse")
		}
		// The Kagenti form must not fail on anything we accept either.
		if _, err := kagentiPayload(c); err != nil {
			t.Fatalf("kagenti form: %v", err)
		}
		_, _ = c.signatures()
	})
}

// FuzzFoldKey checks that the duplicate-key check folds case at least as
// broadly as strings.EqualFold (and so Go's encoding/json) does, and more
// broadly only where strictjson.FoldRune says: the dotted and the dotless I
// also match I.
func FuzzFoldKey(f *testing.F) {
	f.Add("name", "Name")
	f.Add("k", "\u212a")
	f.Add("s", "\u017f")
	f.Add("ǅ", "ǆ")
	f.Add("id", "İd")
	f.Add("ıd", "ID")
	turkish := strings.NewReplacer("İ", "I", "ı", "I")
	f.Fuzz(func(t *testing.T, a, b string) {
		if !utf8.ValidString(a) || !utf8.ValidString(b) {
			return
		}
		same := foldKey(a) == foldKey(b)
		if strings.EqualFold(a, b) && !same {
			t.Fatalf("foldKey(%q) != foldKey(%q), but EqualFold says they match", a, b)
		}
		if same && !strings.EqualFold(turkish.Replace(a), turkish.Replace(b)) {
			t.Fatalf("foldKey(%q) == foldKey(%q), but they differ in more than case and dotted or dotless I", a, b)
		}
	})
}

// FuzzProtectedHeader decodes arbitrary protected headers and runs them
// through the whole verifier: nothing may panic, and nothing signed with a
// junk signature may verify.
func FuzzProtectedHeader(f *testing.F) {
	fx := newFixture(f)
	v, err := NewVerifier(fx.bundles, WithTime(testNow), WithCompat(CompatKagenti))
	if err != nil {
		f.Fatal(err)
	}
	for _, h := range []map[string]any{stdHeader(fx.svid, ES256), kagentiHeader(fx.svid, ES256)} {
		hj, _ := json.Marshal(h)
		f.Add(hj, []byte{1, 2, 3})
	}
	f.Add([]byte(`{"alg":"none"}`), []byte{})
	f.Add([]byte(`{"alg":"ES256","crit":["b64"],"b64":false}`), []byte{0})
	f.Add([]byte(`{"alg":"ES256","x5c":["AAAA"],"iat":1,"exp":2}`), make([]byte, 64))
	f.Fuzz(func(t *testing.T, hdr, sig []byte) {
		if h, err := decodeHeader(hdr); err == nil {
			if h.hasX5C && len(h.x5c) == 0 {
				t.Fatal("empty x5c accepted")
			}
		}
		card := withSigs(t, baseCard, [2]string{b64url.EncodeToString(hdr), b64url.EncodeToString(sig)})
		res, err := v.Verify(card)
		if err == nil || res.Verified {
			t.Fatalf("junk signature verified: header %q", hdr)
		}
	})
}

// FuzzParseBundle feeds arbitrary documents to the bundle parser: nothing
// may panic, and an accepted bundle holds only CA certificates.
func FuzzParseBundle(f *testing.F) {
	ca := newCA(f, "example.org")
	f.Add(spiffeBundleJSON(f, ca))
	f.Add(pemBundle(ca))
	f.Add([]byte(`{"keys":[{"use":"x509-svid","kty":"EC","x5c":["AAAA"]}]}`))
	f.Add([]byte(`{"keys":[],"spiffe_refresh_hint":-1}`))
	f.Add([]byte("-----BEGIN CERTIFICATE-----\n-----END CERTIFICATE-----\n"))
	td := spiffeid.RequireTrustDomainFromString("example.org")
	f.Fuzz(func(t *testing.T, data []byte) {
		b, err := ParseBundle(td, data)
		if err != nil {
			return
		}
		auth := b.X509Authorities()
		if len(auth) == 0 {
			t.Fatal("empty bundle accepted")
		}
		for _, a := range auth {
			if !a.IsCA {
				t.Fatal("non-CA authority accepted")
			}
		}
	})
}
