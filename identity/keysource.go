package identity

import (
	"crypto"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/agentid/agentid/internal/pemkey"
	"github.com/agentid/agentid/policy"
)

// LoadSigningKeys returns the key set that signs tokens for policy p, from
// the first source that applies:
//
//  1. keyFile, when not "": a PEM private key that overrides the policy
//     (`agentid token issue --key`);
//  2. identity.keys.key_source "file": the PEM private key at key_path;
//  3. key_source "generate" (the default): a fresh key in memory for
//     signing_algorithm (ES256 unless set). Nothing outside this process
//     can verify its tokens unless its JWKS is published; Generated
//     reports this source.
//
// A key read from a file must fit signing_algorithm when the policy sets
// it; when the policy leaves it unset the key's type chooses (an Ed25519
// file signs EdDSA). HS256 keys exist only in memory (key_source
// generate). The key set does not rotate by itself unless generated with
// o.RotationPeriod.
func LoadSigningKeys(p *policy.Policy, keyFile string, o KeySetOptions) (*KeySet, error) {
	idc := p.IdentityConfig()
	written := "" // signing_algorithm as the policy writes it, without the default
	if p.Spec.Identity != nil && p.Spec.Identity.Keys != nil {
		written = p.Spec.Identity.Keys.SigningAlgorithm
	}
	if keyFile != "" || idc.Keys.KeySource == "file" {
		if written == AlgHS256 {
			return nil, errors.New("identity: HS256 keys are generated in memory only (key_source generate)")
		}
		if keyFile == "" {
			keyFile = idc.Keys.KeyPath
		}
		return LoadKeySet(keyFile, written, o)
	}
	switch idc.Keys.KeySource {
	case "", "generate":
		return GenerateKeySet(idc.Keys.SigningAlgorithm, o)
	}
	return nil, fmt.Errorf("identity: key_source %q is not supported", idc.Keys.KeySource)
}

// Generated reports whether the key set's keys were generated in memory
// (GenerateKeySet, key_source generate) rather than read from a file.
func (ks *KeySet) Generated() bool {
	ks.mu.RLock()
	defer ks.mu.RUnlock()
	return ks.generated
}

// JWKSFromKeyFiles returns the JWKS of the public halves of PEM key files,
// public or private (`agentid keys jwks`, `agentid token verify --key`).
// Every key must be usable for token verification (AlgForKey); an error
// names the file.
func JWKSFromKeyFiles(paths ...string) (*JWKS, error) {
	pubs := make([]crypto.PublicKey, 0, len(paths))
	for _, path := range paths {
		data, err := pemkey.ReadFile(path)
		if err != nil {
			return nil, fmt.Errorf("identity: %w", err)
		}
		pub, err := ParsePublicKeyPEM(data)
		clear(data)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", path, err)
		}
		pubs = append(pubs, pub)
	}
	return NewJWKS(pubs...)
}

// KeyFiles is a generated signing key as `agentid keys generate` writes
// it: the PKCS#8 PEM private key, the PKIX PEM public key and the kid (the
// RFC 7638 thumbprint).
type KeyFiles struct {
	PrivatePEM, PublicPEM []byte
	KID                   string
}

// GenerateKeyFiles generates a key for alg, one of AsymmetricAlgs: an
// HS256 secret is never written to a file (key_source generate keeps it in
// memory).
func GenerateKeyFiles(alg string) (*KeyFiles, error) {
	if !slices.Contains(AsymmetricAlgs, alg) {
		return nil, fmt.Errorf("identity: key files are for %s, not %q", strings.Join(AsymmetricAlgs, ", "), alg)
	}
	priv, err := GenerateKey(alg)
	if err != nil {
		return nil, err
	}
	pub := priv.(crypto.Signer).Public()
	var kf KeyFiles
	if kf.PrivatePEM, err = MarshalPrivateKeyPEM(priv); err != nil {
		return nil, err
	}
	if kf.PublicPEM, err = MarshalPublicKeyPEM(pub); err != nil {
		return nil, err
	}
	if kf.KID, err = Thumbprint(pub); err != nil {
		return nil, err
	}
	return &kf, nil
}
