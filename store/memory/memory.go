// Package memory implements store.NonceStore and store.RevocationStore in
// process memory, for a single agentid process (AIP v1alpha2 §3.7.9 type
// "memory"). Records expire after their TTL on the injected clock; expired
// records are pruned in a sweep at most once per sweep interval, amortised
// over the calls, and on demand with Prune.
//
// Memory stores are not shared between processes: with several replicas a
// token can be replayed once against each of them. Use a shared store there.
package memory

import (
	"context"
	"strings"
	"sync"
	"time"

	"github.com/agentid/agentid/store"
)

// DefaultSweepInterval is how often expired records are pruned by default.
const DefaultSweepInterval = time.Minute

// Options configures a memory store. The zero value is usable.
type Options struct {
	// Now is the clock; time.Now when nil. Tests inject a fake clock.
	Now func() time.Time
	// SweepInterval is the minimum time between two sweeps of expired
	// records; DefaultSweepInterval when zero.
	SweepInterval time.Duration
}

func (o Options) withDefaults() Options {
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.SweepInterval <= 0 {
		o.SweepInterval = DefaultSweepInterval
	}
	return o
}

// table is a map of key → expiry with amortised sweeping. Callers hold mu.
type table struct {
	mu        sync.Mutex
	opts      Options
	entries   map[string]entry
	nextSweep time.Time
	closed    bool
}

type entry struct {
	at      time.Time // when recorded (revocations: when revoked)
	expires time.Time
}

func newTable(o Options) *table {
	return &table{opts: o.withDefaults(), entries: make(map[string]entry)}
}

// maybeSweep removes expired entries when the sweep interval has elapsed.
func (t *table) maybeSweep(now time.Time) {
	if now.Before(t.nextSweep) {
		return
	}
	t.sweep(now)
	t.nextSweep = now.Add(t.opts.SweepInterval)
}

func (t *table) sweep(now time.Time) int {
	n := 0
	for k, e := range t.entries {
		if !now.Before(e.expires) {
			delete(t.entries, k)
			n++
		}
	}
	return n
}

func (t *table) prune() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.sweep(t.opts.Now())
}

func (t *table) len() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return len(t.entries)
}

func (t *table) close() error {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.closed = true
	t.entries = nil
	return nil
}

func checkArgs(ctx context.Context, key string, ttl time.Duration) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if key == "" {
		return store.ErrEmptyKey
	}
	if ttl <= 0 {
		return store.ErrInvalidTTL
	}
	return nil
}

// NonceStore is an in-memory store.NonceStore.
type NonceStore struct{ t *table }

var _ store.NonceStore = (*NonceStore)(nil)

// NewNonceStore returns an empty in-memory nonce store.
func NewNonceStore(o Options) *NonceStore { return &NonceStore{t: newTable(o)} }

// CheckAndRecord implements store.NonceStore. The check and the record
// happen under one lock, so exactly one concurrent caller sees fresh.
func (s *NonceStore) CheckAndRecord(ctx context.Context, nonce string, ttl time.Duration) (bool, error) {
	if err := checkArgs(ctx, nonce, ttl); err != nil {
		return false, err
	}
	t := s.t
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.closed {
		return false, store.ErrClosed
	}
	now := t.opts.Now()
	if e, ok := t.entries[nonce]; ok && now.Before(e.expires) {
		return false, nil
	}
	// Clone: the caller's string may be a slice of a larger buffer (a
	// token's payload), which the map would otherwise keep alive.
	t.entries[strings.Clone(nonce)] = entry{at: now, expires: now.Add(ttl)}
	t.maybeSweep(now)
	return true, nil
}

// Prune removes every expired record now and returns how many it removed.
func (s *NonceStore) Prune() int { return s.t.prune() }

// Len returns the number of records held, expired ones included until the
// next sweep.
func (s *NonceStore) Len() int { return s.t.len() }

// Close implements store.NonceStore.
func (s *NonceStore) Close() error { return s.t.close() }

// RevocationStore is an in-memory store.RevocationStore.
type RevocationStore struct {
	sessions *table
	tokens   *table
}

var _ store.RevocationStore = (*RevocationStore)(nil)

// NewRevocationStore returns an empty in-memory revocation store.
func NewRevocationStore(o Options) *RevocationStore {
	return &RevocationStore{sessions: newTable(o), tokens: newTable(o)}
}

func revoke(ctx context.Context, t *table, key string, at time.Time, ttl time.Duration) error {
	if err := checkArgs(ctx, key, ttl); err != nil {
		return err
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.closed {
		return store.ErrClosed
	}
	now := t.opts.Now()
	e := entry{at: at, expires: now.Add(ttl)}
	if old, ok := t.entries[key]; ok && now.Before(old.expires) {
		if old.at.Before(e.at) {
			e.at = old.at
		}
		if old.expires.After(e.expires) {
			e.expires = old.expires
		}
	}
	t.entries[strings.Clone(key)] = e
	t.maybeSweep(now)
	return nil
}

func revoked(ctx context.Context, t *table, key string) (time.Time, bool, error) {
	if err := ctx.Err(); err != nil {
		return time.Time{}, false, err
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.closed {
		return time.Time{}, false, store.ErrClosed
	}
	e, ok := t.entries[key]
	if !ok || !t.opts.Now().Before(e.expires) {
		return time.Time{}, false, nil
	}
	return e.at, true, nil
}

// RevokeSession implements store.RevocationStore.
func (s *RevocationStore) RevokeSession(ctx context.Context, id string, at time.Time, ttl time.Duration) error {
	return revoke(ctx, s.sessions, id, at, ttl)
}

// RevokeToken implements store.RevocationStore.
func (s *RevocationStore) RevokeToken(ctx context.Context, nonce string, at time.Time, ttl time.Duration) error {
	return revoke(ctx, s.tokens, nonce, at, ttl)
}

// SessionRevoked implements store.RevocationStore.
func (s *RevocationStore) SessionRevoked(ctx context.Context, id string) (time.Time, bool, error) {
	return revoked(ctx, s.sessions, id)
}

// TokenRevoked implements store.RevocationStore.
func (s *RevocationStore) TokenRevoked(ctx context.Context, nonce string) (time.Time, bool, error) {
	return revoked(ctx, s.tokens, nonce)
}

// Prune removes every expired record now and returns how many it removed.
func (s *RevocationStore) Prune() int { return s.sessions.prune() + s.tokens.prune() }

// Len returns the number of records held (sessions plus tokens).
func (s *RevocationStore) Len() int { return s.sessions.len() + s.tokens.len() }

// Close implements store.RevocationStore.
func (s *RevocationStore) Close() error {
	s.sessions.close()
	return s.tokens.close()
}
