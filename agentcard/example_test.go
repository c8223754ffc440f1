package agentcard_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"fmt"
	"math/big"
	"net/url"
	"time"

	"github.com/spiffe/go-spiffe/v2/bundle/x509bundle"
	"github.com/spiffe/go-spiffe/v2/spiffeid"

	"github.com/agentid/agentid/agentcard"
)

// exampleSVID stands in for the SVID a SPIRE agent hands out: a root for
// example.org and a leaf for the weather agent's service account.
func exampleSVID() (root *x509.Certificate, chain []*x509.Certificate, key *ecdsa.PrivateKey) {
	now := time.Now()
	caKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	caTmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "example.org"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(24 * time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}
	caDER, _ := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, caKey.Public(), caKey)
	root, _ = x509.ParseCertificate(caDER)
	key, _ = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	id, _ := url.Parse("spiffe://example.org/ns/agents/sa/weather")
	leafTmpl := &x509.Certificate{
		SerialNumber: big.NewInt(2), NotBefore: now.Add(-time.Minute), NotAfter: now.Add(time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, URIs: []*url.URL{id},
	}
	leafDER, _ := x509.CreateCertificate(rand.Reader, leafTmpl, root, key.Public(), caKey)
	leaf, _ := x509.ParseCertificate(leafDER)
	return root, []*x509.Certificate{leaf}, key
}

// Sign a card with an SVID, then verify it and bind it to the workload's
// Kubernetes SPIFFE ID.
func Example() {
	root, chain, key := exampleSVID()
	card := []byte(`{"name": "Weather Agent", "url": "http://weather:8000", "skills": []}`)

	signed, info, err := agentcard.Sign(card, chain, key)
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println("signed by", info.SPIFFEID, "with", info.Algorithm)

	td := spiffeid.RequireTrustDomainFromString("example.org")
	bundles := x509bundle.FromX509Authorities(td, []*x509.Certificate{root})
	expected, _ := agentcard.KubernetesID(td, "agents", "weather")
	v, err := agentcard.NewVerifier(bundles, agentcard.WithExpectedID(expected))
	if err != nil {
		fmt.Println(err)
		return
	}
	res, err := v.Verify(signed)
	fmt.Println("verified:", res.Verified, "error:", err)
	fmt.Println(res.Binding.Reason+":", res.Binding.Message)

	// Another agent's card is verified but not bound.
	billing, _ := agentcard.KubernetesID(td, "agents", "billing")
	v, _ = agentcard.NewVerifier(bundles, agentcard.WithExpectedID(billing))
	_, err = v.Verify(signed)
	fmt.Println(err)
	// Output:
	// signed by spiffe://example.org/ns/agents/sa/weather with ES256
	// verified: true error: <nil>
	// Bound: SPIFFE ID spiffe://example.org/ns/agents/sa/weather belongs to trust domain example.org and is the expected ID
	// agentcard: signer identity not bound: SPIFFE ID spiffe://example.org/ns/agents/sa/weather is not the expected spiffe://example.org/ns/agents/sa/billing
}

// A verifier reports a reason for each signature it did not accept.
func ExampleVerifier_Verify_tampered() {
	root, chain, key := exampleSVID()
	signed, _, _ := agentcard.Sign([]byte(`{"name": "Weather Agent"}`), chain, key)
	tampered := []byte(string(signed[:len(signed)-2]) + `, "url": "http://evil.example"}`)

	td := spiffeid.RequireTrustDomainFromString("example.org")
	v, _ := agentcard.NewVerifier(x509bundle.FromX509Authorities(td, []*x509.Certificate{root}))
	res, err := v.Verify(tampered)
	fmt.Println(err)
	fmt.Println(res.Signatures[0].Reason)
	// Output:
	// agentcard: no signature verified: signature 0: bad_signature
	// bad_signature
}

// The payload that is signed: RFC 8785 of the card without signatures, with
// no HTML escaping and every empty value kept.
func ExampleCard_Payload() {
	c, _ := agentcard.ParseCard([]byte(`{"skills": [], "name": "A & B <agent>", "signatures": [], "description": ""}`))
	p, _ := c.Payload()
	fmt.Println(string(p))
	// Output:
	// {"description":"","name":"A & B <agent>","skills":[]}
}
