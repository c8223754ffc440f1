package identity

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"sync"
	"time"

	"github.com/agentid/agentid/aip"
	"github.com/agentid/agentid/jsonrpc"
	"github.com/agentid/agentid/store"
)

// RevocationList is the revocation file format of §5.6.2.
type RevocationList struct {
	RevokedSessions []string `json:"revoked_sessions"`
	RevokedTokens   []string `json:"revoked_tokens"` // nonces
}

// maxRevocationFile bounds the revocation file (about 100,000 entries).
const maxRevocationFile = 8 << 20

// ParseRevocationList strictly decodes a revocation file: a JSON object
// with optional "revoked_sessions" (UUIDs) and "revoked_tokens" (32-hex
// nonces) arrays and no other members.
func ParseRevocationList(data []byte) (*RevocationList, error) {
	if len(data) > maxRevocationFile {
		return nil, fmt.Errorf("revocation file larger than %d bytes", maxRevocationFile)
	}
	if len(bytes.TrimSpace(data)) == 0 {
		return &RevocationList{}, nil
	}
	if err := jsonrpc.CheckStrict(data); err != nil {
		return nil, fmt.Errorf("revocation file: %v", err)
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	var l RevocationList
	if err := dec.Decode(&l); err != nil {
		return nil, fmt.Errorf("revocation file: %w", err)
	}
	for _, s := range l.RevokedSessions {
		if !isUUID(s) {
			return nil, fmt.Errorf("revocation file: revoked_sessions: %q is not a lowercase UUID", clip(s))
		}
	}
	for _, n := range l.RevokedTokens {
		if !isLowerHex(n, 32) {
			return nil, fmt.Errorf("revocation file: revoked_tokens: %q is not a 32-hex nonce", clip(n))
		}
	}
	return &l, nil
}

// RevocationFileWatcher polls a revocation file (§5.6.4) and copies its
// entries into a RevocationStore. Revocation is monotonic: removing an
// entry from the file does not un-revoke it before its retention ends.
// Entries that stay in the file are re-applied on every change and at least
// once per retention/2, so they never expire while listed. A missing file
// means "nothing revoked"; an unreadable or invalid file is reported by
// Poll and leaves the store unchanged (fail closed: nothing is un-revoked).
type RevocationFileWatcher struct {
	Path  string
	Store store.RevocationStore
	// SessionTTL and TokenTTL are the retentions applied to entries
	// (DefaultSessionRetention and TokenRetention, typically).
	SessionTTL, TokenTTL time.Duration
	// Now is the clock; time.Now when nil.
	Now func() time.Time
	// OnRevoke is called for each entry seen for the first time. Optional.
	OnRevoke func(kind, id string)

	mu        sync.Mutex
	lastSum   [32]byte
	lastApply time.Time
	firstSeen map[string]time.Time
}

// Poll reads the file once and applies it. It returns the number of
// entries seen for the first time.
func (w *RevocationFileWatcher) Poll(ctx context.Context) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	now := time.Now()
	if w.Now != nil {
		now = w.Now()
	}
	if w.firstSeen == nil {
		w.firstSeen = map[string]time.Time{}
	}
	if w.SessionTTL <= 0 || w.TokenTTL <= 0 {
		return 0, errors.New("identity: revocation watcher needs positive SessionTTL and TokenTTL")
	}
	f, err := os.Open(w.Path)
	if errors.Is(err, os.ErrNotExist) {
		return 0, nil
	}
	if err != nil {
		return 0, err
	}
	data, err := io.ReadAll(io.LimitReader(f, maxRevocationFile+1))
	f.Close()
	if err != nil {
		return 0, err
	}
	sum := sha256.Sum256(data)
	refresh := min(w.SessionTTL, w.TokenTTL) / 2
	if sum == w.lastSum && now.Sub(w.lastApply) < refresh {
		return 0, nil
	}
	l, err := ParseRevocationList(data)
	if err != nil {
		return 0, err
	}
	added := 0
	apply := func(kind, id string, ttl time.Duration, revoke func(context.Context, string, time.Time, time.Duration) error) error {
		key := kind + ":" + id
		at, ok := w.firstSeen[key]
		if !ok {
			at = now
			w.firstSeen[key] = at
			added++
			if w.OnRevoke != nil {
				w.OnRevoke(kind, id)
			}
		}
		return revoke(ctx, id, at, ttl)
	}
	for _, s := range l.RevokedSessions {
		if err := apply(aip.RevocationSession, s, w.SessionTTL, w.Store.RevokeSession); err != nil {
			return added, &StoreError{Op: "revocation", Err: err}
		}
	}
	for _, n := range l.RevokedTokens {
		if err := apply(aip.RevocationToken, n, w.TokenTTL, w.Store.RevokeToken); err != nil {
			return added, &StoreError{Op: "revocation", Err: err}
		}
	}
	w.lastSum, w.lastApply = sum, now
	return added, nil
}

// Run polls every interval until ctx is done, reporting errors to onError
// (which may be nil).
func (w *RevocationFileWatcher) Run(ctx context.Context, interval time.Duration, onError func(error)) {
	if interval <= 0 {
		interval = 5 * time.Second
	}
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		if _, err := w.Poll(ctx); err != nil && onError != nil {
			onError(err)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// RevocationFileWatcher returns a watcher that feeds revocations from path
// into the Manager's revocation store with the Manager's retentions and
// clock, reporting REVOCATION events for new entries.
func (m *Manager) RevocationFileWatcher(path string) *RevocationFileWatcher {
	m.mu.Lock()
	tokTTL := TokenRetention(m.idc)
	m.mu.Unlock()
	return &RevocationFileWatcher{
		Path: path, Store: m.revs, SessionTTL: m.cfg.SessionRetention, TokenTTL: tokTTL, Now: m.cfg.Now,
		OnRevoke: func(kind, id string) {
			ev := Event{Type: EventRevocation, Time: m.cfg.Now(), RevocationType: kind, Reason: "revocation file"}
			if kind == aip.RevocationSession {
				ev.SessionID = id
			} else {
				ev.TokenID = id
			}
			m.emit([]Event{ev})
		},
	}
}
