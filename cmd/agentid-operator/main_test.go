package main

import (
	"io"
	"os/exec"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/agentid/agentid/internal/testenv"
)

func TestParseFlags(t *testing.T) {
	bundle := []string{"--spire-trust-bundle-configmap", "spire-bundle", "--spire-trust-bundle-configmap-namespace", "spire-system"}
	tests := []struct {
		name    string
		args    []string
		env     map[string]string
		wantErr string
		check   func(t *testing.T, o options)
	}{{
		name: "the Kagenti flags fill the configuration",
		args: append([]string{"--require-a2a-signature", "--spire-trust-domain", "example.org", "--spire-trust-bundle-configmap-key", "bundle.crt", "--signature-audit-mode", "--leader-elect", "--spiffe-endpoint-socket", "unix:///run/spire/agent.sock"}, bundle...),
		check: func(t *testing.T, o options) {
			c := o.config
			if !c.RequireSignature || c.TrustDomain.Name() != "example.org" || c.Bundle.String() != "spire-system/spire-bundle" ||
				c.BundleKey != "bundle.crt" || !c.AuditMode || !c.LeaderElection || c.WorkloadAPIAddr != "unix:///run/spire/agent.sock" {
				t.Errorf("config = %+v", c)
			}
			if len(o.warnings) != 0 {
				t.Errorf("warnings = %v, want none", o.warnings)
			}
		},
	}, {
		name: "the trust domain comes from KAGENTI_SPIRE_TRUST_DOMAIN when the flag is not given",
		args: append([]string{"--require-a2a-signature"}, bundle...),
		env:  map[string]string{EnvTrustDomain: "env.example"},
		check: func(t *testing.T, o options) {
			if o.config.TrustDomain.Name() != "env.example" {
				t.Errorf("trust domain = %q", o.config.TrustDomain.Name())
			}
		},
	}, {
		name: "--rossoctl-labels sets the rossoctl label too, and it is off by default",
		args: append([]string{"--require-a2a-signature", "--spire-trust-domain", "flag.example", "--rossoctl-labels"}, bundle...),
		check: func(t *testing.T, o options) {
			if !o.config.RossoctlLabel {
				t.Error("RossoctlLabel = false")
			}
		},
	}, {
		name: "the flag wins over the environment",
		args: append([]string{"--require-a2a-signature", "--spire-trust-domain", "flag.example"}, bundle...),
		env:  map[string]string{EnvTrustDomain: "env.example"},
		check: func(t *testing.T, o options) {
			if o.config.TrustDomain.Name() != "flag.example" {
				t.Errorf("trust domain = %q", o.config.TrustDomain.Name())
			}
		},
	}, {
		name: "defaults: bundle key bundle.spiffe, metrics :8080, probes :8081, a warning that nothing is verified",
		args: nil,
		check: func(t *testing.T, o options) {
			c := o.config
			if c.BundleKey != "bundle.spiffe" || c.MetricsAddr != ":8080" || c.ProbeAddr != ":8081" || c.LeaderElection || o.logFormat != "json" || c.SVIDExpiryGracePeriod != 30*time.Minute || c.RossoctlLabel {
				t.Errorf("config = %+v, log format %q", c, o.logFormat)
			}
			if len(o.warnings) != 1 || !strings.Contains(o.warnings[0], "--require-a2a-signature is off") {
				t.Errorf("warnings = %v", o.warnings)
			}
		},
	}, {
		name: "--enforce-network-policies: the operator's namespace from $POD_NAMESPACE, its pods, DNS in kube-system by k8s-app=kube-dns",
		args: append([]string{"--require-a2a-signature", "--spire-trust-domain", "example.org", "--enforce-network-policies"}, bundle...),
		env:  map[string]string{EnvPodNamespace: "agentid-system"},
		check: func(t *testing.T, o options) {
			np := o.config.NetworkPolicies
			if np == nil {
				t.Fatal("no network policy configuration")
			}
			if np.OperatorNamespace != "agentid-system" || np.DNSNamespace != "kube-system" ||
				!reflect.DeepEqual(np.OperatorPods.MatchLabels, map[string]string{"app.kubernetes.io/name": "agentid-operator"}) ||
				np.DNSPods == nil || !reflect.DeepEqual(np.DNSPods.MatchLabels, map[string]string{"k8s-app": "kube-dns"}) {
				t.Errorf("network policy config = %+v", np)
			}
		},
	}, {
		name: "the --network-policy-* flags win over the environment; set-based selectors; DNS in any namespace; no DNS with an empty selector",
		args: append([]string{"--require-a2a-signature", "--spire-trust-domain", "example.org", "--enforce-network-policies",
			"--network-policy-operator-namespace", "ops", "--network-policy-operator-pod-selector", "app in (operator,operator-canary),!debug",
			"--network-policy-dns-namespace", "", "--network-policy-dns-pod-selector", ""}, bundle...),
		env: map[string]string{EnvPodNamespace: "agentid-system"},
		check: func(t *testing.T, o options) {
			np := o.config.NetworkPolicies
			if np == nil || np.OperatorNamespace != "ops" || np.DNSNamespace != "" || np.DNSPods != nil || len(np.OperatorPods.MatchExpressions) != 2 {
				t.Errorf("network policy config = %+v", np)
			}
		},
	}, {
		name: "without --enforce-network-policies there is no network policy configuration",
		args: append([]string{"--require-a2a-signature", "--spire-trust-domain", "example.org"}, bundle...),
		env:  map[string]string{EnvPodNamespace: "agentid-system"},
		check: func(t *testing.T, o options) {
			if o.config.NetworkPolicies != nil {
				t.Errorf("network policy config = %+v, want none", o.config.NetworkPolicies)
			}
		},
	}, {
		name: "--svid-expiry-grace-period sets the re-signing grace period (default 30m, 0 off)",
		args: append([]string{"--require-a2a-signature", "--spire-trust-domain", "example.org", "--svid-expiry-grace-period", "10m"}, bundle...),
		check: func(t *testing.T, o options) {
			if o.config.SVIDExpiryGracePeriod != 10*time.Minute || len(o.warnings) != 0 {
				t.Errorf("grace period %v, warnings %v", o.config.SVIDExpiryGracePeriod, o.warnings)
			}
		},
	}, {
		name: "discovery is on by default, as Kagenti's AgentCardSync, and --agentcard-discovery=false turns it off",
		args: []string{"--agentcard-discovery=false"},
		check: func(t *testing.T, o options) {
			if o.config.Discovery {
				t.Error("--agentcard-discovery=false left discovery on")
			}
			d, err := parseFlags(nil, func(string) string { return "" }, io.Discard)
			if err != nil || !d.config.Discovery {
				t.Errorf("by default discovery is %v (%v), want on", d.config.Discovery, err)
			}
		},
	},
		{name: "--require-a2a-signature without a trust domain is refused", args: append([]string{"--require-a2a-signature"}, bundle...), wantErr: "--spire-trust-domain"},
		{name: "--require-a2a-signature without the bundle ConfigMap is refused", args: []string{"--require-a2a-signature", "--spire-trust-domain", "example.org"}, wantErr: "--spire-trust-bundle-configmap"},
		{name: "an invalid trust domain is refused", args: []string{"--spire-trust-domain", "Example.ORG"}, wantErr: "--spire-trust-domain"},
		{name: "--enforce-network-policies without --require-a2a-signature is refused (it would isolate every agent)", args: []string{"--enforce-network-policies"}, env: map[string]string{EnvPodNamespace: "agentid-system"}, wantErr: "needs --require-a2a-signature"},
		{name: "--enforce-network-policies without the operator's namespace is refused", args: append([]string{"--require-a2a-signature", "--spire-trust-domain", "example.org", "--enforce-network-policies"}, bundle...), wantErr: "--network-policy-operator-namespace"},
		{name: "an empty operator pod selector is refused (it would admit every pod of the namespace)", args: append([]string{"--require-a2a-signature", "--spire-trust-domain", "example.org", "--enforce-network-policies", "--network-policy-operator-namespace", "ops", "--network-policy-operator-pod-selector", ""}, bundle...), wantErr: "pod selector is empty"},
		{name: "an unparsable operator pod selector is refused", args: append([]string{"--require-a2a-signature", "--spire-trust-domain", "example.org", "--enforce-network-policies", "--network-policy-operator-namespace", "ops", "--network-policy-operator-pod-selector", "app in ("}, bundle...), wantErr: "--network-policy-operator-pod-selector"},
		{name: "an unparsable DNS pod selector is refused", args: append([]string{"--require-a2a-signature", "--spire-trust-domain", "example.org", "--enforce-network-policies", "--network-policy-operator-namespace", "ops", "--network-policy-dns-pod-selector", "=x"}, bundle...), wantErr: "--network-policy-dns-pod-selector"},
		{name: "--spiffe-endpoint-socket without --require-a2a-signature is refused", args: []string{"--spiffe-endpoint-socket", "unix:///run/spire/agent.sock"}, wantErr: "--spiffe-endpoint-socket"},
		{name: "an unknown log format is refused", args: []string{"--log-format", "xml"}, wantErr: "--log-format"},
		{name: "stray arguments are refused", args: []string{"extra"}, wantErr: "unexpected arguments"},
		{name: "a non-positive refresh interval is refused", args: []string{"--spire-trust-bundle-refresh-interval", "0s"}, wantErr: "must be positive"},
		{name: "a negative grace period is refused", args: []string{"--svid-expiry-grace-period", "-1m"}, wantErr: "must not be negative"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o, err := parseFlags(tt.args, func(k string) string { return tt.env[k] }, io.Discard)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want one containing %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			tt.check(t, o)
		})
	}
}

// TestTheCLIDoesNotCarryKubernetes keeps client-go and controller-runtime
// out of cmd/agentid, which laptops run (DESIGN.md: two binaries).
func TestTheCLIDoesNotCarryKubernetes(t *testing.T) {
	gobin, err := exec.LookPath("go")
	if err != nil {
		t.Skip("go is not on PATH")
	}
	cmd := exec.Command(gobin, "list", "-deps", "./cmd/agentid")
	cmd.Dir = testenv.Root(t)
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	for _, pkg := range strings.Fields(string(out)) {
		if strings.HasPrefix(pkg, "k8s.io/") || strings.HasPrefix(pkg, "sigs.k8s.io/controller-runtime") ||
			strings.HasPrefix(pkg, "github.com/agentid/agentid/operator") || strings.HasPrefix(pkg, "github.com/agentid/agentid/api/") {
			t.Errorf("cmd/agentid depends on %s", pkg)
		}
	}
}
