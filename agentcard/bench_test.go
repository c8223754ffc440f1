package agentcard

import (
	"crypto/ecdsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/json"
	"math/big"
	"testing"
)

// BenchmarkVerify compares verifying one signed card with the raw floor of
// the same work done by hand: one X.509 chain verification to the bundle
// plus one ECDSA P-256 signature verification. The chain is SPIRE's default
// shape (leaf signed by the root) and the card is a realistic A2A card
// (about 0.6 KB). Run both in one invocation to compare:
//
//	go test -run '^$' -bench BenchmarkVerify -benchtime 2s ./agentcard
func BenchmarkVerify(b *testing.B) {
	f := newFixture(b)
	signed := f.sign(b, baseCard)
	v, err := NewVerifier(f.bundles, WithTime(testNow), WithTrustDomain(f.ca.td))
	if err != nil {
		b.Fatal(err)
	}
	if _, err := v.Verify(signed); err != nil {
		b.Fatal(err)
	}

	// Inputs of the floor, prepared outside the timed loop.
	var card struct {
		Signatures []struct{ Protected, Signature string } `json:"signatures"`
	}
	if err := json.Unmarshal(signed, &card); err != nil {
		b.Fatal(err)
	}
	c, _ := ParseCard(signed)
	payload, _ := c.Payload()
	input := []byte(card.Signatures[0].Protected + "." + b64url.EncodeToString(payload))
	digest := sha256.Sum256(input)
	sig, _ := b64url.DecodeString(card.Signatures[0].Signature)
	r, s := new(big.Int).SetBytes(sig[:32]), new(big.Int).SetBytes(sig[32:])
	leaf := f.svid.leaf()
	pub := leaf.PublicKey.(*ecdsa.PublicKey)
	roots := x509.NewCertPool()
	roots.AddCert(f.ca.cert)
	opts := x509.VerifyOptions{Roots: roots, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageAny}, CurrentTime: testNow}

	b.Run("floor: x509 chain + ECDSA P-256 verify", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := leaf.Verify(opts); err != nil {
				b.Fatal(err)
			}
			if !ecdsa.Verify(pub, digest[:], r, s) {
				b.Fatal("signature")
			}
		}
	})
	b.Run("floor with certificate parsing", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			l, err := x509.ParseCertificate(leaf.Raw)
			if err != nil {
				b.Fatal(err)
			}
			if _, err := l.Verify(opts); err != nil {
				b.Fatal(err)
			}
			if !ecdsa.Verify(l.PublicKey.(*ecdsa.PublicKey), digest[:], r, s) {
				b.Fatal("signature")
			}
		}
	})
	cold, _ := NewVerifier(f.bundles, WithTime(testNow), WithTrustDomain(f.ca.td))
	cold.certs = nil // parse x5c on every call, as for a never-seen SVID
	b.Run("agentcard Verify, certificates parsed every time", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := cold.Verify(signed); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("agentcard Verify", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := v.Verify(signed); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// BenchmarkPayload measures the card-size-dependent part: strict parsing and
// RFC 8785 canonicalization.
func BenchmarkPayload(b *testing.B) {
	b.ReportAllocs()
	b.SetBytes(int64(len(baseCard)))
	for b.Loop() {
		c, err := ParseCard(baseCard)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := c.Payload(); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkSign measures signing, which happens once per pod start.
func BenchmarkSign(b *testing.B) {
	f := newFixture(b)
	b.ReportAllocs()
	for b.Loop() {
		if _, _, err := Sign(baseCard, f.svid.chain, f.svid.key, WithSigningTime(testNow)); err != nil {
			b.Fatal(err)
		}
	}
}
