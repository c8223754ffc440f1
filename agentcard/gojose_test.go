package agentcard

import (
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"strings"
	"testing"

	"github.com/go-jose/go-jose/v4"
)

// Our JWS layer is small and built on the standard library, so it is
// checked against go-jose in both directions: go-jose verifies what we
// sign, and we verify what go-jose signs.
func TestInteropGoJose(t *testing.T) {
	f := newFixture(t)
	c, _ := ParseCard(baseCard)
	payload, _ := c.Payload()

	t.Run("go-jose verifies a card signed by Sign", func(t *testing.T) {
		signed := f.sign(t, baseCard)
		var card struct {
			Signatures []struct{ Protected, Signature string } `json:"signatures"`
		}
		if err := json.Unmarshal(signed, &card); err != nil {
			t.Fatal(err)
		}
		compact := card.Signatures[0].Protected + ".." + card.Signatures[0].Signature
		jws, err := jose.ParseDetached(compact, payload, []jose.SignatureAlgorithm{jose.ES256})
		if err != nil {
			t.Fatal(err)
		}
		chains, err := jws.Signatures[0].Protected.Certificates(x509.VerifyOptions{
			Roots: rootsOf(f.ca), KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageAny}, CurrentTime: testNow,
		})
		if err != nil {
			t.Fatal(err)
		}
		if err := jws.DetachedVerify(payload, chains[0][0].PublicKey); err != nil {
			t.Fatal(err)
		}
	})

	t.Run("a card signed by go-jose with x5c verifies", func(t *testing.T) {
		thumb := x5tOf(f.svid.leaf())
		opts := (&jose.SignerOptions{}).WithType("JOSE").
			WithHeader("kid", thumb).
			WithHeader("x5c", []string{base64.StdEncoding.EncodeToString(f.svid.leaf().Raw)}).
			WithHeader("x5t#S256", thumb).
			WithHeader("iat", testNow.Unix()).
			WithHeader("exp", f.svid.leaf().NotAfter.Unix())
		signer, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.ES256, Key: f.svid.key}, opts)
		if err != nil {
			t.Fatal(err)
		}
		jws, err := signer.Sign(payload)
		if err != nil {
			t.Fatal(err)
		}
		compact, err := jws.DetachedCompactSerialize()
		if err != nil {
			t.Fatal(err)
		}
		parts := strings.Split(compact, ".")
		card := withSigs(t, baseCard, [2]string{parts[0], parts[2]})
		if _, err := f.verifier(t).Verify(card); err != nil {
			t.Fatal(err)
		}
	})
}

func rootsOf(cas ...*testCA) *x509.CertPool {
	p := x509.NewCertPool()
	for _, ca := range cas {
		p.AddCert(ca.cert)
	}
	return p
}

func x5tOf(c *x509.Certificate) string {
	h := sha256Sum(c.Raw)
	return b64url.EncodeToString(h[:])
}

func sha256Sum(b []byte) [32]byte { return sha256.Sum256(b) }
