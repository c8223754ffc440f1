package agentcard

import (
	"errors"
	"time"
)

// Reason says why one signature was not accepted. Every check has its own
// reason, so that an operator can tell an expired SVID from a tampered card
// from a foreign trust domain (Kagenti reports all of them as "No signature
// verified via x5c chain validation").
type Reason string

// Reasons for rejecting a signature.
const (
	// ReasonMalformed: the entry, its protected header or its signature is
	// not well-formed (base64url, JSON, parameter types, sizes).
	ReasonMalformed Reason = "malformed"
	// ReasonAlgorithm: alg is missing or not on the allowlist (none, HS256…).
	ReasonAlgorithm Reason = "algorithm_not_allowed"
	// ReasonKeyMismatch: alg does not fit the leaf key's type, curve or size.
	ReasonKeyMismatch Reason = "algorithm_key_mismatch"
	// ReasonCritical: the header lists crit extensions we do not implement,
	// or asks for an unencoded (b64: false) payload.
	ReasonCritical Reason = "unsupported_critical"
	// ReasonType: typ is present and is not JOSE.
	ReasonType Reason = "unexpected_type"
	// ReasonNoX5C: the header has no x5c; a jku, x5u or jwk is never used
	// instead.
	ReasonNoX5C Reason = "missing_x5c"
	// ReasonCertificate: an x5c entry is not a parseable certificate.
	ReasonCertificate Reason = "malformed_certificate"
	// ReasonChainTooLong: x5c has more certificates than allowed.
	ReasonChainTooLong Reason = "chain_too_long"
	// ReasonNotSVID: the leaf is not an X509-SVID usable for signing (a CA,
	// certSign or crlSign usage, no digitalSignature usage, not exactly one
	// URI SAN, a malformed SPIFFE ID or no workload path), or an
	// intermediate names another trust domain.
	ReasonNotSVID Reason = "invalid_svid"
	// ReasonUnknownTrustDomain: no bundle is configured for the leaf's
	// trust domain.
	ReasonUnknownTrustDomain Reason = "unknown_trust_domain"
	// ReasonLeafExpired and ReasonLeafNotYetValid: the leaf is outside its
	// validity period at the verification time.
	ReasonLeafExpired     Reason = "leaf_expired"
	ReasonLeafNotYetValid Reason = "leaf_not_yet_valid"
	// ReasonChain: the chain does not verify to the trust domain's bundle
	// (unknown issuer, expired intermediate, bad chain signature).
	ReasonChain Reason = "chain_invalid"
	// ReasonThumbprint: x5t#S256 is missing (where required) or is not the
	// leaf's SHA-256 thumbprint.
	ReasonThumbprint Reason = "thumbprint_mismatch"
	// ReasonKeyID: kid is missing or does not identify the leaf.
	ReasonKeyID Reason = "key_id_mismatch"
	// ReasonMissingFreshness: iat or exp is missing where required.
	ReasonMissingFreshness Reason = "missing_freshness"
	// ReasonIssuedInFuture: iat is later than the verification time plus
	// the allowed clock skew.
	ReasonIssuedInFuture Reason = "issued_in_future"
	// ReasonStale: iat is older than the maximum age.
	ReasonStale Reason = "stale"
	// ReasonExpired: exp has passed (or is not after iat).
	ReasonExpired Reason = "expired"
	// ReasonSignatureEncoding: the signature is not in its JWS form, for
	// example an ASN.1 DER ECDSA signature instead of R||S.
	ReasonSignatureEncoding Reason = "signature_encoding"
	// ReasonBadSignature: the signature does not verify over this card:
	// the card or the protected header was changed, or another key signed.
	ReasonBadSignature Reason = "bad_signature"
)

// Binding reasons and messages. They are Kagenti's, so that status fields,
// dashboards and runbooks written for it keep working.
const (
	BindingBound    = "Bound"
	BindingNotBound = "NotBound"

	msgNoSPIFFEID    = "No SPIFFE ID from x5c certificate chain: ensure the card is signed with a SPIRE-issued SVID"
	msgNoTrustDomain = "No trust domain configured (set --spire-trust-domain or spec.identityBinding.trustDomain)"
)

// Result is the outcome of verifying one card. It is meant to be printed as
// JSON and copied into a status: it holds no key material.
type Result struct {
	// Verified is true when at least one signature verified.
	Verified bool `json:"verified"`
	// SPIFFEID, KeyID, Algorithm, LeafNotAfter, IssuedAt and ExpiresAt
	// describe the accepted signature; they are empty when none was.
	SPIFFEID     string     `json:"spiffe_id,omitempty"`
	KeyID        string     `json:"key_id,omitempty"`
	Algorithm    string     `json:"alg,omitempty"`
	LeafNotAfter *time.Time `json:"leaf_not_after,omitempty"`
	IssuedAt     *time.Time `json:"issued_at,omitempty"`
	ExpiresAt    *time.Time `json:"expires_at,omitempty"`
	// SignatureIndex is the index of the accepted signature in the card's
	// signatures array, or -1.
	SignatureIndex int `json:"signature_index"`
	// Details is a one-line summary in Kagenti's wording.
	Details string `json:"details"`
	// Signatures has one entry per signature in the card, in order.
	Signatures []SignatureResult `json:"signatures"`
	// Binding is the identity binding outcome, when binding was asked for.
	Binding *Binding `json:"binding,omitempty"`
	// VerifiedAt is the time the chain and freshness were checked at.
	VerifiedAt time.Time `json:"verified_at"`
}

// SignatureResult is the outcome for one entry of the signatures array.
type SignatureResult struct {
	Index    int    `json:"index"`
	Verified bool   `json:"verified"`
	Reason   Reason `json:"reason,omitempty"`
	Error    string `json:"error,omitempty"`
	// SPIFFEID is the signer's SPIFFE ID, set only when the signature
	// verified (before that it is an unverified claim).
	SPIFFEID  string `json:"spiffe_id,omitempty"`
	KeyID     string `json:"key_id,omitempty"`
	Algorithm string `json:"alg,omitempty"`
	// Canonicalization is "rfc8785", or "kagenti" for a signature verified
	// in Kagenti compatibility mode.
	Canonicalization string `json:"canonicalization,omitempty"`

	leafNotAfter time.Time
	iat, exp     int64
	hasIAT       bool
	hasExp       bool
}

// Binding is the outcome of binding the verified SPIFFE ID to the expected
// identity.
type Binding struct {
	Bound   bool   `json:"bound"`
	Reason  string `json:"reason"`
	Message string `json:"message"`
	// TrustDomain, ExpectedID and ExpectedPattern echo what was required.
	TrustDomain     string `json:"trust_domain,omitempty"`
	ExpectedID      string `json:"expected_id,omitempty"`
	ExpectedPattern string `json:"expected_pattern,omitempty"`
}

// Errors returned by Verify. They wrap more detail; test with errors.Is.
var (
	// ErrNoSignature: the card has no signatures.
	ErrNoSignature = errors.New("agentcard: card does not contain a signature")
	// ErrNotVerified: no signature verified.
	ErrNotVerified = errors.New("agentcard: no signature verified")
	// ErrNotBound: a signature verified, but its SPIFFE ID is not the
	// expected identity.
	ErrNotBound = errors.New("agentcard: signer identity not bound")
)
