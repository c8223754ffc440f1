package identity_test

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/agentid/agentid/aip"
	"github.com/agentid/agentid/identity"
)

func TestRevocationFile(t *testing.T) {
	f := newFixture(t, "token_ttl: 5m")
	a, ca := f.token()
	b, cb := f.token()
	c, _ := f.token()
	path := filepath.Join(t.TempDir(), "revoked.json")
	w := f.m.RevocationFileWatcher(path)

	// Missing file: nothing revoked.
	if n, err := w.Poll(f.ctx); n != 0 || err != nil {
		t.Fatalf("missing file: %d %v", n, err)
	}
	os.WriteFile(path, []byte(`{"revoked_sessions":[],"revoked_tokens":["`+ca.Nonce+`"]}`), 0o600)
	if n, err := w.Poll(f.ctx); n != 1 || err != nil {
		t.Fatalf("poll: %d %v", n, err)
	}
	_, err := f.m.Validate(f.ctx, a)
	expectError(t, err, aip.CodeTokenRevoked, aip.TokenErrTokenRevoked)
	if _, err := f.m.Validate(f.ctx, b); err != nil {
		t.Fatalf("unrevoked token: %v", err)
	}

	// A whole session.
	os.WriteFile(path, []byte(`{"revoked_sessions":["`+cb.SessionID+`"],"revoked_tokens":["`+ca.Nonce+`"]}`), 0o600)
	if n, err := w.Poll(f.ctx); n != 1 || err != nil {
		t.Fatalf("poll: %d %v", n, err)
	}
	_, err = f.m.Validate(f.ctx, c)
	expectError(t, err, aip.CodeTokenRevoked, aip.TokenErrSessionRevoked)
	if ev := f.eventsOf(identity.EventRevocation); len(ev) != 2 {
		t.Fatalf("%d revocation events", len(ev))
	}

	// An invalid file changes nothing (fail closed: no un-revocation) and is reported.
	os.WriteFile(path, []byte(`{"revoked_sessions":["not-a-uuid"]}`), 0o600)
	if _, err := w.Poll(f.ctx); err == nil {
		t.Fatal("invalid file accepted")
	}
	os.WriteFile(path, []byte(`{"revoked_sessions":[],"revoked_sessions":[]}`), 0o600)
	if _, err := w.Poll(f.ctx); err == nil {
		t.Fatal("duplicate keys accepted")
	}
	os.WriteFile(path, []byte(`{"revoked":[]}`), 0o600)
	if _, err := w.Poll(f.ctx); err == nil {
		t.Fatal("unknown member accepted")
	}
	// Entries removed from the file stay revoked within their retention.
	os.WriteFile(path, []byte(`{}`), 0o600)
	if _, err := w.Poll(f.ctx); err != nil {
		t.Fatal(err)
	}
	d, _ := f.token()
	_, err = f.m.Validate(f.ctx, d)
	expectError(t, err, aip.CodeTokenRevoked, aip.TokenErrSessionRevoked)
}

func TestRevocationFileKeepsListedEntriesAlive(t *testing.T) {
	f := newFixture(t, "token_ttl: 5m")
	_, c := f.token()
	path := filepath.Join(t.TempDir(), "revoked.json")
	os.WriteFile(path, []byte(`{"revoked_sessions":["`+c.SessionID+`"]}`), 0o600)
	w := f.m.RevocationFileWatcher(path)
	w.SessionTTL = time.Hour
	for range 5 { // 5 hours, polled every 20 minutes: still revoked
		for range 3 {
			f.clock.Advance(20 * time.Minute)
			if _, err := w.Poll(f.ctx); err != nil {
				t.Fatal(err)
			}
		}
	}
	tok, _ := f.token()
	_, err := f.m.Validate(f.ctx, tok)
	ve := expectError(t, err, aip.CodeTokenRevoked, aip.TokenErrSessionRevoked)
	if ve.RevokedAt.After(f.clock.Now().Add(-4 * time.Hour)) {
		t.Errorf("revoked_at moved with re-application: %v", ve.RevokedAt)
	}
}
