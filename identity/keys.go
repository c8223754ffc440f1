package identity

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"sort"
	"sync"
	"time"

	jose "github.com/go-jose/go-jose/v4"

	"github.com/agentid/agentid/internal/pemkey"
	"github.com/agentid/agentid/internal/strictjson"
)

// Signing algorithms (§5.8.2). HS256 is accepted only for a KeySet that was
// explicitly created with it (local use, server disabled); it never appears
// in a JWKS and a JWKS never supplies an HMAC key.
const (
	AlgES256 = "ES256"
	AlgES384 = "ES384"
	AlgEdDSA = "EdDSA"
	AlgRS256 = "RS256"
	AlgHS256 = "HS256"
)

// DefaultAlg is the default signing algorithm.
const DefaultAlg = AlgES256

// RSABits is the size of generated RSA keys; MinRSABits the smallest RSA
// key accepted for verification.
const (
	RSABits    = 2048
	MinRSABits = 2048
)

// hmacKeySize is the size of generated HS256 secrets.
const hmacKeySize = 32

// AsymmetricAlgs lists the algorithms usable with public-key verification.
var AsymmetricAlgs = []string{AlgES256, AlgES384, AlgEdDSA, AlgRS256}

// VerificationKey is a key a token may name with its kid. The algorithm is
// bound to the key: a token whose alg differs from Alg does not verify.
type VerificationKey struct {
	KID string
	Alg string
	key any // *ecdsa.PublicKey, ed25519.PublicKey, *rsa.PublicKey or []byte (HS256)
}

// Public returns the public key (nil for an HS256 key).
func (k *VerificationKey) Public() crypto.PublicKey {
	if _, ok := k.key.([]byte); ok {
		return nil
	}
	return k.key
}

// KeyResolver finds the verification key for a kid. KeySet and JWKS
// implement it.
type KeyResolver interface {
	VerificationKey(kid string) (*VerificationKey, bool)
}

// AlgForKey returns the signing algorithm bound to a public or private key:
// EC P-256 → ES256, P-384 → ES384, Ed25519 → EdDSA, RSA ≥ 2048 bits → RS256.
func AlgForKey(k any) (string, error) {
	switch k := k.(type) {
	case *ecdsa.PrivateKey:
		return AlgForKey(&k.PublicKey)
	case *rsa.PrivateKey:
		return AlgForKey(&k.PublicKey)
	case ed25519.PrivateKey:
		return AlgEdDSA, nil
	case ed25519.PublicKey:
		if len(k) != ed25519.PublicKeySize {
			return "", errors.New("identity: bad Ed25519 key size")
		}
		return AlgEdDSA, nil
	case *ecdsa.PublicKey:
		switch k.Curve {
		case elliptic.P256():
			return AlgES256, nil
		case elliptic.P384():
			return AlgES384, nil
		}
		return "", fmt.Errorf("identity: unsupported EC curve %s", k.Curve.Params().Name)
	case *rsa.PublicKey:
		if k.N.BitLen() < MinRSABits {
			return "", fmt.Errorf("identity: RSA key of %d bits is shorter than %d", k.N.BitLen(), MinRSABits)
		}
		return AlgRS256, nil
	case []byte:
		if len(k) < hmacKeySize {
			return "", fmt.Errorf("identity: HMAC key shorter than %d bytes", hmacKeySize)
		}
		return AlgHS256, nil
	}
	return "", fmt.Errorf("identity: unsupported key type %T", k)
}

// GenerateKey makes a new private key for alg (an *ecdsa.PrivateKey,
// ed25519.PrivateKey, *rsa.PrivateKey, or a []byte secret for HS256).
func GenerateKey(alg string) (any, error) {
	switch alg {
	case AlgES256:
		return ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	case AlgES384:
		return ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	case AlgEdDSA:
		_, k, err := ed25519.GenerateKey(rand.Reader)
		return k, err
	case AlgRS256:
		return rsa.GenerateKey(rand.Reader, RSABits)
	case AlgHS256:
		k := make([]byte, hmacKeySize)
		_, err := rand.Read(k)
		return k, err
	}
	return nil, fmt.Errorf("identity: unsupported signing algorithm %q (want ES256, ES384, EdDSA or RS256)", alg)
}

// Thumbprint returns the RFC 7638 JWK thumbprint (SHA-256, base64url) of a
// public key; agentid uses it as the kid.
func Thumbprint(pub any) (string, error) {
	if k, ok := pub.([]byte); ok {
		// RFC 7638 §3.2 for a symmetric key: {"k":…,"kty":"oct"}.
		sum := sha256.Sum256([]byte(`{"k":"` + base64.RawURLEncoding.EncodeToString(k) + `","kty":"oct"}`))
		return base64.RawURLEncoding.EncodeToString(sum[:]), nil
	}
	tp, err := (&jose.JSONWebKey{Key: pub}).Thumbprint(crypto.SHA256)
	if err != nil {
		return "", fmt.Errorf("identity: thumbprint: %w", err)
	}
	return base64.RawURLEncoding.EncodeToString(tp), nil
}

// MarshalPrivateKeyPEM encodes an asymmetric private key as a PKCS#8
// "PRIVATE KEY" PEM block.
func MarshalPrivateKeyPEM(key any) ([]byte, error) {
	if _, ok := key.([]byte); ok {
		return nil, errors.New("identity: HMAC secrets are not written as PEM")
	}
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, fmt.Errorf("identity: %w", err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), nil
}

// MarshalPublicKeyPEM encodes a public key as a PKIX "PUBLIC KEY" PEM block.
func MarshalPublicKeyPEM(pub any) ([]byte, error) {
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		return nil, fmt.Errorf("identity: %w", err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}), nil
}

// ParsePrivateKeyPEM parses the first PEM block of data (see
// internal/pemkey: PKCS#8 "PRIVATE KEY", SEC 1 "EC PRIVATE KEY" or PKCS#1
// "RSA PRIVATE KEY", not encrypted) as a token signing key: its type must
// have a signing algorithm (AlgForKey).
func ParsePrivateKeyPEM(data []byte) (crypto.Signer, error) {
	s, err := pemkey.ParsePrivateKey(data)
	if err != nil {
		return nil, fmt.Errorf("identity: %w", err)
	}
	if _, err := AlgForKey(s.Public()); err != nil {
		return nil, err
	}
	return s, nil
}

// ParsePublicKeyPEM parses a "PUBLIC KEY" PEM block, or a private key PEM
// (see ParsePrivateKeyPEM) whose public half it returns, as a token
// verification key: its type must have a signing algorithm.
func ParsePublicKeyPEM(data []byte) (crypto.PublicKey, error) {
	k, err := pemkey.ParsePublicKey(data)
	if err != nil {
		return nil, fmt.Errorf("identity: %w", err)
	}
	if _, err := AlgForKey(k); err != nil {
		return nil, err
	}
	return k, nil
}

// signingKey is a private key with its kid and a go-jose signer.
type signingKey struct {
	VerificationKey
	priv   any
	signer jose.Signer
}

func newSigningKey(priv any, alg string) (*signingKey, error) {
	var pub any
	switch k := priv.(type) {
	case crypto.Signer:
		pub = k.Public()
	case []byte:
		pub = k
	default:
		return nil, fmt.Errorf("identity: unsupported private key %T", priv)
	}
	keyAlg, err := AlgForKey(pub)
	if err != nil {
		return nil, err
	}
	if alg == "" {
		alg = keyAlg
	}
	if alg != keyAlg {
		return nil, fmt.Errorf("identity: signing algorithm %s does not fit the key (which needs %s)", alg, keyAlg)
	}
	kid, err := Thumbprint(pub)
	if err != nil {
		return nil, err
	}
	signer, err := jose.NewSigner(
		jose.SigningKey{Algorithm: jose.SignatureAlgorithm(alg), Key: priv},
		(&jose.SignerOptions{}).WithType(TokenType).WithHeader("kid", kid),
	)
	if err != nil {
		return nil, fmt.Errorf("identity: %w", err)
	}
	if b, ok := pub.([]byte); ok {
		pub = append([]byte(nil), b...)
	}
	return &signingKey{VerificationKey: VerificationKey{KID: kid, Alg: alg, key: pub}, priv: priv, signer: signer}, nil
}

// KeySetOptions configures a KeySet.
type KeySetOptions struct {
	// RotationPeriod is how often a generated key set makes a new signing
	// key (identity.keys.rotation_period); 0 disables rotation. File key
	// sets rotate only by Reload.
	RotationPeriod time.Duration
	// Retain is how long a retired key stays in the JWKS and keeps
	// verifying: at least token_ttl plus keys.grace_period (§5.8.4).
	Retain time.Duration
	// PublishAhead is how long before it becomes active the next key is
	// published in the JWKS (§5.8.4 "added to JWKS before becoming
	// active"); default min(1h, RotationPeriod/2).
	PublishAhead time.Duration
	// Now is the clock; time.Now when nil.
	Now func() time.Time
}

// KeySet holds the active signing key, the next key (published ahead of its
// activation) and retired keys that still verify until their retention
// ends. It is safe for concurrent use.
type KeySet struct {
	mu          sync.RWMutex
	alg         string
	opts        KeySetOptions
	generated   bool // keys are generated in memory and may rotate
	active      *signingKey
	activeSince time.Time
	next        *signingKey
	retired     []retiredKey
}

type retiredKey struct {
	key   *signingKey
	until time.Time
}

func (o *KeySetOptions) defaults() {
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.PublishAhead <= 0 && o.RotationPeriod > 0 {
		o.PublishAhead = min(time.Hour, o.RotationPeriod/2)
	}
}

// GenerateKeySet returns a key set with a fresh in-memory key for alg
// (key_source "generate"), rotated every o.RotationPeriod.
func GenerateKeySet(alg string, o KeySetOptions) (*KeySet, error) {
	if alg == "" {
		alg = DefaultAlg
	}
	priv, err := GenerateKey(alg)
	if err != nil {
		return nil, err
	}
	ks, err := NewKeySet(priv, alg, o)
	if err != nil {
		return nil, err
	}
	ks.generated = true
	return ks, nil
}

// NewKeySet returns a key set around an existing private key (a
// crypto.Signer, or a []byte secret for HS256). alg "" takes the algorithm
// from the key. Such a key set does not rotate by itself.
func NewKeySet(priv any, alg string, o KeySetOptions) (*KeySet, error) {
	o.defaults()
	k, err := newSigningKey(priv, alg)
	if err != nil {
		return nil, err
	}
	return &KeySet{alg: k.Alg, opts: o, active: k, activeSince: o.Now()}, nil
}

// LoadKeySet reads a PEM private key file (key_source "file"). alg "" takes
// the algorithm from the key; otherwise it must fit the key.
func LoadKeySet(path, alg string, o KeySetOptions) (*KeySet, error) {
	priv, err := readKeyFile(path)
	if err != nil {
		return nil, err
	}
	return NewKeySet(priv, alg, o)
}

func readKeyFile(path string) (crypto.Signer, error) {
	data, err := pemkey.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("identity: %w", err)
	}
	defer clear(data)
	return ParsePrivateKeyPEM(data)
}

// Alg returns the signing algorithm.
func (ks *KeySet) Alg() string { return ks.alg }

// ActiveKID returns the kid of the current signing key.
func (ks *KeySet) ActiveKID() string {
	ks.tick()
	ks.mu.RLock()
	defer ks.mu.RUnlock()
	return ks.active.KID
}

// ActivePublicKey returns the public key of the current signing key (nil
// for HS256).
func (ks *KeySet) ActivePublicKey() crypto.PublicKey {
	ks.tick()
	ks.mu.RLock()
	defer ks.mu.RUnlock()
	return ks.active.Public()
}

// tick applies the rotation schedule at the current time.
func (ks *KeySet) tick() {
	now := ks.opts.Now()
	ks.mu.RLock()
	due := ks.generated && ks.opts.RotationPeriod > 0 &&
		!now.Before(ks.activeSince.Add(ks.opts.RotationPeriod-ks.opts.PublishAhead)) ||
		len(ks.retired) > 0 && !now.Before(ks.retired[0].until)
	ks.mu.RUnlock()
	if !due {
		return
	}
	ks.mu.Lock()
	defer ks.mu.Unlock()
	ks.pruneLocked(now)
	if !ks.generated || ks.opts.RotationPeriod <= 0 {
		return
	}
	rotateAt := ks.activeSince.Add(ks.opts.RotationPeriod)
	if ks.next == nil && !now.Before(rotateAt.Add(-ks.opts.PublishAhead)) {
		// Best effort: if generation fails, the active key stays in use.
		if priv, err := GenerateKey(ks.alg); err == nil {
			ks.next, _ = newSigningKey(priv, ks.alg)
		}
	}
	if !now.Before(rotateAt) && ks.next != nil {
		ks.activateLocked(ks.next, now)
		ks.next = nil
	}
}

func (ks *KeySet) activateLocked(k *signingKey, now time.Time) {
	ks.retired = append(ks.retired, retiredKey{key: ks.active, until: now.Add(ks.opts.Retain)})
	sort.SliceStable(ks.retired, func(i, j int) bool { return ks.retired[i].until.Before(ks.retired[j].until) })
	ks.active = k
	ks.activeSince = now
}

func (ks *KeySet) pruneLocked(now time.Time) {
	i := 0
	for i < len(ks.retired) && !now.Before(ks.retired[i].until) {
		i++
	}
	ks.retired = ks.retired[i:]
}

// Rotate makes a new signing key active now (the published next key if
// there is one), retiring the current one for Retain. It works for
// generated key sets only; file key sets rotate with Reload.
func (ks *KeySet) Rotate() error {
	if !ks.generated {
		return errors.New("identity: a key set loaded from a file rotates by replacing the file and calling Reload")
	}
	ks.mu.Lock()
	next := ks.next
	ks.next = nil
	ks.mu.Unlock()
	if next == nil {
		priv, err := GenerateKey(ks.alg)
		if err != nil {
			return err
		}
		if next, err = newSigningKey(priv, ks.alg); err != nil {
			return err
		}
	}
	ks.mu.Lock()
	defer ks.mu.Unlock()
	now := ks.opts.Now()
	ks.pruneLocked(now)
	ks.activateLocked(next, now)
	return nil
}

// Reload reads a new private key from path and makes it active, retiring
// the current key for Retain. The algorithm must not change. Reloading the
// same key is a no-op.
func (ks *KeySet) Reload(path string) error {
	priv, err := readKeyFile(path)
	if err != nil {
		return err
	}
	k, err := newSigningKey(priv, ks.alg)
	if err != nil {
		return err
	}
	ks.mu.Lock()
	defer ks.mu.Unlock()
	if k.KID == ks.active.KID {
		return nil
	}
	now := ks.opts.Now()
	ks.pruneLocked(now)
	ks.activateLocked(k, now)
	return nil
}

// SetRetain changes how long retired keys are kept (e.g. after a policy
// change of token_ttl); it applies to keys retired from now on.
func (ks *KeySet) SetRetain(d time.Duration) {
	ks.mu.Lock()
	ks.opts.Retain = d
	ks.mu.Unlock()
}

// VerificationKey implements KeyResolver: the active key, the published
// next key and retired keys within their retention.
func (ks *KeySet) VerificationKey(kid string) (*VerificationKey, bool) {
	ks.mu.RLock()
	defer ks.mu.RUnlock()
	if ks.active.KID == kid {
		return &ks.active.VerificationKey, true
	}
	if ks.next != nil && ks.next.KID == kid {
		return &ks.next.VerificationKey, true
	}
	if len(ks.retired) > 0 {
		now := ks.opts.Now()
		for _, r := range ks.retired {
			if r.key.KID == kid && now.Before(r.until) {
				return &r.key.VerificationKey, true
			}
		}
	}
	return nil, false
}

// Sign signs payload as a compact JWS with header {"alg","kid","typ":"aip+jwt"}
// using the active key. It is exported for tests and tools; tokens are
// issued by Manager.
func (ks *KeySet) Sign(payload []byte) (string, error) {
	ks.tick()
	ks.mu.RLock()
	k := ks.active
	ks.mu.RUnlock()
	obj, err := k.signer.Sign(payload)
	if err != nil {
		return "", fmt.Errorf("identity: sign: %w", err)
	}
	return obj.CompactSerialize()
}

// PrivateKeyPEM returns the active private key as PKCS#8 PEM. It exists for
// `agentid keys generate` and tests; never log its result.
func (ks *KeySet) PrivateKeyPEM() ([]byte, error) {
	ks.mu.RLock()
	defer ks.mu.RUnlock()
	return MarshalPrivateKeyPEM(ks.active.priv)
}

// JWKS returns the JSON Web Key Set of the public keys that verify tokens:
// the next key, the active key and retired keys within their retention,
// each with kid, use "sig" and alg (§5.8.5). HS256 secrets are never
// published: an HS256 key set yields {"keys":[]}.
func (ks *KeySet) JWKS() ([]byte, error) {
	ks.tick()
	ks.mu.RLock()
	keys := []*signingKey{}
	if ks.next != nil {
		keys = append(keys, ks.next)
	}
	keys = append(keys, ks.active)
	now := ks.opts.Now()
	for i := len(ks.retired) - 1; i >= 0; i-- {
		if now.Before(ks.retired[i].until) {
			keys = append(keys, ks.retired[i].key)
		}
	}
	ks.mu.RUnlock()
	return marshalJWKS(keys)
}

func marshalJWKS(keys []*signingKey) ([]byte, error) {
	set := jose.JSONWebKeySet{Keys: []jose.JSONWebKey{}}
	for _, k := range keys {
		if k.Alg == AlgHS256 {
			continue
		}
		set.Keys = append(set.Keys, jose.JSONWebKey{Key: k.key, KeyID: k.KID, Algorithm: k.Alg, Use: "sig"})
	}
	return json.Marshal(set)
}

// JWKS is a static set of public verification keys, from a JWKS document or
// from public keys. It implements KeyResolver and never holds HMAC keys.
type JWKS struct {
	keys map[string]*VerificationKey
	doc  []byte
}

// maxJWKSSize bounds a JWKS document.
const maxJWKSSize = 1 << 20

// ParseJWKS parses a JWKS document ({"keys":[…]}). Keys with use "enc",
// symmetric (oct) keys and unsupported key types are skipped; a key with
// private members, a kid missing or repeated, or an alg that does not fit
// the key is an error, as is a set without a usable key.
func ParseJWKS(data []byte) (*JWKS, error) {
	if len(data) > maxJWKSSize {
		return nil, errors.New("identity: JWKS document too large")
	}
	// A JWK set is a JOSE document, read under the JOSE profile as the
	// tokens' headers and claims are.
	if err := strictjson.Validate(profile, data); err != nil {
		return nil, fmt.Errorf("identity: JWKS: %w", err)
	}
	var raw struct {
		Keys []json.RawMessage `json:"keys"`
	}
	if err := json.Unmarshal(data, &raw); err != nil {
		return nil, fmt.Errorf("identity: JWKS: %w", err)
	}
	j := &JWKS{keys: map[string]*VerificationKey{}, doc: append([]byte(nil), data...)}
	for i, rk := range raw.Keys {
		var meta struct {
			Kty string `json:"kty"`
			Use string `json:"use"`
			Kid string `json:"kid"`
			D   string `json:"d"`
		}
		if err := json.Unmarshal(rk, &meta); err != nil {
			return nil, fmt.Errorf("identity: JWKS key %d: %w", i, err)
		}
		if meta.D != "" {
			return nil, fmt.Errorf("identity: JWKS key %d contains private key material", i)
		}
		if meta.Use == "enc" || meta.Kty == "oct" {
			continue
		}
		var k jose.JSONWebKey
		if err := k.UnmarshalJSON(rk); err != nil {
			continue // unsupported key type or curve
		}
		if !k.IsPublic() {
			return nil, fmt.Errorf("identity: JWKS key %d contains private key material", i)
		}
		if k.KeyID == "" {
			return nil, fmt.Errorf("identity: JWKS key %d has no kid", i)
		}
		alg, err := AlgForKey(k.Key)
		if err != nil {
			continue
		}
		if k.Algorithm != "" && k.Algorithm != alg {
			return nil, fmt.Errorf("identity: JWKS key %q: alg %s does not fit its key type (%s)", k.KeyID, k.Algorithm, alg)
		}
		if _, dup := j.keys[k.KeyID]; dup {
			return nil, fmt.Errorf("identity: JWKS: kid %q appears twice", k.KeyID)
		}
		j.keys[k.KeyID] = &VerificationKey{KID: k.KeyID, Alg: alg, key: k.Key}
	}
	if len(j.keys) == 0 {
		return nil, errors.New("identity: JWKS has no usable signature key")
	}
	return j, nil
}

// NewJWKS builds a key set from public keys, with kid = RFC 7638 thumbprint
// and the algorithm bound to each key's type.
func NewJWKS(pubs ...crypto.PublicKey) (*JWKS, error) {
	j := &JWKS{keys: map[string]*VerificationKey{}}
	var sks []*signingKey
	for _, p := range pubs {
		if _, ok := p.([]byte); ok {
			return nil, errors.New("identity: NewJWKS takes public keys only")
		}
		alg, err := AlgForKey(p)
		if err != nil {
			return nil, err
		}
		kid, err := Thumbprint(p)
		if err != nil {
			return nil, err
		}
		vk := VerificationKey{KID: kid, Alg: alg, key: p}
		j.keys[kid] = &vk
		sks = append(sks, &signingKey{VerificationKey: vk})
	}
	doc, err := marshalJWKS(sks)
	if err != nil {
		return nil, err
	}
	j.doc = doc
	return j, nil
}

// VerificationKey implements KeyResolver.
func (j *JWKS) VerificationKey(kid string) (*VerificationKey, bool) {
	k, ok := j.keys[kid]
	return k, ok
}

// KIDs returns the key ids in the set, sorted.
func (j *JWKS) KIDs() []string {
	out := make([]string, 0, len(j.keys))
	for k := range j.keys {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// Document returns the JWKS document the set was parsed from or built as.
func (j *JWKS) Document() []byte { return j.doc }
