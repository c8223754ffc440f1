// Package store defines the state that enforcement shares across requests,
// processes and replicas: a NonceStore for replay prevention (AIP v1alpha2
// §10.6.4), a RevocationStore for revoked sessions and tokens (§5.6), a
// RateLimiter for rate-limit counters (§3.5.2), and a Registry of issued
// sessions and tokens (§6.5). A Backend is all four behind one connection
// pool.
//
// Implementations live in sub-packages: store/memory (single process),
// store/redis and store/postgres (shared by replicas). Every implementation
// must pass the contract suite in store/storetest, which is written once and
// run against each of them.
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

// RateLimiter counts calls against rate limits ("N per period", AIP
// §3.5.2), shared by every process that uses the same store, so that a
// limit of 10/minute is ten per minute for a whole fleet of replicas.
type RateLimiter interface {
	// Allow records one call under key at now and reports whether it is
	// within limit calls in any window of length per. A refused call is not
	// recorded, so a client that keeps calling while limited is not locked
	// out forever. Time that goes backwards counts as the latest time seen
	// for key. Exactly limit of any number of concurrent calls within one
	// window are allowed, also across processes for shared stores. limit
	// and per must be positive; a key used with a different limit or per
	// starts counting afresh.
	//
	// An error means the store could not decide; the caller applies its
	// failover mode, never treating the call as allowed by default.
	Allow(ctx context.Context, key string, limit int, per time.Duration, now time.Time) (bool, error)
	// Close releases the store's resources. Later calls return ErrClosed.
	Close() error
}

// ErrInvalidLimit is returned for a limit or period that is not positive.
var ErrInvalidLimit = errors.New("store: rate limit and period must be positive")

// ErrInvalidTTL is returned for a ttl that is not positive.
var ErrInvalidTTL = errors.New("store: ttl must be positive")

// ErrEmptyKey is returned for an empty nonce or id.
var ErrEmptyKey = errors.New("store: empty key")

// CheckKey validates a key and ttl as every store's methods must: a
// non-empty key, a positive ttl. The error is ErrEmptyKey or ErrInvalidTTL.
func CheckKey(key string, ttl time.Duration) error {
	if key == "" {
		return ErrEmptyKey
	}
	if ttl <= 0 {
		return ErrInvalidTTL
	}
	return nil
}

// CheckLimit validates a rate limit's arguments: a non-empty key, a
// positive limit and period. The error is ErrEmptyKey or ErrInvalidLimit.
func CheckLimit(key string, limit int, per time.Duration) error {
	if key == "" {
		return ErrEmptyKey
	}
	if limit <= 0 || per <= 0 {
		return ErrInvalidLimit
	}
	return nil
}
