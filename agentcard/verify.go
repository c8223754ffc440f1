package agentcard

import (
	"crypto/subtle"
	"crypto/x509"
	"errors"
	"fmt"
	"github.com/agentid/agentid/internal/strictjson"
	"strings"
	"time"

	"github.com/spiffe/go-spiffe/v2/bundle/x509bundle"
	"github.com/spiffe/go-spiffe/v2/spiffeid"
	"github.com/spiffe/go-spiffe/v2/svid/x509svid"
)

// Defaults of the Verifier.
const (
	// DefaultMaxChainLength is the most certificates x5c may hold, leaf
	// included: Kagenti's limit, which fits SPIRE with an upstream CA.
	DefaultMaxChainLength = 3
	// DefaultMaxAge is how old a signature's iat may be. SPIRE's SVIDs live
	// an hour by default, so a card signed with one is refused well before
	// this; the bound matters for long-lived SVIDs.
	DefaultMaxAge = 24 * time.Hour
	// DefaultClockSkew is the tolerance for iat in the future and exp in the
	// past, for clocks of the signer and verifier that disagree slightly.
	DefaultClockSkew = time.Minute
)

// Compat selects a compatibility mode of the Verifier.
type Compat int

const (
	// CompatNone verifies only agentcard's own format: RFC 8785 payload,
	// and iat, exp, kid and x5t#S256 required in the protected header.
	CompatNone Compat = iota
	// CompatKagenti additionally accepts signatures made by the Kagenti
	// operator's signer: a protected header of exactly alg, typ, kid and
	// x5c, over Kagenti's canonical JSON (sorted keys, empty values removed,
	// HTML-escaped). The chain is still verified at the verification time,
	// so expired SVIDs are refused, unlike in Kagenti.
	CompatKagenti
)

// Verifier verifies signed AgentCards against SPIFFE trust bundles. It is
// safe for concurrent use.
type Verifier struct {
	bundles        x509bundle.Source
	now            func() time.Time
	maxAge         time.Duration
	skew           time.Duration
	maxChainLength int
	compat         Compat
	binding        *bindingPolicy
	certs          *certCache
}

// VerifierOption configures a Verifier.
type VerifierOption func(*Verifier) error

// WithTime verifies at a fixed time instead of the current time: chain
// validity and freshness are both judged at t. Use it to check what a
// verifier would have said then, never to make an expired card pass in
// production.
func WithTime(t time.Time) VerifierOption {
	return func(v *Verifier) error {
		if t.IsZero() {
			return errors.New("agentcard: WithTime: zero time")
		}
		v.now = func() time.Time { return t }
		return nil
	}
}

// WithMaxAge sets how old a signature's iat may be; 0 turns the age check off
// (exp and the leaf's validity still apply).
func WithMaxAge(d time.Duration) VerifierOption {
	return func(v *Verifier) error {
		if d < 0 {
			return errors.New("agentcard: WithMaxAge: negative duration")
		}
		v.maxAge = d
		return nil
	}
}

// WithClockSkew sets the tolerance for iat in the future and exp in the past.
func WithClockSkew(d time.Duration) VerifierOption {
	return func(v *Verifier) error {
		if d < 0 || d > time.Hour {
			return errors.New("agentcard: WithClockSkew: must be between 0 and 1h")
		}
		v.skew = d
		return nil
	}
}

// WithMaxChainLength sets the most certificates x5c may hold, leaf included.
func WithMaxChainLength(n int) VerifierOption {
	return func(v *Verifier) error {
		if n < 1 || n > maxX5C {
			return fmt.Errorf("agentcard: WithMaxChainLength: must be between 1 and %d", maxX5C)
		}
		v.maxChainLength = n
		return nil
	}
}

// WithCompat enables a compatibility mode.
func WithCompat(c Compat) VerifierOption {
	return func(v *Verifier) error {
		if c != CompatNone && c != CompatKagenti {
			return errors.New("agentcard: WithCompat: unknown mode")
		}
		v.compat = c
		return nil
	}
}

// NewVerifier returns a Verifier that trusts the X.509 authorities that
// bundles gives for each trust domain. A leaf is only ever verified against
// the bundle of its own trust domain.
func NewVerifier(bundles x509bundle.Source, opts ...VerifierOption) (*Verifier, error) {
	if bundles == nil {
		return nil, errors.New("agentcard: NewVerifier: no bundle source")
	}
	v := &Verifier{
		bundles:        bundles,
		now:            time.Now,
		maxAge:         DefaultMaxAge,
		skew:           DefaultClockSkew,
		maxChainLength: DefaultMaxChainLength,
		certs:          newCertCache(),
	}
	for _, opt := range opts {
		if err := opt(v); err != nil {
			return nil, err
		}
	}
	return v, nil
}

// Verify parses card and verifies it; see VerifyCard.
func (v *Verifier) Verify(card []byte) (*Result, error) {
	now := v.now()
	c, err := ParseCard(card)
	if err != nil {
		res := &Result{SignatureIndex: -1, Details: err.Error(), Signatures: []SignatureResult{}, VerifiedAt: now}
		res.Binding = v.bind(res)
		return res, err
	}
	return v.verifyCard(c, now)
}

// VerifyCard tries every signature of the card and accepts the card when at
// least one verifies and, if binding was configured, its SPIFFE ID is bound.
// The returned error is nil exactly when the card is accepted; the Result is
// always filled in, with a reason for each signature that failed.
func (v *Verifier) VerifyCard(c *Card) (*Result, error) {
	return v.verifyCard(c, v.now())
}

func (v *Verifier) verifyCard(c *Card, now time.Time) (*Result, error) {
	res := &Result{SignatureIndex: -1, Signatures: []SignatureResult{}, VerifiedAt: now}
	sigs, err := c.signatures()
	if err != nil {
		res.Details = err.Error()
		res.Binding = v.bind(res)
		return res, err
	}
	if len(sigs) == 0 {
		res.Details = "AgentCard does not contain a signature"
		res.Binding = v.bind(res)
		return res, ErrNoSignature
	}
	// The payloads are computed at most once per card, and only when a
	// signature gets as far as needing one.
	p := &payloads{card: c}
	for i, s := range sigs {
		sr := v.verifySignature(i, s, p, now)
		res.Signatures = append(res.Signatures, sr)
	}
	// Accept the first verified signature that is also bound; if none is
	// bound, report the first verified one so the binding failure names it.
	chosen := -1
	for i := range res.Signatures {
		if !res.Signatures[i].Verified {
			continue
		}
		if chosen < 0 {
			chosen = i
		}
		if v.binding == nil || v.binding.evaluate(res.Signatures[i].SPIFFEID).Bound {
			chosen = i
			break
		}
	}
	if chosen >= 0 {
		s := &res.Signatures[chosen]
		res.Verified = true
		res.SignatureIndex = chosen
		res.SPIFFEID = s.SPIFFEID
		res.KeyID = s.KeyID
		res.Algorithm = s.Algorithm
		na := s.leafNotAfter.UTC()
		res.LeafNotAfter = &na
		if s.hasIAT {
			t := time.Unix(s.iat, 0).UTC()
			res.IssuedAt = &t
		}
		if s.hasExp {
			t := time.Unix(s.exp, 0).UTC()
			res.ExpiresAt = &t
		}
		res.Details = fmt.Sprintf("JWS signature verified successfully (alg=%s, kid=%s)", s.Algorithm, s.KeyID)
	} else {
		res.Details = "No signature verified via x5c chain validation"
	}
	res.Binding = v.bind(res)
	switch {
	case !res.Verified:
		return res, fmt.Errorf("%w: %s", ErrNotVerified, summarize(res.Signatures))
	case res.Binding != nil && !res.Binding.Bound:
		return res, fmt.Errorf("%w: %s", ErrNotBound, res.Binding.Message)
	}
	return res, nil
}

func (v *Verifier) bind(res *Result) *Binding {
	if v.binding == nil {
		return nil
	}
	b := v.binding.evaluate(res.SPIFFEID)
	return &b
}

func summarize(sigs []SignatureResult) string {
	parts := make([]string, len(sigs))
	for i, s := range sigs {
		parts[i] = fmt.Sprintf("signature %d: %s", s.Index, s.Reason)
	}
	return strings.Join(parts, "; ")
}

// payloads caches the card's signing payloads in both canonical forms.
type payloads struct {
	card       *Card
	jcs        []byte
	jcsErr     error
	jcsDone    bool
	kagenti    []byte
	kagentiErr error
	kagDone    bool
}

func (p *payloads) rfc8785() ([]byte, error) {
	if !p.jcsDone {
		p.jcs, p.jcsErr = p.card.Payload()
		p.jcsDone = true
	}
	return p.jcs, p.jcsErr
}

func (p *payloads) kagentiForm() ([]byte, error) {
	if !p.kagDone {
		p.kagenti, p.kagentiErr = kagentiPayload(p.card)
		p.kagDone = true
	}
	return p.kagenti, p.kagentiErr
}

// sigFailure fills in a failed SignatureResult.
func sigFailure(sr SignatureResult, reason Reason, err error) SignatureResult {
	sr.Verified = false
	sr.Reason = reason
	sr.Error = err.Error()
	return sr
}

// verifySignature runs every check on one signature. The order puts cheap,
// local checks first and the public-key operations (chain, then signature)
// last, so that a hostile card costs little; it never affects the outcome,
// since every check must pass.
func (v *Verifier) verifySignature(index int, s rawSignature, p *payloads, now time.Time) SignatureResult {
	sr := SignatureResult{Index: index}

	if s.protected == "" || s.signature == "" {
		return sigFailure(sr, ReasonMalformed, errors.New("protected and signature must both be non-empty strings"))
	}
	if err := checkUnprotected(s.header); err != nil {
		return sigFailure(sr, ReasonMalformed, err)
	}
	h, err := parseProtected(s.protected)
	if err != nil {
		return sigFailure(sr, ReasonMalformed, err)
	}
	// Both are attacker-chosen until verified: keep them short in reports.
	sr.Algorithm = truncate(h.alg)
	sr.KeyID = truncate(h.kid)
	if h.hasCrit || h.b64False {
		return sigFailure(sr, ReasonCritical, errors.New("critical header extensions are not supported"))
	}
	spec, err := checkAlgorithm(h.alg)
	if err != nil {
		return sigFailure(sr, ReasonAlgorithm, err)
	}
	alg := Algorithm(h.alg)
	if h.hasTyp && !strings.EqualFold(h.typ, "JOSE") {
		return sigFailure(sr, ReasonType, fmt.Errorf("typ %q is not JOSE", truncate(h.typ)))
	}

	kagenti := v.compat == CompatKagenti && isKagentiHeader(h)
	sr.Canonicalization = "rfc8785"
	if kagenti {
		sr.Canonicalization = "kagenti"
	}

	if !h.hasX5C {
		msg := "x5c header missing"
		if h.hasJKU || h.hasX5U {
			msg += " (jku and x5u are never fetched)"
		}
		return sigFailure(sr, ReasonNoX5C, errors.New(msg))
	}
	if len(h.x5c) > v.maxChainLength {
		return sigFailure(sr, ReasonChainTooLong, fmt.Errorf("certificate chain too deep: %d (max %d)", len(h.x5c), v.maxChainLength))
	}
	certs := make([]*x509.Certificate, len(h.x5c))
	var thumb [32]byte
	for i, der := range h.x5c {
		c, sum, err := v.certs.parse(der)
		if err != nil {
			return sigFailure(sr, ReasonCertificate, fmt.Errorf("certificate %d: %w", i, err))
		}
		certs[i] = c
		if i == 0 {
			thumb = sum
		}
	}
	leaf := certs[0]
	sr.leafNotAfter = leaf.NotAfter

	switch {
	case h.hasX5TS256:
		if subtle.ConstantTimeCompare(h.x5tS256, thumb[:]) != 1 {
			return sigFailure(sr, ReasonThumbprint, errors.New("x5t#S256 is not the SHA-256 thumbprint of the leaf"))
		}
	case !kagenti:
		return sigFailure(sr, ReasonThumbprint, errors.New("x5t#S256 missing"))
	}
	if err := checkKeyID(h, thumb[:], kagenti); err != nil {
		return sigFailure(sr, ReasonKeyID, err)
	}
	if err := checkKey(alg, spec, leaf.PublicKey); err != nil {
		return sigFailure(sr, ReasonKeyMismatch, err)
	}
	sig, err := b64url.DecodeString(s.signature)
	if err != nil || len(s.signature) > maxSignatureSize {
		return sigFailure(sr, ReasonMalformed, errors.New("signature is not base64url without padding"))
	}
	if r, err := v.checkFreshness(h, kagenti, now); err != nil {
		return sigFailure(sr, r, err)
	}
	sr.iat, sr.hasIAT, sr.exp, sr.hasExp = h.iat, h.hasIAT, h.exp, h.hasExp

	id, r, err := v.verifyChain(certs, now)
	if err != nil {
		// The leaf's ID is not reported: it is only a claim until the
		// chain verifies, and a report must not lend it credibility.
		return sigFailure(sr, r, err)
	}

	var payload []byte
	if kagenti {
		payload, err = p.kagentiForm()
	} else {
		payload, err = p.rfc8785()
	}
	if err != nil {
		return sigFailure(sr, ReasonMalformed, err)
	}
	input := make([]byte, 0, len(s.protected)+1+b64url.EncodedLen(len(payload)))
	input = append(input, s.protected...)
	input = append(input, '.')
	input = b64url.AppendEncode(input, payload)
	if err := verifySignature(alg, spec, leaf.PublicKey, input, sig); err != nil {
		if errors.Is(err, errSignatureEncoding) {
			return sigFailure(sr, ReasonSignatureEncoding, err)
		}
		return sigFailure(sr, ReasonBadSignature, err)
	}
	sr.Verified = true
	sr.SPIFFEID = id.String()
	return sr
}

// checkUnprotected refuses unprotected header parameters that could be
// mistaken for protected ones. RFC 7515 §4.1.11 forbids crit there, and we
// never read alg, keys or times from an unprotected header; a signer that
// put them there made a mistake or is trying to confuse another verifier.
func checkUnprotected(hdr []byte) error {
	if len(hdr) == 0 {
		return nil
	}
	members, err := scanMembers(strictjson.JOSE, hdr)
	if err != nil || members == nil {
		return errors.New("unprotected header is not a JSON object")
	}
	for _, m := range members {
		switch m.key {
		case "alg", "crit", "kid", "x5c", "x5t#S256", "x5t", "x5u", "jku", "jwk", "iat", "exp", "typ", "b64":
			return fmt.Errorf("parameter %q must be in the protected header", m.key)
		}
	}
	return nil
}

// isKagentiHeader reports whether h has the exact shape of the Kagenti
// signer's header, which alone selects Kagenti's canonical payload.
func isKagentiHeader(h *header) bool {
	return h.hasAlg && h.hasTyp && h.hasKid && h.hasX5C &&
		!h.hasX5TS256 && !h.hasIAT && !h.hasExp
}

// maxKeyIDSize bounds a kid: it is reported, never looked up.
const maxKeyIDSize = 256

// checkKeyID checks kid. The key always comes from the verified x5c, so
// kid names nothing we look up: any signer's own label is accepted (our
// signer writes the leaf's SHA-256 thumbprint, A2A's examples "key-1"),
// bounded, and reported as it is; x5t#S256, when present, is what binds the
// header to the leaf. In Kagenti compatibility mode kid is the hex of the
// thumbprint's first 8 bytes, as Kagenti's signer writes it, and a kid
// naming another certificate is refused there.
func checkKeyID(h *header, thumb []byte, kagenti bool) error {
	if h.hasKid && len(h.kid) > maxKeyIDSize {
		return fmt.Errorf("kid longer than %d bytes", maxKeyIDSize)
	}
	if !kagenti {
		return nil
	}
	if !h.hasKid || h.kid == "" {
		return errors.New("kid missing")
	}
	if subtle.ConstantTimeCompare([]byte(h.kid), []byte(kagentiKeyID(thumb))) != 1 {
		return errors.New("kid does not identify the x5c leaf")
	}
	return nil
}

func (v *Verifier) checkFreshness(h *header, kagenti bool, now time.Time) (Reason, error) {
	if !kagenti && (!h.hasIAT || !h.hasExp) {
		return ReasonMissingFreshness, errors.New("iat and exp are required in the protected header")
	}
	n := now.Unix()
	skew := int64(v.skew / time.Second)
	if h.hasIAT {
		if h.iat > n+skew {
			return ReasonIssuedInFuture, fmt.Errorf("iat %d is in the future", h.iat)
		}
		if v.maxAge > 0 && n-h.iat > int64(v.maxAge/time.Second) {
			return ReasonStale, fmt.Errorf("signed %s ago, more than the %s allowed", time.Duration(n-h.iat)*time.Second, v.maxAge)
		}
	}
	if h.hasExp {
		if h.hasIAT && h.exp <= h.iat {
			return ReasonExpired, errors.New("exp is not after iat")
		}
		if n >= h.exp+skew {
			return ReasonExpired, fmt.Errorf("expired at %s", time.Unix(h.exp, 0).UTC().Format(time.RFC3339))
		}
	}
	return "", nil
}

// verifyChain checks that certs is an X509-SVID chain that verifies to the
// bundle of the leaf's own trust domain at time now.
func (v *Verifier) verifyChain(certs []*x509.Certificate, now time.Time) (spiffeid.ID, Reason, error) {
	leaf := certs[0]
	id, err := x509svid.IDFromCert(leaf)
	if err != nil {
		return spiffeid.ID{}, ReasonNotSVID, fmt.Errorf("leaf certificate SAN validation failed: %w", err)
	}
	if id.Path() == "" {
		return id, ReasonNotSVID, fmt.Errorf("leaf SPIFFE ID %s has no workload path", id)
	}
	// x509svid.Verify refuses these too; checking them here gives them their
	// own reason. The X509-SVID specification (§4.3) also requires
	// digitalSignature on a leaf: a key without it must not sign.
	switch {
	case leaf.IsCA:
		return id, ReasonNotSVID, errors.New("leaf certificate is a CA")
	case leaf.KeyUsage&(x509.KeyUsageCertSign|x509.KeyUsageCRLSign) != 0:
		return id, ReasonNotSVID, errors.New("leaf certificate has the keyCertSign or cRLSign key usage")
	case leaf.KeyUsage&x509.KeyUsageDigitalSignature == 0:
		return id, ReasonNotSVID, errors.New("leaf certificate lacks the digitalSignature key usage")
	}
	// An intermediate that names a SPIFFE ID must name the leaf's trust
	// domain: a chain may not borrow a signing CA of another trust domain.
	for i, c := range certs[1:] {
		for _, u := range c.URIs {
			if u.Scheme != "spiffe" {
				continue
			}
			cid, err := spiffeid.FromURI(u)
			if err != nil || cid.TrustDomain() != id.TrustDomain() {
				return id, ReasonNotSVID, fmt.Errorf("intermediate %d belongs to another trust domain (%s)", i+1, truncate(u.String()))
			}
		}
	}
	bundle, err := v.bundles.GetX509BundleForTrustDomain(id.TrustDomain())
	if err != nil || bundle == nil || len(bundle.X509Authorities()) == 0 {
		return id, ReasonUnknownTrustDomain, fmt.Errorf("no trust bundle for trust domain %q", id.TrustDomain().Name())
	}
	switch {
	case now.After(leaf.NotAfter):
		return id, ReasonLeafExpired, fmt.Errorf("leaf certificate expired at %s", leaf.NotAfter.UTC().Format(time.RFC3339))
	case now.Before(leaf.NotBefore):
		return id, ReasonLeafNotYetValid, fmt.Errorf("leaf certificate is not valid before %s", leaf.NotBefore.UTC().Format(time.RFC3339))
	}
	if _, _, err := x509svid.Verify(certs, bundle, x509svid.WithTime(now)); err != nil {
		return id, ReasonChain, fmt.Errorf("x5c chain validation failed: %w", err)
	}
	return id, "", nil
}
