package server

import (
	"context"
	"net/http"
	"sync"
	"time"
)

func (s *Server) routes(ep endpoints) *http.ServeMux {
	mux := http.NewServeMux()
	handle := func(path, name string, h http.HandlerFunc) {
		mux.Handle(path, s.metrics.instrument(name, h))
	}
	handle(ep.validate, "validate", s.handleValidate)
	handle(ep.revoke, "revoke", s.handleRevoke)
	handle(ep.token, "token", s.handleToken)
	handle(ep.jwks, "jwks", getOnly(s.handleJWKS))
	handle(ep.health, "health", getOnly(s.handleHealth))
	mux.Handle(ep.metrics, getOnly(s.metrics.handler().ServeHTTP))
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		writeError(w, http.StatusNotFound, errNotFound, "no such endpoint")
	})
	return mux
}

func getOnly(h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			w.Header().Set("Allow", "GET, HEAD")
			writeError(w, http.StatusMethodNotAllowed, errMethodNotAllowed, "use GET")
			return
		}
		h(w, r)
	}
}

// handleJWKS publishes the verification keys (spec §5.8.5). Clients must
// fetch again on an unknown kid, so an hour of caching delays no rotation:
// a new key is published before it signs.
func (s *Server) handleJWKS(w http.ResponseWriter, r *http.Request) {
	if s.cfg.Keys == nil {
		writeError(w, http.StatusNotFound, errNotFound, "no policy enables identity")
		return
	}
	b, err := s.cfg.Keys.JWKS()
	if err != nil {
		writeError(w, http.StatusInternalServerError, errInternal, "")
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "public, max-age=3600")
	w.Write(b)
}

// Health is the body of GET /health (spec §6.3.2) with agentid's details.
type Health struct {
	Status        string         `json:"status"` // healthy, degraded or unhealthy
	Version       string         `json:"version"`
	PolicyHash    string         `json:"policy_hash"`
	UptimeSeconds int64          `json:"uptime_seconds"`
	Policies      []PolicyStatus `json:"policies"`
	Store         string         `json:"store"` // ok, unavailable or none
	Audit         AuditHealth    `json:"audit"`
	// Problems says why the status is not healthy, without details that
	// would describe the policy or the host (spec §10.7.3): those are in
	// the server's log.
	Problems []string `json:"problems,omitempty"`
}

// AuditHealth is the audit log's state.
type AuditHealth struct {
	Failures uint64 `json:"failures"`
}

// PolicyStatus is one policy in force.
type PolicyStatus struct {
	Name string `json:"name"`
	Hash string `json:"hash"`
}

// Health reports the server's state: unhealthy (503) while draining or when
// the shared store does not answer and a policy's failover_mode is
// fail_closed (nothing could be allowed); degraded when a reload was
// refused, the audit log failed, or the store is down but failover lets
// calls through.
func (s *Server) Health(ctx context.Context) Health {
	ts := s.tenants.Load()
	h := Health{Status: "healthy", Version: "v1alpha2", Store: "none",
		UptimeSeconds: int64(s.cfg.Now().Sub(s.started) / time.Second)}
	as := s.cfg.Audit.Status()
	h.Audit = AuditHealth{Failures: as.Failures}
	for _, t := range ts.list {
		h.Policies = append(h.Policies, PolicyStatus{Name: t.name, Hash: t.core.Policy().Hash})
	}
	h.PolicyHash = h.Policies[0].Hash
	degrade := func(why string) {
		if h.Status == "healthy" {
			h.Status = "degraded"
		}
		h.Problems = append(h.Problems, why)
	}
	if msg := s.reloadErr.Load(); msg != nil && *msg != "" {
		degrade("policy reload refused (see the server log)")
	}
	if h.Audit.Failures > 0 {
		degrade("audit log writes failed")
	}
	if s.cfg.Ping != nil {
		err := s.pingStore(ctx)
		h.Store = "ok"
		if err != nil {
			h.Store = "unavailable"
			closed := false
			for _, t := range ts.list {
				closed = closed || t.core.Policy().ServerFailover() == "fail_closed"
			}
			if closed {
				h.Status = "unhealthy"
				h.Problems = append(h.Problems, "store unavailable and failover_mode is fail_closed")
			} else {
				degrade("store unavailable; failover_mode in effect")
			}
		}
	}
	if s.draining.Load() {
		h.Status = "unhealthy"
		h.Problems = append(h.Problems, "shutting down")
	}
	return h
}

func (s *Server) handleHealth(w http.ResponseWriter, r *http.Request) {
	h := s.Health(r.Context())
	status := http.StatusOK
	if h.Status == "unhealthy" {
		status = http.StatusServiceUnavailable
	}
	writeJSON(w, status, h)
}

// pingCache is the store's last answer to /health, reused for a second:
// /health is public, and a flood of it must not become a flood of store
// round trips that validation requests wait behind.
type pingCache struct {
	mu   sync.Mutex
	at   time.Time
	err  error
	done bool // at and err hold an answer
}

// pingStore asks the store whether it answers, at most once a second;
// concurrent callers wait for the one ping in flight.
func (s *Server) pingStore(ctx context.Context) error {
	c := &s.ping
	c.mu.Lock()
	defer c.mu.Unlock()
	now := s.cfg.Now()
	if c.done && !now.Before(c.at) && now.Sub(c.at) < time.Second {
		return c.err
	}
	// Not the caller's context: a client that hangs up must not leave
	// "unavailable" behind for everyone else.
	pctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 2*time.Second)
	c.err = s.cfg.Ping(pctx)
	cancel()
	c.at, c.done = now, true
	return c.err
}
