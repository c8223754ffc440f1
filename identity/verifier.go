package identity

import (
	"context"
	"crypto/subtle"
	"errors"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/agentid/agentid/aip"
	"github.com/agentid/agentid/policy"
	"github.com/agentid/agentid/store"
)

// DefaultLeeway is how far in the future iat and nbf may lie (clock skew).
const DefaultLeeway = 5 * time.Second

// DefaultSessionRetention is how long a revoked session stays revoked
// (§5.6.2 max_session_duration).
const DefaultSessionRetention = 24 * time.Hour

// VerifierConfig configures a Verifier.
type VerifierConfig struct {
	// Keys resolves the token's kid: a *KeySet (the issuer itself), or a
	// *JWKS (another process's published keys). Required.
	Keys KeyResolver
	// Audience is the expected aud: identity.audience or metadata.name.
	// Required.
	Audience string
	// PolicyHash is the current policy hash. Required.
	PolicyHash string
	// Issuer, when set, must equal the token's iss.
	Issuer string

	// BindingMode is "process", "policy" or "strict" (§3.7.5, DESIGN
	// decision 9), or "" to skip the binding check (an offline verifier
	// that is not the issuing process, such as `agentid token verify`).
	BindingMode string
	// Binding is this process's binding, compared in process and strict
	// modes.
	Binding Binding

	// Nonces records accepted nonces (atomic check-and-record). Required
	// unless DisableReplayCheck.
	Nonces store.NonceStore
	// NonceTTL is how long a nonce is remembered: nonce_window plus
	// nonce_storage.clock_skew_tolerance. The verifier extends it to cover
	// the token's remaining lifetime if that is longer. Required with
	// Nonces.
	NonceTTL time.Duration
	// DisableReplayCheck skips the nonce step (and does not consume the
	// nonce). Only for offline inspection; a verifier that authorizes calls
	// must check replay.
	DisableReplayCheck bool

	// Revocations is consulted first (§5.6.3); nil skips the revocation
	// check (offline verification only).
	Revocations store.RevocationStore

	// Now is the clock; time.Now when nil.
	Now func() time.Time
	// Leeway is how far in the future iat/nbf may lie; DefaultLeeway when
	// zero, none when negative. Expiry has no leeway.
	Leeway time.Duration
}

// Verifier validates tokens: it needs no Manager, so that a validation
// server, `agentid token verify` and the proxy share the same code. It is
// safe for concurrent use.
type Verifier struct {
	c     VerifierConfig
	state atomic.Pointer[verifierState]
}

// verifierState is replaced as a whole (copy on write), so that Validate
// reads a consistent policy and binding without a lock.
type verifierState struct {
	audience    string
	hash        string
	recent      []recentHash
	bindingMode string
	binding     Binding
	nonceTTL    time.Duration
}

type recentHash struct {
	hash  string
	until time.Time
}

// NewVerifier checks c and returns a Verifier.
func NewVerifier(c VerifierConfig) (*Verifier, error) {
	switch {
	case c.Keys == nil:
		return nil, errors.New("identity: verifier needs keys")
	case c.Audience == "":
		return nil, errors.New("identity: verifier needs an audience")
	case !isLowerHex(c.PolicyHash, 64):
		return nil, errors.New("identity: verifier needs the 64-hex policy hash")
	case c.Nonces == nil && !c.DisableReplayCheck:
		return nil, errors.New("identity: verifier needs a nonce store (or DisableReplayCheck)")
	case c.Nonces != nil && c.NonceTTL <= 0:
		return nil, errors.New("identity: verifier needs a positive NonceTTL")
	}
	switch c.BindingMode {
	case "", policy.BindingProcess, policy.BindingPolicy, policy.BindingStrict:
	default:
		return nil, fmt.Errorf("identity: unknown session binding %q", c.BindingMode)
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	if c.Leeway == 0 {
		c.Leeway = DefaultLeeway
	} else if c.Leeway < 0 {
		c.Leeway = 0
	}
	v := &Verifier{c: c}
	v.state.Store(&verifierState{audience: c.Audience, hash: c.PolicyHash, bindingMode: c.BindingMode, binding: c.Binding, nonceTTL: c.NonceTTL})
	return v, nil
}

// SetPolicy installs a new policy hash and audience. With grace > 0 the
// previous hash stays valid until grace has elapsed
// (policy_transition_grace, §3.7.7); with grace 0 tokens of the previous
// policy fail with policy_changed at once.
func (v *Verifier) SetPolicy(hash, audience string, grace time.Duration) {
	now := v.c.Now()
	for {
		old := v.state.Load()
		if old.hash == hash && old.audience == audience {
			return
		}
		ns := &verifierState{audience: audience, hash: hash, bindingMode: old.bindingMode, binding: old.binding, nonceTTL: old.nonceTTL}
		for _, r := range old.recent {
			if now.Before(r.until) && r.hash != hash {
				ns.recent = append(ns.recent, r)
			}
		}
		if grace > 0 && old.hash != hash {
			ns.recent = append(ns.recent, recentHash{hash: old.hash, until: now.Add(grace)})
		}
		if v.state.CompareAndSwap(old, ns) {
			return
		}
	}
}

// SetBinding replaces the binding and mode compared in step 4.
func (v *Verifier) SetBinding(mode string, b Binding) error {
	switch mode {
	case "", policy.BindingProcess, policy.BindingPolicy, policy.BindingStrict:
	default:
		return fmt.Errorf("identity: unknown session binding %q", mode)
	}
	for {
		old := v.state.Load()
		ns := *old
		ns.bindingMode, ns.binding = mode, b
		if v.state.CompareAndSwap(old, &ns) {
			return nil
		}
	}
}

// SetNonceTTL changes how long accepted nonces are remembered (a reload
// that changed nonce_window). Non-positive values are ignored.
func (v *Verifier) SetNonceTTL(d time.Duration) {
	if d <= 0 {
		return
	}
	for {
		old := v.state.Load()
		ns := *old
		ns.nonceTTL = d
		if v.state.CompareAndSwap(old, &ns) {
			return
		}
	}
}

// PolicyHashes returns the current hash followed by the recent hashes
// still within their grace period.
func (v *Verifier) PolicyHashes() []string {
	s := v.state.Load()
	now := v.c.Now()
	out := []string{s.hash}
	for _, r := range s.recent {
		if now.Before(r.until) {
			out = append(out, r.hash)
		}
	}
	return out
}

// Audience returns the expected audience.
func (v *Verifier) Audience() string { return v.state.Load().audience }

// Validate verifies token and returns its claims. An empty token fails
// with -32008; every other failure is a *ValidationError (see its Code), or
// a *StoreError when a store could not answer.
//
// First the token itself is checked, before any store is consulted: size
// (8 KiB), compact JWS shape, strict JSON header (typ aip+jwt, alg, kid;
// no jku/jwk/x5u/x5c/crit), the key the kid names and the algorithm bound to
// it, the signature, then the strict claims (no duplicate or case-variant
// keys, every claim of its type, exp = expires_at, iat = issued_at,
// jti = nonce, sub = agent_id). Then §5.4.3 in order (DESIGN decision 8):
//
//  0. revocation: session, then token (-32011)
//  1. expiry: now > expires_at → token_expired; iat/nbf beyond the leeway
//     in the future → token_not_yet_valid
//  2. audience (-32012)
//  3. policy hash, with the grace of policy_transition_grace
//  4. binding: process → session_mismatch; strict → binding_mismatch
//  5. atomic nonce check-and-record → replay_detected
//
// A successful Validate consumes the token: tokens are single-use.
func (v *Verifier) Validate(ctx context.Context, token string) (*Claims, error) {
	if token == "" {
		return nil, &ValidationError{Code: aip.CodeTokenRequired, Reason: "Identity token required for this policy"}
	}
	pt, verr := splitToken(token)
	if verr != nil {
		return nil, verr
	}
	if _, verr := verifySignature(pt, v.c.Keys); verr != nil {
		return nil, verr
	}
	c, verr := decodePayload(pt.payload)
	if verr != nil {
		return nil, verr
	}
	if v.c.Issuer != "" && c.Issuer != v.c.Issuer {
		return nil, withClaims(malformed("issuer %q is not %q", clip(c.Issuer), v.c.Issuer), c)
	}

	// Steps 1 to 4 need no store; they are checked first but reported
	// after revocation, in §5.4.3's order. A store that cannot answer
	// then never lets through a token that is invalid anyway (expired,
	// another audience, policy or process): under fail_open it would.
	now := v.c.Now()
	st := v.state.Load()
	stateless := v.statelessChecks(c, now, st)

	if tc, ok := v.tokenChecker(); ok {
		return v.checkTokenOnce(ctx, tc, c, now, st, stateless)
	}

	// Step 0: revocation.
	if rs := v.c.Revocations; rs != nil {
		at, ok, err := rs.SessionRevoked(ctx, c.SessionID)
		if err != nil {
			if stateless != nil {
				return nil, stateless
			}
			return nil, &StoreError{Op: "revocation", Err: err}
		}
		if ok {
			return nil, &ValidationError{Code: aip.CodeTokenRevoked, TokenError: aip.TokenErrSessionRevoked, Reason: "Session revoked",
				RevokedAt: at, RevocationType: aip.RevocationSession, Claims: c}
		}
		at, ok, err = rs.TokenRevoked(ctx, c.Nonce)
		if err != nil {
			if stateless != nil {
				return nil, stateless
			}
			return nil, &StoreError{Op: "revocation", Err: err}
		}
		if ok {
			return nil, &ValidationError{Code: aip.CodeTokenRevoked, TokenError: aip.TokenErrTokenRevoked, Reason: "Token revoked",
				RevokedAt: at, RevocationType: aip.RevocationToken, Claims: c}
		}
	}
	if stateless != nil {
		return nil, stateless
	}

	// Step 5: atomic nonce check-and-record.
	if !v.c.DisableReplayCheck {
		fresh, err := v.c.Nonces.CheckAndRecord(ctx, c.Nonce, v.nonceTTL(c, now, st))
		if err != nil {
			return nil, &StoreError{Op: "nonce", Err: err}
		}
		if !fresh {
			return nil, withClaims(invalid(aip.TokenErrReplayDetected, "Token already used (replay)"), c)
		}
	}
	return c, nil
}

// nonceTTL is how long c's nonce is remembered: nonce_window (and skew),
// or the token's remaining lifetime if that is longer.
func (v *Verifier) nonceTTL(c *Claims, now time.Time, st *verifierState) time.Duration {
	ttl := st.nonceTTL
	if rem := c.ExpiresAt.Sub(now) + v.c.Leeway; rem > ttl {
		ttl = rem
	}
	return ttl
}

// tokenChecker is the store that can check revocations and record the
// nonce in one round trip: when the nonce and revocation stores are one
// store that implements store.TokenChecker.
func (v *Verifier) tokenChecker() (store.TokenChecker, bool) {
	if v.c.DisableReplayCheck || v.c.Nonces == nil || v.c.Revocations == nil {
		return nil, false
	}
	tc, ok := v.c.Revocations.(store.TokenChecker)
	if !ok || any(v.c.Nonces) != any(v.c.Revocations) {
		return nil, false
	}
	return tc, true
}

// checkTokenOnce is steps 0 and 5 in one round trip (store.TokenChecker),
// with the same outcomes, in the same order, as the separate calls.
func (v *Verifier) checkTokenOnce(ctx context.Context, tc store.TokenChecker, c *Claims, now time.Time, st *verifierState, stateless *ValidationError) (*Claims, error) {
	record := stateless == nil
	r, err := tc.CheckToken(ctx, c.SessionID, c.Nonce, record, v.nonceTTL(c, now, st))
	switch {
	case err != nil && stateless != nil:
		return nil, stateless
	case err != nil:
		return nil, &StoreError{Op: "revocation and nonce", Err: err}
	case r.SessionRevoked:
		return nil, &ValidationError{Code: aip.CodeTokenRevoked, TokenError: aip.TokenErrSessionRevoked, Reason: "Session revoked",
			RevokedAt: r.SessionRevokedAt, RevocationType: aip.RevocationSession, Claims: c}
	case r.TokenRevoked:
		return nil, &ValidationError{Code: aip.CodeTokenRevoked, TokenError: aip.TokenErrTokenRevoked, Reason: "Token revoked",
			RevokedAt: r.TokenRevokedAt, RevocationType: aip.RevocationToken, Claims: c}
	case stateless != nil:
		return nil, stateless
	case !r.Fresh:
		return nil, withClaims(invalid(aip.TokenErrReplayDetected, "Token already used (replay)"), c)
	}
	return c, nil
}

// statelessChecks are steps 1 to 4 of §5.4.3 (expiry, audience, policy
// hash, binding), which need no store: the first failure, nil when none.
func (v *Verifier) statelessChecks(c *Claims, now time.Time, st *verifierState) *ValidationError {
	// Step 1: expiry (and not-yet-valid).
	if now.After(c.ExpiresAt) {
		return withClaims(invalid(aip.TokenErrExpired, "Token expired"), c)
	}
	limit := now.Add(v.c.Leeway)
	if c.IssuedAt.After(limit) || c.NotBefore != nil && time.Unix(*c.NotBefore, 0).After(limit) {
		return withClaims(invalid(aip.TokenErrNotYetValid, "Token not yet valid (issued in the future)"), c)
	}

	// Step 2: audience.
	if !constantEqual(c.Audience, st.audience) {
		return &ValidationError{Code: aip.CodeAudienceMismatch, TokenError: aip.TokenErrAudienceMismatch,
			Reason: "Token not valid for this service", ExpectedAudience: st.audience, TokenAudience: c.Audience, Claims: c}
	}

	// Step 3: policy hash.
	if !constantEqual(c.PolicyHash, st.hash) {
		ok := false
		for _, r := range st.recent {
			if now.Before(r.until) && constantEqual(c.PolicyHash, r.hash) {
				ok = true
				break
			}
		}
		if !ok {
			return withClaims(invalid(aip.TokenErrPolicyChanged, "Policy changed since the token was issued"), c)
		}
	}

	// Step 4: binding.
	switch st.bindingMode {
	case policy.BindingProcess:
		if c.Binding.ProcessID != st.binding.ProcessID {
			return withClaims(invalid(aip.TokenErrSessionMismatch, "Token bound to another process"), c)
		}
	case policy.BindingStrict:
		if c.Binding != st.binding {
			return withClaims(invalid(aip.TokenErrBindingMismatch, "Token bound to another process, policy path or host"), c)
		}
	}

	return nil
}

func withClaims(e *ValidationError, c *Claims) *ValidationError {
	e.Claims = c
	return e
}

func constantEqual(a, b string) bool {
	return subtle.ConstantTimeCompare([]byte(a), []byte(b)) == 1
}
