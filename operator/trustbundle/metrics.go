package trustbundle

import (
	"errors"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/spiffe/go-spiffe/v2/bundle/x509bundle"
)

// Metrics are the bundle's Prometheus metrics:
//
//	kagenti_x5c_trust_bundle_load_errors_total{reason}  (Kagenti's name)
//	agentid_trust_bundle_authorities                    X.509 authorities of the current bundles, 0 while they cannot be loaded
//	agentid_trust_bundle_trust_domains                  trust domains with a bundle, 0 while they cannot be loaded
//
// reason is configmap_not_found, empty_bundle, invalid_bundle or
// read_failed. A ConfigMap is parsed once per resourceVersion, so an error
// is counted once per change (or per failed read), not per reconcile.
type Metrics struct {
	loadErrors   *prometheus.CounterVec
	authorities  prometheus.Gauge
	trustDomains prometheus.Gauge
}

// NewMetrics creates the metrics and registers them with reg.
func NewMetrics(reg prometheus.Registerer) (*Metrics, error) {
	m := &Metrics{
		loadErrors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "kagenti_x5c_trust_bundle_load_errors_total",
			Help: "Trust bundle loads that failed, by reason.",
		}, []string{"reason"}),
		authorities: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "agentid_trust_bundle_authorities",
			Help: "X.509 authorities in the current trust bundles; 0 while they cannot be loaded.",
		}),
		trustDomains: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "agentid_trust_bundle_trust_domains",
			Help: "Trust domains with a bundle in the trust bundle ConfigMap; 0 while it cannot be loaded.",
		}),
	}
	for _, c := range []prometheus.Collector{m.loadErrors, m.authorities, m.trustDomains} {
		if err := reg.Register(c); err != nil {
			return nil, errors.Join(errors.New("trustbundle: registering metrics"), err)
		}
	}
	return m, nil
}

func (m *Metrics) loaded(set *x509bundle.Set, err error) {
	if m == nil {
		return
	}
	if err == nil {
		n := 0
		for _, b := range set.Bundles() {
			n += len(b.X509Authorities())
		}
		m.authorities.Set(float64(n))
		m.trustDomains.Set(float64(set.Len()))
		return
	}
	m.authorities.Set(0)
	m.trustDomains.Set(0)
	reason := "read_failed"
	switch {
	case errors.Is(err, ErrNotFound):
		reason = "configmap_not_found"
	case errors.Is(err, ErrEmpty):
		reason = "empty_bundle"
	case errors.Is(err, ErrInvalid):
		reason = "invalid_bundle"
	}
	m.loadErrors.WithLabelValues(reason).Inc()
}
