// Command agentid-operator verifies the A2A AgentCards of agent workloads in
// a Kubernetes cluster and labels the workloads whose card is signed by
// their own SPIFFE identity; with --enforce-network-policies it isolates
// the pods of those whose card is not. Its flags are the Kagenti operator's.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"syscall"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	ctrl "sigs.k8s.io/controller-runtime"

	"github.com/spiffe/go-spiffe/v2/spiffeid"

	"github.com/agentid/agentid/api/v1alpha1"
	"github.com/agentid/agentid/operator/manager"
	"github.com/agentid/agentid/operator/netpolicy"
	"github.com/agentid/agentid/operator/trustbundle"
)

// EnvTrustDomain is read when --spire-trust-domain is not given, as by the
// Kagenti operator.
const EnvTrustDomain = "KAGENTI_SPIRE_TRUST_DOMAIN"

// EnvPodNamespace is the operator's own namespace, which the manifests set
// from the downward API; it is the default of
// --network-policy-operator-namespace.
const EnvPodNamespace = "POD_NAMESPACE"

func main() {
	opts, err := parseFlags(os.Args[1:], os.Getenv, os.Stderr)
	if errors.Is(err, flag.ErrHelp) {
		os.Exit(0)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "agentid-operator:", err)
		os.Exit(2)
	}
	logger := newLogger(opts.logFormat, os.Stderr)
	cfg := opts.config
	cfg.Logger = logger
	for _, w := range opts.warnings {
		logger.Warn(w)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, cfg); err != nil {
		logger.Error("agentid-operator stopped", "error", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, cfg manager.Config) error {
	restConfig, err := ctrl.GetConfig()
	if err != nil {
		return fmt.Errorf("kubeconfig: %w", err)
	}
	mgr, err := manager.New(ctx, restConfig, cfg)
	if err != nil {
		return err
	}
	return mgr.Start(ctx)
}

// options is what the command line says.
type options struct {
	config    manager.Config
	logFormat string
	// warnings are logged once the logger exists.
	warnings []string
}

// parseFlags reads the command line.
func parseFlags(args []string, getenv func(string) string, stderr io.Writer) (options, error) {
	fs := flag.NewFlagSet("agentid-operator", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var (
		cfg                manager.Config
		trustDomain        string
		bundleName         string
		bundleNamespace    string
		refresh            time.Duration
		enforceNetPolicies bool
		gracePeriod        time.Duration
		logFormat          string
		opNamespace        string
		opPods             string
		dnsNamespace       string
		dnsPods            string
	)
	fs.BoolVar(&cfg.RequireSignature, "require-a2a-signature", false, "verify AgentCard signatures and label verified workloads")
	fs.StringVar(&trustDomain, "spire-trust-domain", "", "trust domain that identityBinding binds to unless a card names its own (default $"+EnvTrustDomain+")")
	fs.StringVar(&bundleName, "spire-trust-bundle-configmap", "", "ConfigMap holding the SPIFFE trust bundle")
	fs.StringVar(&bundleNamespace, "spire-trust-bundle-configmap-namespace", "", "namespace of the trust bundle ConfigMap")
	fs.StringVar(&cfg.BundleKey, "spire-trust-bundle-configmap-key", trustbundle.DefaultKey, "key of the bundle in the ConfigMap (SPIFFE JSON or PEM)")
	fs.DurationVar(&refresh, "spire-trust-bundle-refresh-interval", 5*time.Minute, "accepted for compatibility: the bundle ConfigMap is watched, so a change applies at once")
	fs.BoolVar(&cfg.AuditMode, "signature-audit-mode", false, "record verification failures without removing labels or withholding cards")
	fs.BoolVar(&cfg.RossoctlLabel, "rossoctl-labels", false, "also set and remove agent.rossoctl.dev/signature-verified beside agent.kagenti.dev/signature-verified")
	fs.BoolVar(&enforceNetPolicies, "enforce-network-policies", false, "give every AgentCard a NetworkPolicy on its workload's pods: permissive while verified, restrictive otherwise (needs --require-a2a-signature)")
	fs.StringVar(&opNamespace, "network-policy-operator-namespace", "", "namespace of the operator's pods, the only ingress of a restrictive policy (default $"+EnvPodNamespace+")")
	fs.StringVar(&opPods, "network-policy-operator-pod-selector", "app.kubernetes.io/name=agentid-operator", "label selector of the operator's pods in that namespace")
	fs.StringVar(&dnsNamespace, "network-policy-dns-namespace", "kube-system", `namespace of the cluster DNS pods that a restrictive policy may reach on port 53 ("" for any namespace)`)
	fs.StringVar(&dnsPods, "network-policy-dns-pod-selector", "k8s-app=kube-dns", `label selector of the cluster DNS pods ("" allows no DNS)`)
	fs.DurationVar(&gracePeriod, "svid-expiry-grace-period", 30*time.Minute, "restart a verified workload this long before its SVID expires, or when its signing CA left the bundle, so that it signs its card again (0 turns it off)")
	fs.StringVar(&cfg.WorkloadAPIAddr, "spiffe-endpoint-socket", "", "SPIFFE Workload API address (unix:///...): fetch cards over SPIFFE mTLS and require the agent's server to be the card's signer")
	fs.BoolVar(&cfg.Discovery, "agentcard-discovery", true, "create an AgentCard for every Deployment and StatefulSet labelled "+v1alpha1.LabelAgentType+"="+v1alpha1.AgentTypeAgent+" with a protocol label that has none (a workload labelled "+v1alpha1.LabelDiscovery+"="+v1alpha1.DiscoveryDisabled+" opts out)")
	fs.IntVar(&cfg.MaxConcurrentReconciles, "max-concurrent-reconciles", 4, "AgentCards reconciled at once")
	fs.StringVar(&cfg.MetricsAddr, "metrics-bind-address", ":8080", `address of the metrics endpoint ("0" turns it off)`)
	fs.StringVar(&cfg.ProbeAddr, "health-probe-bind-address", ":8081", "address of the /healthz and /readyz endpoints")
	fs.BoolVar(&cfg.LeaderElection, "leader-elect", false, "elect a leader among replicas, so that one reconciles at a time")
	fs.StringVar(&cfg.LeaderElectionNamespace, "leader-election-namespace", "", "namespace of the leader election Lease (default: the operator's own)")
	fs.StringVar(&logFormat, "log-format", "json", "log format: json or text")
	if err := fs.Parse(args); err != nil {
		return options{}, err
	}
	if fs.NArg() > 0 {
		return options{}, fmt.Errorf("unexpected arguments: %v", fs.Args())
	}
	if logFormat != "json" && logFormat != "text" {
		return options{}, fmt.Errorf("--log-format %q: want json or text", logFormat)
	}
	if enforceNetPolicies {
		np, err := networkPolicyConfig(opNamespace, opPods, dnsNamespace, dnsPods, getenv)
		if err != nil {
			return options{}, err
		}
		cfg.NetworkPolicies = np
	}
	if cfg.MaxConcurrentReconciles < 1 {
		return options{}, errors.New("--max-concurrent-reconciles must be at least 1")
	}
	if refresh <= 0 {
		return options{}, errors.New("--spire-trust-bundle-refresh-interval must be positive")
	}
	if gracePeriod < 0 {
		return options{}, errors.New("--svid-expiry-grace-period must not be negative")
	}
	cfg.SVIDExpiryGracePeriod = gracePeriod
	if trustDomain == "" {
		trustDomain = getenv(EnvTrustDomain)
	}
	if trustDomain != "" {
		td, err := spiffeid.TrustDomainFromString(trustDomain)
		if err != nil {
			return options{}, fmt.Errorf("--spire-trust-domain %q: %w", trustDomain, err)
		}
		cfg.TrustDomain = td
	}
	cfg.Bundle = types.NamespacedName{Namespace: bundleNamespace, Name: bundleName}
	if err := cfg.Validate(); err != nil {
		return options{}, err
	}
	out := options{config: cfg, logFormat: logFormat}
	if !cfg.RequireSignature {
		out.warnings = append(out.warnings, "--require-a2a-signature is off: cards are fetched but not verified, and identity binding is never evaluated")
	}
	return out, nil
}

// networkPolicyConfig reads the --network-policy-* flags.
func networkPolicyConfig(opNamespace, opPods, dnsNamespace, dnsPods string, getenv func(string) string) (*netpolicy.Config, error) {
	if opNamespace == "" {
		opNamespace = getenv(EnvPodNamespace)
	}
	if opNamespace == "" {
		return nil, errors.New("--enforce-network-policies needs --network-policy-operator-namespace (or $" + EnvPodNamespace + ")")
	}
	c := &netpolicy.Config{OperatorNamespace: opNamespace, DNSNamespace: dnsNamespace}
	sel, err := metav1.ParseToLabelSelector(opPods)
	if err != nil {
		return nil, fmt.Errorf("--network-policy-operator-pod-selector %q: %w", opPods, err)
	}
	c.OperatorPods = sel
	if dnsPods != "" {
		if c.DNSPods, err = metav1.ParseToLabelSelector(dnsPods); err != nil {
			return nil, fmt.Errorf("--network-policy-dns-pod-selector %q: %w", dnsPods, err)
		}
	}
	if err := c.Validate(); err != nil {
		return nil, fmt.Errorf("--enforce-network-policies: %w", err)
	}
	return c, nil
}

func newLogger(format string, w io.Writer) *slog.Logger {
	if format == "text" {
		return slog.New(slog.NewTextHandler(w, nil))
	}
	return slog.New(slog.NewJSONHandler(w, nil))
}
