package server

import (
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/agentid/agentid/aip"
	"github.com/agentid/agentid/audit"
	"github.com/agentid/agentid/enforce"
)

// metrics are the Prometheus metrics of spec §6.4.2, plus
// aip_fail_open_requests_total (§3.8.3). Each Server has its own registry:
// no global state.
type metrics struct {
	reg         *prometheus.Registry
	requests    *prometheus.CounterVec   // endpoint
	responses   *prometheus.CounterVec   // endpoint, code
	duration    *prometheus.HistogramVec // endpoint
	decisions   *prometheus.CounterVec   // decision
	violations  *prometheus.CounterVec   // type
	tokens      *prometheus.CounterVec   // result
	revocations *prometheus.CounterVec   // type
	failOpen    prometheus.Counter
	// refusedConns counts connections closed on accept because their
	// client address held its share of the listener's connections.
	refusedConns prometheus.Counter
	policyHash   *prometheus.GaugeVec // policy, hash
	srv          *Server

	// The counters of every call, looked up once rather than by label
	// values on each (a hash and a locked map lookup apiece).
	allowed, blocked, tokenValid, tokenInvalid prometheus.Counter
}

func newMetrics(s *Server) *metrics {
	m := &metrics{reg: prometheus.NewRegistry(), srv: s}
	m.requests = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "aip_requests_total", Help: "Requests, by endpoint (validate, token, revoke, jwks, health)."}, []string{"endpoint"})
	m.responses = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "aip_responses_total", Help: "Responses, by endpoint and HTTP status code."}, []string{"endpoint", "code"})
	m.duration = prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "aip_request_duration_seconds", Help: "Request latency, by endpoint.",
		Buckets: []float64{.0001, .00025, .0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5}}, []string{"endpoint"})
	m.decisions = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "aip_decisions_total", Help: "Validation decisions, by decision (allow, block, ask)."}, []string{"decision"})
	m.violations = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "aip_violations_total", Help: "Policy violations, by type."}, []string{"type"})
	m.tokens = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "aip_token_validations_total", Help: "Token validations, by result (valid, invalid)."}, []string{"result"})
	m.revocations = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "aip_revocations_total", Help: "Revocations, by type (session, token)."}, []string{"type"})
	m.failOpen = prometheus.NewCounter(prometheus.CounterOpts{Name: "aip_fail_open_requests_total", Help: "Requests let through by failover_mode fail_open while a store was unavailable."})
	m.refusedConns = prometheus.NewCounter(prometheus.CounterOpts{Name: "aip_connections_refused_total", Help: "Connections closed on accept because their client address already held its share of the listener's connections."})
	m.policyHash = prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "aip_policy_hash", Help: "The policy in force (1), by policy name and hash."}, []string{"policy", "hash"})
	active := prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "aip_active_sessions", Help: "Sessions with an unexpired token issued or accepted by this replica."},
		func() float64 { return float64(s.sessions.count(s.cfg.Now())) })
	m.reg.MustRegister(m.requests, m.responses, m.duration, m.decisions, m.violations, m.tokens, m.revocations, m.failOpen, m.refusedConns, m.policyHash, active)
	// Counters with a known label set start at zero, so that a dashboard
	// sees them before the first event.
	for _, e := range []string{"validate", "token", "revoke", "jwks", "health"} {
		m.requests.WithLabelValues(e)
	}
	m.decisions.WithLabelValues("ask")
	m.allowed, m.blocked = m.decisions.WithLabelValues("allow"), m.decisions.WithLabelValues("block")
	m.tokenValid, m.tokenInvalid = m.tokens.WithLabelValues("valid"), m.tokens.WithLabelValues("invalid")
	for _, t := range []string{"session", "token"} {
		m.revocations.WithLabelValues(t)
	}
	m.policyChanged()
	return m
}

// policyChanged sets aip_policy_hash to the policies in force.
func (m *metrics) policyChanged() {
	m.policyHash.Reset()
	for _, t := range m.srv.tenants.Load().list {
		m.policyHash.WithLabelValues(t.name, t.core.Policy().Hash).Set(1)
	}
}

func (m *metrics) checked(c enforce.Check, tokenPresented bool) {
	m.decisions.WithLabelValues(c.Decision).Inc()
	for _, v := range c.Violations {
		m.violations.WithLabelValues(v.Type).Inc()
	}
	if tokenPresented {
		m.tokenValidation(c.Token != nil)
	}
	for _, r := range c.Audit {
		if r.Event == enforce.EventFailover {
			m.failOpen.Inc()
		}
	}
}

func (m *metrics) tokenValidation(valid bool) {
	if valid {
		m.tokenValid.Inc()
	} else {
		m.tokenInvalid.Inc()
	}
}

func (m *metrics) revoked(typ string) { m.revocations.WithLabelValues(typ).Inc() }

func (m *metrics) handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{ErrorHandling: promhttp.ContinueOnError})
}

// instrument counts and times the requests of one endpoint.
func (m *metrics) instrument(endpoint string, h http.HandlerFunc) http.HandlerFunc {
	dur, count := m.duration.WithLabelValues(endpoint), m.requests.WithLabelValues(endpoint)
	// The response counters of the endpoint by status, each created on
	// its first response (a series appears once it counts something).
	var byStatus sync.Map // int -> prometheus.Counter
	responses := func(status int) prometheus.Counter {
		if c, ok := byStatus.Load(status); ok {
			return c.(prometheus.Counter)
		}
		c, _ := byStatus.LoadOrStore(status, m.responses.WithLabelValues(endpoint, strconv.Itoa(status)))
		return c.(prometheus.Counter)
	}
	return func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		count.Inc()
		sw := &statusWriter{ResponseWriter: w, status: http.StatusOK}
		h(sw, r)
		dur.Observe(time.Since(start).Seconds())
		responses(sw.status).Inc()
	}
}

type statusWriter struct {
	http.ResponseWriter
	status int
}

func (w *statusWriter) WriteHeader(code int) {
	w.status = code
	w.ResponseWriter.WriteHeader(code)
}

// Unwrap lets http.ResponseController reach the connection (flushes and
// write deadlines of event streams).
func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// Instrument counts and times the requests of an endpoint mounted beside
// the server's own (the gateway's MCP endpoint) in the server's metrics.
func (s *Server) Instrument(endpoint string, h http.HandlerFunc) http.HandlerFunc {
	return s.metrics.instrument(endpoint, h)
}

// Decided counts a decision made outside /v1/validate (a gateway's), from
// the audit records of its verdict: aip_decisions_total by the decision
// record, and aip_fail_open_requests_total.
func (s *Server) Decided(records []audit.Record) {
	m := s.metrics
	for _, r := range records {
		if r.Event == enforce.EventFailover {
			m.failOpen.Inc()
		}
	}
	if len(records) == 0 {
		return
	}
	switch records[len(records)-1].Decision {
	case aip.AuditAllow, aip.AuditAllowMonitor:
		m.allowed.Inc()
	case aip.AuditBlock, aip.AuditRateLimited:
		m.blocked.Inc()
	}
}

// TokenChecked counts a token validation made outside /v1/validate.
func (s *Server) TokenChecked(valid bool) { s.metrics.tokenValidation(valid) }
