package server

import (
	"context"
	"crypto/hkdf"
	"crypto/sha256"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/agentid/agentid/audit"
	"github.com/agentid/agentid/enforce"
	"github.com/agentid/agentid/identity"
	"github.com/agentid/agentid/store"
	"github.com/agentid/agentid/store/memory"
)

// DefaultMaxBodyBytes bounds a request body: a validation request is a tool
// name and its arguments.
const DefaultMaxBodyBytes = 1 << 20

// Config configures a Server.
type Config struct {
	// Policies are the policies served, at least one. With more than one,
	// each must enable identity with an audience of its own: the token's
	// audience selects the policy.
	Policies []*enforce.Policy
	// Keys signs tokens (/v1/token) and verifies them for every policy, and
	// is published at /v1/jwks. Replicas must share them (key_source file);
	// when nil and a policy enables identity, a key set is generated for
	// this process alone.
	Keys *identity.KeySet
	// RoundKey keys the round tickets of multi-round-trip calls
	// (enforce.Config.RoundKey), which replicas must share. nil derives it
	// from Keys when they were loaded (key_source file, shared by the
	// replicas), else a random key of this process: a retry that then
	// reaches another replica is a new call and spends a rate-limit unit.
	RoundKey []byte
	// Nonces, Revocations and RateLimits hold the state replicas share;
	// each is in this process's memory when nil.
	Nonces      store.NonceStore
	Revocations store.RevocationStore
	RateLimits  store.RateLimiter
	// Registry records the sessions and tokens issued, so that a revocation
	// of an id never issued is answered 404; nil accepts any well-formed id.
	Registry store.Registry
	// Ping reports whether the shared store answers, for /health; nil
	// means there is none to ask.
	Ping func(context.Context) error
	// Audit receives every decision's records; nil discards them.
	Audit *audit.Logger
	// AuditBestEffort answers requests whose records could not be written;
	// by default they are refused (500), as the proxy refuses them.
	AuditBestEffort bool
	// AdminToken is the admin credential for /v1/revoke and /v1/token,
	// presented as "Authorization: Bearer <token>"; empty accepts none.
	AdminToken []byte
	// TokenCredential is a credential for /v1/token alone, presented as
	// "Authorization: Bearer <credential>": what proxies without a client
	// certificate are given, so that none of them holds the admin
	// credential (which also revokes); empty accepts none.
	TokenCredential []byte
	// AdminIdentities are the verified client-certificate identities (a
	// URI SAN such as a SPIFFE ID, or the subject's common name) that act
	// as admin.
	AdminIdentities []string
	// TokenClients names, per policy (metadata.name), the verified
	// client-certificate identities (URI SAN or common name, as
	// AdminIdentities) that may obtain its tokens at /v1/token, and that
	// alone may call under it through the gateway (ClientMayCall). A
	// policy without an entry admits any verified client to /v1/token
	// when it is the only one served, and none when there are several.
	TokenClients map[string][]string
	// RequireAuthentication refuses /v1/validate requests that carry
	// neither a token nor a verified client certificate: every listener
	// that is not loopback (DESIGN decision 13).
	RequireAuthentication bool
	// MaxBodyBytes bounds request bodies; DefaultMaxBodyBytes when 0.
	MaxBodyBytes int64
	// Now is the clock; time.Now when nil.
	Now func() time.Time
	// Log receives diagnostics; nil discards them.
	Log *slog.Logger
	// OnFailOpen is told when failover_mode fail_open starts letting calls
	// through (alert.Poster.FailOpen posts the alert_webhook).
	OnFailOpen func(enforce.FailOpenAlert)
}

// Server answers the AIP validation endpoints. It is safe for concurrent
// use; Close releases what it owns.
type Server struct {
	cfg     Config
	started time.Time
	tenants atomic.Pointer[tenantSet]
	// reloading serializes Reload.
	reloading sync.Mutex
	// reloadErr is why the last reload was refused ("" after a good one):
	// the old policies stay in force and /health says degraded.
	reloadErr atomic.Pointer[string]
	draining  atomic.Bool
	// requireAuth is Config.RequireAuthentication, also set by Serve on a
	// listener that is not loopback.
	requireAuth atomic.Bool
	metrics     *metrics
	owned       []interface{ Close() error }
	sessions    activeSessions
	ping        pingCache
	mux         *http.ServeMux
}

// New returns a server for cfg.
func New(cfg Config) (*Server, error) {
	if len(cfg.Policies) == 0 {
		return nil, errors.New("server: at least one policy is required")
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	if cfg.MaxBodyBytes <= 0 {
		cfg.MaxBodyBytes = DefaultMaxBodyBytes
	}
	s := &Server{cfg: cfg, started: cfg.Now()}
	s.requireAuth.Store(cfg.RequireAuthentication)
	if s.cfg.Nonces == nil || s.cfg.Revocations == nil || s.cfg.RateLimits == nil || s.cfg.Registry == nil {
		// What is not given lives in this process: one memory backend, so
		// that a token's state is checked in one call as with a shared store.
		b := memory.New(memory.Options{Now: cfg.Now})
		s.owned = append(s.owned, b)
		if s.cfg.Nonces == nil && s.cfg.Revocations == nil {
			s.cfg.Nonces, s.cfg.Revocations = b, b
		} else if s.cfg.Nonces == nil {
			s.cfg.Nonces = b
		} else if s.cfg.Revocations == nil {
			s.cfg.Revocations = b
		}
		if s.cfg.RateLimits == nil {
			s.cfg.RateLimits = b
		}
		if s.cfg.Registry == nil {
			s.cfg.Registry = b
		}
	}
	if s.cfg.Keys == nil && anyIdentity(cfg.Policies) {
		ks, err := identity.GenerateKeySet(identity.DefaultAlg, identity.KeySetOptions{Now: cfg.Now})
		if err != nil {
			return nil, fmt.Errorf("server: %w", err)
		}
		s.cfg.Keys = ks
	}
	if s.cfg.RoundKey == nil && s.cfg.Keys != nil && !s.cfg.Keys.Generated() {
		k, err := roundKeyFrom(s.cfg.Keys)
		if err != nil {
			return nil, fmt.Errorf("server: %w", err)
		}
		s.cfg.RoundKey = k
	}
	ts, err := s.newTenants(cfg.Policies)
	if err != nil {
		s.Close()
		return nil, err
	}
	s.tenants.Store(ts)
	s.metrics = newMetrics(s)
	s.mux = s.routes(ts.endpoints)
	return s, nil
}

func anyIdentity(ps []*enforce.Policy) bool {
	for _, p := range ps {
		if p.Policy.IdentityConfig().Enabled {
			return true
		}
	}
	return false
}

// Close ends the identity sessions and closes the stores the server made.
func (s *Server) Close() error {
	var errs []error
	if ts := s.tenants.Load(); ts != nil {
		errs = append(errs, ts.close())
	}
	for _, c := range s.owned {
		errs = append(errs, c.Close())
	}
	return errors.Join(errs...)
}

// Core is the enforcement core of the server's first policy: the only one
// of a server that enforces one policy, as the gateway's does. Reloads
// replace its policy, never the core.
func (s *Server) Core() *enforce.Core { return s.tenants.Load().list[0].core }

// Handler returns the server's HTTP handler.
func (s *Server) Handler() http.Handler { return s.mux }

// Drain makes /health report unhealthy (503), so that load balancers stop
// sending requests before the server shuts down.
func (s *Server) Drain() { s.draining.Store(true) }

// Reload loads every policy file again, with the options it was loaded
// with, and replaces them all at once. When any fails, none is replaced:
// the server keeps deciding with the policies in force, and /health
// reports degraded until a reload succeeds.
func (s *Server) Reload() error {
	s.reloading.Lock()
	defer s.reloading.Unlock()
	cur := s.tenants.Load()
	next := make([]*enforce.Policy, len(cur.list))
	for i, t := range cur.list {
		p, err := t.core.Policy().Reloaded()
		if err != nil {
			return s.refuseReload(err)
		}
		next[i] = p
	}
	if err := checkTenants(next); err != nil {
		return s.refuseReload(err)
	}
	if ep := endpointsOf(next[0]); ep != cur.endpoints {
		return s.refuseReload(errors.New("server: a reload cannot change server.endpoints; restart the server"))
	}
	for i, t := range cur.list {
		if err := t.core.SetPolicy(next[i]); err != nil {
			return s.refuseReload(err)
		}
	}
	// Audiences can change with a reload: index them anew.
	s.tenants.Store(cur.reindexed())
	empty := ""
	s.reloadErr.Store(&empty)
	s.metrics.policyChanged()
	return nil
}

func (s *Server) refuseReload(err error) error {
	msg := err.Error()
	s.reloadErr.Store(&msg)
	s.cfg.Log.Error("policy reload refused; the policies in force stay", "error", err)
	return err
}

// PolicyHashes returns the hash of each policy in force, in order.
func (s *Server) PolicyHashes() []string {
	ts := s.tenants.Load()
	out := make([]string, len(ts.list))
	for i, t := range ts.list {
		out[i] = t.core.Policy().Hash
	}
	return out
}

// endpoints are the paths the server answers on.
type endpoints struct {
	validate, revoke, jwks, health, metrics, token string
}

// TokenPath is where remote agents obtain tokens. The spec defines no token
// endpoint (agentid's own), so it has no setting of its own.
const TokenPath = "/v1/token"

func endpointsOf(p *enforce.Policy) endpoints {
	sc := p.Server
	e := sc.Endpoints
	return endpoints{validate: e.Validate, revoke: e.Revoke, jwks: e.JWKS, health: e.Health, metrics: e.Metrics, token: TokenPath}
}

// roundKeyFrom derives the round-ticket key from the signing key that the
// replicas share, under a label of its own so that neither use can stand in
// for the other.
func roundKeyFrom(ks *identity.KeySet) ([]byte, error) {
	secret, err := ks.PrivateKeyPEM()
	if err != nil {
		return nil, err
	}
	return hkdf.Key(sha256.New, secret, nil, "agentid round tickets v1", 32)
}
