package identity

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/hmac"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/base64"
	"errors"
	"fmt"
	"math/big"
	"strings"

	"github.com/agentid/agentid/aip"
)

// TokenType is the JOSE "typ" header of AIP tokens.
const TokenType = "aip+jwt"

// MaxTokenSize is the largest token accepted, in bytes (8 KiB). A token
// agentid issues is about 900 bytes.
const MaxTokenSize = 8 << 10

var b64 = base64.RawURLEncoding.Strict()

// parsedToken is a compact JWS split and decoded, before verification.
type parsedToken struct {
	header       header
	signingInput string // "<header>.<payload>" as sent
	payload      []byte
	sig          []byte
}

// splitToken decodes the three parts of a compact JWS. Every failure is
// "malformed".
func splitToken(token string) (*parsedToken, *ValidationError) {
	if len(token) > MaxTokenSize {
		return nil, malformed("token is larger than %d bytes", MaxTokenSize)
	}
	d1 := strings.IndexByte(token, '.')
	if d1 < 0 {
		return nil, malformed("not a compact JWS (want header.payload.signature)")
	}
	d2 := strings.IndexByte(token[d1+1:], '.')
	if d2 < 0 {
		return nil, malformed("not a compact JWS (want header.payload.signature)")
	}
	d2 += d1 + 1
	if strings.IndexByte(token[d2+1:], '.') >= 0 {
		return nil, malformed("not a compact JWS (too many parts; JWE is not accepted)")
	}
	hdrB64, payB64, sigB64 := token[:d1], token[d1+1:d2], token[d2+1:]
	if hdrB64 == "" || payB64 == "" || sigB64 == "" {
		return nil, malformed("empty JWS part")
	}
	hdr, err := b64.DecodeString(hdrB64)
	if err != nil {
		return nil, malformed("header is not base64url")
	}
	h, err := decodeHeader(hdr)
	if err != nil {
		var fe forbiddenHeaderError
		var ns errNotStrict
		switch {
		case errors.As(err, &ns):
			return nil, notStrict("header is not strict JSON", ns)
		case errors.As(err, &fe):
			return nil, invalid(aip.TokenErrSignatureInvalid, fe.Error())
		}
		return nil, malformed("%v", err)
	}
	if !strings.EqualFold(h.Typ, TokenType) && !strings.EqualFold(h.Typ, "application/"+TokenType) {
		return nil, malformed("header typ %q, want %q", clip(h.Typ), TokenType)
	}
	payload, err := b64.DecodeString(payB64)
	if err != nil {
		return nil, malformed("payload is not base64url")
	}
	sig, err := b64.DecodeString(sigB64)
	if err != nil {
		return nil, malformed("signature is not base64url")
	}
	return &parsedToken{header: h, signingInput: token[:d2], payload: payload, sig: sig}, nil
}

// verifySignature checks the signature with the key the header names. The
// algorithm must be the one bound to that key: "none", an HS* header on an
// asymmetric key, or RS256 on an EC key never reaches a verify call.
func verifySignature(t *parsedToken, keys KeyResolver) (*VerificationKey, *ValidationError) {
	h := t.header
	switch h.Alg {
	case AlgES256, AlgES384, AlgEdDSA, AlgRS256, AlgHS256:
	default:
		return nil, invalid(aip.TokenErrSignatureInvalid, fmt.Sprintf("algorithm %q is not accepted", clip(h.Alg)))
	}
	if h.Kid == "" || len(h.Kid) > 256 {
		return nil, invalid(aip.TokenErrSignatureInvalid, "unknown signing key")
	}
	k, ok := keys.VerificationKey(h.Kid)
	if !ok {
		return nil, invalid(aip.TokenErrSignatureInvalid, "unknown signing key")
	}
	if h.Alg != k.Alg {
		return nil, invalid(aip.TokenErrSignatureInvalid, fmt.Sprintf("algorithm %s does not match the key (%s)", h.Alg, k.Alg))
	}
	if !verifyWith(k, t.signingInput, t.sig) {
		return nil, invalid(aip.TokenErrSignatureInvalid, "signature does not verify")
	}
	return k, nil
}

// verifyWith verifies sig over input with k under k.Alg.
func verifyWith(k *VerificationKey, input string, sig []byte) bool {
	switch k.Alg {
	case AlgEdDSA:
		pub, ok := k.key.(ed25519.PublicKey)
		return ok && len(sig) == ed25519.SignatureSize && ed25519.Verify(pub, []byte(input), sig)
	case AlgES256:
		pub, ok := k.key.(*ecdsa.PublicKey)
		if !ok || len(sig) != 64 {
			return false
		}
		h := sha256.Sum256([]byte(input))
		return verifyECDSA(pub, h[:], sig)
	case AlgES384:
		pub, ok := k.key.(*ecdsa.PublicKey)
		if !ok || len(sig) != 96 {
			return false
		}
		h := sha512.Sum384([]byte(input))
		return verifyECDSA(pub, h[:], sig)
	case AlgRS256:
		pub, ok := k.key.(*rsa.PublicKey)
		if !ok || pub.N.BitLen() < MinRSABits {
			return false
		}
		h := sha256.Sum256([]byte(input))
		return rsa.VerifyPKCS1v15(pub, crypto.SHA256, h[:], sig) == nil
	case AlgHS256:
		secret, ok := k.key.([]byte)
		if !ok || len(secret) == 0 || len(sig) != sha256.Size {
			return false
		}
		m := hmac.New(sha256.New, secret)
		m.Write([]byte(input))
		return hmac.Equal(m.Sum(nil), sig) // constant time
	}
	return false
}

// verifyECDSA verifies a JWS ECDSA signature: R and S as fixed-size
// big-endian integers (RFC 7518 §3.4).
func verifyECDSA(pub *ecdsa.PublicKey, hash, sig []byte) bool {
	n := len(sig) / 2
	r := new(big.Int).SetBytes(sig[:n])
	s := new(big.Int).SetBytes(sig[n:])
	return ecdsa.Verify(pub, hash, r, s)
}

// ParseUnverified decodes a token's claims WITHOUT verifying its signature,
// for display (`agentid token inspect`) and diagnostics. Never base a
// decision on its result; use Verifier.Validate.
func ParseUnverified(token string) (*Claims, error) {
	t, verr := splitToken(token)
	if verr != nil {
		return nil, verr
	}
	c, verr := decodePayload(t.payload)
	if verr != nil {
		return nil, verr
	}
	return c, nil
}

// DecodeUnverified returns the decoded JOSE header and payload JSON of a
// compact token WITHOUT verifying anything but its shape.
func DecodeUnverified(token string) (headerJSON, payloadJSON []byte, err error) {
	if len(token) > MaxTokenSize {
		return nil, nil, malformed("token is larger than %d bytes", MaxTokenSize)
	}
	parts := strings.Split(token, ".")
	if len(parts) != 3 {
		return nil, nil, malformed("not a compact JWS (want header.payload.signature)")
	}
	if headerJSON, err = b64.DecodeString(parts[0]); err != nil {
		return nil, nil, malformed("header is not base64url")
	}
	if payloadJSON, err = b64.DecodeString(parts[1]); err != nil {
		return nil, nil, malformed("payload is not base64url")
	}
	return headerJSON, payloadJSON, nil
}

// decodePayload strictly decodes and checks the claims. Every failure is
// "malformed".
func decodePayload(payload []byte) (*Claims, *ValidationError) {
	c, err := decodeClaims(payload)
	if err != nil {
		var ns errNotStrict
		if errors.As(err, &ns) {
			return nil, notStrict("claims are not strict JSON (duplicate keys?)", ns)
		}
		return nil, malformed("%v", err)
	}
	if err := checkClaims(c); err != nil {
		return nil, malformed("%v", err)
	}
	return c, nil
}

// header is the decoded JOSE header.
type header struct {
	Alg, Typ, Kid string
}

// forbiddenHeaders are header parameters whose presence rejects a token:
// key material or key locations chosen by the token (jku, jwk, x5u, x5c),
// critical extensions (we support none), and parameters of other
// serializations.
var forbiddenHeaders = map[string]string{
	"jku":  "jku (key URL) is not accepted",
	"jwk":  "embedded jwk is not accepted",
	"x5u":  "x5u (certificate URL) is not accepted",
	"x5c":  "x5c (certificate chain) is not accepted",
	"crit": "crit: no critical extensions are supported",
	"b64":  "b64 is not accepted",
	"zip":  "zip is not accepted",
	"enc":  "enc: JWE is not accepted",
}

// forbiddenHeaderError marks a header that is rejected for security rather
// than for syntax; it is reported as signature_invalid.
type forbiddenHeaderError string

func (e forbiddenHeaderError) Error() string { return string(e) }

// decodeHeader decodes a protected header under the JOSE profile, in one
// pass that also validates it. A header that is not strict JSON is an
// errNotStrict, whatever else is wrong with it; then the first member in
// document order that is forbidden (a forbiddenHeaderError) or of the
// wrong type decides.
func decodeHeader(data []byte) (header, error) {
	r := newReader(data)
	var h header
	var seen int
	if r.object() {
		for key := range r.keys {
			switch string(key) {
			case "alg":
				h.Alg = r.str(r.value(), "", "alg")
				seen |= 1
			case "typ":
				h.Typ = r.str(r.value(), "", "typ")
				seen |= 2
			case "kid":
				h.Kid = r.str(r.value(), "", "kid")
				seen |= 4
			default:
				if why, bad := forbiddenHeaders[string(key)]; bad {
					r.fail(forbiddenHeaderError("header " + why))
				}
				r.value()
			}
		}
	}
	if err := r.finish(); err != nil {
		return h, err
	}
	if seen != 7 {
		return h, fmt.Errorf("header must have alg, typ and kid")
	}
	return h, nil
}

// notStrict is the malformed error for a document that is not strict JSON.
// The reason, which the client is sent, is the same whatever the scanner
// found; the scanner's *strictjson.Error is kept as the cause, for logs.
func notStrict(reason string, ns errNotStrict) *ValidationError {
	e := malformed("%s", reason)
	e.cause = ns.err
	return e
}
