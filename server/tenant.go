package server

import (
	"errors"
	"fmt"

	"github.com/agentid/agentid/aip"

	"github.com/agentid/agentid/audit"
	"github.com/agentid/agentid/enforce"
	"github.com/agentid/agentid/identity"
)

// tenant is one policy the server enforces, with its own core.
type tenant struct {
	name string // metadata.name
	core *enforce.Core
}

// audience is the aud its tokens carry, "" when it does not enable
// identity.
func (t *tenant) audience() string {
	p := t.core.Policy().Policy
	if p == nil || !p.IdentityConfig().Enabled {
		return ""
	}
	return p.IdentityConfig().Audience
}

// tenantSet is the policies in force, replaced as a whole.
type tenantSet struct {
	list       []*tenant
	byAudience map[string]*tenant
	endpoints  endpoints
}

func (s *Server) newTenants(ps []*enforce.Policy) (*tenantSet, error) {
	if err := checkTenants(ps); err != nil {
		return nil, err
	}
	ts := &tenantSet{endpoints: endpointsOf(ps[0])}
	for _, p := range ps {
		core, err := enforce.New(enforce.Config{
			Policy: p,
			Identity: identity.Config{
				Keys: s.cfg.Keys, Nonces: s.cfg.Nonces, Revocations: s.cfg.Revocations,
				RemoteAgents: true, Binding: &identity.Binding{},
			},
			Events:     s.event,
			RateLimits: s.cfg.RateLimits,
			RoundKey:   s.cfg.RoundKey,
			OnFailOpen: s.cfg.OnFailOpen,
			Now:        s.cfg.Now,
			Log:        s.cfg.Log,
		})
		if err != nil {
			ts.close()
			return nil, fmt.Errorf("server: policy %s: %w", p.Path(), err)
		}
		ts.list = append(ts.list, &tenant{name: p.Policy.Metadata.Name, core: core})
	}
	return ts.reindexed(), nil
}

// checkTenants refuses a set of policies the server could not tell apart.
func checkTenants(ps []*enforce.Policy) error {
	if len(ps) == 0 {
		return errors.New("server: at least one policy is required")
	}
	for _, p := range ps {
		if p.Policy == nil {
			return errors.New("server: a policy failed to load")
		}
	}
	ep := endpointsOf(ps[0])
	if len(ps) == 1 {
		return nil
	}
	seen := make(map[string]string)
	names := make(map[string]string)
	for _, p := range ps {
		// Rate-limit counters are keyed by metadata.name, and /v1/token
		// selects a tenant by it: two tenants of one name would spend
		// each other's limits.
		if other, dup := names[p.Policy.Metadata.Name]; dup {
			return fmt.Errorf("server: policies %s and %s have the same metadata.name %q", other, p.Path(), p.Policy.Metadata.Name)
		}
		names[p.Policy.Metadata.Name] = p.Path()
		idc := p.Policy.IdentityConfig()
		if !idc.Enabled {
			return fmt.Errorf("server: policy %s: serving several policies needs identity in each (the token's audience selects the policy)", p.Path())
		}
		if other, dup := seen[idc.Audience]; dup {
			return fmt.Errorf("server: policies %s and %s have the same audience %q", other, p.Path(), idc.Audience)
		}
		seen[idc.Audience] = p.Path()
		if endpointsOf(p) != ep {
			return fmt.Errorf("server: policy %s: server.endpoints differ from %s's", p.Path(), ps[0].Path())
		}
	}
	return nil
}

// reindexed is a copy of ts indexed by the audiences now in force.
func (ts *tenantSet) reindexed() *tenantSet {
	next := &tenantSet{list: ts.list, endpoints: ts.endpoints, byAudience: make(map[string]*tenant, len(ts.list))}
	for _, t := range ts.list {
		if a := t.audience(); a != "" {
			next.byAudience[a] = t
		}
	}
	return next
}

// forToken selects the tenant a request is decided by: the only one, or
// the one whose audience the token names. The token is read unverified
// here; the tenant's core verifies it in full. When none can be chosen, t
// is nil and tokenErr says why ("" for no token at all).
func (ts *tenantSet) forToken(token string) (t *tenant, tokenErr string) {
	if len(ts.list) == 1 {
		return ts.list[0], ""
	}
	if token == "" {
		return nil, ""
	}
	claims, err := identity.ParseUnverified(token)
	if err != nil {
		return nil, aip.TokenErrMalformed
	}
	if t, ok := ts.byAudience[claims.Audience]; ok {
		return t, ""
	}
	return nil, aip.TokenErrAudienceMismatch
}

// byName finds a tenant by metadata.name or audience; the only one when
// name is "".
func (ts *tenantSet) byName(name string) (*tenant, bool) {
	if name == "" {
		if len(ts.list) == 1 {
			return ts.list[0], true
		}
		return nil, false
	}
	if t, ok := ts.byAudience[name]; ok {
		return t, true
	}
	for _, t := range ts.list {
		if t.name == name {
			return t, true
		}
	}
	return nil, false
}

func (ts *tenantSet) close() error {
	var errs []error
	for _, t := range ts.list {
		errs = append(errs, t.core.Close())
	}
	return errors.Join(errs...)
}

// event writes an audit record that arises outside a request's decision
// (token issued, revocations).
func (s *Server) event(r audit.Record) {
	if err := s.cfg.Audit.Log(r); err != nil {
		s.cfg.Log.Error("audit write failed", "error", err)
	}
}
