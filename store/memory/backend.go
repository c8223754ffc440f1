package memory

import (
	"context"
	"strings"
	"time"

	"github.com/agentid/agentid/store"
)

// Registry is an in-memory store.Registry.
type Registry struct {
	sessions *table
	tokens   *table
}

var _ store.Registry = (*Registry)(nil)

// NewRegistry returns an empty in-memory registry.
func NewRegistry(o Options) *Registry {
	return &Registry{sessions: newTable(o), tokens: newTable(o)}
}

func record(ctx context.Context, t *table, key string, ttl time.Duration) error {
	if err := checkArgs(ctx, key, ttl); err != nil {
		return err
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.closed {
		return store.ErrClosed
	}
	now := t.opts.Now()
	e := entry{at: now, expires: now.Add(ttl)}
	if old, ok := t.entries[key]; ok && old.expires.After(e.expires) {
		e.expires = old.expires
	}
	t.entries[strings.Clone(key)] = e
	t.maybeSweep(now)
	return nil
}

func known(ctx context.Context, t *table, key string) (bool, error) {
	_, ok, err := revoked(ctx, t, key)
	return ok, err
}

// RecordSession implements store.Registry.
func (r *Registry) RecordSession(ctx context.Context, id string, ttl time.Duration) error {
	return record(ctx, r.sessions, id, ttl)
}

// RecordToken implements store.Registry.
func (r *Registry) RecordToken(ctx context.Context, nonce string, ttl time.Duration) error {
	return record(ctx, r.tokens, nonce, ttl)
}

// SessionKnown implements store.Registry.
func (r *Registry) SessionKnown(ctx context.Context, id string) (bool, error) {
	return known(ctx, r.sessions, id)
}

// TokenKnown implements store.Registry.
func (r *Registry) TokenKnown(ctx context.Context, nonce string) (bool, error) {
	return known(ctx, r.tokens, nonce)
}

// Prune removes every expired record now and returns how many it removed.
func (r *Registry) Prune() int { return r.sessions.prune() + r.tokens.prune() }

// Len returns the number of records held (sessions plus tokens).
func (r *Registry) Len() int { return r.sessions.len() + r.tokens.len() }

// Close implements store.Registry.
func (r *Registry) Close() error {
	r.sessions.close()
	return r.tokens.close()
}

// Backend is an in-memory store.Backend: the four stores of this package
// behind one value, for a single process (and for tests of code that takes
// a store.Backend).
type Backend struct {
	*NonceStore
	*RevocationStore
	*RateLimiter
	*Registry
}

var _ store.Backend = (*Backend)(nil)

// New returns an empty in-memory backend.
func New(o Options) *Backend {
	return &Backend{
		NonceStore:      NewNonceStore(o),
		RevocationStore: NewRevocationStore(o),
		RateLimiter:     NewRateLimiter(),
		Registry:        NewRegistry(o),
	}
}

// Ping implements store.Backend: memory is always reachable until Close.
func (b *Backend) Ping(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	t := b.NonceStore.t
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.closed {
		return store.ErrClosed
	}
	return nil
}

// Close implements store.Backend, closing the four stores.
func (b *Backend) Close() error {
	b.NonceStore.Close()
	b.RevocationStore.Close()
	b.RateLimiter.Close()
	return b.Registry.Close()
}

// CheckToken implements store.TokenChecker with the separate calls it
// stands for: in process, there is no round trip to save.
func (b *Backend) CheckToken(ctx context.Context, session, nonce string, record bool, ttl time.Duration) (store.TokenCheck, error) {
	var tc store.TokenCheck
	var err error
	if tc.SessionRevokedAt, tc.SessionRevoked, err = b.SessionRevoked(ctx, session); err != nil {
		return store.TokenCheck{}, err
	}
	if tc.TokenRevokedAt, tc.TokenRevoked, err = b.TokenRevoked(ctx, nonce); err != nil {
		return store.TokenCheck{}, err
	}
	if record && !tc.SessionRevoked && !tc.TokenRevoked {
		if tc.Fresh, err = b.CheckAndRecord(ctx, nonce, ttl); err != nil {
			return store.TokenCheck{}, err
		}
	}
	return tc, nil
}
