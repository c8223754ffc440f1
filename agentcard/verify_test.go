package agentcard

import (
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/spiffe/go-spiffe/v2/bundle/x509bundle"
	"github.com/spiffe/go-spiffe/v2/spiffeid"
)

const testID = "spiffe://example.org/ns/agents/sa/weather"

// baseCard exercises what canonicalization gets wrong most often: HTML
// characters, non-ASCII, empty values, an A2A v0.3 field and a field no A2A
// version knows.
var baseCard = []byte(`{
  "name": "Weather Agent",
  "description": "Forecasts & alerts <beta> — ünïcødé 🌦",
  "url": "http://weather.agents.svc.cluster.local:8000",
  "version": "1.0.0",
  "protocolVersion": "0.3.0",
  "capabilities": {"streaming": false, "pushNotifications": false},
  "defaultInputModes": ["text/plain"],
  "defaultOutputModes": [],
  "skills": [{"id": "forecast", "name": "Forecast", "description": "", "tags": ["weather"]}],
  "x-vendor": {"rating": 4.50, "big": 1e21, "zero": 0}
}`)

// fixture is one trust domain with a root CA and a P-256 SVID for testID.
type fixture struct {
	ca      *testCA
	svid    svid
	bundles *x509bundle.Set
}

func newFixture(t testing.TB) *fixture {
	t.Helper()
	ca := newCA(t, "example.org")
	return &fixture{ca: ca, svid: ca.issue(t, testID, p256), bundles: bundleSet(ca)}
}

// sign signs baseCard the way our signer does.
func (f *fixture) sign(t testing.TB, card []byte) []byte {
	t.Helper()
	out, _, err := Sign(card, f.svid.chain, f.svid.key, WithSigningTime(testNow.Add(-time.Minute)))
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func (f *fixture) verifier(t testing.TB, opts ...VerifierOption) *Verifier {
	t.Helper()
	v, err := NewVerifier(f.bundles, append([]VerifierOption{WithTime(testNow)}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// handCard signs baseCard with a hand-built signature.
func (f *fixture) handCard(t testing.TB, spec jwsSpec) []byte {
	t.Helper()
	p, s := handSign(t, baseCard, spec)
	return withSigs(t, baseCard, [2]string{p, s})
}

// stdSpec is a jwsSpec equal to what our signer produces for f.svid.
func (f *fixture) stdSpec() jwsSpec {
	return jwsSpec{header: stdHeader(f.svid, ES256), key: f.svid.key, alg: ES256}
}

func TestVerifyAcceptsCardSignedBySign(t *testing.T) {
	f := newFixture(t)
	signed := f.sign(t, baseCard)
	res, err := f.verifier(t, WithTrustDomain(f.ca.td)).Verify(signed)
	if err != nil {
		t.Fatalf("Verify: %v\n%+v", err, res)
	}
	if !res.Verified || res.SPIFFEID != testID || res.SignatureIndex != 0 || res.Algorithm != "ES256" {
		t.Fatalf("unexpected result %+v", res)
	}
	if res.Binding == nil || !res.Binding.Bound || res.Binding.Reason != BindingBound ||
		res.Binding.Message != "SPIFFE ID "+testID+" belongs to trust domain example.org" {
		t.Fatalf("binding %+v", res.Binding)
	}
	if !res.LeafNotAfter.Equal(f.svid.leaf().NotAfter) {
		t.Fatalf("leaf_not_after %v, want %v", res.LeafNotAfter, f.svid.leaf().NotAfter)
	}
	if want := "JWS signature verified successfully (alg=ES256, kid=" + res.KeyID + ")"; res.Details != want {
		t.Fatalf("details %q, want %q", res.Details, want)
	}
}

func TestSignAndVerifyEveryKeyType(t *testing.T) {
	f := newFixture(t)
	for _, tc := range []struct {
		name string
		kind keyKind
		pss  bool
		want Algorithm
	}{
		{"P-256 signs ES256", p256, false, ES256},
		{"P-384 signs ES384", p384, false, ES384},
		{"P-521 signs ES512", p521, false, ES512},
		{"RSA-2048 signs RS256", rsa2048, false, RS256},
		{"RSA-2048 with PSS signs PS256", rsa2048, true, PS256},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := f.ca.issue(t, testID, tc.kind)
			opts := []SignOption{WithSigningTime(testNow)}
			if tc.pss {
				opts = append(opts, WithRSAPSS())
			}
			signed, info, err := Sign(baseCard, s.chain, s.key, opts...)
			if err != nil {
				t.Fatal(err)
			}
			if info.Algorithm != tc.want {
				t.Fatalf("alg %s, want %s", info.Algorithm, tc.want)
			}
			res, err := f.verifier(t).Verify(signed)
			if err != nil || res.Algorithm != string(tc.want) {
				t.Fatalf("Verify: %v %+v", err, res)
			}
		})
	}
}

func TestSignedHeaderHasTheRequiredParameters(t *testing.T) {
	f := newFixture(t)
	signed := f.sign(t, baseCard)
	var card struct {
		Signatures []map[string]string `json:"signatures"`
	}
	if err := json.Unmarshal(signed, &card); err != nil {
		t.Fatal(err)
	}
	if len(card.Signatures) != 1 || len(card.Signatures[0]) != 2 {
		t.Fatalf("want one {protected, signature} entry, got %v", card.Signatures)
	}
	raw, err := b64url.DecodeString(card.Signatures[0]["protected"])
	if err != nil {
		t.Fatal(err)
	}
	// The field order is fixed, so the header bytes are reproducible.
	want := `{"alg":"ES256","typ":"JOSE","kid":"`
	if !strings.HasPrefix(string(raw), want) {
		t.Fatalf("header %s does not start with %s", raw, want)
	}
	var h map[string]any
	if err := json.Unmarshal(raw, &h); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"alg", "typ", "kid", "x5c", "x5t#S256", "iat", "exp"} {
		if _, ok := h[k]; !ok {
			t.Errorf("header lacks %s", k)
		}
	}
	if len(h) != 7 {
		t.Errorf("header has %d parameters, want 7: %s", len(h), raw)
	}
	x5c := h["x5c"].([]any)
	leaf, _ := base64.StdEncoding.DecodeString(x5c[0].(string))
	if string(leaf) != string(f.svid.leaf().Raw) {
		t.Error("x5c[0] is not the leaf")
	}
	sig, _ := b64url.DecodeString(card.Signatures[0]["signature"])
	if len(sig) != 64 {
		t.Errorf("ES256 signature of %d bytes, want 64 (R||S)", len(sig))
	}
}

// TestVerifyRejects holds one case per requirement: every negative case of
// reference/kagenti.md §3.2 and §5.1 and of the issue. Each changes one
// thing about a card that otherwise verifies, and names the reason that
// must be reported.
func TestVerifyRejects(t *testing.T) {
	f := newFixture(t)
	other := newCA(t, "other.org")
	setHeader := func(k string, v any) jwsSpec {
		s := f.stdSpec()
		if v == nil {
			delete(s.header, k)
		} else {
			s.header[k] = v
		}
		return s
	}
	// svidCard signs baseCard with s (our header shape) and returns it.
	svidCard := func(t *testing.T, s svid, alg Algorithm) []byte {
		return f.handCard(t, jwsSpec{header: stdHeader(s, alg), key: s.key, alg: alg})
	}

	cases := []struct {
		name  string
		card  func(t *testing.T) []byte
		opts  []VerifierOption
		want  Reason
		isErr error // card-level error instead of a signature reason
	}{
		// reference/kagenti.md §3.2, VerifyJWS level.
		{name: "tampered payload: a card field changed after signing", want: ReasonBadSignature, card: func(t *testing.T) []byte {
			return []byte(strings.Replace(string(f.sign(t, baseCard)), "Weather Agent", "Weather Agent!", 1))
		}},
		{name: "tampered payload: RSA signature", want: ReasonBadSignature, card: func(t *testing.T) []byte {
			s := f.ca.issue(t, testID, rsa2048)
			signed, _, err := Sign(baseCard, s.chain, s.key, WithSigningTime(testNow))
			if err != nil {
				t.Fatal(err)
			}
			return []byte(strings.Replace(string(signed), `"1.0.0"`, `"1.0.1"`, 1))
		}},
		{name: "tampered payload: an unsigned field added after signing", want: ReasonBadSignature, card: func(t *testing.T) []byte {
			return []byte(strings.Replace(string(f.sign(t, baseCard)), `"name"`, `"securitySchemes": {"x": {}}, "name"`, 1))
		}},
		{name: "tampered protected header: kid changed", want: ReasonBadSignature, card: func(t *testing.T) []byte {
			p, s := handSign(t, baseCard, f.stdSpec())
			h := stdHeader(f.svid, ES256)
			h["kid"] = "0123456789abcdef"
			hj, _ := json.Marshal(h)
			_ = p
			return withSigs(t, baseCard, [2]string{b64url.EncodeToString(hj), s})
		}},
		{name: "tampered protected header: exp extended", want: ReasonBadSignature, card: func(t *testing.T) []byte {
			_, s := handSign(t, baseCard, f.stdSpec())
			h := stdHeader(f.svid, ES256)
			h["exp"] = h["exp"].(int64) - 1
			hj, _ := json.Marshal(h)
			return withSigs(t, baseCard, [2]string{b64url.EncodeToString(hj), s})
		}},
		{name: "tampered signature bytes: first byte flipped", want: ReasonBadSignature, card: func(t *testing.T) []byte {
			p, s := handSign(t, baseCard, f.stdSpec())
			sig, _ := b64url.DecodeString(s)
			sig[0] ^= 0x80
			return withSigs(t, baseCard, [2]string{p, b64url.EncodeToString(sig)})
		}},
		{name: "wrong key: ECDSA", want: ReasonBadSignature, card: func(t *testing.T) []byte {
			s := f.stdSpec()
			s.key = newKey(t, p256)
			return f.handCard(t, s)
		}},
		{name: "wrong key: RSA", want: ReasonBadSignature, card: func(t *testing.T) []byte {
			s := f.ca.issue(t, testID, rsa2048)
			return f.handCard(t, jwsSpec{header: stdHeader(s, RS256), key: newKey(t, rsa2048), alg: RS256})
		}},
		{name: "wrong key: RSA-PSS", want: ReasonBadSignature, card: func(t *testing.T) []byte {
			s := f.ca.issue(t, testID, rsa2048)
			return f.handCard(t, jwsSpec{header: stdHeader(s, PS256), key: newKey(t, rsa2048), alg: PS256})
		}},
		{name: "alg none", want: ReasonAlgorithm, card: func(t *testing.T) []byte {
			s := setHeader("alg", "none")
			s.key = nil
			return f.handCard(t, s)
		}},
		{name: "alg empty", want: ReasonAlgorithm, card: func(t *testing.T) []byte { return f.handCard(t, setHeader("alg", "")) }},
		{name: "alg missing", want: ReasonAlgorithm, card: func(t *testing.T) []byte { return f.handCard(t, setHeader("alg", nil)) }},
		{name: "alg HS256 (HMAC keyed with the public key)", want: ReasonAlgorithm, card: func(t *testing.T) []byte {
			return f.handCard(t, setHeader("alg", "HS256"))
		}},
		{name: "alg RS1024 (unsupported)", want: ReasonAlgorithm, card: func(t *testing.T) []byte {
			return f.handCard(t, setHeader("alg", "RS1024"))
		}},
		{name: "alg RS384 (not on our allowlist)", want: ReasonAlgorithm, card: func(t *testing.T) []byte {
			return f.handCard(t, setHeader("alg", "RS384"))
		}},
		{name: "alg EdDSA (not on our allowlist)", want: ReasonAlgorithm, card: func(t *testing.T) []byte {
			return f.handCard(t, setHeader("alg", "EdDSA"))
		}},
		{name: "key/curve mismatch: RSA key with an ES256 header", want: ReasonKeyMismatch, card: func(t *testing.T) []byte {
			s := f.ca.issue(t, testID, rsa2048)
			return f.handCard(t, jwsSpec{header: stdHeader(s, ES256), key: s.key, alg: RS256})
		}},
		{name: "key/curve mismatch: P-384 key with an ES256 header", want: ReasonKeyMismatch, card: func(t *testing.T) []byte {
			s := f.ca.issue(t, testID, p384)
			return f.handCard(t, jwsSpec{header: stdHeader(s, ES256), key: s.key, alg: ES384})
		}},
		{name: "key/curve mismatch: P-256 key with an RS256 header", want: ReasonKeyMismatch, card: func(t *testing.T) []byte {
			return f.handCard(t, setHeader("alg", "RS256"))
		}},
		{name: "RSA-1024 key, below the minimum", want: ReasonKeyMismatch, card: func(t *testing.T) []byte {
			s := f.ca.issue(t, testID, rsa1024)
			return f.handCard(t, jwsSpec{header: stdHeader(s, RS256), key: s.key, alg: RS256})
		}},
		{name: "signature member missing", want: ReasonMalformed, card: func(t *testing.T) []byte {
			p, _ := handSign(t, baseCard, f.stdSpec())
			return withSigs(t, baseCard, [2]string{p, ""})
		}},
		{name: "protected header not base64url", want: ReasonMalformed, card: func(t *testing.T) []byte {
			p, s := handSign(t, baseCard, f.stdSpec())
			return withSigs(t, baseCard, [2]string{p + "=", s})
		}},
		{name: "protected header in standard base64", want: ReasonMalformed, card: func(t *testing.T) []byte {
			// Pad the header with JSON whitespace until its standard
			// base64 needs padding, so that the two encodings differ.
			hj, _ := json.Marshal(stdHeader(f.svid, ES256))
			for len(hj)%3 == 0 {
				hj = append(hj, ' ')
			}
			s := f.stdSpec()
			s.rawHdr = hj
			_, sig := handSign(t, baseCard, s)
			return withSigs(t, baseCard, [2]string{base64.StdEncoding.EncodeToString(hj), sig})
		}},
		{name: "signature not base64url", want: ReasonMalformed, card: func(t *testing.T) []byte {
			p, s := handSign(t, baseCard, f.stdSpec())
			return withSigs(t, baseCard, [2]string{p, s + "!"})
		}},
		{name: "protected header not JSON", want: ReasonMalformed, card: func(t *testing.T) []byte {
			s := f.stdSpec()
			s.rawHdr = []byte(`{"alg":"ES256",`)
			return f.handCard(t, s)
		}},
		{name: "protected header with duplicate alg", want: ReasonMalformed, card: func(t *testing.T) []byte {
			s := f.stdSpec()
			hj, _ := json.Marshal(s.header)
			s.rawHdr = append([]byte(`{"alg":"none",`), hj[1:]...)
			return f.handCard(t, s)
		}},

		// reference/kagenti.md §3.2, x5c and identity level.
		{name: "leaf issued by an untrusted CA", want: ReasonChain, card: func(t *testing.T) []byte {
			rogue := newCA(t, "example.org")
			return svidCard(t, rogue.issue(t, testID, p256), ES256)
		}},
		{name: "bundle rotated: the old CA removed, an old leaf fails", want: ReasonChain,
			opts: []VerifierOption{}, card: func(t *testing.T) []byte { return f.sign(t, baseCard) }},
		{name: "x5c missing", want: ReasonNoX5C, card: func(t *testing.T) []byte { return f.handCard(t, setHeader("x5c", nil)) }},
		{name: "x5c invalid base64", want: ReasonMalformed, card: func(t *testing.T) []byte {
			return f.handCard(t, setHeader("x5c", []string{"%%%"}))
		}},
		{name: "x5c in base64url instead of standard base64", want: ReasonMalformed, card: func(t *testing.T) []byte {
			return f.handCard(t, setHeader("x5c", []string{base64.RawURLEncoding.EncodeToString(f.svid.leaf().Raw)}))
		}},
		{name: "x5c entry not a certificate", want: ReasonCertificate, card: func(t *testing.T) []byte {
			return f.handCard(t, setHeader("x5c", []string{base64.StdEncoding.EncodeToString([]byte("junk"))}))
		}},
		{name: "chain longer than allowed", want: ReasonChainTooLong, card: func(t *testing.T) []byte {
			i1 := f.ca.intermediate(t, "spiffe://example.org")
			i2 := i1.intermediate(t, "spiffe://example.org")
			i3 := i2.intermediate(t, "spiffe://example.org")
			return svidCard(t, i3.issue(t, testID, p256), ES256)
		}},
		{name: "leaf with no URI SAN", want: ReasonNotSVID, card: func(t *testing.T) []byte {
			return svidCard(t, f.ca.issue(t, "", p256), ES256)
		}},
		{name: "leaf with only a non-spiffe URI", want: ReasonNotSVID, card: func(t *testing.T) []byte {
			return svidCard(t, f.ca.issue(t, "https://example.org/agent", p256), ES256)
		}},
		{name: "leaf with two spiffe URIs", want: ReasonNotSVID, card: func(t *testing.T) []byte {
			return svidCard(t, f.ca.issue(t, testID, p256, withURIs(t, testID, "spiffe://example.org/other")), ES256)
		}},
		{name: "leaf with a spiffe and a non-spiffe URI (SVIDs have exactly one URI SAN)", want: ReasonNotSVID, card: func(t *testing.T) []byte {
			return svidCard(t, f.ca.issue(t, testID, p256, withURIs(t, testID, "https://example.org/")), ES256)
		}},
		{name: "leaf SPIFFE ID with an empty trust domain", want: ReasonNotSVID, card: func(t *testing.T) []byte {
			return svidCard(t, f.ca.issue(t, "spiffe:///workload", p256), ES256)
		}},
		{name: "leaf SPIFFE ID not in canonical form (upper case)", want: ReasonNotSVID, card: func(t *testing.T) []byte {
			return svidCard(t, f.ca.issue(t, "spiffe://Example.org/agent", p256), ES256)
		}},
		{name: "leaf SPIFFE ID with a dot segment", want: ReasonNotSVID, card: func(t *testing.T) []byte {
			return svidCard(t, f.ca.issue(t, "spiffe://example.org/ns/../agent", p256), ES256)
		}},
		{name: "leaf SPIFFE ID with no path (spiffe://example.org/)", want: ReasonNotSVID, card: func(t *testing.T) []byte {
			return svidCard(t, f.ca.issue(t, "spiffe://example.org", p256), ES256)
		}},
		{name: "empty signatures array", isErr: ErrNoSignature, card: func(t *testing.T) []byte { return withSigs(t, baseCard) }},
		{name: "unsigned card", isErr: ErrNoSignature, card: func(t *testing.T) []byte { return baseCard }},

		// The issue's list and reference/kagenti.md §5.1.
		{name: "expired leaf (Kagenti accepted it: Option B)", want: ReasonLeafExpired, card: func(t *testing.T) []byte {
			s := f.ca.issue(t, testID, p256, withValidity(testNow.Add(-3*time.Hour), testNow.Add(-time.Hour)))
			h := stdHeader(s, ES256)
			h["iat"], h["exp"] = testNow.Add(-2*time.Hour).Unix(), testNow.Add(time.Hour).Unix()
			return f.handCard(t, jwsSpec{header: h, key: s.key, alg: ES256})
		}},
		{name: "not-yet-valid leaf (Kagenti accepted it: Option B)", want: ReasonLeafNotYetValid, card: func(t *testing.T) []byte {
			s := f.ca.issue(t, testID, p256, withValidity(testNow.Add(time.Hour), testNow.Add(3*time.Hour)))
			h := stdHeader(s, ES256)
			return f.handCard(t, jwsSpec{header: h, key: s.key, alg: ES256})
		}},
		{name: "CA leaf", want: ReasonNotSVID, card: func(t *testing.T) []byte {
			s := f.ca.issue(t, testID, p256, func(c *x509.Certificate) { c.IsCA = true })
			return svidCard(t, s, ES256)
		}},
		{name: "leaf with certSign usage", want: ReasonNotSVID, card: func(t *testing.T) []byte {
			s := f.ca.issue(t, testID, p256, func(c *x509.Certificate) { c.KeyUsage |= x509.KeyUsageCertSign })
			return svidCard(t, s, ES256)
		}},
		{name: "leaf with crlSign usage", want: ReasonNotSVID, card: func(t *testing.T) []byte {
			s := f.ca.issue(t, testID, p256, func(c *x509.Certificate) { c.KeyUsage |= x509.KeyUsageCRLSign })
			return svidCard(t, s, ES256)
		}},
		{name: "leaf without digitalSignature usage", want: ReasonNotSVID, card: func(t *testing.T) []byte {
			s := f.ca.issue(t, testID, p256, func(c *x509.Certificate) { c.KeyUsage = x509.KeyUsageKeyEncipherment })
			return svidCard(t, s, ES256)
		}},
		{name: "intermediate from another trust domain (its URI SAN)", want: ReasonNotSVID, card: func(t *testing.T) []byte {
			i := f.ca.intermediate(t, "spiffe://other.org")
			return svidCard(t, i.issue(t, testID, p256), ES256)
		}},
		{name: "intermediate from another trust domain (issued by its root)", want: ReasonChain,
			opts: []VerifierOption{}, card: func(t *testing.T) []byte {
				i := other.intermediate(t, "spiffe://example.org")
				return svidCard(t, i.issue(t, testID, p256), ES256)
			}},
		{name: "leaf of a trust domain with no bundle configured", want: ReasonUnknownTrustDomain, card: func(t *testing.T) []byte {
			return svidCard(t, other.issue(t, "spiffe://other.org/agent", p256), ES256)
		}},
		{name: "leaf claiming our trust domain, issued by a federated trust domain's CA", want: ReasonChain, card: func(t *testing.T) []byte {
			return svidCard(t, other.issue(t, testID, p256), ES256)
		}},
		{name: "expired intermediate", want: ReasonChain, card: func(t *testing.T) []byte {
			i := f.ca.intermediate(t, "spiffe://example.org", func(c *x509.Certificate) {
				c.NotBefore, c.NotAfter = testNow.Add(-48*time.Hour), testNow.Add(-time.Hour)
			})
			return svidCard(t, i.issue(t, testID, p256), ES256)
		}},
		{name: "DER-encoded ECDSA signature (Kagenti's fallback)", want: ReasonSignatureEncoding, card: func(t *testing.T) []byte {
			s := f.stdSpec()
			s.der = true
			return f.handCard(t, s)
		}},
		{name: "stale iat", want: ReasonStale, opts: []VerifierOption{WithMaxAge(10 * time.Minute)}, card: func(t *testing.T) []byte {
			return f.handCard(t, setHeader("iat", testNow.Add(-11*time.Minute).Unix()))
		}},
		{name: "iat in the future", want: ReasonIssuedInFuture, card: func(t *testing.T) []byte {
			return f.handCard(t, setHeader("iat", testNow.Add(10*time.Minute).Unix()))
		}},
		{name: "exp passed", want: ReasonExpired, card: func(t *testing.T) []byte {
			return f.handCard(t, setHeader("exp", testNow.Add(-2*time.Minute).Unix()))
		}},
		{name: "exp not after iat", want: ReasonExpired, card: func(t *testing.T) []byte {
			return f.handCard(t, setHeader("exp", testNow.Add(-time.Minute).Unix()))
		}},
		{name: "iat missing", want: ReasonMissingFreshness, card: func(t *testing.T) []byte { return f.handCard(t, setHeader("iat", nil)) }},
		{name: "exp missing", want: ReasonMissingFreshness, card: func(t *testing.T) []byte { return f.handCard(t, setHeader("exp", nil)) }},
		{name: "iat not an integer", want: ReasonMalformed, card: func(t *testing.T) []byte { return f.handCard(t, setHeader("iat", "yesterday")) }},
		{name: "exp beyond year 9999 (overflow guard)", want: ReasonMalformed, card: func(t *testing.T) []byte {
			return f.handCard(t, setHeader("exp", int64(1)<<62))
		}},
		{name: "iat negative", want: ReasonMalformed, card: func(t *testing.T) []byte { return f.handCard(t, setHeader("iat", -1)) }},
		{name: "iat fractional", want: ReasonMalformed, card: func(t *testing.T) []byte { return f.handCard(t, setHeader("iat", 1.5)) }},
		{name: "x5t#S256 mismatch", want: ReasonThumbprint, card: func(t *testing.T) []byte {
			return f.handCard(t, setHeader("x5t#S256", b64url.EncodeToString(make([]byte, 32))))
		}},
		{name: "x5t#S256 missing", want: ReasonThumbprint, card: func(t *testing.T) []byte { return f.handCard(t, setHeader("x5t#S256", nil)) }},
		{name: "kid over 256 bytes", want: ReasonKeyID, card: func(t *testing.T) []byte { return f.handCard(t, setHeader("kid", strings.Repeat("k", 257))) }},
		{name: "jku instead of x5c (never fetched)", want: ReasonNoX5C, card: func(t *testing.T) []byte {
			s := setHeader("x5c", nil)
			s.header["jku"] = "http://127.0.0.1:1/jwks.json"
			return f.handCard(t, s)
		}},
		{name: "x5u instead of x5c (never fetched)", want: ReasonNoX5C, card: func(t *testing.T) []byte {
			s := setHeader("x5c", nil)
			s.header["x5u"] = "http://127.0.0.1:1/chain.pem"
			return f.handCard(t, s)
		}},
		{name: "embedded jwk instead of x5c", want: ReasonNoX5C, card: func(t *testing.T) []byte {
			s := setHeader("x5c", nil)
			s.header["jwk"] = map[string]any{"kty": "EC"}
			return f.handCard(t, s)
		}},
		{name: "unknown crit", want: ReasonCritical, card: func(t *testing.T) []byte {
			s := setHeader("crit", []string{"urn:example:policy"})
			s.header["urn:example:policy"] = true
			return f.handCard(t, s)
		}},
		{name: "b64 false (unencoded payload)", want: ReasonCritical, card: func(t *testing.T) []byte {
			s := setHeader("crit", []string{"b64"})
			s.header["b64"] = false
			return f.handCard(t, s)
		}},
		{name: "typ other than JOSE", want: ReasonType, card: func(t *testing.T) []byte { return f.handCard(t, setHeader("typ", "JWT")) }},
		{name: "alg in the unprotected header", want: ReasonMalformed, card: func(t *testing.T) []byte {
			p, s := handSign(t, baseCard, f.stdSpec())
			signed := withSigs(t, baseCard, [2]string{p, s})
			return []byte(strings.Replace(string(signed), `"signature":`, `"header":{"alg":"none"},"signature":`, 1))
		}},
		{name: "payload member in a signature (not detached)", isErr: errAny, card: func(t *testing.T) []byte {
			signed := f.sign(t, baseCard)
			return []byte(strings.Replace(string(signed), `"signature":`, `"payload":"e30","signature":`, 1))
		}},
		{name: "duplicate keys in the card", isErr: errAny, card: func(t *testing.T) []byte {
			signed := f.sign(t, baseCard)
			return []byte(strings.Replace(string(signed), `"name"`, `"name": "Evil Agent", "name"`, 1))
		}},
		{name: "case-variant keys in the card", isErr: errAny, card: func(t *testing.T) []byte {
			signed := f.sign(t, baseCard)
			return []byte(strings.Replace(string(signed), `"name"`, `"Name": "Evil Agent", "name"`, 1))
		}},
		{name: "signatures not an array", isErr: errAny, card: func(t *testing.T) []byte {
			return []byte(`{"name":"a","signatures":{"protected":"x","signature":"y"}}`)
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			card := tc.card(t)
			bundles := x509bundle.Source(f.bundles)
			if strings.HasPrefix(tc.name, "bundle rotated") {
				// The trust domain's bundle now holds only a new CA.
				bundles = bundleSet(newCA(t, "example.org"))
			}
			if strings.Contains(tc.name, "issued by its root") {
				bundles = bundleSet(f.ca, other)
			}
			v, err := NewVerifier(bundles, append([]VerifierOption{WithTime(testNow)}, tc.opts...)...)
			if err != nil {
				t.Fatal(err)
			}
			res, err := v.Verify(card)
			if err == nil || res.Verified {
				t.Fatalf("card accepted: %+v", res)
			}
			if tc.isErr != nil {
				if tc.isErr != errAny && !errors.Is(err, tc.isErr) {
					t.Fatalf("error %v, want %v", err, tc.isErr)
				}
				return
			}
			if !errors.Is(err, ErrNotVerified) {
				t.Fatalf("error %v, want ErrNotVerified", err)
			}
			if len(res.Signatures) != 1 {
				t.Fatalf("%d signature results, want 1", len(res.Signatures))
			}
			if got := res.Signatures[0].Reason; got != tc.want {
				t.Fatalf("reason %q (%s), want %q", got, res.Signatures[0].Error, tc.want)
			}
			if res.Details != "No signature verified via x5c chain validation" {
				t.Fatalf("details %q", res.Details)
			}
		})
	}
}

// errAny marks cases where any card-level error will do.
var errAny = errors.New("any error")

func TestVerifyAcceptsReorderedKeysAndReformattedCard(t *testing.T) {
	f := newFixture(t)
	signed := f.sign(t, baseCard)
	// Decode and re-encode with a different key order and no whitespace:
	// the RFC 8785 payload is the same, so the signature still verifies.
	var m map[string]json.RawMessage
	if err := json.Unmarshal(signed, &m); err != nil {
		t.Fatal(err)
	}
	keys := []string{"x-vendor", "signatures", "skills", "name", "version", "url", "protocolVersion",
		"description", "defaultOutputModes", "defaultInputModes", "capabilities"}
	var b strings.Builder
	b.WriteString("{")
	for i, k := range keys {
		if i > 0 {
			b.WriteString(",")
		}
		kj, _ := json.Marshal(k)
		b.Write(kj)
		b.WriteString(":")
		b.Write(m[k])
	}
	b.WriteString("}")
	reordered := strings.Replace(b.String(), `"rating": 4.50`, `"rating": 4.5`, 1)
	reordered = strings.Replace(reordered, `"big": 1e21`, `"big": 1E+21`, 1)
	reordered = strings.Replace(reordered, "ü", `\u00fc`, 1)
	if reordered == string(signed) {
		t.Fatal("test did not change the card")
	}
	if _, err := f.verifier(t).Verify([]byte(reordered)); err != nil {
		t.Fatalf("re-ordered, re-formatted card: %v", err)
	}
}

func TestVerifyTriesEverySignature(t *testing.T) {
	f := newFixture(t)
	rogue := newCA(t, "example.org")
	bad := rogue.issue(t, testID, p256)
	p1, s1 := handSign(t, baseCard, jwsSpec{header: stdHeader(bad, ES256), key: bad.key, alg: ES256})
	p2, s2 := handSign(t, baseCard, jwsSpec{header: setAlg(stdHeader(f.svid, ES256), "none"), alg: ES256})
	p3, s3 := handSign(t, baseCard, f.stdSpec())
	card := withSigs(t, baseCard, [2]string{p1, s1}, [2]string{p2, s2}, [2]string{p3, s3})
	res, err := f.verifier(t).Verify(card)
	if err != nil {
		t.Fatalf("a later good signature must verify after a bad chain (Kagenti returned early): %v", err)
	}
	if res.SignatureIndex != 2 || len(res.Signatures) != 3 {
		t.Fatalf("%+v", res)
	}
	if res.Signatures[0].Reason != ReasonChain || res.Signatures[1].Reason != ReasonAlgorithm || !res.Signatures[2].Verified {
		t.Fatalf("per-signature reasons not distinct: %+v", res.Signatures)
	}
}

func setAlg(h map[string]any, alg string) map[string]any {
	h["alg"] = alg
	return h
}

func TestVerifyReportsEveryFailureReason(t *testing.T) {
	f := newFixture(t)
	p1, s1 := handSign(t, baseCard, jwsSpec{header: setAlg(stdHeader(f.svid, ES256), "HS256"), key: f.svid.key, alg: ES256})
	spec := f.stdSpec()
	spec.der = true
	p2, s2 := handSign(t, baseCard, spec)
	res, err := f.verifier(t).Verify(withSigs(t, baseCard, [2]string{p1, s1}, [2]string{p2, s2}))
	if !errors.Is(err, ErrNotVerified) {
		t.Fatal(err)
	}
	want := "agentcard: no signature verified: signature 0: algorithm_not_allowed; signature 1: signature_encoding"
	if err.Error() != want {
		t.Fatalf("error %q, want %q", err, want)
	}
	if res.SignatureIndex != -1 || res.SPIFFEID != "" {
		t.Fatalf("%+v", res)
	}
}

func TestVerifyAtAFixedTime(t *testing.T) {
	f := newFixture(t)
	signed := f.sign(t, baseCard)
	// Three hours later the leaf has expired; WithTime moves the verifier
	// there without touching the card.
	v, err := NewVerifier(f.bundles, WithTime(testNow.Add(3*time.Hour)))
	if err != nil {
		t.Fatal(err)
	}
	res, err := v.Verify(signed)
	if r := res.Signatures[0].Reason; err == nil || (r != ReasonLeafExpired && r != ReasonExpired) {
		t.Fatalf("expired SVID accepted: %v %+v", err, res)
	}
}

func TestVerifierOptionsAreValidated(t *testing.T) {
	td := spiffeid.RequireTrustDomainFromString("example.org")
	for _, tc := range []struct {
		name string
		opts []VerifierOption
	}{
		{"negative max age", []VerifierOption{WithMaxAge(-1)}},
		{"chain length zero", []VerifierOption{WithMaxChainLength(0)}},
		{"zero time", []VerifierOption{WithTime(time.Time{})}},
		{"conflicting trust domains", []VerifierOption{WithTrustDomain(td), WithTrustDomain(spiffeid.RequireTrustDomainFromString("other.org"))}},
		{"pattern outside the trust domain", []VerifierOption{WithTrustDomain(td), WithExpectedIDPattern("spiffe://other.org/*")}},
		{"pattern without spiffe scheme", []VerifierOption{WithExpectedIDPattern("https://example.org/*")}},
		{"malformed pattern", []VerifierOption{WithExpectedIDPattern("spiffe://example.org/[")}},
		{"unknown compat", []VerifierOption{WithCompat(Compat(9))}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := NewVerifier(x509bundle.NewSet(), tc.opts...); err == nil {
				t.Fatal("accepted")
			}
		})
	}
	if _, err := NewVerifier(nil); err == nil {
		t.Fatal("nil bundle source accepted")
	}
}

func TestVerifyRejectsMalformedX5C(t *testing.T) {
	f := newFixture(t)
	leaf := base64.StdEncoding.EncodeToString(f.svid.leaf().Raw)
	many := make([]string, maxX5C+1)
	for i := range many {
		many[i] = leaf
	}
	for name, x5c := range map[string]any{
		"empty x5c":                []string{},
		"x5c not an array":         leaf,
		"x5c with a number":        []any{1},
		"x5c with too many certs":  many,
		"x5c with an escaped char": []string{leaf[:10] + "\u00e9" + leaf[10:]},
	} {
		t.Run(name, func(t *testing.T) {
			s := f.stdSpec()
			s.header["x5c"] = x5c
			res, err := f.verifier(t).Verify(f.handCard(t, s))
			if err == nil || res.Signatures[0].Reason != ReasonMalformed {
				t.Fatalf("%v %+v", err, res.Signatures)
			}
		})
	}
}

func TestVerifyNeverFetchesJKUOrX5U(t *testing.T) {
	f := newFixture(t)
	var hits atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { hits.Add(1) }))
	defer srv.Close()
	for _, withX5C := range []bool{false, true} {
		s := f.stdSpec()
		if !withX5C {
			delete(s.header, "x5c")
		}
		s.header["jku"] = srv.URL + "/jwks.json"
		s.header["x5u"] = srv.URL + "/chain.pem"
		res, err := f.verifier(t).Verify(f.handCard(t, s))
		// With x5c the URLs are ignored and the card verifies from x5c;
		// without it, it fails. Either way nothing is fetched.
		if withX5C != (err == nil) {
			t.Fatalf("x5c=%v: %v %+v", withX5C, err, res.Signatures)
		}
	}
	if n := hits.Load(); n != 0 {
		t.Fatalf("the verifier made %d requests to jku/x5u", n)
	}
}

// The key comes from the verified x5c, so kid is the signer's own label:
// free-form or absent, it does not fail the signature, and it is reported as
// written.
func TestVerifyAcceptsAnySignersKeyID(t *testing.T) {
	f := newFixture(t)
	for name, kid := range map[string]any{"A2A's key-1": "key-1", "k1": "k1", "absent": nil, "a UUID": "0d2f3c1e-9a4b-4c5d-8e7f-112233445566"} {
		t.Run(name, func(t *testing.T) {
			s := f.stdSpec()
			if kid == nil {
				delete(s.header, "kid")
			} else {
				s.header["kid"] = kid
			}
			res, err := f.verifier(t).Verify(f.handCard(t, s))
			if err != nil {
				t.Fatalf("%v %+v", err, res)
			}
			if want, _ := kid.(string); res.Signatures[0].KeyID != want {
				t.Fatalf("kid reported as %q, want %q", res.Signatures[0].KeyID, want)
			}
		})
	}
}
