package agentcard

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/json"
	"math/big"
	"net/url"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/spiffe/go-spiffe/v2/bundle/x509bundle"
	"github.com/spiffe/go-spiffe/v2/spiffeid"
)

// Test PKI: in-memory CAs and SVIDs with every property under the test's
// control, so that each negative case changes exactly one thing.

// testNow is the verification time of the unit tests. Certificates are
// valid from an hour before to an hour after it.
var testNow = time.Now().UTC().Truncate(time.Second)

type keyKind int

const (
	p256 keyKind = iota
	p384
	p521
	rsa2048
	rsa1024
)

var (
	rsaKeysOnce sync.Once
	rsaKeys     map[keyKind][]*rsa.PrivateKey
)

// newKey returns a fresh ECDSA key, or one of a few RSA keys generated once
// per test binary (RSA generation takes too long to do per test).
func newKey(t testing.TB, kind keyKind) crypto.Signer {
	t.Helper()
	switch kind {
	case p256, p384, p521:
		curve := map[keyKind]elliptic.Curve{p256: elliptic.P256(), p384: elliptic.P384(), p521: elliptic.P521()}[kind]
		k, err := ecdsa.GenerateKey(curve, rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		return k
	}
	rsaKeysOnce.Do(func() {
		rsaKeys = map[keyKind][]*rsa.PrivateKey{}
		for _, spec := range []struct {
			kind keyKind
			bits int
			n    int
		}{{rsa2048, 2048, 3}, {rsa1024, 1024, 1}} {
			for range spec.n {
				k, err := rsa.GenerateKey(rand.Reader, spec.bits)
				if err != nil {
					panic(err)
				}
				rsaKeys[spec.kind] = append(rsaKeys[spec.kind], k)
			}
		}
	})
	rsaMu.Lock()
	defer rsaMu.Unlock()
	keys := rsaKeys[kind]
	rsaNext[kind]++
	return keys[rsaNext[kind]%len(keys)]
}

var (
	rsaMu   sync.Mutex
	rsaNext = map[keyKind]int{}
)

type testCA struct {
	td   spiffeid.TrustDomain
	cert *x509.Certificate
	key  crypto.Signer
	// chain is the certificates from this CA up to, not including, the root.
	chain []*x509.Certificate
}

var serial atomic.Int64

func nextSerial() *big.Int {
	return big.NewInt(serial.Add(1))
}

// newCA makes a self-signed root for trust domain td.
func newCA(t testing.TB, td string, mods ...func(*x509.Certificate)) *testCA {
	t.Helper()
	tdID := spiffeid.RequireTrustDomainFromString(td)
	key := newKey(t, p256)
	tmpl := &x509.Certificate{
		SerialNumber:          nextSerial(),
		Subject:               pkix.Name{Organization: []string{"agentcard test"}, CommonName: td + " root"},
		NotBefore:             testNow.Add(-24 * time.Hour),
		NotAfter:              testNow.Add(24 * time.Hour),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
		URIs:                  []*url.URL{tdID.ID().URL()},
	}
	for _, m := range mods {
		m(tmpl)
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return &testCA{td: tdID, cert: cert, key: key}
}

// intermediate makes a signing CA under ca whose URI SAN is uri.
func (ca *testCA) intermediate(t testing.TB, uri string, mods ...func(*x509.Certificate)) *testCA {
	t.Helper()
	key := newKey(t, p256)
	tmpl := &x509.Certificate{
		SerialNumber:          nextSerial(),
		Subject:               pkix.Name{CommonName: "intermediate"},
		NotBefore:             testNow.Add(-12 * time.Hour),
		NotAfter:              testNow.Add(12 * time.Hour),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
	}
	if uri != "" {
		tmpl.URIs = []*url.URL{mustURL(t, uri)}
	}
	for _, m := range mods {
		m(tmpl)
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, key.Public(), ca.key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return &testCA{td: ca.td, cert: cert, key: key, chain: append([]*x509.Certificate{cert}, ca.chain...)}
}

func mustURL(t testing.TB, s string) *url.URL {
	t.Helper()
	u, err := url.Parse(s)
	if err != nil {
		t.Fatal(err)
	}
	return u
}

// svid is a test X509-SVID: its chain (leaf first, no root) and key.
type svid struct {
	chain []*x509.Certificate
	key   crypto.Signer
}

func (s svid) leaf() *x509.Certificate { return s.chain[0] }

// leafOpt changes the leaf template before it is signed.
type leafOpt func(*x509.Certificate)

func withURIs(t testing.TB, uris ...string) leafOpt {
	return func(c *x509.Certificate) {
		c.URIs = nil
		for _, u := range uris {
			c.URIs = append(c.URIs, mustURL(t, u))
		}
	}
}

func withValidity(from, to time.Time) leafOpt {
	return func(c *x509.Certificate) { c.NotBefore, c.NotAfter = from, to }
}

// issue makes an X509-SVID for id signed by ca, shaped like SPIRE's.
func (ca *testCA) issue(t testing.TB, id string, kind keyKind, opts ...leafOpt) svid {
	t.Helper()
	key := newKey(t, kind)
	return ca.issueWithKey(t, id, key, opts...)
}

func (ca *testCA) issueWithKey(t testing.TB, id string, key crypto.Signer, opts ...leafOpt) svid {
	t.Helper()
	tmpl := &x509.Certificate{
		SerialNumber:          nextSerial(),
		Subject:               pkix.Name{Organization: []string{"SPIRE"}},
		NotBefore:             testNow.Add(-time.Hour),
		NotAfter:              testNow.Add(time.Hour),
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageKeyEncipherment | x509.KeyUsageKeyAgreement,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
		BasicConstraintsValid: true,
	}
	if id != "" {
		tmpl.URIs = []*url.URL{mustURL(t, id)}
	}
	for _, o := range opts {
		o(tmpl)
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, key.Public(), ca.key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return svid{chain: append([]*x509.Certificate{cert}, ca.chain...), key: key}
}

func (ca *testCA) bundle() *x509bundle.Bundle {
	return x509bundle.FromX509Authorities(ca.td, []*x509.Certificate{ca.cert})
}

func bundleSet(cas ...*testCA) *x509bundle.Set {
	set := x509bundle.NewSet()
	for _, ca := range cas {
		if b, ok := set.Get(ca.td); ok {
			b.AddX509Authority(ca.cert)
			continue
		}
		set.Add(ca.bundle())
	}
	return set
}

// jwsSpec describes a signature built by hand, so that tests can produce
// the headers, payloads and encodings our signer refuses to produce.
type jwsSpec struct {
	header  map[string]any
	key     crypto.Signer // signs; nil: unsigned (signature from sig)
	alg     Algorithm     // decides hash and padding when signing
	payload []byte        // nil: the card's RFC 8785 payload
	der     bool          // ECDSA: emit ASN.1 DER instead of R||S
	rawHdr  []byte        // if set, used verbatim as the header JSON
}

// stdHeader is the header our signer writes for s.
func stdHeader(s svid, alg Algorithm) map[string]any {
	thumb := sha256.Sum256(s.leaf().Raw)
	var x5c []string
	for _, c := range s.chain {
		x5c = append(x5c, base64.StdEncoding.EncodeToString(c.Raw))
	}
	return map[string]any{
		"alg":      string(alg),
		"typ":      "JOSE",
		"kid":      b64url.EncodeToString(thumb[:]),
		"x5c":      x5c,
		"x5t#S256": b64url.EncodeToString(thumb[:]),
		"iat":      testNow.Add(-time.Minute).Unix(),
		"exp":      s.leaf().NotAfter.Unix(),
	}
}

// kagentiHeader is the header the Kagenti signer writes for s.
func kagentiHeader(s svid, alg Algorithm) map[string]any {
	thumb := sha256.Sum256(s.leaf().Raw)
	var x5c []string
	for _, c := range s.chain {
		x5c = append(x5c, base64.StdEncoding.EncodeToString(c.Raw))
	}
	return map[string]any{"alg": string(alg), "typ": "JOSE", "kid": kagentiKeyID(thumb[:]), "x5c": x5c}
}

// handSign returns the protected and signature members for spec over card.
func handSign(t testing.TB, card []byte, spec jwsSpec) (string, string) {
	t.Helper()
	hj := spec.rawHdr
	if hj == nil {
		var err error
		if hj, err = json.Marshal(spec.header); err != nil {
			t.Fatal(err)
		}
	}
	protected := b64url.EncodeToString(hj)
	payload := spec.payload
	if payload == nil {
		c, err := ParseCard(card)
		if err != nil {
			t.Fatal(err)
		}
		if payload, err = c.Payload(); err != nil {
			t.Fatal(err)
		}
	}
	input := protected + "." + b64url.EncodeToString(payload)
	if spec.key == nil {
		return protected, b64url.EncodeToString([]byte("not a signature"))
	}
	algSpec, ok := algorithms[spec.alg]
	if !ok {
		t.Fatalf("handSign: unknown alg %s", spec.alg)
	}
	h := algSpec.hash.New()
	h.Write([]byte(input))
	digest := h.Sum(nil)
	var opts crypto.SignerOpts = algSpec.hash
	if algSpec.pss {
		opts = &rsa.PSSOptions{SaltLength: rsa.PSSSaltLengthEqualsHash, Hash: algSpec.hash}
	}
	if _, isEC := spec.key.Public().(*ecdsa.PublicKey); isEC && !spec.der {
		sig, err := signJWS(spec.key, spec.key.Public(), algSpec, []byte(input))
		if err != nil {
			t.Fatal(err)
		}
		return protected, b64url.EncodeToString(sig)
	}
	sig, err := spec.key.Sign(rand.Reader, digest, opts)
	if err != nil {
		t.Fatal(err)
	}
	return protected, b64url.EncodeToString(sig)
}

// withSigs returns card (an unsigned JSON object) with the given
// signatures array, each entry [protected, signature].
func withSigs(t testing.TB, card []byte, entries ...[2]string) []byte {
	t.Helper()
	var m map[string]json.RawMessage
	if err := json.Unmarshal(card, &m); err != nil {
		t.Fatal(err)
	}
	type entry struct {
		Protected string `json:"protected"`
		Signature string `json:"signature"`
	}
	sigs := []entry{}
	for _, e := range entries {
		sigs = append(sigs, entry{e[0], e[1]})
	}
	raw, err := json.Marshal(sigs)
	if err != nil {
		t.Fatal(err)
	}
	m["signatures"] = raw
	out, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func mustID(t testing.TB, s string) spiffeid.ID {
	t.Helper()
	id, err := spiffeid.FromString(s)
	if err != nil {
		t.Fatal(err)
	}
	return id
}
