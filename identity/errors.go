package identity

import (
	"errors"
	"fmt"
	"time"

	"github.com/agentid/agentid/aip"
)

// ValidationError is a token that failed validation. Code is the AIP error
// code to answer with; TokenError the token_error value.
//
//	-32008  no token, or an empty one (TokenError "")
//	-32011  session_revoked or token_revoked, with RevokedAt and RevocationType
//	-32012  audience_mismatch, with ExpectedAudience and TokenAudience
//	-32009  everything else
type ValidationError struct {
	Code       int
	TokenError string
	// Reason is a short human-readable explanation, safe to send to the
	// client: it never contains key material or the token.
	Reason string

	RevokedAt      time.Time // -32011 only
	RevocationType string    // -32011 only: "session" or "token"

	ExpectedAudience string // -32012 only
	TokenAudience    string // -32012 only; log it, but consider leaving it out of client responses (§7.2)

	// Claims are the token's claims when its signature verified (so that
	// audit records can name the session and token), nil otherwise.
	Claims *Claims

	cause error
}

func (e *ValidationError) Error() string {
	if e.TokenError == "" {
		return fmt.Sprintf("identity: %s (%d)", e.Reason, e.Code)
	}
	return fmt.Sprintf("identity: %s: %s (%d)", e.TokenError, e.Reason, e.Code)
}

// Unwrap returns the underlying cause, if any.
func (e *ValidationError) Unwrap() error { return e.cause }

// Message returns the AIP error message for e.Code (§7.2).
func (e *ValidationError) Message() string {
	switch e.Code {
	case aip.CodeTokenRequired:
		return "Token required"
	case aip.CodeTokenRevoked:
		return "Token revoked"
	case aip.CodeAudienceMismatch:
		return "Audience mismatch"
	default:
		return "Token invalid"
	}
}

// Data returns the JSON-RPC error data of §7.2 for a call to tool ("" to
// omit it). The token's audience is included for -32012 only when
// includeTokenAudience is set (§7.2 lets responses omit it).
func (e *ValidationError) Data(tool string, includeTokenAudience bool) map[string]any {
	d := map[string]any{"reason": e.Reason}
	if tool != "" {
		d["tool"] = tool
	}
	if e.TokenError != "" {
		d["token_error"] = e.TokenError
	}
	switch e.Code {
	case aip.CodeTokenRevoked:
		d["revoked_at"] = FormatTime(e.RevokedAt)
		d["revocation_type"] = e.RevocationType
	case aip.CodeAudienceMismatch:
		d["expected_audience"] = e.ExpectedAudience
		if includeTokenAudience {
			d["token_audience"] = e.TokenAudience
		}
	}
	return d
}

func invalid(tokenErr, reason string) *ValidationError {
	return &ValidationError{Code: aip.CodeTokenInvalid, TokenError: tokenErr, Reason: reason}
}

func malformed(format string, args ...any) *ValidationError {
	return invalid(aip.TokenErrMalformed, fmt.Sprintf(format, args...))
}

// ErrStoreUnavailable: the policy configures a store this build does not
// have (identity.nonce_storage.type redis or postgres). NewManager refuses
// to start with it rather than fall back to the in-memory store: instances
// configured to share one store would each accept the same token once.
var ErrStoreUnavailable = errors.New("identity: configured store is not available in this build")

// StoreError is returned by validation when the nonce or revocation store
// could not answer. It is not a verdict on the token: the caller applies
// its failover policy (fail closed: -32001 validation_unavailable).
type StoreError struct {
	Op  string // "nonce", "revocation"
	Err error
}

func (e *StoreError) Error() string { return "identity: " + e.Op + " store: " + e.Err.Error() }
func (e *StoreError) Unwrap() error { return e.Err }

// AsValidationError returns err as a *ValidationError, or nil.
func AsValidationError(err error) *ValidationError {
	var ve *ValidationError
	if errors.As(err, &ve) {
		return ve
	}
	return nil
}
