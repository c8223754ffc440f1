package agentcard

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/asn1"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"math/big"
	"time"

	"github.com/spiffe/go-spiffe/v2/spiffeid"
	"github.com/spiffe/go-spiffe/v2/svid/x509svid"
)

// SignOption configures Sign.
type SignOption func(*signConfig) error

type signConfig struct {
	now      time.Time
	validity time.Duration
	pss      bool
}

// WithSigningTime sets iat instead of the current time (for tests and
// reproducible fixtures).
func WithSigningTime(t time.Time) SignOption {
	return func(c *signConfig) error {
		if t.IsZero() {
			return errors.New("agentcard: WithSigningTime: zero time")
		}
		c.now = t
		return nil
	}
}

// WithValidity sets exp to iat+d, or to the leaf's expiry if that is sooner.
// By default exp is the leaf's expiry: a card is valid for as long as the
// SVID that signed it.
func WithValidity(d time.Duration) SignOption {
	return func(c *signConfig) error {
		if d <= 0 {
			return errors.New("agentcard: WithValidity: must be positive")
		}
		c.validity = d
		return nil
	}
}

// WithRSAPSS signs with PS256 instead of RS256 when the key is RSA.
func WithRSAPSS() SignOption {
	return func(c *signConfig) error {
		c.pss = true
		return nil
	}
}

// SignInfo describes a signature that Sign added.
type SignInfo struct {
	SPIFFEID  string
	KeyID     string
	Algorithm Algorithm
	IssuedAt  time.Time
	ExpiresAt time.Time
}

// protectedHeader is the header our signer writes, in this field order.
type protectedHeader struct {
	Alg     Algorithm `json:"alg"`
	Typ     string    `json:"typ"`
	Kid     string    `json:"kid"`
	X5C     []string  `json:"x5c"`
	X5TS256 string    `json:"x5t#S256"`
	IAT     int64     `json:"iat"`
	Exp     int64     `json:"exp"`
}

// Sign signs card with the X509-SVID chain (leaf first, without the root)
// and its private key, and returns the card with the new signature appended
// to its signatures array, indented with two spaces. Existing signatures are
// kept; all other members keep their exact bytes.
//
// The signature is a JWS in the A2A AgentCardSignature shape: protected
// header {alg, typ: "JOSE", kid, x5c, x5t#S256, iat, exp}, detached payload =
// RFC 8785 form of the card without signatures, alg chosen from the key.
// Sign refuses a chain whose leaf is not an X509-SVID valid now, and a key
// that does not belong to the leaf. It does not modify or retain key.
func Sign(card []byte, chain []*x509.Certificate, key crypto.Signer, opts ...SignOption) ([]byte, *SignInfo, error) {
	cfg := signConfig{}
	for _, opt := range opts {
		if err := opt(&cfg); err != nil {
			return nil, nil, err
		}
	}
	if cfg.now.IsZero() {
		cfg.now = time.Now()
	}
	c, err := ParseCard(card)
	if err != nil {
		return nil, nil, err
	}
	if len(chain) == 0 {
		return nil, nil, errors.New("agentcard: sign: no certificates")
	}
	if len(chain) > maxX5C {
		return nil, nil, fmt.Errorf("agentcard: sign: %d certificates, more than %d", len(chain), maxX5C)
	}
	if key == nil {
		return nil, nil, errors.New("agentcard: sign: no private key")
	}
	leaf := chain[0]
	id, err := checkSigningLeaf(leaf, cfg.now)
	if err != nil {
		return nil, nil, fmt.Errorf("agentcard: sign: %w", err)
	}
	if !publicKeyEqual(key.Public(), leaf.PublicKey) {
		return nil, nil, errors.New("agentcard: sign: the private key does not belong to the leaf certificate")
	}
	alg, err := algorithmForKey(leaf.PublicKey, cfg.pss)
	if err != nil {
		return nil, nil, fmt.Errorf("agentcard: sign: %w", err)
	}
	spec := algorithms[alg]

	iat := cfg.now.Unix()
	exp := leaf.NotAfter.Unix()
	if cfg.validity > 0 {
		if e := cfg.now.Add(cfg.validity).Unix(); e < exp {
			exp = e
		}
	}
	if exp <= iat {
		return nil, nil, errors.New("agentcard: sign: the leaf certificate expires too soon to sign")
	}

	thumb := sha256.Sum256(leaf.Raw)
	h := protectedHeader{
		Alg:     alg,
		Typ:     "JOSE",
		Kid:     b64url.EncodeToString(thumb[:]),
		X5TS256: b64url.EncodeToString(thumb[:]),
		IAT:     iat,
		Exp:     exp,
	}
	for _, cert := range chain {
		h.X5C = append(h.X5C, base64.StdEncoding.EncodeToString(cert.Raw))
	}
	hj, err := json.Marshal(h)
	if err != nil {
		return nil, nil, fmt.Errorf("agentcard: sign: %w", err)
	}
	protected := b64url.EncodeToString(hj)

	payload, err := c.Payload()
	if err != nil {
		return nil, nil, err
	}
	input := make([]byte, 0, len(protected)+1+b64url.EncodedLen(len(payload)))
	input = append(input, protected...)
	input = append(input, '.')
	input = b64url.AppendEncode(input, payload)

	sig, err := signJWS(key, leaf.PublicKey, spec, input)
	if err != nil {
		return nil, nil, fmt.Errorf("agentcard: sign: %w", err)
	}
	// A signature that does not verify (a faulty key store, a key that is
	// not the leaf's after all) must never be published.
	if err := verifySignature(alg, spec, leaf.PublicKey, input, sig); err != nil {
		return nil, nil, fmt.Errorf("agentcard: sign: produced signature does not verify: %w", err)
	}
	out, err := c.appendSignature(protected, b64url.EncodeToString(sig))
	if err != nil {
		return nil, nil, err
	}
	return out, &SignInfo{
		SPIFFEID:  id.String(),
		KeyID:     h.Kid,
		Algorithm: alg,
		IssuedAt:  time.Unix(iat, 0).UTC(),
		ExpiresAt: time.Unix(exp, 0).UTC(),
	}, nil
}

// SignWithSVID signs card with an X509-SVID, as fetched from the Workload
// API or loaded from files; see Sign.
func SignWithSVID(card []byte, svid *x509svid.SVID, opts ...SignOption) ([]byte, *SignInfo, error) {
	if svid == nil {
		return nil, nil, errors.New("agentcard: sign: no SVID")
	}
	return Sign(card, svid.Certificates, svid.PrivateKey, opts...)
}

// checkSigningLeaf applies the verifier's X509-SVID leaf profile before
// signing, so that we never publish a card that no verifier of ours would
// accept.
func checkSigningLeaf(leaf *x509.Certificate, now time.Time) (spiffeid.ID, error) {
	id, err := x509svid.IDFromCert(leaf)
	if err != nil {
		return spiffeid.ID{}, fmt.Errorf("leaf is not an X509-SVID: %w", err)
	}
	switch {
	case id.Path() == "":
		return id, fmt.Errorf("leaf SPIFFE ID %s has no workload path", id)
	case leaf.IsCA:
		return id, errors.New("leaf certificate is a CA")
	case leaf.KeyUsage&(x509.KeyUsageCertSign|x509.KeyUsageCRLSign) != 0:
		return id, errors.New("leaf certificate has the keyCertSign or cRLSign key usage")
	case leaf.KeyUsage&x509.KeyUsageDigitalSignature == 0:
		return id, errors.New("leaf certificate lacks the digitalSignature key usage")
	case now.After(leaf.NotAfter):
		return id, fmt.Errorf("leaf certificate expired at %s", leaf.NotAfter.UTC().Format(time.RFC3339))
	case now.Before(leaf.NotBefore):
		return id, fmt.Errorf("leaf certificate is not valid before %s", leaf.NotBefore.UTC().Format(time.RFC3339))
	}
	return id, nil
}

func publicKeyEqual(a, b crypto.PublicKey) bool {
	ka, ok := a.(interface{ Equal(crypto.PublicKey) bool })
	return ok && ka.Equal(b)
}

// signJWS signs input with key through the crypto.Signer interface, so that
// keys held elsewhere (an HSM, a KMS) work too, and converts ECDSA's ASN.1
// output into the fixed-width R||S that JWS requires.
func signJWS(key crypto.Signer, pub crypto.PublicKey, spec algSpec, input []byte) ([]byte, error) {
	h := spec.hash.New()
	h.Write(input)
	digest := h.Sum(nil)
	var opts crypto.SignerOpts = spec.hash
	if spec.pss {
		opts = &rsa.PSSOptions{SaltLength: rsa.PSSSaltLengthEqualsHash, Hash: spec.hash}
	}
	sig, err := key.Sign(rand.Reader, digest, opts)
	if err != nil {
		return nil, err
	}
	ec, ok := pub.(*ecdsa.PublicKey)
	if !ok {
		return sig, nil
	}
	var rs struct{ R, S *big.Int }
	rest, err := asn1.Unmarshal(sig, &rs)
	if err != nil || len(rest) != 0 || rs.R == nil || rs.S == nil || rs.R.Sign() <= 0 || rs.S.Sign() <= 0 {
		return nil, errors.New("ECDSA signer returned a malformed signature")
	}
	size := (ec.Curve.Params().BitSize + 7) / 8
	if rs.R.BitLen() > 8*size || rs.S.BitLen() > 8*size {
		return nil, errors.New("ECDSA signer returned an out-of-range signature")
	}
	out := make([]byte, 2*size)
	rs.R.FillBytes(out[:size])
	rs.S.FillBytes(out[size:])
	return out, nil
}

// ZeroKey overwrites the private scalars of an ECDSA or RSA private key we
// own, once it is no longer needed. It is best effort: Go's crypto packages
// keep derived copies we cannot reach, and the garbage collector may have
// moved memory. Keys of other types (for example one in an HSM) are left
// alone.
func ZeroKey(key crypto.PrivateKey) {
	switch k := key.(type) {
	case *ecdsa.PrivateKey:
		zeroBig(k.D)
	case *rsa.PrivateKey:
		zeroBig(k.D)
		for _, p := range k.Primes {
			zeroBig(p)
		}
		zeroBig(k.Precomputed.Dp)
		zeroBig(k.Precomputed.Dq)
		zeroBig(k.Precomputed.Qinv)
		for i := range k.Precomputed.CRTValues {
			zeroBig(k.Precomputed.CRTValues[i].Exp)
			zeroBig(k.Precomputed.CRTValues[i].Coeff)
			zeroBig(k.Precomputed.CRTValues[i].R)
		}
	}
}

func zeroBig(n *big.Int) {
	if n == nil {
		return
	}
	words := n.Bits()
	for i := range words {
		words[i] = 0
	}
	n.SetInt64(0)
}
