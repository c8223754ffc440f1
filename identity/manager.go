package identity

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"path/filepath"
	"sync"
	"time"

	"github.com/google/uuid"

	"github.com/agentid/agentid/aip"
	"github.com/agentid/agentid/policy"
	"github.com/agentid/agentid/store"
	"github.com/agentid/agentid/store/memory"
)

// DefaultIssuer is the iss claim of the tokens agentid issues. iss names
// the issuing software, not the agent: the agent is sub (= agent_id =
// metadata.name) and the service is aud.
const DefaultIssuer = "agentid"

// Event types reported to Config.OnEvent (§8.4). REVOCATION is agentid's
// addition for revocations made through the Manager.
const (
	EventTokenIssued           = "TOKEN_ISSUED"
	EventTokenRotated          = "TOKEN_ROTATED"
	EventTokenValidationFailed = "TOKEN_VALIDATION_FAILED"
	EventRevocation            = "REVOCATION"
)

// Event is an identity audit event. It never carries a token or key
// material: tokens are named by their id (the nonce).
type Event struct {
	Type       string
	Time       time.Time
	SessionID  string
	TokenID    string    // TOKEN_ISSUED, TOKEN_VALIDATION_FAILED, REVOCATION of a token
	OldTokenID string    // TOKEN_ROTATED
	NewTokenID string    // TOKEN_ROTATED
	ExpiresAt  time.Time // TOKEN_ISSUED, TOKEN_ROTATED
	PolicyHash string
	// Error is the token_error of a failed validation.
	Error string
	// Code is the AIP error code of a failed validation.
	Code int
	// Reason explains a failure, a rotation ("rotation_interval",
	// "expired", "policy_changed") or a revocation (the caller's reason).
	Reason string
	// RevocationType is "session" or "token" for REVOCATION.
	RevocationType string
}

// Config configures a Manager.
type Config struct {
	// Policy supplies spec.identity (via IdentityConfig), the audience
	// and metadata.name. Required.
	Policy *policy.Policy
	// PolicyHash is the policy hash; computed with Policy.Hash when "".
	PolicyHash string
	// PolicyPath is the policy file's path (made absolute); Policy.Path
	// when "".
	PolicyPath string
	// Keys signs tokens. When nil, a key set is made from
	// identity.keys: generated in memory (key_source generate) or loaded
	// from key_path (key_source file).
	Keys *KeySet
	// Nonces and Revocations default to in-memory stores on the
	// Manager's clock.
	Nonces      store.NonceStore
	Revocations store.RevocationStore
	// Now is the clock; time.Now when nil. Rotation, expiry, grace and
	// key rotation all follow it, so tests never sleep.
	Now func() time.Time
	// Binding is this process's binding; CurrentBinding(PolicyPath) when nil.
	Binding *Binding
	// OnEvent receives audit events synchronously, outside the Manager's
	// locks (it may call the Manager). Optional.
	OnEvent func(Event)
	// Issuer is the iss claim; DefaultIssuer when "".
	Issuer string
	// SessionRetention is how long a revoked session stays revoked;
	// DefaultSessionRetention when zero.
	SessionRetention time.Duration
	// RemoteAgents says the Manager serves agents in other processes: a
	// validation server's (IssueFor). It cannot observe their processes,
	// so tokens are validated with session_binding "policy" whatever the
	// policy says: bound to the policy hash, and portable across the
	// server's replicas.
	RemoteAgents bool
}

// Manager owns one agent session: it issues and rotates the session's
// tokens, validates tokens presented to it, tracks policy changes and
// revocations, and publishes its keys. It is safe for concurrent use.
type Manager struct {
	mu       sync.Mutex
	cfg      Config
	idc      policy.IdentityConfig
	hash     string
	agentID  string
	session  string
	current  *issued
	keys     *KeySet
	verifier *Verifier
	nonces   store.NonceStore
	revs     store.RevocationStore
}

type issued struct {
	token  string
	claims *Claims
}

// NewManager starts a session for cfg.Policy (§5.5.1). No token is issued
// until the first Token or Issue call.
func NewManager(cfg Config) (*Manager, error) {
	p := cfg.Policy
	if p == nil {
		return nil, errors.New("identity: Config.Policy is required")
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Issuer == "" {
		cfg.Issuer = DefaultIssuer
	}
	if cfg.SessionRetention <= 0 {
		cfg.SessionRetention = DefaultSessionRetention
	}
	hash := cfg.PolicyHash
	if hash == "" {
		h, err := p.Hash()
		if err != nil {
			return nil, err
		}
		hash = h
	}
	if !isLowerHex(hash, 64) {
		return nil, errors.New("identity: PolicyHash must be 64 lowercase hex characters")
	}
	if cfg.PolicyPath == "" {
		cfg.PolicyPath = p.Path
	}
	if cfg.PolicyPath == "" {
		return nil, errors.New("identity: PolicyPath is required for a policy parsed from memory")
	}
	if abs, err := filepath.Abs(cfg.PolicyPath); err == nil {
		cfg.PolicyPath = abs
	}
	if cfg.Binding == nil {
		b := CurrentBinding(cfg.PolicyPath)
		cfg.Binding = &b
	}
	idc := p.IdentityConfig()
	if err := checkIdentityConfig(p, idc); err != nil {
		return nil, err
	}
	m := &Manager{cfg: cfg, idc: idc, hash: hash, agentID: p.Metadata.Name, session: uuid.NewString()}
	m.keys = cfg.Keys
	if m.keys == nil {
		ks, err := keySetFromPolicy(idc, cfg.Now)
		if err != nil {
			return nil, err
		}
		m.keys = ks
	} else if m.keys.Alg() == AlgHS256 && p.ServerConfig().Enabled {
		return nil, errors.New("identity: HS256 must not be used when server.enabled is true (§5.8.2)")
	}
	m.nonces = cfg.Nonces
	if m.nonces == nil {
		if t := idc.NonceStorage.Type; t != policy.DefaultNonceStorageType {
			return nil, fmt.Errorf("%w: spec.identity.nonce_storage.type is %q, and only %q is implemented; refusing to fall back to memory storage, which other instances do not share",
				ErrStoreUnavailable, t, policy.DefaultNonceStorageType)
		}
		m.nonces = memory.NewNonceStore(memory.Options{Now: cfg.Now})
	}
	m.revs = cfg.Revocations
	if m.revs == nil {
		m.revs = memory.NewRevocationStore(memory.Options{Now: cfg.Now})
	}
	v, err := NewVerifier(VerifierConfig{
		Keys: m.keys, Audience: idc.Audience, PolicyHash: hash,
		BindingMode: m.bindingMode(idc), Binding: *cfg.Binding,
		Nonces: m.nonces, NonceTTL: m.nonceTTL(), Revocations: m.revs, Now: cfg.Now,
	})
	if err != nil {
		return nil, err
	}
	m.verifier = v
	return m, nil
}

func checkIdentityConfig(p *policy.Policy, idc policy.IdentityConfig) error {
	if idc.TokenTTL <= 0 {
		return errors.New("identity: token_ttl must be positive")
	}
	if idc.Audience == "" {
		return errors.New("identity: no audience (set identity.audience or metadata.name)")
	}
	if idc.Keys.SigningAlgorithm == AlgHS256 && p.ServerConfig().Enabled {
		return errors.New("identity: HS256 must not be used when server.enabled is true (§5.8.2)")
	}
	return nil
}

func keySetFromPolicy(idc policy.IdentityConfig, now func() time.Time) (*KeySet, error) {
	o := KeySetOptions{
		RotationPeriod: idc.Keys.RotationPeriod,
		Retain:         idc.TokenTTL + idc.Keys.GracePeriod + idc.NonceStorage.ClockSkewTolerance,
		Now:            now,
	}
	switch idc.Keys.KeySource {
	case "", "generate":
		return GenerateKeySet(idc.Keys.SigningAlgorithm, o)
	case "file":
		if idc.Keys.SigningAlgorithm == AlgHS256 {
			return nil, errors.New("identity: HS256 keys are generated in memory only (key_source generate)")
		}
		return LoadKeySet(idc.Keys.KeyPath, idc.Keys.SigningAlgorithm, o)
	default:
		return nil, fmt.Errorf("identity: key_source %q is not supported", idc.Keys.KeySource)
	}
}

// nonceTTL is nonce_window + clock_skew_tolerance (§3.7.9).
func (m *Manager) nonceTTL() time.Duration { return TokenRetention(m.idc) }

// bindingMode is the session_binding tokens are validated with.
func (m *Manager) bindingMode(idc policy.IdentityConfig) string {
	if m.cfg.RemoteAgents {
		return policy.BindingPolicy
	}
	return idc.SessionBinding
}

func (m *Manager) emit(evs []Event) {
	if m.cfg.OnEvent == nil {
		return
	}
	for _, e := range evs {
		m.cfg.OnEvent(e)
	}
}

// SessionID returns the current session id (UUIDv4).
func (m *Manager) SessionID() string {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.session
}

// PolicyHash returns the current policy hash.
func (m *Manager) PolicyHash() string {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.hash
}

// IdentityConfig returns the identity configuration in force.
func (m *Manager) IdentityConfig() policy.IdentityConfig {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.idc
}

// Token returns the session's current token; see CurrentToken.
func (m *Manager) Token(ctx context.Context) (string, error) {
	tok, _, err := m.CurrentToken(ctx)
	return tok, err
}

// CurrentToken returns the session's current token and its claims: the
// token that the reuse-until-rotation lifecycle of §5.4 would present, and
// the anchor that every token Issue gives out is bounded by. It is issued on
// first use (TOKEN_ISSUED) and replaced (TOKEN_ROTATED, same session id, new
// nonce, full token_ttl) when rotation_interval has elapsed since it was
// issued, when it has expired, or when the policy hash changed. With
// rotation_interval 0 it is replaced only when it expires or the policy
// changes.
//
// Tokens are single-use (validation-040): the current token is accepted
// once, and it may already have been handed out by the Issue call that
// rotated it. CurrentToken is for inspection; a client presents tokens from
// Issue.
func (m *Manager) CurrentToken(ctx context.Context) (string, *Claims, error) {
	m.mu.Lock()
	ev, err := m.rotateLocked(m.cfg.Now())
	if err != nil {
		m.mu.Unlock()
		return "", nil, err
	}
	tok, c := m.current.token, m.current.claims
	m.mu.Unlock()
	m.emit(ev)
	return tok, c, nil
}

// Issue gives out a single-use token of the session: what a client presents
// with its next call (the proxy's aip.io/token). It first brings the current
// token up to date (see CurrentToken). When that issued or rotated it, the
// new current token itself is returned (one TOKEN_ISSUED or TOKEN_ROTATED
// event). Otherwise a fresh token with a new nonce is issued (TOKEN_ISSUED)
// whose expiry is the current token's when rotation_interval is set: a
// token issued just before a rotation is valid for at most
// token_ttl − rotation_interval after it, and no token outlives the current
// token it was issued under. With rotation_interval 0 every token gets the
// full token_ttl.
func (m *Manager) Issue(ctx context.Context) (string, *Claims, error) {
	m.mu.Lock()
	now := m.cfg.Now()
	ev, err := m.rotateLocked(now)
	if err != nil {
		m.mu.Unlock()
		return "", nil, err
	}
	if ev != nil {
		tok, c := m.current.token, m.current.claims
		m.mu.Unlock()
		m.emit(ev)
		return tok, c, nil
	}
	var bound time.Time
	if m.idc.RotationInterval > 0 {
		bound = m.current.claims.ExpiresAt
	}
	tok, c, err := m.issueLocked(now, bound)
	m.mu.Unlock()
	if err != nil {
		return "", nil, err
	}
	m.emit([]Event{{Type: EventTokenIssued, Time: now, SessionID: c.SessionID, TokenID: c.Nonce, ExpiresAt: c.ExpiresAt, PolicyHash: c.PolicyHash}})
	return tok, c, nil
}

// rotateLocked issues the session's first token or rotates the current
// one when it is due, and returns the event to emit (none when the current
// token stays). m.mu is held.
func (m *Manager) rotateLocked(now time.Time) ([]Event, error) {
	var reason string
	switch cur := m.current; {
	case cur == nil:
	case cur.claims.PolicyHash != m.hash:
		reason = "policy_changed"
	case !now.Before(cur.claims.ExpiresAt):
		reason = "expired"
	case m.idc.RotationInterval > 0 && now.Sub(cur.claims.IssuedAt) >= m.idc.RotationInterval:
		reason = "rotation_interval"
	default:
		return nil, nil
	}
	tok, c, err := m.issueLocked(now, time.Time{})
	if err != nil {
		return nil, err
	}
	var ev Event
	if m.current == nil {
		ev = Event{Type: EventTokenIssued, TokenID: c.Nonce}
	} else {
		ev = Event{Type: EventTokenRotated, OldTokenID: m.current.claims.Nonce, NewTokenID: c.Nonce, Reason: reason}
	}
	ev.Time, ev.SessionID, ev.ExpiresAt, ev.PolicyHash = now, c.SessionID, c.ExpiresAt, c.PolicyHash
	m.current = &issued{token: tok, claims: c}
	return []Event{ev}, nil
}

// IssueFor issues a token for an agent in another process, on a Manager
// with Config.RemoteAgents: in session sessionID (a new session when ""),
// carrying binding b as the agent reported it, valid for the full
// token_ttl. The Manager keeps no state for the session: whether
// sessionID is one the server issued and not revoked is the caller's to
// check. It emits TOKEN_ISSUED.
func (m *Manager) IssueFor(ctx context.Context, sessionID string, b Binding) (string, *Claims, error) {
	if !m.cfg.RemoteAgents {
		return "", nil, errors.New("identity: IssueFor needs Config.RemoteAgents")
	}
	if sessionID == "" {
		sessionID = uuid.NewString()
	} else if !isUUID(sessionID) {
		return "", nil, errors.New("identity: session id must be a UUID")
	}
	m.mu.Lock()
	now := m.cfg.Now()
	tok, c, err := m.issueWith(now, time.Time{}, sessionID, b)
	m.mu.Unlock()
	if err != nil {
		return "", nil, err
	}
	m.emit([]Event{{Type: EventTokenIssued, Time: now, SessionID: c.SessionID, TokenID: c.Nonce, ExpiresAt: c.ExpiresAt, PolicyHash: c.PolicyHash}})
	return tok, c, nil
}

// issueLocked signs a new token of the session issued at now, expiring
// token_ttl later or at bound when that is earlier (and not zero).
func (m *Manager) issueLocked(now time.Time, bound time.Time) (string, *Claims, error) {
	return m.issueWith(now, bound, m.session, *m.cfg.Binding)
}

// issueWith signs a token of session with binding b. m.mu is held.
func (m *Manager) issueWith(now, bound time.Time, session string, b Binding) (string, *Claims, error) {
	var nb [16]byte
	if _, err := rand.Read(nb[:]); err != nil {
		return "", nil, fmt.Errorf("identity: nonce: %w", err)
	}
	nonce := hex.EncodeToString(nb[:])
	iat := now.UTC().Truncate(time.Millisecond)
	exp := iat.Add(m.idc.TokenTTL)
	if !bound.IsZero() && bound.Before(exp) {
		exp = bound
	}
	c := &Claims{
		Issuer: m.cfg.Issuer, Subject: m.agentID, Audience: m.idc.Audience,
		IssuedAtUnix: iat.Unix(), ExpiresAtUnix: exp.Unix(), JWTID: nonce,
		Version: Version, PolicyHash: m.hash, SessionID: session, AgentID: m.agentID,
		IssuedAt: iat, ExpiresAt: exp, Nonce: nonce, Binding: b,
	}
	if err := checkClaims(c); err != nil {
		// Never sign what a verifier would refuse (e.g. an agent's binding
		// without its process id).
		return "", nil, fmt.Errorf("identity: claims: %w", err)
	}
	payload, err := c.MarshalJSON()
	if err != nil {
		return "", nil, fmt.Errorf("identity: claims: %w", err)
	}
	tok, err := m.keys.Sign(payload)
	if err != nil {
		return "", nil, err
	}
	return tok, c, nil
}

// Validate validates a token presented to this process (see
// Verifier.Validate for the checks and their order) and reports failures
// as TOKEN_VALIDATION_FAILED events. An empty token returns the -32008
// error without an event: whether a token is required is the caller's
// decision (identity.require_token).
func (m *Manager) Validate(ctx context.Context, token string) (*Claims, error) {
	c, err := m.verifier.Validate(ctx, token)
	if err == nil || token == "" {
		return c, err
	}
	ev := Event{Type: EventTokenValidationFailed, Time: m.cfg.Now()}
	if ve := AsValidationError(err); ve != nil {
		ev.Error, ev.Code, ev.Reason = ve.TokenError, ve.Code, ve.Reason
		if ve.Claims != nil {
			ev.SessionID, ev.TokenID, ev.PolicyHash = ve.Claims.SessionID, ve.Claims.Nonce, ve.Claims.PolicyHash
		}
	} else {
		ev.Error, ev.Reason = "unavailable", err.Error()
	}
	m.emit([]Event{ev})
	return nil, err
}

// Verifier returns the Manager's verifier.
func (m *Manager) Verifier() *Verifier { return m.verifier }

// Keys returns the Manager's key set.
func (m *Manager) Keys() *KeySet { return m.keys }

// JWKS returns the JWKS document of the Manager's keys (§5.8.5).
func (m *Manager) JWKS() ([]byte, error) { return m.keys.JWKS() }

// UpdatePolicy switches to a new policy (a reload). The session continues;
// when the hash changed, the next Issue (or CurrentToken) rotates the
// current token to one with the new hash, and tokens with the previous hash
// stay valid for the new policy's policy_transition_grace (0: they fail
// with policy_changed at once). Audience, TTL, rotation, binding mode and nonce window follow the
// new policy; the signing keys do not change.
func (m *Manager) UpdatePolicy(p *policy.Policy, hash string) error {
	if p == nil || !isLowerHex(hash, 64) {
		return errors.New("identity: UpdatePolicy needs a policy and its 64-hex hash")
	}
	idc := p.IdentityConfig()
	if err := checkIdentityConfig(p, idc); err != nil {
		return err
	}
	if m.cfg.Nonces == nil && idc.NonceStorage.Type != policy.DefaultNonceStorageType {
		// The same refusal as NewManager's: a reload must not silently keep
		// a process-local store that the new policy says is shared.
		return fmt.Errorf("%w: spec.identity.nonce_storage.type is %q, and only %q is implemented",
			ErrStoreUnavailable, idc.NonceStorage.Type, policy.DefaultNonceStorageType)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if err := m.verifier.SetBinding(m.bindingMode(idc), *m.cfg.Binding); err != nil {
		return err
	}
	m.cfg.Policy, m.idc, m.hash, m.agentID = p, idc, hash, p.Metadata.Name
	m.verifier.SetPolicy(hash, idc.Audience, idc.PolicyTransitionGrace)
	m.verifier.SetNonceTTL(m.nonceTTL())
	m.keys.SetRetain(idc.TokenTTL + idc.Keys.GracePeriod + idc.NonceStorage.ClockSkewTolerance)
	return nil
}

// RevokeSession revokes every token of session id (§5.6.1), retained for
// SessionRetention. Revoking the Manager's own session does not start a
// new one (tokens it issues keep failing with session_revoked); use
// EndSession for that.
func (m *Manager) RevokeSession(ctx context.Context, id, reason string) error {
	if !isUUID(id) {
		return errors.New("identity: session id must be a lowercase UUID")
	}
	now := m.cfg.Now()
	if err := m.revs.RevokeSession(ctx, id, now, m.cfg.SessionRetention); err != nil {
		return &StoreError{Op: "revocation", Err: err}
	}
	m.emit([]Event{{Type: EventRevocation, Time: now, SessionID: id, RevocationType: aip.RevocationSession, Reason: reason, PolicyHash: m.PolicyHash()}})
	return nil
}

// RevokeToken revokes one token by its nonce (§5.6.1), retained for
// nonce_window plus clock skew (longer than any token lives).
func (m *Manager) RevokeToken(ctx context.Context, nonce, reason string) error {
	if !isLowerHex(nonce, 32) {
		return errors.New("identity: a token nonce is 32 lowercase hex characters")
	}
	m.mu.Lock()
	ttl := m.nonceTTL()
	m.mu.Unlock()
	now := m.cfg.Now()
	if err := m.revs.RevokeToken(ctx, nonce, now, ttl); err != nil {
		return &StoreError{Op: "revocation", Err: err}
	}
	m.emit([]Event{{Type: EventRevocation, Time: now, TokenID: nonce, RevocationType: aip.RevocationToken, Reason: reason, PolicyHash: m.PolicyHash()}})
	return nil
}

// EndSession terminates the current session (the SIGUSR1 action of
// §5.6.4): the session is revoked, so every token issued in it fails with
// session_revoked, and a new session starts; its first token is issued on
// the next Issue (or CurrentToken) call.
func (m *Manager) EndSession(ctx context.Context) error {
	m.mu.Lock()
	old := m.session
	m.mu.Unlock()
	if err := m.RevokeSession(ctx, old, "session ended"); err != nil {
		return err
	}
	m.mu.Lock()
	if m.session == old {
		m.session = uuid.NewString()
		m.current = nil
	}
	m.mu.Unlock()
	return nil
}

// Close closes the stores the Manager created itself (not those passed in
// Config).
func (m *Manager) Close() error {
	var errs []error
	if m.cfg.Nonces == nil {
		errs = append(errs, m.nonces.Close())
	}
	if m.cfg.Revocations == nil {
		errs = append(errs, m.revs.Close())
	}
	return errors.Join(errs...)
}
