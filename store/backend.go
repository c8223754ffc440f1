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
