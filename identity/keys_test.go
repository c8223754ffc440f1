package identity_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/agentid/agentid/identity"
)

func TestThumbprintRFC7638Vector(t *testing.T) {
	// RFC 7638 §3.1 example key and thumbprint.
	doc := `{"keys":[{"kty":"RSA","kid":"x","n":"0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_BJECPebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw","e":"AQAB"}]}`
	j, err := identity.ParseJWKS([]byte(doc))
	if err != nil {
		t.Fatal(err)
	}
	k, _ := j.VerificationKey("x")
	tp, err := identity.Thumbprint(k.Public())
	if err != nil {
		t.Fatal(err)
	}
	if tp != "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs" {
		t.Fatalf("thumbprint %s", tp)
	}
	if k.Alg != "RS256" {
		t.Fatalf("alg %s", k.Alg)
	}
}

func TestGenerateKeySetAllAlgorithms(t *testing.T) {
	for _, alg := range []string{"ES256", "ES384", "EdDSA", "RS256"} {
		t.Run(alg, func(t *testing.T) {
			ks, err := identity.GenerateKeySet(alg, identity.KeySetOptions{})
			if err != nil {
				t.Fatal(err)
			}
			var doc struct {
				Keys []map[string]any `json:"keys"`
			}
			jwks, _ := ks.JWKS()
			if err := json.Unmarshal(jwks, &doc); err != nil || len(doc.Keys) != 1 {
				t.Fatalf("JWKS %s: %v", jwks, err)
			}
			k := doc.Keys[0]
			if k["kid"] != ks.ActiveKID() || k["use"] != "sig" || k["alg"] != alg {
				t.Fatalf("JWK %v", k)
			}
			for _, priv := range []string{"d", "p", "q", "dp", "dq", "qi", "k"} {
				if _, ok := k[priv]; ok {
					t.Fatalf("JWKS leaks private member %s", priv)
				}
			}
			tp, _ := identity.Thumbprint(ks.ActivePublicKey())
			if tp != ks.ActiveKID() {
				t.Fatal("kid is not the RFC 7638 thumbprint")
			}
			// PEM round trip into a file key set with the same kid.
			pemBytes, err := ks.PrivateKeyPEM()
			if err != nil {
				t.Fatal(err)
			}
			path := filepath.Join(t.TempDir(), "key.pem")
			os.WriteFile(path, pemBytes, 0o600)
			fks, err := identity.LoadKeySet(path, "", identity.KeySetOptions{})
			if err != nil || fks.ActiveKID() != ks.ActiveKID() || fks.Alg() != alg {
				t.Fatalf("LoadKeySet: %v", err)
			}
			// A token signed by one verifies through the JWKS of the other.
			j, err := identity.ParseJWKS(jwks)
			if err != nil {
				t.Fatal(err)
			}
			tok := issueWith(t, fks)
			v := offlineVerifier(t, j)
			if _, err := v.Validate(context.Background(), tok); err != nil {
				t.Fatalf("verify through JWKS: %v", err)
			}
		})
	}
}

// issueWith issues a token through a Manager that signs with ks.
func issueWith(t *testing.T, ks *identity.KeySet) string {
	t.Helper()
	p := writePolicy(t, t.TempDir(), "test-agent", "audience: https://mcp.example.com")
	m, err := identity.NewManager(identity.Config{Policy: p, Keys: ks})
	if err != nil {
		t.Fatal(err)
	}
	tok, _, err := m.Issue(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

func offlineVerifier(t *testing.T, keys identity.KeyResolver) *identity.Verifier {
	t.Helper()
	p := writePolicy(t, t.TempDir(), "test-agent", "audience: https://mcp.example.com")
	h, _ := p.Hash()
	v, err := identity.NewVerifier(identity.VerifierConfig{Keys: keys, Audience: "https://mcp.example.com", PolicyHash: h, DisableReplayCheck: true})
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func TestLoadKeySetRejectsMismatchedAlg(t *testing.T) {
	ks, _ := identity.GenerateKeySet("EdDSA", identity.KeySetOptions{})
	pemBytes, _ := ks.PrivateKeyPEM()
	path := filepath.Join(t.TempDir(), "key.pem")
	os.WriteFile(path, pemBytes, 0o600)
	if _, err := identity.LoadKeySet(path, "ES256", identity.KeySetOptions{}); err == nil {
		t.Fatal("ES256 with an Ed25519 key accepted")
	}
	if _, err := identity.GenerateKeySet("PS256", identity.KeySetOptions{}); err == nil {
		t.Fatal("PS256 accepted")
	}
}

func TestKeyRotationSchedule(t *testing.T) {
	clock := newClock()
	ks, err := identity.GenerateKeySet("ES256", identity.KeySetOptions{
		RotationPeriod: 7 * 24 * time.Hour, Retain: 5*time.Minute + time.Hour, Now: clock.Now,
	})
	if err != nil {
		t.Fatal(err)
	}
	kidA := ks.ActiveKID()
	tokA := issueWith(t, ks)
	count := func() int {
		var doc struct{ Keys []json.RawMessage }
		b, _ := ks.JWKS()
		json.Unmarshal(b, &doc)
		return len(doc.Keys)
	}
	if count() != 1 {
		t.Fatal("one key at start")
	}
	// One hour before rotation the next key is published but not active.
	clock.Advance(7*24*time.Hour - time.Hour)
	if count() != 2 || ks.ActiveKID() != kidA {
		t.Fatalf("next key not published ahead: %d keys", count())
	}
	clock.Advance(time.Hour)
	kidB := ks.ActiveKID()
	if kidB == kidA {
		t.Fatal("not rotated")
	}
	if _, ok := ks.VerificationKey(kidA); !ok || count() != 2 {
		t.Fatal("old key not kept after rotation")
	}
	// The old key verifies tokens until token_ttl + grace have passed.
	clock.Advance(time.Hour + 5*time.Minute - time.Second)
	if _, ok := ks.VerificationKey(kidA); !ok {
		t.Fatal("old key dropped too early")
	}
	clock.Advance(time.Second)
	if _, ok := ks.VerificationKey(kidA); ok {
		t.Fatal("old key kept past its retention")
	}
	if count() != 1 {
		t.Fatalf("JWKS has %d keys", count())
	}
	_ = tokA
}

func TestKeySetRotateAndReload(t *testing.T) {
	clock := newClock()
	ks, _ := identity.GenerateKeySet("EdDSA", identity.KeySetOptions{Retain: time.Minute, Now: clock.Now})
	a := ks.ActiveKID()
	if err := ks.Rotate(); err != nil {
		t.Fatal(err)
	}
	if ks.ActiveKID() == a {
		t.Fatal("Rotate kept the key")
	}
	if _, ok := ks.VerificationKey(a); !ok {
		t.Fatal("retired key dropped at once")
	}

	dir := t.TempDir()
	k1, _ := identity.GenerateKeySet("ES256", identity.KeySetOptions{})
	k2, _ := identity.GenerateKeySet("ES256", identity.KeySetOptions{})
	p1, _ := k1.PrivateKeyPEM()
	p2, _ := k2.PrivateKeyPEM()
	path := filepath.Join(dir, "k.pem")
	os.WriteFile(path, p1, 0o600)
	fks, err := identity.LoadKeySet(path, "ES256", identity.KeySetOptions{Retain: time.Minute, Now: clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	if err := fks.Rotate(); err == nil {
		t.Fatal("file key set rotated by itself")
	}
	os.WriteFile(path, p2, 0o600)
	if err := fks.Reload(path); err != nil {
		t.Fatal(err)
	}
	if fks.ActiveKID() != k2.ActiveKID() {
		t.Fatal("Reload did not activate the new key")
	}
	if _, ok := fks.VerificationKey(k1.ActiveKID()); !ok {
		t.Fatal("Reload dropped the old key at once")
	}
}

func TestParseJWKSRejects(t *testing.T) {
	ec, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	ks, _ := identity.NewKeySet(ec, "", identity.KeySetOptions{})
	good, _ := ks.JWKS()
	var doc struct {
		Keys []map[string]any `json:"keys"`
	}
	json.Unmarshal(good, &doc)
	k := doc.Keys[0]
	mk := func(mod func(m map[string]any)) []byte {
		m := map[string]any{}
		for a, b := range k {
			m[a] = b
		}
		mod(m)
		b, _ := json.Marshal(map[string]any{"keys": []any{m}})
		return b
	}
	for name, in := range map[string][]byte{
		"private key":      mk(func(m map[string]any) { m["d"] = "AAAA" }),
		"alg mismatch":     mk(func(m map[string]any) { m["alg"] = "RS256" }),
		"no kid":           mk(func(m map[string]any) { delete(m, "kid") }),
		"only oct":         []byte(`{"keys":[{"kty":"oct","k":"AAAA","kid":"h","alg":"HS256"}]}`),
		"only enc":         mk(func(m map[string]any) { m["use"] = "enc" }),
		"duplicate member": []byte(`{"keys":[],"keys":[]}`),
		// A JWK set is read under the JOSE profile, like the tokens.
		"integer beyond 2^53": []byte(strings.Replace(string(good), `{"keys":[{`, `{"keys":[{"ext":9007199254740993,`, 1)),
		"deeper than 64":      []byte(strings.Replace(string(good), `{"keys":[{`, `{"keys":[{"ext":`+strings.Repeat("[", 62)+strings.Repeat("]", 62)+`,`, 1)),
		"not json":            []byte(`nope`),
		"empty":               []byte(`{"keys":[]}`),
	} {
		if _, err := identity.ParseJWKS(in); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	// An oct key next to a good key is skipped, never used.
	mixed := []byte(strings.Replace(string(good), `{"keys":[`, `{"keys":[{"kty":"oct","k":"AAAA","kid":"h","alg":"HS256"},`, 1))
	j, err := identity.ParseJWKS(mixed)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := j.VerificationKey("h"); ok {
		t.Fatal("oct key from a JWKS is usable")
	}
}

func TestNewJWKSFromPublicKeys(t *testing.T) {
	pub, _, _ := ed25519.GenerateKey(rand.Reader)
	j, err := identity.NewJWKS(pub)
	if err != nil {
		t.Fatal(err)
	}
	kid, _ := identity.Thumbprint(pub)
	if k, ok := j.VerificationKey(kid); !ok || k.Alg != "EdDSA" {
		t.Fatal("key not found by thumbprint")
	}
	if _, err := identity.ParseJWKS(j.Document()); err != nil {
		t.Fatalf("document does not re-parse: %v", err)
	}
}
