package cardcontroller

import (
	"errors"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/agentid/agentid/agentcard"
)

// Metrics are the controller's Prometheus metrics, with the Kagenti
// operator's names and labels so that its dashboards keep working:
//
//	a2a_signature_verification_total{provider="x5c",result,audit_mode}
//	a2a_signature_verification_duration_seconds{provider="x5c"}
//	kagenti_x5c_binding_trust_domain_mismatch_total
//
// result is success or failed; audit_mode is true or false.
type Metrics struct {
	verifications *prometheus.CounterVec
	duration      *prometheus.HistogramVec
	tdMismatch    prometheus.Counter
}

// NewMetrics creates the metrics and registers them with reg (the
// manager's registry in the operator).
func NewMetrics(reg prometheus.Registerer) (*Metrics, error) {
	m := &Metrics{
		verifications: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "a2a_signature_verification_total",
			Help: "AgentCard signature verifications by result and audit mode.",
		}, []string{"provider", "result", "audit_mode"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "a2a_signature_verification_duration_seconds",
			Help:    "Time to verify and bind one AgentCard.",
			Buckets: prometheus.ExponentialBuckets(0.0001, 2, 16),
		}, []string{"provider"}),
		tdMismatch: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "kagenti_x5c_binding_trust_domain_mismatch_total",
			Help: "Verified AgentCards whose signer is in another trust domain than the one bound to.",
		}),
	}
	for _, c := range []prometheus.Collector{m.verifications, m.duration, m.tdMismatch} {
		if err := reg.Register(c); err != nil {
			return nil, errors.Join(errors.New("cardcontroller: registering metrics"), err)
		}
	}
	return m, nil
}

// observe records one verification. A nil *Metrics records nothing.
func (m *Metrics) observe(res *agentcard.Result, audit bool, took time.Duration) {
	if m == nil {
		return
	}
	result := "failed"
	if res.Verified {
		result = "success"
	}
	m.verifications.WithLabelValues("x5c", result, strconv.FormatBool(audit)).Inc()
	m.duration.WithLabelValues("x5c").Observe(took.Seconds())
	if b := res.Binding; res.Verified && b != nil && !b.Bound && strings.Contains(b.Message, "does not belong to trust domain") {
		m.tdMismatch.Inc()
	}
}
