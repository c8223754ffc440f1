// Package identity issues and validates AIP v1alpha2 identity tokens
// (spec §5): signed, session-bound, rotating, replay-proof JWTs.
//
// # Tokens
//
// A token is a compact JWS (RFC 7515) with header
// {"alg":…,"kid":<RFC 7638 thumbprint>,"typ":"aip+jwt"} and the claims of
// DESIGN decision 7 (see Claims): the JWT claims iss ("agentid"), sub
// (= agent_id), aud, iat, exp, jti (= nonce) and the AIP claims version,
// policy_hash, session_id (UUIDv4), agent_id, issued_at, expires_at (RFC 3339,
// milliseconds, UTC), nonce (16 random bytes, hex) and binding. Signing uses
// go-jose; ES256 is the default, EdDSA, ES384 and RS256 are allowed, and
// HS256 only for an explicitly configured local key set with the server
// disabled.
//
// Verification does not go through a general-purpose JOSE parser: a small,
// strict verifier splits the token, rejects anything unexpected in the
// header (alg none or outside the allowlist, an alg not bound to the key the
// kid names, HS* on an asymmetric key, jku/jwk/x5u/x5c, any crit), checks the
// signature with the standard library, and decodes the claims with a
// duplicate-key check and exact types. FuzzValidate checks that whatever it
// accepts, go-jose accepts too; the interop test checks both directions
// against npm jose.
//
// # Using it in a proxy
//
// One Manager per loaded policy owns the session:
//
//	m, err := identity.NewManager(identity.Config{Policy: p, OnEvent: audit})
//	tok, _, err := m.Issue(ctx)       // a single-use token for the client's next call
//	claims, err := m.Validate(ctx, tok)
//	if ve := identity.AsValidationError(err); ve != nil {
//		// answer with ve.Code, ve.Message() and ve.Data(tool, false)
//	}
//	var se *identity.StoreError // a store could not answer: apply failover_mode
//
// Issue rotates the session's current token on the clock (rotation_interval,
// expiry, policy change; TOKEN_ROTATED) and bounds every token it gives out
// by the current token's expiry; CurrentToken shows the current token.
//
// Policy reload: m.UpdatePolicy(p2, hash2). SIGUSR1: m.EndSession(ctx).
// Revocation file: go m.RevocationFileWatcher(path).Run(ctx, interval, onErr).
// JWKS endpoint: m.JWKS(). A validation server that is not the issuing
// process uses NewVerifier with a JWKS (ParseJWKS, LoadJWKS) instead of a
// Manager; an offline checker uses NewOfflineVerifier. The signing key of a
// policy comes from LoadSigningKeys.
//
// # Validation order
//
// Validate first checks the token itself (size ≤ 8 KiB, shape, header,
// key, signature, strict claims), then follows §5.4.3 exactly (DESIGN
// decision 8): revocation (session, then token) → expiry → audience →
// policy hash (with policy_transition_grace) → binding → atomic nonce
// check-and-record. Errors: missing/empty → -32008; revoked → -32011;
// audience → -32012; everything else → -32009 with a token_error. Tokens are
// single-use: a successful Validate consumes the nonce.
//
// # Time
//
// Every time-dependent behaviour (expiry, rotation, grace, key rotation,
// store expiry) follows the injected clock (Config.Now), so tests never
// sleep.
package identity
