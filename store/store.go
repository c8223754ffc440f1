// Package store defines the storage that identity-token validation shares
// across requests, processes and replicas: a NonceStore for replay
// prevention (AIP v1alpha2 §10.6.4) and a RevocationStore for revoked
// sessions and tokens (§5.6).
//
// Implementations live in sub-packages: store/memory (single process) here;
// Redis and PostgreSQL implementations follow the same interfaces. Every
// implementation must pass the contract suite in store/storetest, which is
// written once and run against each of them.
//
// Both interfaces take the TTL from the caller, so the store never needs to
// know the identity configuration. The caller computes it as
// nonce_window (or the token's remaining lifetime, whichever is longer) plus
// nonce_storage.clock_skew_tolerance.
package store

import (
	"context"
	"errors"
	"time"
)

// ErrClosed is returned by a store's methods after Close.
var ErrClosed = errors.New("store: closed")

// NonceStore records the nonces of tokens that have been accepted.
type NonceStore interface {
	// CheckAndRecord atomically records nonce for ttl and reports whether it
	// was fresh: true the first time a nonce is seen within its ttl, false
	// for every later call until the record expires. Exactly one of any
	// number of concurrent calls with the same nonce returns true, also
	// across processes for shared stores. ttl must be positive.
	//
	// An error means the store could not decide; the caller must treat the
	// token as not validated (fail closed), never as fresh.
	CheckAndRecord(ctx context.Context, nonce string, ttl time.Duration) (fresh bool, err error)
	// Close releases the store's resources. Later calls return ErrClosed.
	Close() error
}

// RevocationStore holds revoked session ids and revoked token nonces.
//
// Revocation is monotonic: once revoked, an id stays revoked until its ttl
// elapses; revoking it again keeps the earliest revocation time and extends
// the retention to the later of the two expiries.
type RevocationStore interface {
	// RevokeSession marks the session id revoked as of at, retained for ttl.
	RevokeSession(ctx context.Context, id string, at time.Time, ttl time.Duration) error
	// RevokeToken marks the token with this nonce revoked as of at,
	// retained for ttl.
	RevokeToken(ctx context.Context, nonce string, at time.Time, ttl time.Duration) error
	// SessionRevoked reports whether the session id is revoked and when.
	SessionRevoked(ctx context.Context, id string) (at time.Time, ok bool, err error)
	// TokenRevoked reports whether the token nonce is revoked and when.
	TokenRevoked(ctx context.Context, nonce string) (at time.Time, ok bool, err error)
	// Close releases the store's resources. Later calls return ErrClosed.
	Close() error
}

// ErrInvalidTTL is returned for a ttl that is not positive.
var ErrInvalidTTL = errors.New("store: ttl must be positive")

// ErrEmptyKey is returned for an empty nonce or id.
var ErrEmptyKey = errors.New("store: empty key")
