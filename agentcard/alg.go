package agentcard

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rsa"
	"errors"
	"fmt"
	"math/big"
)

// Algorithm is a JWS "alg" value that agentcard signs or accepts.
type Algorithm string

// The algorithm allowlist. Each algorithm is tied to exactly one key type and,
// for ECDSA, one curve, so that a header can never choose how a key is used
// (RFC 8725 §3.1): `none`, HMAC and everything else are refused by omission.
const (
	ES256 Algorithm = "ES256" // ECDSA P-256, SHA-256
	ES384 Algorithm = "ES384" // ECDSA P-384, SHA-384
	ES512 Algorithm = "ES512" // ECDSA P-521, SHA-512
	RS256 Algorithm = "RS256" // RSASSA-PKCS1-v1_5, SHA-256, key ≥ 2048 bits
	PS256 Algorithm = "PS256" // RSASSA-PSS, SHA-256, salt = hash length, key ≥ 2048 bits
)

const (
	minRSABits = 2048
	// maxRSABits bounds the cost of a hostile certificate's key.
	maxRSABits = 8192
)

type algSpec struct {
	hash  crypto.Hash
	curve elliptic.Curve // nil for RSA
	pss   bool
}

var algorithms = map[Algorithm]algSpec{
	ES256: {hash: crypto.SHA256, curve: elliptic.P256()},
	ES384: {hash: crypto.SHA384, curve: elliptic.P384()},
	ES512: {hash: crypto.SHA512, curve: elliptic.P521()},
	RS256: {hash: crypto.SHA256},
	PS256: {hash: crypto.SHA256, pss: true},
}

// algorithmForKey chooses the algorithm a signer uses for key: the curve
// decides for ECDSA, and RSA uses RS256 unless pss asks for PS256.
func algorithmForKey(key crypto.PublicKey, pss bool) (Algorithm, error) {
	switch k := key.(type) {
	case *ecdsa.PublicKey:
		switch k.Curve {
		case elliptic.P256():
			return ES256, nil
		case elliptic.P384():
			return ES384, nil
		case elliptic.P521():
			return ES512, nil
		}
		return "", fmt.Errorf("unsupported ECDSA curve %s", k.Curve.Params().Name)
	case *rsa.PublicKey:
		if err := checkRSASize(k); err != nil {
			return "", err
		}
		if pss {
			return PS256, nil
		}
		return RS256, nil
	}
	return "", fmt.Errorf("unsupported key type %T (want ECDSA P-256, P-384, P-521 or RSA)", key)
}

func checkRSASize(k *rsa.PublicKey) error {
	bits := k.N.BitLen()
	if bits < minRSABits {
		return fmt.Errorf("RSA key of %d bits is smaller than %d", bits, minRSABits)
	}
	if bits > maxRSABits {
		return fmt.Errorf("RSA key of %d bits is larger than %d", bits, maxRSABits)
	}
	return nil
}

// errAlgorithm and errKeyMismatch separate "this alg is never accepted" from
// "this alg does not fit this key" in the verifier's reasons.
var (
	errAlgorithm   = errors.New("algorithm not allowed")
	errKeyMismatch = errors.New("algorithm does not match the key")
)

// checkAlgorithm reports whether alg is on the allowlist at all.
func checkAlgorithm(alg string) (algSpec, error) {
	spec, ok := algorithms[Algorithm(alg)]
	if !ok {
		if alg == "" {
			return algSpec{}, fmt.Errorf("%w: missing", errAlgorithm)
		}
		return algSpec{}, fmt.Errorf("%w: %q", errAlgorithm, truncate(alg))
	}
	return spec, nil
}

// checkKey reports whether key is the one key type, curve and size that alg
// is tied to.
func checkKey(alg Algorithm, spec algSpec, key crypto.PublicKey) error {
	switch k := key.(type) {
	case *ecdsa.PublicKey:
		if spec.curve == nil {
			return fmt.Errorf("%w: %s with an ECDSA key", errKeyMismatch, alg)
		}
		if k.Curve != spec.curve {
			return fmt.Errorf("%w: %s requires %s, the key uses %s", errKeyMismatch, alg, spec.curve.Params().Name, k.Curve.Params().Name)
		}
		return nil
	case *rsa.PublicKey:
		if spec.curve != nil {
			return fmt.Errorf("%w: %s with an RSA key", errKeyMismatch, alg)
		}
		if err := checkRSASize(k); err != nil {
			return fmt.Errorf("%w: %v", errKeyMismatch, err)
		}
		return nil
	}
	return fmt.Errorf("%w: unsupported key type %T", errKeyMismatch, key)
}

// errSignatureEncoding marks ECDSA signatures that are not the fixed-width
// R||S of RFC 7518 §3.4 (for example ASN.1 DER, which Kagenti also accepted).
var errSignatureEncoding = errors.New("signature encoding")

// verifySignature checks sig over signingInput with key under alg. Only the
// JWS encodings are accepted: ECDSA as R||S of exactly twice the curve size,
// RSA as a modulus-sized block.
func verifySignature(alg Algorithm, spec algSpec, key crypto.PublicKey, signingInput, sig []byte) error {
	h := spec.hash.New()
	h.Write(signingInput)
	digest := h.Sum(nil)
	switch k := key.(type) {
	case *ecdsa.PublicKey:
		size := (k.Curve.Params().BitSize + 7) / 8
		if len(sig) != 2*size {
			return fmt.Errorf("%w: %s signature of %d bytes, want R||S of %d", errSignatureEncoding, alg, len(sig), 2*size)
		}
		r := new(big.Int).SetBytes(sig[:size])
		s := new(big.Int).SetBytes(sig[size:])
		if !ecdsa.Verify(k, digest, r, s) {
			return errBadSignature
		}
		return nil
	case *rsa.PublicKey:
		if len(sig) != k.Size() {
			return fmt.Errorf("%w: %s signature of %d bytes, want %d", errSignatureEncoding, alg, len(sig), k.Size())
		}
		var err error
		if spec.pss {
			err = rsa.VerifyPSS(k, spec.hash, digest, sig, &rsa.PSSOptions{SaltLength: rsa.PSSSaltLengthEqualsHash, Hash: spec.hash})
		} else {
			err = rsa.VerifyPKCS1v15(k, spec.hash, digest, sig)
		}
		if err != nil {
			return errBadSignature
		}
		return nil
	}
	return fmt.Errorf("%w: unsupported key type %T", errKeyMismatch, key)
}

var errBadSignature = errors.New("signature does not verify")
