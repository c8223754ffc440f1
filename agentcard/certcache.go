package agentcard

import (
	"crypto/sha256"
	"crypto/x509"
	"sync"
)

// certCacheSize bounds the parsed-certificate cache. A verifier sees one
// leaf per agent plus a few CAs; a hostile stream of fresh certificates only
// makes the cache start over, never grow.
const certCacheSize = 1024

// certCache keeps parsed certificates by the SHA-256 of their DER. Parsing
// is a pure function of the bytes and a parsed *x509.Certificate is never
// modified, so sharing one between verifications (and goroutines) is the
// same as parsing again. Only parsing is cached: chain verification, time
// checks and the signature are done on every call.
type certCache struct {
	mu sync.RWMutex
	m  map[[32]byte]*x509.Certificate
}

func newCertCache() *certCache {
	return &certCache{m: make(map[[32]byte]*x509.Certificate)}
}

// parse returns the certificate for der and der's SHA-256, which is also
// the x5t#S256 thumbprint. A nil cache parses every time.
func (c *certCache) parse(der []byte) (*x509.Certificate, [32]byte, error) {
	sum := sha256.Sum256(der)
	if c != nil {
		c.mu.RLock()
		cert := c.m[sum]
		c.mu.RUnlock()
		if cert != nil {
			return cert, sum, nil
		}
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, sum, err
	}
	if c != nil {
		c.mu.Lock()
		if len(c.m) >= certCacheSize {
			clear(c.m)
		}
		c.m[sum] = cert
		c.mu.Unlock()
	}
	return cert, sum, nil
}
