package identity_test

import (
	"context"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/agentid/agentid/aip"
	"github.com/agentid/agentid/identity"
	"github.com/agentid/agentid/policy"
)

func TestIssuedTokenFormat(t *testing.T) {
	f := newFixture(t, "token_ttl: 10m")
	tok, err := f.m.Token(f.ctx)
	if err != nil {
		t.Fatal(err)
	}
	h := headerOf(t, tok)
	if h["typ"] != "aip+jwt" || h["alg"] != "ES256" || h["kid"] != f.m.Keys().ActiveKID() || len(h) != 3 {
		t.Fatalf("header %v", h)
	}
	p := payloadOf(t, tok)
	want := []string{"iss", "sub", "aud", "iat", "exp", "jti", "version", "policy_hash", "session_id", "agent_id", "issued_at", "expires_at", "nonce", "binding"}
	if len(p) != len(want) {
		t.Errorf("claims %v", p)
	}
	for _, k := range want {
		if _, ok := p[k]; !ok {
			t.Errorf("claim %s missing", k)
		}
	}
	c, err := identity.ParseUnverified(tok)
	if err != nil {
		t.Fatal(err)
	}
	hash, _ := f.pol.Hash()
	switch {
	case c.Version != "aip/v1alpha2": // identity-010
		t.Errorf("version %q", c.Version)
	case c.AgentID != "test-agent" || c.Subject != "test-agent": // identity-011
		t.Errorf("agent_id %q sub %q", c.AgentID, c.Subject)
	case !regexp.MustCompile(`^[0-9a-f]{32}$`).MatchString(c.Nonce) || c.JWTID != c.Nonce: // identity-012
		t.Errorf("nonce %q jti %q", c.Nonce, c.JWTID)
	case c.ExpiresAt.Sub(c.IssuedAt) != 10*time.Minute: // identity-020
		t.Errorf("ttl %v", c.ExpiresAt.Sub(c.IssuedAt))
	case c.PolicyHash != hash: // identity-040
		t.Errorf("policy_hash %q", c.PolicyHash)
	case c.Audience != "test-agent": // default audience = metadata.name
		t.Errorf("aud %q", c.Audience)
	case c.Issuer != identity.DefaultIssuer:
		t.Errorf("iss %q", c.Issuer)
	case c.SessionID != f.m.SessionID() || !regexp.MustCompile(`^[0-9a-f-]{36}$`).MatchString(c.SessionID) || c.SessionID[14] != '4':
		t.Errorf("session_id %q", c.SessionID)
	case c.Binding.ProcessID <= 0 || c.Binding.PolicyPath != f.pol.Path || c.Binding.Hostname == "":
		t.Errorf("binding %+v", c.Binding)
	}
	// Times: RFC 3339, milliseconds, UTC Z.
	ts := regexp.MustCompile(`^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$`)
	if !ts.MatchString(p["issued_at"].(string)) || !ts.MatchString(p["expires_at"].(string)) {
		t.Errorf("times %v %v", p["issued_at"], p["expires_at"])
	}
	// Binding always carries every field (decision 9).
	b := p["binding"].(map[string]any)
	for _, k := range []string{"process_id", "policy_path", "hostname", "container_id", "pod_uid"} {
		if _, ok := b[k]; !ok {
			t.Errorf("binding.%s missing", k)
		}
	}
	if _, err := f.m.Validate(f.ctx, tok); err != nil {
		t.Fatalf("Validate own token: %v", err)
	}
}

func TestDefaultTTLAndUniqueNonces(t *testing.T) {
	f := newFixture(t, "")
	seen := map[string]bool{}
	for range 50 {
		_, c := f.token()
		if c.ExpiresAt.Sub(c.IssuedAt) != 5*time.Minute { // identity-021
			t.Fatalf("default ttl %v", c.ExpiresAt.Sub(c.IssuedAt))
		}
		if seen[c.Nonce] {
			t.Fatal("nonce repeated")
		}
		seen[c.Nonce] = true
	}
}

func TestTokenLazyAndRotation(t *testing.T) {
	f := newFixture(t, "token_ttl: 5m\nrotation_interval: 4m")
	if n := len(f.eventsOf(identity.EventTokenIssued)); n != 0 {
		t.Fatalf("%d tokens issued before first use", n)
	}
	t1, err := f.m.Token(f.ctx)
	if err != nil {
		t.Fatal(err)
	}
	f.clock.Advance(3*time.Minute + 59*time.Second)
	if t2, _ := f.m.Token(f.ctx); t2 != t1 {
		t.Fatal("rotated before rotation_interval")
	}
	f.clock.Advance(time.Second) // identity-030: after 4m a different token, same session
	t3, c3, _ := f.m.CurrentToken(f.ctx)
	if t3 == t1 {
		t.Fatal("not rotated after rotation_interval")
	}
	c1, _ := identity.ParseUnverified(t1)
	if c3.SessionID != c1.SessionID || c3.Nonce == c1.Nonce {
		t.Fatalf("rotation changed the session or kept the nonce")
	}
	issued, rotated := f.eventsOf(identity.EventTokenIssued), f.eventsOf(identity.EventTokenRotated)
	if len(issued) != 1 || len(rotated) != 1 {
		t.Fatalf("events: %d issued, %d rotated", len(issued), len(rotated))
	}
	r := rotated[0]
	if r.OldTokenID != c1.Nonce || r.NewTokenID != c3.Nonce || r.SessionID != c1.SessionID || !r.ExpiresAt.Equal(c3.ExpiresAt) || r.Reason != "rotation_interval" {
		t.Fatalf("rotated event %+v", r)
	}
	if issued[0].TokenID != c1.Nonce || issued[0].PolicyHash != c1.PolicyHash || issued[0].SessionID != c1.SessionID {
		t.Fatalf("issued event %+v", issued[0])
	}
	// The old token stays valid until it expires (§5.4.2).
	if _, err := f.m.Validate(f.ctx, t1); err != nil {
		t.Fatalf("old token after rotation: %v", err)
	}
}

func TestRotationShortTTLKeepsSession(t *testing.T) {
	// identity-031: ttl 1m, rotation 30s; after 35s the session is unchanged.
	f := newFixture(t, "token_ttl: 1m\nrotation_interval: 30s")
	_, c1, _ := f.m.CurrentToken(f.ctx)
	f.clock.Advance(35 * time.Second)
	_, c2, _ := f.m.CurrentToken(f.ctx)
	if c1.Nonce == c2.Nonce || c1.SessionID != c2.SessionID {
		t.Fatal("want a new token in the same session")
	}
}

func TestRotationDisabled(t *testing.T) {
	f := newFixture(t, "token_ttl: 5m\nrotation_interval: 0s")
	t1, _ := f.m.Token(f.ctx)
	f.clock.Advance(4*time.Minute + 59*time.Second)
	if t2, _ := f.m.Token(f.ctx); t2 != t1 {
		t.Fatal("rotation_interval 0s rotated")
	}
	f.clock.Advance(2 * time.Second) // expired: replaced
	t3, _ := f.m.Token(f.ctx)
	if t3 == t1 {
		t.Fatal("expired token returned")
	}
	if ev := f.eventsOf(identity.EventTokenRotated); len(ev) != 1 || ev[0].Reason != "expired" {
		t.Fatalf("events %+v", ev)
	}
}

func TestDefaultRotationShortTTL(t *testing.T) {
	// Decision 10: rotation unset with ttl 1s → 0.8 s (validation-010's policy loads).
	f := newFixture(t, "token_ttl: 1s")
	if got := f.m.IdentityConfig().RotationInterval; got != 800*time.Millisecond {
		t.Fatalf("rotation %v", got)
	}
	tok, _ := f.m.Token(f.ctx)
	f.clock.Advance(2 * time.Second)
	_, err := f.m.Validate(f.ctx, tok)
	expectError(t, err, aip.CodeTokenInvalid, aip.TokenErrExpired)
}

func newPolicyVersion(t *testing.T, f *fixture, identityBlock, extra string) (*policy.Policy, string) {
	t.Helper()
	// Same file path, new content (a hot reload).
	p := writePolicy(t, dirOf(f.pol.Path), "test-agent", identityBlock, extra)
	h, err := p.Hash()
	if err != nil {
		t.Fatal(err)
	}
	return p, h
}

func dirOf(p string) string { return p[:strings.LastIndex(p, "/")] }

func TestPolicyChangeWithoutGrace(t *testing.T) {
	// validation-020: a token issued under v1 fails under v2 with policy_changed.
	f := newFixture(t, "token_ttl: 5m")
	old, _ := f.token()
	t1, _ := f.m.Token(f.ctx)
	p2, h2 := newPolicyVersion(t, f, "token_ttl: 5m", "  denied_methods: [resources/read]\n")
	if h2 == f.m.PolicyHash() {
		t.Fatal("test policies hash alike")
	}
	if err := f.m.UpdatePolicy(p2, h2); err != nil {
		t.Fatal(err)
	}
	_, err := f.m.Validate(f.ctx, old)
	expectError(t, err, aip.CodeTokenInvalid, aip.TokenErrPolicyChanged)
	t2, c2, _ := f.m.CurrentToken(f.ctx)
	if t2 == t1 || c2.PolicyHash != h2 {
		t.Fatal("current token not re-issued with the new hash")
	}
	if ev := f.eventsOf(identity.EventTokenRotated); len(ev) != 1 || ev[0].Reason != "policy_changed" || ev[0].PolicyHash != h2 {
		t.Fatalf("events %+v", ev)
	}
	if _, err := f.m.Validate(f.ctx, t2); err != nil {
		t.Fatal(err)
	}
}

func TestPolicyTransitionGrace(t *testing.T) {
	f := newFixture(t, "token_ttl: 5m\npolicy_transition_grace: 2m")
	a, _ := f.token()
	b, _ := f.token()
	p2, h2 := newPolicyVersion(t, f, "token_ttl: 5m\npolicy_transition_grace: 2m", "  denied_methods: [resources/read]\n")
	if err := f.m.UpdatePolicy(p2, h2); err != nil {
		t.Fatal(err)
	}
	if hs := f.m.Verifier().PolicyHashes(); len(hs) != 2 || hs[0] != h2 {
		t.Fatalf("hashes %v", hs)
	}
	f.clock.Advance(time.Minute + 59*time.Second)
	if _, err := f.m.Validate(f.ctx, a); err != nil {
		t.Fatalf("old hash within grace: %v", err)
	}
	f.clock.Advance(time.Second)
	_, err := f.m.Validate(f.ctx, b)
	expectError(t, err, aip.CodeTokenInvalid, aip.TokenErrPolicyChanged)
}

func TestAudienceFromPolicy(t *testing.T) {
	f := newFixture(t, "audience: https://api.company.com")
	tok, c := f.token()
	if c.Audience != "https://api.company.com" {
		t.Fatalf("aud %q", c.Audience)
	}
	// Another policy's Manager (another audience) sharing the keys refuses it.
	other := writePolicy(t, t.TempDir(), "test-agent", "audience: https://other.company.com")
	mb, err := identity.NewManager(identity.Config{Policy: other, Keys: f.m.Keys(), Now: f.clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	_, err = mb.Validate(context.Background(), tok)
	expectError(t, err, aip.CodeAudienceMismatch, aip.TokenErrAudienceMismatch)
}

func TestProcessBinding(t *testing.T) {
	// validation-030/031: a token from process A used in process B.
	f := newFixture(t, "session_binding: process")
	tok, c := f.token()
	other := c.Binding
	other.ProcessID++
	mb, err := identity.NewManager(identity.Config{Policy: f.pol, Keys: f.m.Keys(), Now: f.clock.Now, Binding: &other})
	if err != nil {
		t.Fatal(err)
	}
	_, err = mb.Validate(f.ctx, tok)
	expectError(t, err, aip.CodeTokenInvalid, aip.TokenErrSessionMismatch)
	if _, err := f.m.Validate(f.ctx, tok); err != nil { // same process
		t.Fatal(err)
	}
}

func TestPolicyBindingPortable(t *testing.T) {
	f := newFixture(t, "session_binding: policy")
	tok, c := f.token()
	other := identity.Binding{ProcessID: c.Binding.ProcessID + 1, PolicyPath: "/elsewhere.yaml", Hostname: "k8s:pod-2"}
	mb, err := identity.NewManager(identity.Config{Policy: f.pol, Keys: f.m.Keys(), Now: f.clock.Now, Binding: &other})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := mb.Validate(f.ctx, tok); err != nil {
		t.Fatalf("policy binding is portable across replicas: %v", err)
	}
}

func TestStrictBinding(t *testing.T) {
	f := newFixture(t, "session_binding: strict")
	base := identity.CurrentBinding(f.pol.Path)
	for name, mod := range map[string]func(b *identity.Binding){
		"pid":          func(b *identity.Binding) { b.ProcessID++ },
		"policy path":  func(b *identity.Binding) { b.PolicyPath += ".bak" },
		"hostname":     func(b *identity.Binding) { b.Hostname = "other-host" },
		"container id": func(b *identity.Binding) { b.ContainerID = strings.Repeat("a", 64) },
		"pod uid":      func(b *identity.Binding) { b.PodUID = "550e8400-e29b-41d4-a716-446655440000" },
	} {
		tok, _ := f.token()
		b := base
		mod(&b)
		mb, err := identity.NewManager(identity.Config{Policy: f.pol, Keys: f.m.Keys(), Now: f.clock.Now, Binding: &b})
		if err != nil {
			t.Fatal(err)
		}
		_, err = mb.Validate(f.ctx, tok)
		if ve := identity.AsValidationError(err); ve == nil || ve.TokenError != aip.TokenErrBindingMismatch {
			t.Errorf("%s: %v", name, err)
		}
	}
	tok, _ := f.token()
	if _, err := f.m.Validate(f.ctx, tok); err != nil {
		t.Fatal(err)
	}
}

func TestEndSession(t *testing.T) {
	f := newFixture(t, "")
	t1, c1, _ := f.m.CurrentToken(f.ctx)
	spare, _ := f.token()
	if err := f.m.EndSession(f.ctx); err != nil {
		t.Fatal(err)
	}
	if f.m.SessionID() == c1.SessionID {
		t.Fatal("session not replaced")
	}
	for _, tok := range []string{t1, spare} {
		_, err := f.m.Validate(f.ctx, tok)
		expectError(t, err, aip.CodeTokenRevoked, aip.TokenErrSessionRevoked)
	}
	t2, c2, _ := f.m.CurrentToken(f.ctx)
	if t2 == t1 || c2.SessionID != f.m.SessionID() {
		t.Fatal("no new token in the new session")
	}
	if _, err := f.m.Validate(f.ctx, t2); err != nil {
		t.Fatal(err)
	}
}

func TestValidationFailedEvent(t *testing.T) {
	f := newFixture(t, "token_ttl: 5m")
	tok, c := f.token()
	f.clock.Advance(6 * time.Minute)
	_, _ = f.m.Validate(f.ctx, tok)
	_, _ = f.m.Validate(f.ctx, "garbage")
	ev := f.eventsOf(identity.EventTokenValidationFailed)
	if len(ev) != 2 {
		t.Fatalf("%d events", len(ev))
	}
	if ev[0].Error != "token_expired" || ev[0].TokenID != c.Nonce || ev[0].SessionID != c.SessionID || ev[0].Code != -32009 {
		t.Errorf("event %+v", ev[0])
	}
	if ev[1].Error != "malformed" || ev[1].TokenID != "" {
		t.Errorf("event %+v", ev[1])
	}
}

func TestHS256OnlyWhenExplicitAndServerDisabled(t *testing.T) {
	f := newFixture(t, "keys:\n  signing_algorithm: HS256")
	tok, _ := f.token()
	if h := headerOf(t, tok); h["alg"] != "HS256" {
		t.Fatalf("alg %v", h["alg"])
	}
	if _, err := f.m.Validate(f.ctx, tok); err != nil {
		t.Fatal(err)
	}
	if jwks, _ := f.m.JWKS(); string(jwks) != `{"keys":[]}` {
		t.Fatalf("HS256 secret published: %s", jwks)
	}
	// With the server enabled the policy itself is refused, and a hand-made
	// HS256 key set is refused by NewManager.
	dir := t.TempDir()
	p := writePolicy(t, dir, "srv", "", "  server:\n    enabled: true\n    listen: 127.0.0.1:9443\n")
	ks, err := identity.GenerateKeySet("HS256", identity.KeySetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := identity.NewManager(identity.Config{Policy: p, Keys: ks}); err == nil {
		t.Fatal("HS256 with server.enabled accepted")
	}
}

func TestStoreFailureFailsClosed(t *testing.T) {
	f := newFixture(t, "", func(c *identity.Config) { c.Nonces = failingNonces{} })
	tok, _ := f.token()
	_, err := f.m.Validate(f.ctx, tok)
	var se *identity.StoreError
	if err == nil || !asStoreError(err, &se) || se.Op != "nonce" {
		t.Fatalf("got %v, want a nonce StoreError", err)
	}
}

type failingNonces struct{}

func (failingNonces) CheckAndRecord(context.Context, string, time.Duration) (bool, error) {
	return true, context.DeadlineExceeded // "fresh" must not be trusted with an error
}
func (failingNonces) Close() error { return nil }

// Issue is what the proxy's aip.io/token calls, so rotation at run time is
// what Issue does: it rotates the session's current token on the clock and
// bounds every token it gives out by the current token's expiry.
func TestIssueRotatesTheCurrentToken(t *testing.T) {
	f := newFixture(t, "token_ttl: 5m\nrotation_interval: 4m")
	t1, c1 := f.token() // the session's first token is its current token
	if cur, _, _ := f.m.CurrentToken(f.ctx); cur != t1 {
		t.Fatal("the first issued token is not the current token")
	}
	if c1.ExpiresAt.Sub(c1.IssuedAt) != 5*time.Minute {
		t.Fatalf("first token ttl %v", c1.ExpiresAt.Sub(c1.IssuedAt))
	}

	// Within the interval: fresh single-use tokens, bounded by the current one.
	f.clock.Advance(3*time.Minute + 59*time.Second)
	t2, c2 := f.token()
	if t2 == t1 || c2.Nonce == c1.Nonce || c2.SessionID != c1.SessionID {
		t.Fatal("want a fresh token in the same session")
	}
	if !c2.ExpiresAt.Equal(c1.ExpiresAt) {
		t.Fatalf("token issued at %s expires %s, want the current token's expiry %s",
			identity.FormatTime(c2.IssuedAt), identity.FormatTime(c2.ExpiresAt), identity.FormatTime(c1.ExpiresAt))
	}
	if n := len(f.eventsOf(identity.EventTokenRotated)); n != 0 {
		t.Fatalf("%d rotations before rotation_interval", n)
	}
	if cur, _, _ := f.m.CurrentToken(f.ctx); cur != t1 {
		t.Fatal("current token replaced before rotation_interval")
	}

	// At the interval: the issued token is the new current token (full ttl).
	f.clock.Advance(time.Second)
	t3, c3 := f.token()
	if c3.ExpiresAt.Sub(c3.IssuedAt) != 5*time.Minute || c3.SessionID != c1.SessionID {
		t.Fatalf("rotated token %+v", c3)
	}
	if cur, _, _ := f.m.CurrentToken(f.ctx); cur != t3 {
		t.Fatal("the rotated token is not the current token")
	}
	rotated := f.eventsOf(identity.EventTokenRotated)
	if len(rotated) != 1 {
		t.Fatalf("%d rotations", len(rotated))
	}
	if r := rotated[0]; r.OldTokenID != c1.Nonce || r.NewTokenID != c3.Nonce || r.Reason != "rotation_interval" ||
		r.SessionID != c1.SessionID || !r.ExpiresAt.Equal(c3.ExpiresAt) || r.PolicyHash != c3.PolicyHash {
		t.Fatalf("rotated event %+v", r)
	}
	// TOKEN_ISSUED for the first and the in-between token; the rotation is
	// one TOKEN_ROTATED, not also a TOKEN_ISSUED.
	issued := f.eventsOf(identity.EventTokenIssued)
	if len(issued) != 2 || issued[0].TokenID != c1.Nonce || issued[1].TokenID != c2.Nonce || !issued[1].ExpiresAt.Equal(c1.ExpiresAt) {
		t.Fatalf("issued events %+v", issued)
	}

	// The token issued just before the rotation is still valid (§5.4.2
	// grace) until the old current token expires, and not a moment longer.
	f.clock.Advance(time.Minute - time.Millisecond)
	if _, err := f.m.Validate(f.ctx, t1); err != nil {
		t.Fatalf("old current token within its lifetime: %v", err)
	}
	f.clock.Advance(2 * time.Millisecond)
	_, err := f.m.Validate(f.ctx, t2)
	expectError(t, err, aip.CodeTokenInvalid, aip.TokenErrExpired)
}

func TestIssueRotationDisabled(t *testing.T) {
	// rotation_interval 0s: no schedule; every token gets the full ttl and
	// the current token is replaced only when it expires.
	f := newFixture(t, "token_ttl: 5m\nrotation_interval: 0s")
	t1, _ := f.token()
	f.clock.Advance(4 * time.Minute)
	_, c2 := f.token()
	if c2.ExpiresAt.Sub(c2.IssuedAt) != 5*time.Minute {
		t.Fatalf("ttl %v, want the full 5m", c2.ExpiresAt.Sub(c2.IssuedAt))
	}
	if cur, _, _ := f.m.CurrentToken(f.ctx); cur != t1 {
		t.Fatal("rotation_interval 0s rotated")
	}
	f.clock.Advance(time.Minute)
	_, c3 := f.token()
	ev := f.eventsOf(identity.EventTokenRotated)
	if len(ev) != 1 || ev[0].Reason != "expired" || ev[0].NewTokenID != c3.Nonce {
		t.Fatalf("events %+v", ev)
	}
}

func TestIssueRotatesOnPolicyChangeAndNewSession(t *testing.T) {
	f := newFixture(t, "token_ttl: 5m")
	_, c1 := f.token()
	p2, h2 := newPolicyVersion(t, f, "token_ttl: 10m", "")
	if err := f.m.UpdatePolicy(p2, h2); err != nil {
		t.Fatal(err)
	}
	_, c2 := f.token()
	if c2.PolicyHash != h2 || c2.ExpiresAt.Sub(c2.IssuedAt) != 10*time.Minute {
		t.Fatalf("after the reload: hash %s, ttl %v", c2.PolicyHash, c2.ExpiresAt.Sub(c2.IssuedAt))
	}
	if ev := f.eventsOf(identity.EventTokenRotated); len(ev) != 1 || ev[0].Reason != "policy_changed" || ev[0].OldTokenID != c1.Nonce || ev[0].NewTokenID != c2.Nonce {
		t.Fatalf("events %+v", ev)
	}
	if err := f.m.EndSession(f.ctx); err != nil {
		t.Fatal(err)
	}
	_, c3 := f.token()
	issued := f.eventsOf(identity.EventTokenIssued)
	if c3.SessionID == c1.SessionID || len(issued) != 2 || issued[1].TokenID != c3.Nonce {
		t.Fatalf("new session: %s, issued %+v", c3.SessionID, issued)
	}
	if cur, _, _ := f.m.CurrentToken(f.ctx); cur == "" {
		t.Fatal("no current token")
	}
	if n := len(f.eventsOf(identity.EventTokenRotated)); n != 1 {
		t.Fatalf("the new session's first token counted as a rotation (%d)", n)
	}
}
