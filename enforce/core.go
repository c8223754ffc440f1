package enforce

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/agentid/agentid/approve"
	"github.com/agentid/agentid/audit"
	"github.com/agentid/agentid/identity"
	"github.com/agentid/agentid/store"
	"github.com/agentid/agentid/store/memory"
)

// Config wires a Core.
type Config struct {
	// Policy is the policy to enforce first. Required.
	Policy *Policy
	// Identity, when the policy enables identity, overrides parts of the
	// identity manager the core creates (keys, binding, stores). Policy,
	// PolicyHash, Now and OnEvent are always set by the core.
	Identity identity.Config
	// Events receives the audit records that arise outside any message's
	// verdict: identity events (token issued, rotated, revoked). nil
	// discards them.
	Events func(audit.Record)
	// Remote, when set, is the validation server that decides tool calls
	// (identity, rate limit, tool and arguments) in this core's place; see
	// Remote.
	Remote Remote
	// RateLimits counts calls against the rules' rate_limit, shared by every
	// process that uses the same store; nil means an in-process store that
	// the Core owns.
	RateLimits store.RateLimiter
	// OnFailOpen is told when failover_mode fail_open starts letting calls
	// through (once per outage), to post the alert_webhook; it must not
	// block. nil ignores it.
	OnFailOpen func(FailOpenAlert)
	// ApprovalTimeout bounds one approval; 0 means 60s.
	ApprovalTimeout time.Duration
	// ShowBlockedTools disables filtering of tools/list responses.
	ShowBlockedTools bool
	// RoundKey keys the round tickets that Check issues for multi-round-trip
	// calls (Check.Round). Replicas behind one load balancer must share it
	// (and their nonce store), or a retry that reaches another replica is a
	// new call; nil means a random key of this process. At least 32 bytes.
	RoundKey []byte
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// Log receives diagnostics (never protocol traffic); nil discards.
	Log *slog.Logger
}

// snapshot is what a message is decided against. It is replaced as a
// whole, and every message takes one, so a reload never applies half a
// policy to a message.
type snapshot struct {
	*Policy
	// ident is the identity session when the policy enables identity. It
	// lives across reloads that keep identity on, starts with a reload that
	// turns it on and ends with one that turns it off.
	ident *identity.Manager
	// failure, when set, is why the last reload was refused (e.g. a bad
	// signature): tool calls are answered with -32010 until a good policy
	// loads (reference/aip.md §6 #15).
	failure string
}

// Core decides messages against the policy in force. It is safe for
// concurrent use by any number of sessions.
type Core struct {
	cfg   Config
	state atomic.Pointer[snapshot]
	// writing serializes the writers of state (SetPolicy, Reject, Close).
	writing sync.Mutex

	limits    store.RateLimiter
	ownLimits bool
	// local counts rate limits in this process while the shared store is
	// unavailable and failover_mode is local_policy.
	local  *memory.RateLimiter
	outage outage
	// digestKey keys the approval digests of this process (approve.Digest).
	digestKey []byte
	tickets   roundTickets
	ownNonces store.NonceStore // the tickets' store when Identity has none
}

// New returns a core for cfg. When the policy enables identity it starts
// the identity session (identity.NewManager); Close ends it.
func New(cfg Config) (*Core, error) {
	if cfg.Policy == nil {
		return nil, errors.New("enforce: Config.Policy is required")
	}
	if cfg.ApprovalTimeout <= 0 {
		cfg.ApprovalTimeout = 60 * time.Second
	}
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.RoundKey == nil {
		cfg.RoundKey = NewRoundKey()
	}
	if len(cfg.RoundKey) < 32 {
		return nil, errors.New("enforce: Config.RoundKey must have at least 32 bytes")
	}
	c := &Core{cfg: cfg, limits: cfg.RateLimits, local: memory.NewRateLimiter(), digestKey: approve.NewDigestKey()}
	c.tickets = roundTickets{key: cfg.RoundKey, nonces: cfg.Identity.Nonces}
	if c.tickets.nonces == nil {
		c.ownNonces = memory.NewNonceStore(memory.Options{Now: cfg.Now})
		c.tickets.nonces = c.ownNonces
	}
	if c.limits == nil {
		c.limits, c.ownLimits = memory.NewRateLimiter(), true
	}
	c.state.Store(&snapshot{Policy: cfg.Policy})
	if err := c.SetPolicy(cfg.Policy); err != nil {
		c.Close()
		return nil, err
	}
	return c, nil
}

// Close ends the identity session, if any, and closes the stores the Core
// owns.
func (c *Core) Close() error {
	c.writing.Lock()
	defer c.writing.Unlock()
	c.local.Close()
	if c.ownNonces != nil {
		c.ownNonces.Close()
	}
	if c.ownLimits {
		c.limits.Close()
	}
	if m := c.state.Load().ident; m != nil {
		return m.Close()
	}
	return nil
}

// Identity returns the identity manager, nil when the policy does not enable
// identity.
func (c *Core) Identity() *identity.Manager { return c.state.Load().ident }

// Policy returns the policy in force.
func (c *Core) Policy() *Policy { return c.state.Load().Policy }

// SetPolicy replaces the policy for every message from now on. The identity
// session follows it: a policy that keeps identity on updates the session
// (identity.Manager.UpdatePolicy), one that turns it on starts a session, one
// that turns it off ends it. It fails, leaving the policy in force, when the
// identity manager refuses the new policy.
func (c *Core) SetPolicy(p *Policy) error {
	c.writing.Lock()
	defer c.writing.Unlock()
	old := c.state.Load()
	next := &snapshot{Policy: p}
	enabled := p.Policy != nil && p.Policy.IdentityConfig().Enabled
	switch {
	case enabled && old.ident != nil:
		if err := old.ident.UpdatePolicy(p.Policy, p.Hash); err != nil {
			return err
		}
		next.ident = old.ident
	case enabled:
		ic := c.cfg.Identity
		ic.Policy, ic.PolicyHash, ic.Now, ic.OnEvent = p.Policy, p.Hash, c.cfg.Now, c.identityEvent
		m, err := identity.NewManager(ic)
		if err != nil {
			return err
		}
		next.ident = m
	}
	c.state.Store(next)
	if old.ident != nil && next.ident == nil {
		// Messages that took the old snapshot may still validate with it;
		// a closed manager fails them closed.
		old.ident.Close()
	}
	return nil
}

// Reload loads the policy file in force again, with the options it was
// loaded with. A policy that fails to load, verify or be accepted by the
// identity manager is not applied, and every tool call is answered with
// -32010 "Policy signature invalid" until a good one loads: a proxy must not
// keep acting on a policy its operator tried to replace.
func (c *Core) Reload() (*Policy, error) {
	cur := c.Policy()
	p, err := cur.Reloaded()
	if err == nil {
		err = c.SetPolicy(p)
	}
	if err != nil {
		c.Reject(err.Error())
		return nil, err
	}
	return p, nil
}

// Reject records that a reload was refused for reason (see Reload).
func (c *Core) Reject(reason string) {
	c.writing.Lock()
	defer c.writing.Unlock()
	st := *c.state.Load()
	st.failure = reason
	c.state.Store(&st)
}

// EndSession revokes the identity session and starts a new one (spec
// §5.6.4). It returns the old and new session ids.
func (c *Core) EndSession(ctx context.Context) (oldID, newID string, err error) {
	m := c.Identity()
	if m == nil {
		return "", "", errors.New("enforce: identity is not enabled")
	}
	oldID = m.SessionID()
	if err := m.EndSession(ctx); err != nil {
		return oldID, "", err
	}
	return oldID, m.SessionID(), nil
}

// sessionID is the identity session's id, "" without identity.
func (st *snapshot) sessionID() string {
	if st.ident == nil {
		return ""
	}
	return st.ident.SessionID()
}

// WatchRevocationFile polls the revocation file at path (spec §5.6.4) every
// interval until ctx is done, applying it to the identity session in force:
// also one that a reload starts later, which a watcher bound to the
// session at start would miss. Errors go to onError (which may be nil).
func (c *Core) WatchRevocationFile(ctx context.Context, path string, interval time.Duration, onError func(error)) {
	var m *identity.Manager
	var w *identity.RevocationFileWatcher
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		if cur := c.Identity(); cur != m {
			m, w = cur, nil
			if m != nil {
				w = m.RevocationFileWatcher(path)
			}
		}
		if w != nil {
			if _, err := w.Poll(ctx); err != nil && onError != nil && ctx.Err() == nil {
				onError(err)
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}
