package store

import (
	"context"
	"time"
)

// Registry records the sessions and tokens a server issued (or accepted),
// for their retention time. POST /v1/revoke consults it to answer 404 for an
// id that was never issued (AIP v1alpha2 §6.5), rather than storing a
// revocation for an id nobody holds.
//
// Recording an id again keeps the later of the two expiries, so a shorter
// retention passed by one replica never shortens another's.
type Registry interface {
	// RecordSession records that the session id was issued, for ttl.
	RecordSession(ctx context.Context, id string, ttl time.Duration) error
	// RecordToken records that the token with this nonce was issued or
	// accepted, for ttl.
	RecordToken(ctx context.Context, nonce string, ttl time.Duration) error
	// SessionKnown reports whether the session id is recorded and unexpired.
	SessionKnown(ctx context.Context, id string) (bool, error)
	// TokenKnown reports whether the token nonce is recorded and unexpired.
	TokenKnown(ctx context.Context, nonce string) (bool, error)
	// Close releases the store's resources. Later calls return ErrClosed.
	Close() error
}

// Backend is one store holding all four kinds of shared state through one
// connection pool, as `agentid serve` replicas use it. Each kind lives in
// its own namespace: the same string may be a nonce, a revoked session, an
// issued token and a rate-limit key at once without interference.
type Backend interface {
	NonceStore
	RevocationStore
	RateLimiter
	Registry
	// Ping reports whether the store can be reached now, for health checks.
	Ping(ctx context.Context) error
	// Close releases the store's resources. Later calls return ErrClosed.
	Close() error
}

// TokenChecker is implemented by stores that hold both revocations and
// nonces and can validate a token's state in one round trip: the identity
// verifier uses it when its nonce and revocation stores are one such store,
// so that a validation costs one round trip instead of three.
type TokenChecker interface {
	// CheckToken reports whether session and the token nonce are revoked
	// and, when record is set and neither is, atomically records nonce for
	// ttl as CheckAndRecord does (TokenCheck.Fresh). An error means the
	// store could not decide.
	CheckToken(ctx context.Context, session, nonce string, record bool, ttl time.Duration) (TokenCheck, error)
}

// TokenCheck is what CheckToken found.
type TokenCheck struct {
	SessionRevoked   bool
	SessionRevokedAt time.Time
	TokenRevoked     bool
	TokenRevokedAt   time.Time
	// Fresh is set when the nonce was recorded now (record set, nothing
	// revoked, the nonce not seen within its ttl).
	Fresh bool
}
