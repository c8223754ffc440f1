package cardtest

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net/url"
	"sync/atomic"
	"testing"
	"time"

	"github.com/spiffe/go-spiffe/v2/bundle/spiffebundle"
	"github.com/spiffe/go-spiffe/v2/spiffeid"
	"github.com/spiffe/go-spiffe/v2/svid/x509svid"

	"github.com/agentid/agentid/agentcard"
)

// CA is a SPIFFE certificate authority for one trust domain, shaped like
// SPIRE's: a self-signed root whose URI SAN is the trust domain's ID.
type CA struct {
	TrustDomain spiffeid.TrustDomain
	Cert        *x509.Certificate
	key         crypto.Signer
}

var serial atomic.Int64

// NewCA returns a CA for trust domain td, valid from a day ago to a day
// from now.
func NewCA(t testing.TB, td string) *CA {
	t.Helper()
	tdID, err := spiffeid.TrustDomainFromString(td)
	if err != nil {
		t.Fatal(err)
	}
	key := newKey(t)
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(serial.Add(1)),
		Subject:               pkix.Name{Organization: []string{"agentid operator test"}, CommonName: td + " root"},
		NotBefore:             now.Add(-24 * time.Hour),
		NotAfter:              now.Add(24 * time.Hour),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
		URIs:                  []*url.URL{tdID.ID().URL()},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return &CA{TrustDomain: tdID, Cert: cert, key: key}
}

func newKey(t testing.TB) crypto.Signer {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// PEM returns the CA certificate in PEM, a bundle as bundle.crt holds it.
func (ca *CA) PEM() []byte {
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: ca.Cert.Raw})
}

// SPIFFEBundle returns the CA as a SPIFFE bundle document (JWKS with a
// use "x509-svid" key), as `spire-server bundle show -format spiffe` prints.
func (ca *CA) SPIFFEBundle(t testing.TB) []byte {
	t.Helper()
	b := spiffebundle.New(ca.TrustDomain)
	b.AddX509Authority(ca.Cert)
	data, err := b.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	return data
}

// SVIDOption changes the leaf certificate template before it is signed.
type SVIDOption func(*x509.Certificate)

// Validity sets the leaf's validity period.
func Validity(from, to time.Time) SVIDOption {
	return func(c *x509.Certificate) { c.NotBefore, c.NotAfter = from, to }
}

// SVID issues an X509-SVID for SPIFFE ID id (which need not be in the CA's
// trust domain: a rogue CA is made that way), valid from a minute ago for
// an hour unless opts say otherwise.
func (ca *CA) SVID(t testing.TB, id string, opts ...SVIDOption) *x509svid.SVID {
	t.Helper()
	spiffeID, err := spiffeid.FromString(id)
	if err != nil {
		t.Fatal(err)
	}
	key := newKey(t)
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(serial.Add(1)),
		Subject:               pkix.Name{Organization: []string{"SPIRE"}},
		NotBefore:             now.Add(-time.Minute),
		NotAfter:              now.Add(time.Hour),
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageKeyEncipherment | x509.KeyUsageKeyAgreement,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
		URIs:                  []*url.URL{spiffeID.URL()},
		BasicConstraintsValid: true,
	}
	for _, o := range opts {
		o(tmpl)
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.Cert, key.Public(), ca.key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return &x509svid.SVID{ID: spiffeID, Certificates: []*x509.Certificate{cert}, PrivateKey: key}
}

// Sign signs card with svid using the real agentcard signer.
func Sign(t testing.TB, card []byte, svid *x509svid.SVID, opts ...agentcard.SignOption) []byte {
	t.Helper()
	signed, _, err := agentcard.SignWithSVID(card, svid, opts...)
	if err != nil {
		t.Fatalf("cardtest: signing: %v", err)
	}
	return signed
}

// Card returns an unsigned A2A card for an agent named name.
func Card(name string) []byte {
	return []byte(`{
  "name": "` + name + `",
  "description": "test agent ` + name + `",
  "url": "http://` + name + `.example:8000/",
  "version": "1.0.0",
  "protocolVersion": "0.3.0",
  "capabilities": {"streaming": true},
  "defaultInputModes": ["text/plain"],
  "defaultOutputModes": ["text/plain"],
  "skills": [{"id": "weather", "name": "Weather", "description": "forecasts", "tags": ["weather"]}]
}`)
}
