package manager

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"sync/atomic"
	"time"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	networkingv1 "k8s.io/api/networking/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/config"
	"sigs.k8s.io/controller-runtime/pkg/healthz"
	crmetrics "sigs.k8s.io/controller-runtime/pkg/metrics"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"

	"github.com/go-logr/logr"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/spiffe/go-spiffe/v2/spiffeid"
	"github.com/spiffe/go-spiffe/v2/svid/x509svid"
	"github.com/spiffe/go-spiffe/v2/workloadapi"

	"github.com/agentid/agentid/api/v1alpha1"
	"github.com/agentid/agentid/operator/cardcontroller"
	"github.com/agentid/agentid/operator/discovery"
	"github.com/agentid/agentid/operator/netpolicy"
	"github.com/agentid/agentid/operator/trustbundle"
)

// Config is the operator's configuration; the fields follow the Kagenti
// operator's flags.
type Config struct {
	// RequireSignature: --require-a2a-signature.
	RequireSignature bool
	// TrustDomain: --spire-trust-domain, else KAGENTI_SPIRE_TRUST_DOMAIN.
	TrustDomain spiffeid.TrustDomain
	// Bundle and BundleKey: --spire-trust-bundle-configmap,
	// --spire-trust-bundle-configmap-namespace and -key.
	Bundle    types.NamespacedName
	BundleKey string
	// AuditMode: --signature-audit-mode.
	AuditMode bool
	// RossoctlLabel: --rossoctl-labels.
	RossoctlLabel bool
	// SVIDExpiryGracePeriod: --svid-expiry-grace-period; 0 turns proactive
	// re-signing off.
	SVIDExpiryGracePeriod time.Duration
	// MaxConcurrentReconciles: --max-concurrent-reconciles; 0 means 4.
	MaxConcurrentReconciles int
	// Discovery (--agentcard-discovery) creates an AgentCard for every
	// agent workload that has none (package discovery).
	Discovery bool
	// WorkloadAPIAddr (--spiffe-endpoint-socket), when set, fetches every
	// card over SPIFFE mTLS with the operator's SVID from this Workload
	// API, and requires the agent's server to be the card's signer.
	WorkloadAPIAddr string
	// NetworkPolicies (--enforce-network-policies and the
	// --network-policy-* flags), when set, give every AgentCard a
	// NetworkPolicy that follows its verification.
	NetworkPolicies *netpolicy.Config

	// MetricsAddr and ProbeAddr are the listen addresses of the metrics
	// and health endpoints; "0" turns one off.
	MetricsAddr string
	ProbeAddr   string
	// LeaderElection, with LeaderElectionNamespace (empty: the pod's own),
	// lets one of several replicas reconcile at a time.
	LeaderElection          bool
	LeaderElectionNamespace string

	// ServiceURL overrides how an agent's Service becomes a URL (tests
	// only); nil means cluster DNS.
	ServiceURL func(*corev1.Service, corev1.ServicePort) string
	// Logger is where the manager and controllers log; nil means
	// slog.Default().
	Logger *slog.Logger
	// Registerer takes the operator's metrics; nil means the manager's
	// registry, which its metrics endpoint serves.
	Registerer prometheus.Registerer

	// testing allows several managers in one process (controller-runtime
	// refuses two controllers of one name process-wide otherwise).
	testing bool
}

// LeaderElectionID is the Lease that replicas of the operator share.
const LeaderElectionID = "agentid-operator.agent.kagenti.dev"

// Validate reports a configuration that cannot work, as the Kagenti
// operator refuses it: verifying signatures needs a trust domain and the
// bundle's ConfigMap.
func (c *Config) Validate() error {
	if !c.RequireSignature {
		var errs []error
		if c.WorkloadAPIAddr != "" {
			errs = append(errs, errors.New("--spiffe-endpoint-socket needs --require-a2a-signature"))
		}
		if c.NetworkPolicies != nil {
			// Kagenti accepts it and isolates every agent.
			errs = append(errs, errors.New("--enforce-network-policies needs --require-a2a-signature: without verification every agent would be isolated"))
		}
		return errors.Join(errs...)
	}
	var errs []error
	if c.NetworkPolicies != nil {
		if err := c.NetworkPolicies.Validate(); err != nil {
			errs = append(errs, fmt.Errorf("--enforce-network-policies: %w", err))
		}
	}
	if c.TrustDomain.IsZero() {
		errs = append(errs, errors.New("--require-a2a-signature needs --spire-trust-domain (or KAGENTI_SPIRE_TRUST_DOMAIN)"))
	}
	if c.Bundle.Name == "" || c.Bundle.Namespace == "" {
		errs = append(errs, errors.New("--require-a2a-signature needs --spire-trust-bundle-configmap and --spire-trust-bundle-configmap-namespace"))
	}
	return errors.Join(errs...)
}

// New builds the operator's manager on the cluster that restConfig
// reaches. Run it with its Start method. A restConfig that sets no QPS is
// not rate limited on the client (see unlimited).
func New(ctx context.Context, restConfig *rest.Config, c Config) (ctrl.Manager, error) {
	if err := c.Validate(); err != nil {
		return nil, fmt.Errorf("manager: %w", err)
	}
	restConfig = unlimited(restConfig)
	logger := c.Logger
	if logger == nil {
		logger = slog.Default()
	}
	log := logr.FromSlogHandler(logger.Handler())
	ctrl.SetLogger(log)

	scheme := runtime.NewScheme()
	if err := clientgoscheme.AddToScheme(scheme); err != nil {
		return nil, fmt.Errorf("manager: %w", err)
	}
	if err := v1alpha1.AddToScheme(scheme); err != nil {
		return nil, fmt.Errorf("manager: %w", err)
	}

	// Only the bundle's ConfigMap is cached; without a bundle, a name
	// that no ConfigMap can have keeps the cache empty.
	cmNamespace, cmName := c.Bundle.Namespace, c.Bundle.Name
	if cmName == "" {
		cmNamespace, cmName = "kube-system", "agentid-operator.no-bundle-configured"
	}
	byObject := map[client.Object]cache.ByObject{
		&corev1.ConfigMap{}: {
			Namespaces: map[string]cache.Config{cmNamespace: {}},
			Field:      fields.OneTermEqualSelector("metadata.name", cmName),
		},
	}
	if c.NetworkPolicies != nil {
		// Only the operator's own policies and the API server's
		// EndpointSlices are cached.
		byObject[&networkingv1.NetworkPolicy{}] = cache.ByObject{
			Label: labels.SelectorFromSet(labels.Set{netpolicy.LabelManagedBy: netpolicy.ManagedBy}),
		}
		byObject[&discoveryv1.EndpointSlice{}] = cache.ByObject{
			Namespaces: map[string]cache.Config{netpolicy.APIServerNamespace: {}},
			Label:      labels.SelectorFromSet(labels.Set{discoveryv1.LabelServiceName: netpolicy.APIServerService}),
		}
	}
	mgr, err := ctrl.NewManager(restConfig, ctrl.Options{
		Scheme:                        scheme,
		Logger:                        log,
		Metrics:                       metricsserver.Options{BindAddress: c.MetricsAddr},
		HealthProbeBindAddress:        c.ProbeAddr,
		LeaderElection:                c.LeaderElection,
		LeaderElectionID:              LeaderElectionID,
		LeaderElectionNamespace:       c.LeaderElectionNamespace,
		LeaderElectionReleaseOnCancel: true,
		Controller:                    config.Controller{SkipNameValidation: &c.testing},
		Cache:                         cache.Options{ByObject: byObject},
	})
	if err != nil {
		return nil, fmt.Errorf("manager: %w", err)
	}

	reg := c.Registerer
	if reg == nil {
		reg = crmetrics.Registry
	}
	cardMetrics, err := cardcontroller.NewMetrics(reg)
	if err != nil {
		return nil, fmt.Errorf("manager: %w", err)
	}
	var bundles cardcontroller.BundleSource
	if c.Bundle.Name != "" {
		bundleMetrics, err := trustbundle.NewMetrics(reg)
		if err != nil {
			return nil, fmt.Errorf("manager: %w", err)
		}
		cm, err := trustbundle.NewConfigMap(mgr.GetClient(), c.Bundle, c.BundleKey, c.TrustDomain, trustbundle.WithMetrics(bundleMetrics))
		if err != nil {
			return nil, fmt.Errorf("manager: %w", err)
		}
		bundles = cm
	}
	var svids x509svid.Source
	if c.WorkloadAPIAddr != "" {
		src, err := openWorkloadAPI(ctx, c.WorkloadAPIAddr)
		if err != nil {
			return nil, err
		}
		if err := mgr.Add(ctrlRunnable(func(ctx context.Context) error {
			<-ctx.Done()
			return src.Close()
		})); err != nil {
			src.Close()
			return nil, fmt.Errorf("manager: %w", err)
		}
		svids = src
	}
	recorder := mgr.GetEventRecorder("agentid-operator")
	var policies *netpolicy.Enforcer
	if c.NetworkPolicies != nil {
		m, err := netpolicy.NewMetrics(reg)
		if err != nil {
			return nil, fmt.Errorf("manager: %w", err)
		}
		policies, err = netpolicy.NewEnforcer(netpolicy.Options{
			Client:    mgr.GetClient(),
			APIReader: mgr.GetAPIReader(),
			Recorder:  recorder,
			Config:    *c.NetworkPolicies,
			Metrics:   m,
		})
		if err != nil {
			return nil, fmt.Errorf("manager: %w", err)
		}
	}
	r, err := cardcontroller.New(mgr.GetClient(), bundles, recorder, cardcontroller.Options{
		RequireSignature:  c.RequireSignature,
		TrustDomain:       c.TrustDomain,
		AuditMode:         c.AuditMode,
		RossoctlLabel:     c.RossoctlLabel,
		ServiceURL:        c.ServiceURL,
		Metrics:           cardMetrics,
		SVIDs:             svids,
		ResignGracePeriod: c.SVIDExpiryGracePeriod,
		NetworkPolicies:   policies,
	})
	if err != nil {
		return nil, fmt.Errorf("manager: %w", err)
	}
	if err := r.Setup(ctx, mgr, cardcontroller.SetupOptions{Bundle: c.Bundle, MaxConcurrentReconciles: c.MaxConcurrentReconciles}); err != nil {
		return nil, fmt.Errorf("manager: %w", err)
	}

	if c.Discovery {
		// Cards that discovery creates bind to the trust domain when the
		// operator has one, as Kagenti's auto-created cards do.
		rs, err := discovery.New(mgr.GetClient(), mgr.GetEventRecorder("agentid-operator"), discovery.Options{BindIdentity: !c.TrustDomain.IsZero()})
		if err != nil {
			return nil, fmt.Errorf("manager: %w", err)
		}
		for _, r := range rs {
			if err := r.Setup(mgr); err != nil {
				return nil, fmt.Errorf("manager: %w", err)
			}
		}
	}

	if err := mgr.AddHealthzCheck("ping", healthz.Ping); err != nil {
		return nil, fmt.Errorf("manager: %w", err)
	}
	synced := &cacheSynced{}
	if err := mgr.Add(synced.runnable(mgr.GetCache())); err != nil {
		return nil, fmt.Errorf("manager: %w", err)
	}
	if err := mgr.AddReadyzCheck("cache-synced", synced.check); err != nil {
		return nil, fmt.Errorf("manager: %w", err)
	}
	return mgr, nil
}

// unlimited returns restConfig, or when it sets neither QPS nor a rate
// limiter, a copy with client-side rate limiting off (QPS -1), as
// ctrl.GetConfig returns it. Left at 0, client-go would allow 5 requests
// per second (burst 10): a new verified card costs five writes (finalizer,
// status, label, two events), so a start with 500 cards would take minutes.
// The API server's priority and fairness paces the operator instead.
func unlimited(restConfig *rest.Config) *rest.Config {
	if restConfig.QPS != 0 || restConfig.RateLimiter != nil {
		return restConfig
	}
	cp := rest.CopyConfig(restConfig)
	cp.QPS = -1
	return cp
}

// workloadAPIWait bounds the wait for the operator's first SVID.
const workloadAPIWait = 30 * time.Second

// openWorkloadAPI connects to the SPIFFE Workload API at addr and waits for
// the operator's first X509-SVID. Failing is an error: the operator never
// falls back to plain HTTP when mTLS was asked for.
func openWorkloadAPI(ctx context.Context, addr string) (*workloadapi.X509Source, error) {
	if err := workloadapi.ValidateAddress(addr); err != nil {
		return nil, fmt.Errorf("manager: --spiffe-endpoint-socket: %w", err)
	}
	wait, cancel := context.WithTimeout(ctx, workloadAPIWait)
	defer cancel()
	src, err := workloadapi.NewX509Source(wait, workloadapi.WithClientOptions(workloadapi.WithAddr(addr)))
	if err != nil {
		return nil, fmt.Errorf("manager: no X509-SVID from the Workload API at %s: %w", addr, err)
	}
	return src, nil
}

// cacheSynced is a readiness check that passes once the manager's caches
// have synced, so that a replica is not ready while it still sees an empty
// cluster.
type cacheSynced struct{ done atomic.Bool }

func (s *cacheSynced) runnable(c cache.Cache) ctrlRunnable {
	return ctrlRunnable(func(ctx context.Context) error {
		if c.WaitForCacheSync(ctx) {
			s.done.Store(true)
		}
		<-ctx.Done()
		return nil
	})
}

func (s *cacheSynced) check(*http.Request) error {
	if !s.done.Load() {
		return errors.New("caches not synced yet")
	}
	return nil
}

// ctrlRunnable is a manager.Runnable that does not need leader election:
// every replica reports its own readiness.
type ctrlRunnable func(context.Context) error

func (f ctrlRunnable) Start(ctx context.Context) error { return f(ctx) }

// NeedLeaderElection implements manager.LeaderElectionRunnable.
func (ctrlRunnable) NeedLeaderElection() bool { return false }
