package netpolicy

import (
	"errors"

	"github.com/prometheus/client_golang/prometheus"
)

// Metrics are the enforcement state (not Kagenti metrics: it has none for
// its policies):
//
//	agentid_network_policies{state}             AgentCards by the state of their policy
//	agentid_network_policy_apiserver_endpoints  API-server addresses found at the last restrictive build
//
// state is permissive, restrictive, audit (permissive in audit mode where
// enforce mode would restrict), conflict (a policy of that name that is not
// the card's), failed, or none (no workload to select, or a duplicate
// card). Only the leader reconciles, so other replicas report 0.
type Metrics struct {
	cards     *prometheus.GaugeVec
	apiServer prometheus.Gauge
}

// NewMetrics creates the metrics and registers them with reg.
func NewMetrics(reg prometheus.Registerer) (*Metrics, error) {
	m := &Metrics{
		cards: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "agentid_network_policies",
			Help: "AgentCards by the state of their NetworkPolicy (permissive, restrictive, audit, conflict, failed, none).",
		}, []string{"state"}),
		apiServer: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "agentid_network_policy_apiserver_endpoints",
			Help: "API-server addresses found in the EndpointSlices of default/kubernetes when a restrictive policy was last built; 0 means its API-server egress is denied.",
		}),
	}
	for _, s := range []string{statePermissive, stateRestrictive, stateAudit, stateConflict, stateFailed, stateNone} {
		m.cards.WithLabelValues(s)
	}
	for _, c := range []prometheus.Collector{m.cards, m.apiServer} {
		if err := reg.Register(c); err != nil {
			return nil, errors.Join(errors.New("netpolicy: registering metrics"), err)
		}
	}
	return m, nil
}

// move moves one card from state old (if had) to state now (if not "").
// A nil *Metrics records nothing.
func (m *Metrics) move(old string, had bool, now string) {
	if m == nil {
		return
	}
	if had {
		m.cards.WithLabelValues(old).Dec()
	}
	if now != "" {
		m.cards.WithLabelValues(now).Inc()
	}
}

func (m *Metrics) apiServerEndpoints(n int) {
	if m == nil {
		return
	}
	m.apiServer.Set(float64(n))
}
