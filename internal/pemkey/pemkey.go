// Package pemkey reads private and public keys from PEM: the one PEM key
// loader of the project, below identity (token signing keys), policy
// (Ed25519 policy signatures) and agentcard (SVID keys), which add their own
// rules on top (identity's algorithm allowlist, for example).
//
// Private keys are PKCS#8 "PRIVATE KEY", SEC 1 "EC PRIVATE KEY" or PKCS#1
// "RSA PRIVATE KEY" blocks; encrypted PEM is refused. Public keys are PKIX
// "PUBLIC KEY" blocks, or a private key whose public half is taken. The
// decoded DER of a private key is cleared once parsed, and an error never
// quotes key bytes or the parser's view of them.
//
// Errors carry no package prefix: the caller names the context (a flag, a
// file, its own package).
package pemkey

import (
	"crypto"
	"crypto/ed25519"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"

	"github.com/agentid/agentid/internal/readlimit"
)

// MaxFileSize bounds a key file read by the Load functions.
const MaxFileSize = 1 << 20

// ParsePrivateKey parses the first PEM block of data as a private key.
// Anything after the block is ignored.
func ParsePrivateKey(data []byte) (crypto.Signer, error) {
	block, _ := pem.Decode(data)
	return privateKey(block)
}

// ParseSinglePrivateKey is ParsePrivateKey for data that must hold exactly
// one PEM block: a second key (or a certificate) in a key file is an error
// rather than silently ignored.
func ParseSinglePrivateKey(data []byte) (crypto.Signer, error) {
	block, rest := pem.Decode(data)
	if block != nil {
		if next, _ := pem.Decode(rest); next != nil {
			clear(block.Bytes)
			return nil, errors.New("more than one PEM block in the key file")
		}
	}
	return privateKey(block)
}

func privateKey(block *pem.Block) (crypto.Signer, error) {
	if block == nil {
		return nil, errors.New("no PEM block found")
	}
	defer clear(block.Bytes)
	if _, encrypted := block.Headers["Proc-Type"]; encrypted || block.Type == "ENCRYPTED PRIVATE KEY" {
		return nil, errors.New("encrypted private keys are not supported")
	}
	var (
		key any
		err error
	)
	switch block.Type {
	case "PRIVATE KEY":
		key, err = x509.ParsePKCS8PrivateKey(block.Bytes)
	case "EC PRIVATE KEY":
		key, err = x509.ParseECPrivateKey(block.Bytes)
	case "RSA PRIVATE KEY":
		key, err = x509.ParsePKCS1PrivateKey(block.Bytes)
	default:
		return nil, fmt.Errorf("PEM block %q is not a private key", truncate(block.Type))
	}
	if err != nil {
		return nil, fmt.Errorf("malformed private key in PEM block %q", block.Type)
	}
	s, ok := key.(crypto.Signer)
	if !ok {
		return nil, fmt.Errorf("unsupported private key type %T", key)
	}
	return s, nil
}

// ParsePublicKey parses the first PEM block of data: a PKIX "PUBLIC KEY",
// or a private key (see ParsePrivateKey) whose public half it returns.
func ParsePublicKey(data []byte) (crypto.PublicKey, error) {
	block, _ := pem.Decode(data)
	if block == nil {
		return nil, errors.New("no PEM block found")
	}
	switch block.Type {
	case "PUBLIC KEY":
		k, err := x509.ParsePKIXPublicKey(block.Bytes)
		if err != nil {
			return nil, fmt.Errorf("malformed public key: %w", err)
		}
		return k, nil
	case "PRIVATE KEY", "EC PRIVATE KEY", "RSA PRIVATE KEY", "ENCRYPTED PRIVATE KEY":
		s, err := privateKey(block)
		if err != nil {
			return nil, err
		}
		return s.Public(), nil
	default:
		clear(block.Bytes)
		return nil, fmt.Errorf("PEM block %q is not a public or private key", truncate(block.Type))
	}
}

// ParseEd25519PrivateKey is ParsePrivateKey for an Ed25519 key (what
// `agentid keys generate --alg EdDSA` writes).
func ParseEd25519PrivateKey(data []byte) (ed25519.PrivateKey, error) {
	return asEd25519[ed25519.PrivateKey](ParsePrivateKey(data))
}

// ParseEd25519PublicKey is ParsePublicKey for an Ed25519 key.
func ParseEd25519PublicKey(data []byte) (ed25519.PublicKey, error) {
	return asEd25519[ed25519.PublicKey](ParsePublicKey(data))
}

// asEd25519 returns key as K, an Ed25519 key type.
func asEd25519[K ed25519.PrivateKey | ed25519.PublicKey, S any](key S, err error) (K, error) {
	var zero K
	if err != nil {
		return zero, err
	}
	k, ok := any(key).(K)
	if !ok {
		return zero, fmt.Errorf("%s is %T, want Ed25519", kind(key), key)
	}
	return k, nil
}

// kind says whether k is a private or a public key.
func kind(k any) string {
	if _, ok := k.(crypto.Signer); ok {
		return "private key"
	}
	return "public key"
}

// LoadPrivateKey reads ParsePrivateKey from a file.
func LoadPrivateKey(path string) (crypto.Signer, error) { return load(path, ParsePrivateKey) }

// LoadPublicKey reads ParsePublicKey from a file.
func LoadPublicKey(path string) (crypto.PublicKey, error) { return load(path, ParsePublicKey) }

// LoadEd25519PrivateKey reads ParseEd25519PrivateKey from a file (the
// value of `policy sign --key`).
func LoadEd25519PrivateKey(path string) (ed25519.PrivateKey, error) {
	return load(path, ParseEd25519PrivateKey)
}

// LoadEd25519PublicKey reads ParseEd25519PublicKey from a file (the value
// of `policy verify --pubkey` and `proxy --policy-pubkey`).
func LoadEd25519PublicKey(path string) (ed25519.PublicKey, error) {
	return load(path, ParseEd25519PublicKey)
}

// ReadFile reads a key file of at most MaxFileSize bytes. The caller
// should clear the bytes once parsed.
func ReadFile(path string) ([]byte, error) { return readlimit.ReadFile(path, MaxFileSize) }

// load reads path and parses it; a parse error names the file.
func load[K any](path string, parse func([]byte) (K, error)) (K, error) {
	var zero K
	data, err := ReadFile(path)
	if err != nil {
		return zero, err
	}
	defer clear(data)
	k, err := parse(data)
	if err != nil {
		return zero, fmt.Errorf("%s: %w", path, err)
	}
	return k, nil
}

func truncate(s string) string {
	const max = 40
	if len(s) > max {
		return s[:max] + "…"
	}
	return s
}
