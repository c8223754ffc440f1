package identity_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/agentid/agentid/aip"
	"github.com/agentid/agentid/identity"
	"github.com/agentid/agentid/store/memory"
)

// Two Managers with the same keys and stores stand for two replicas of a
// validation server.
func TestTokensIssuedForRemoteAgentsValidateOnEveryReplicaOnce(t *testing.T) {
	ctx := context.Background()
	clock := newClock()
	p := writePolicy(t, t.TempDir(), "fleet", "session_binding: strict")
	keys, err := identity.GenerateKeySet(identity.AlgES256, identity.KeySetOptions{Now: clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	nonces := memory.NewNonceStore(memory.Options{Now: clock.Now})
	revs := memory.NewRevocationStore(memory.Options{Now: clock.Now})
	replica := func(pid int) *identity.Manager {
		b := identity.Binding{ProcessID: pid, Hostname: "replica"}
		m, err := identity.NewManager(identity.Config{Policy: p, Keys: keys, Nonces: nonces, Revocations: revs,
			Now: clock.Now, Binding: &b, RemoteAgents: true})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { m.Close() })
		return m
	}
	a, b := replica(100), replica(200)

	agent := identity.Binding{ProcessID: 4242, Hostname: "agent-host", PolicyPath: "/agent/policy.yaml"}
	tok, claims, err := a.IssueFor(ctx, "", agent)
	if err != nil {
		t.Fatal(err)
	}
	if claims.Binding != agent || claims.SessionID == "" {
		t.Fatalf("claims %+v: want the agent's binding and a new session", claims)
	}
	if _, err := b.Validate(ctx, tok); err != nil {
		t.Fatalf("another replica refuses the token: %v", err)
	}
	expectError(t, func() error { _, err := a.Validate(ctx, tok); return err }(), aip.CodeTokenInvalid, aip.TokenErrReplayDetected)

	// The same session continues; revoking it on one replica ends it on all.
	tok2, c2, err := b.IssueFor(ctx, claims.SessionID, agent)
	if err != nil || c2.SessionID != claims.SessionID {
		t.Fatalf("continue session: %v %+v", err, c2)
	}
	if err := a.RevokeSession(ctx, claims.SessionID, "test"); err != nil {
		t.Fatal(err)
	}
	expectError(t, func() error { _, err := b.Validate(ctx, tok2); return err }(), aip.CodeTokenRevoked, aip.TokenErrSessionRevoked)

	if _, _, err := b.IssueFor(ctx, "not-a-uuid", agent); err == nil {
		t.Fatal("a session id that is not a UUID was accepted")
	}
}

func TestIssueForNeedsRemoteAgents(t *testing.T) {
	f := newFixture(t, "")
	if _, _, err := f.m.IssueFor(context.Background(), "", identity.Binding{}); err == nil {
		t.Fatal("a local Manager issued a token for another process")
	}
}

// downRevocations cannot answer.
type downRevocations struct{}

func (downRevocations) RevokeSession(context.Context, string, time.Time, time.Duration) error {
	return errors.New("down")
}
func (downRevocations) RevokeToken(context.Context, string, time.Time, time.Duration) error {
	return errors.New("down")
}
func (downRevocations) SessionRevoked(context.Context, string) (time.Time, bool, error) {
	return time.Time{}, false, errors.New("down")
}
func (downRevocations) TokenRevoked(context.Context, string) (time.Time, bool, error) {
	return time.Time{}, false, errors.New("down")
}
func (downRevocations) Close() error { return nil }

// With the revocation store down, a token that is invalid for a reason no
// store decides is refused for that reason, not reported as a store
// failure (which fail_open would let through).
func TestATokenInvalidWithoutAStoreIsRefusedWhileTheStoreIsDown(t *testing.T) {
	ctx := context.Background()
	clock := newClock()
	p := writePolicy(t, t.TempDir(), "down", "token_ttl: 5m")
	keys, err := identity.GenerateKeySet(identity.AlgES256, identity.KeySetOptions{Now: clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	m, err := identity.NewManager(identity.Config{Policy: p, Keys: keys, Revocations: downRevocations{}, Now: clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	valid, _, err := m.Issue(ctx)
	if err != nil {
		t.Fatal(err)
	}
	expired, _, _ := m.Issue(ctx)
	_, err = m.Validate(ctx, valid)
	var se *identity.StoreError
	if !errors.As(err, &se) {
		t.Fatalf("a valid token with the store down: %v, want a StoreError", err)
	}
	clock.Advance(time.Hour)
	expectError(t, func() error { _, err := m.Validate(ctx, expired); return err }(), aip.CodeTokenInvalid, aip.TokenErrExpired)
}
