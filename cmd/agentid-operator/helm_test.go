package main

import (
	"bytes"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/yaml"
	"sigs.k8s.io/controller-runtime/pkg/client"
	sigsyaml "sigs.k8s.io/yaml"

	"github.com/agentid/agentid/internal/testenv"
	"github.com/agentid/agentid/internal/testenv/generatedrbac"
)

// The Helm chart in deploy/helm/agentid-operator is rendered with the real
// helm CLI (built by scripts/ensure-helm.sh) and every rendered object is
// applied to a real API server (envtest), so a template that renders YAML
// the API server refuses, a field it does not know, or an argument the
// operator does not accept fails here.

func chartDir(t *testing.T) string {
	return filepath.Join(testenv.Root(t), "deploy", "helm", "agentid-operator")
}

// runHelm runs the helm CLI with its cache, configuration and data
// directories in a temporary directory, so that it neither reads nor writes
// the user's.
func runHelm(t *testing.T, args ...string) ([]byte, error) {
	t.Helper()
	bin := testenv.HelmBinary(t)
	home := t.TempDir()
	cmd := exec.Command(bin, args...)
	cmd.Env = append(os.Environ(),
		"HELM_CACHE_HOME="+filepath.Join(home, "cache"),
		"HELM_CONFIG_HOME="+filepath.Join(home, "config"),
		"HELM_DATA_HOME="+filepath.Join(home, "data"),
	)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return out, &helmError{err: err, stderr: stderr.String(), stdout: string(out)}
	}
	return out, nil
}

type helmError struct {
	err            error
	stderr, stdout string
}

func (e *helmError) Error() string {
	return e.err.Error() + ": " + strings.TrimSpace(e.stderr) + " " + strings.TrimSpace(e.stdout)
}

// renderChart runs helm template (CRDs included) and decodes its objects.
func renderChart(t *testing.T, release, namespace string, args ...string) []*unstructured.Unstructured {
	t.Helper()
	all := append([]string{"template", release, chartDir(t), "--namespace", namespace, "--include-crds"}, args...)
	out, err := runHelm(t, all...)
	if err != nil {
		t.Fatalf("helm template: %v", err)
	}
	var objs []*unstructured.Unstructured
	dec := yaml.NewYAMLOrJSONDecoder(bytes.NewReader(out), 4096)
	for {
		u := &unstructured.Unstructured{}
		if err := dec.Decode(&u.Object); err == io.EOF {
			break
		} else if err != nil {
			t.Fatalf("decoding the rendered chart: %v\n%s", err, out)
		}
		if len(u.Object) == 0 {
			continue
		}
		objs = append(objs, u)
	}
	return objs
}

func TestHelmChartLints(t *testing.T) {
	for _, tt := range []struct {
		name string
		args []string
	}{
		{"with the default values", nil},
		{"with every value set", []string{"-f", filepath.Join(chartDir(t), "ci", "all-values.yaml")}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			out, err := runHelm(t, append([]string{"lint", "--strict", chartDir(t)}, tt.args...)...)
			if err != nil {
				t.Fatalf("helm lint --strict: %v", err)
			}
			if !strings.Contains(string(out), "0 chart(s) failed") {
				t.Fatalf("helm lint did not report success:\n%s", out)
			}
		})
	}
}

// TestHelmChartRefusesConfigurationsTheOperatorRefuses: the chart fails at
// render time where the operator would fail at start, so that a broken
// release is never installed.
func TestHelmChartRefusesConfigurationsTheOperatorRefuses(t *testing.T) {
	tests := []struct {
		name    string
		set     string
		wantErr string
	}{
		{"verification without a trust domain", "signatureVerification.enabled=true,signatureVerification.spireTrustBundle.configMapNamespace=spire-system",
			"signatureVerification.spireTrustDomain is required"},
		{"verification without the bundle's namespace", "signatureVerification.enabled=true,signatureVerification.spireTrustDomain=example.org",
			"signatureVerification.spireTrustBundle.configMapNamespace is required"},
		{"audit mode without verification", "signatureVerification.auditMode=true", "need signatureVerification.enabled"},
		{"network policies without verification", "signatureVerification.enforceNetworkPolicies=true", "need signatureVerification.enabled"},
		{"rossoctl labels without verification", "signatureVerification.rossoctlLabels=true", "need signatureVerification.enabled"},
		{"no service account to run as", "serviceAccount.create=false", "serviceAccount.name is required"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := runHelm(t, "template", "agentid-operator", chartDir(t), "--set", tt.set)
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("helm template --set %s: %v; want an error containing %q", tt.set, err, tt.wantErr)
			}
		})
	}
}

// TestHelmChartInstalls renders the chart with the default values, with
// every value set (ci/all-values.yaml) and with RBAC and the
// ServiceAccount left to the cluster's administrator, applies each
// rendered object to a real API server by server-side apply (which refuses
// fields the schema does not declare), and checks that every value reached
// its flag or field.
func TestHelmChartInstalls(t *testing.T) {
	assets := testenv.EnvtestAssets(t)
	root := testenv.Root(t)
	testenv.HelmBinary(t) // before starting the API server: fail (or skip) at once
	c := emptyAPIServer(t, assets)
	rbac, err := generatedrbac.Read(root)
	if err != nil {
		t.Fatal(err)
	}
	wantRules := rbac.ClusterRole.Rules
	// The chart's Roles by the suffix of their names: each has the rules of
	// one Role of deploy/rbac/role.yaml, moved to the release's namespace
	// (the Lease) or the bundle's (the ConfigMap).
	wantRoles := map[string]*rbacv1.Role{"-leader-election": rbac.Role("agentid-system"), "-trust-bundle": rbac.Role("spire-system")}
	for suffix, r := range wantRoles {
		if r == nil {
			t.Fatalf("deploy/rbac/role.yaml has no Role for %s", suffix)
		}
	}
	wantCRD := generatedCRD(t, root)

	tests := []struct {
		name      string
		release   string
		namespace string
		// bundleNamespace is where the trust bundle's Role goes, if any.
		bundleNamespace string
		args            []string
		// kinds is how many objects of each kind the release has.
		kinds map[string]int
		check func(t *testing.T, d *appsv1.Deployment, o options, args []string)
	}{{
		name:      "default values",
		release:   "agentid-operator",
		namespace: "agentid-system",
		// Without verification no bundle is read: only the Lease's Role.
		kinds: map[string]int{"CustomResourceDefinition": 1, "ClusterRole": 1, "ClusterRoleBinding": 1, "Role": 1, "RoleBinding": 1, "ServiceAccount": 1, "Deployment": 1},
		check: func(t *testing.T, d *appsv1.Deployment, o options, _ []string) {
			if d.Name != "agentid-operator" || *d.Spec.Replicas != 2 {
				t.Errorf("Deployment %s with %d replicas, want agentid-operator with 2", d.Name, *d.Spec.Replicas)
			}
			cfg := o.config
			if cfg.RequireSignature || cfg.AuditMode || cfg.RossoctlLabel || cfg.Bundle.Name != "" || !cfg.TrustDomain.IsZero() {
				t.Errorf("the defaults verify signatures or name a bundle, as Kagenti's chart does not: %+v", cfg)
			}
			if !cfg.LeaderElection || cfg.LeaderElectionNamespace != "agentid-system" {
				t.Errorf("leader election %v in %q, want on in the release's namespace", cfg.LeaderElection, cfg.LeaderElectionNamespace)
			}
			if !cfg.Discovery {
				t.Error("discovery is off by default, unlike Kagenti's")
			}
			if cfg.MetricsAddr != ":8080" || cfg.ProbeAddr != ":8081" || cfg.MaxConcurrentReconciles != 4 || o.logFormat != "json" {
				t.Errorf("metrics %q, probes %q, workers %d, logs %s; want :8080, :8081, 4, json", cfg.MetricsAddr, cfg.ProbeAddr, cfg.MaxConcurrentReconciles, o.logFormat)
			}
			ctr := d.Spec.Template.Spec.Containers[0]
			if ctr.Image != "agentid-operator:dev" {
				t.Errorf("image %q, want agentid-operator:dev (the chart's appVersion)", ctr.Image)
			}
			if d.Spec.Template.Spec.ServiceAccountName != "agentid-operator" {
				t.Errorf("service account %q", d.Spec.Template.Spec.ServiceAccountName)
			}
			if len(d.Spec.Template.Spec.Volumes) != 0 {
				t.Errorf("volumes %v without spiffeCSIMountPath", d.Spec.Template.Spec.Volumes)
			}
		},
	}, {
		name:            "every value set",
		release:         "custom",
		namespace:       "agentid-custom",
		bundleNamespace: "spire-bundles",
		args:            []string{"-f", filepath.Join(chartDir(t), "ci", "all-values.yaml")},
		kinds:           map[string]int{"CustomResourceDefinition": 1, "ClusterRole": 1, "ClusterRoleBinding": 1, "Role": 2, "RoleBinding": 2, "ServiceAccount": 1, "Deployment": 1},
		check: func(t *testing.T, d *appsv1.Deployment, o options, args []string) {
			cfg := o.config
			if !cfg.RequireSignature || !cfg.AuditMode || cfg.TrustDomain.Name() != "example.org" || !cfg.RossoctlLabel {
				t.Errorf("signatureVerification.{enabled,auditMode,spireTrustDomain,rossoctlLabels} not passed on: %+v", cfg)
			}
			if cfg.Bundle.Namespace != "spire-bundles" || cfg.Bundle.Name != "trust-bundle" || cfg.BundleKey != "bundle.crt" {
				t.Errorf("spireTrustBundle: %v key %q, want spire-bundles/trust-bundle key bundle.crt", cfg.Bundle, cfg.BundleKey)
			}
			if cfg.Discovery {
				t.Error("discovery.enabled=false left discovery on")
			}
			if cfg.SVIDExpiryGracePeriod != 45*time.Minute {
				t.Errorf("svidExpiryGracePeriod: %v, want 45m", cfg.SVIDExpiryGracePeriod)
			}
			if cfg.WorkloadAPIAddr != "unix:///spiffe-workload-api/spire-agent.sock" {
				t.Errorf("spiffeEndpointSocket: %q", cfg.WorkloadAPIAddr)
			}
			for _, want := range []string{"--spire-trust-bundle-refresh-interval=10m", "--enforce-network-policies"} {
				if !slices.Contains(args, want) {
					t.Errorf("args %v lack %s", args, want)
				}
			}
			if !cfg.LeaderElection || cfg.LeaderElectionNamespace != "agentid-custom" {
				t.Errorf("leader election %v in %q", cfg.LeaderElection, cfg.LeaderElectionNamespace)
			}
			if cfg.MetricsAddr != ":9090" || cfg.ProbeAddr != ":9091" || cfg.MaxConcurrentReconciles != 8 || o.logFormat != "text" {
				t.Errorf("metrics %q, probes %q, workers %d, logs %s; want :9090, :9091, 8, text", cfg.MetricsAddr, cfg.ProbeAddr, cfg.MaxConcurrentReconciles, o.logFormat)
			}
			spec := d.Spec.Template.Spec
			ctr := spec.Containers[0]
			checks := []struct {
				what      string
				got, want any
			}{
				{"Deployment name (fullnameOverride)", d.Name, "agentid-op"},
				{"replicas", *d.Spec.Replicas, int32(3)},
				{"selector (nameOverride)", d.Spec.Selector.MatchLabels["app.kubernetes.io/name"], "agentid"},
				{"image", ctr.Image, "registry.example.org/agentid/agentid-operator:v0.1.0"},
				{"pull policy", ctr.ImagePullPolicy, corev1.PullAlways},
				{"pull secrets", spec.ImagePullSecrets, []corev1.LocalObjectReference{{Name: "registry-credentials"}}},
				{"service account", spec.ServiceAccountName, "agentid-operator-sa"},
				{"pod annotation", d.Spec.Template.Annotations["prometheus.io/scrape"], "true"},
				{"pod label", d.Spec.Template.Labels["example.org/team"], "identity"},
				{"memory limit", ctr.Resources.Limits.Memory().String(), "512Mi"},
				{"cpu request", ctr.Resources.Requests.Cpu().String(), "200m"},
				{"run as user", *spec.SecurityContext.RunAsUser, int64(65532)},
				{"privileged", *ctr.SecurityContext.Privileged, false},
				{"termination grace", *spec.TerminationGracePeriodSeconds, int64(30)},
				{"priority class", spec.PriorityClassName, "agentid-operator-critical"},
				{"node selector", spec.NodeSelector, map[string]string{"kubernetes.io/os": "linux"}},
				{"toleration", spec.Tolerations[0].Value, "identity"},
				{"affinity", spec.Affinity.PodAntiAffinity.PreferredDuringSchedulingIgnoredDuringExecution[0].Weight, int32(100)},
				{"metrics port", containerPort(ctr, "metrics"), int32(9090)},
				{"probe port", containerPort(ctr, "probes"), int32(9091)},
				{"CSI driver", spec.Volumes[0].CSI.Driver, "csi.spiffe.io"},
				{"CSI mount", ctr.VolumeMounts[0].MountPath, "/spiffe-workload-api"},
			}
			for _, c := range checks {
				if !reflect.DeepEqual(c.got, c.want) {
					t.Errorf("%s = %v, want %v", c.what, c.got, c.want)
				}
			}
		},
	}, {
		name:      "RBAC and the ServiceAccount left to the cluster's administrator",
		release:   "bare",
		namespace: "agentid-bare",
		args:      []string{"--set", "rbac.create=false,serviceAccount.create=false,serviceAccount.name=preexisting,metrics.enabled=false,leaderElection.enabled=false"},
		kinds:     map[string]int{"CustomResourceDefinition": 1, "Deployment": 1},
		check: func(t *testing.T, d *appsv1.Deployment, o options, _ []string) {
			if sa := d.Spec.Template.Spec.ServiceAccountName; sa != "preexisting" {
				t.Errorf("service account %q, want preexisting", sa)
			}
			if o.config.MetricsAddr != "0" || containerPort(d.Spec.Template.Spec.Containers[0], "metrics") != 0 {
				t.Errorf("metrics.enabled=false: address %q, port %d", o.config.MetricsAddr, containerPort(d.Spec.Template.Spec.Containers[0], "metrics"))
			}
			if o.config.LeaderElection {
				t.Error("leaderElection.enabled=false: still elects")
			}
		},
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx := t.Context()
			// helm install --create-namespace makes the namespace; the
			// chart does not template it.
			if err := c.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: tt.namespace}}); err != nil {
				t.Fatal(err)
			}
			if tt.bundleNamespace != "" {
				// SPIRE's namespace, which the chart does not own.
				if err := c.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: tt.bundleNamespace}}); err != nil {
					t.Fatal(err)
				}
			}
			kinds := map[string]int{}
			var deployment *appsv1.Deployment
			for _, u := range renderChart(t, tt.release, tt.namespace, tt.args...) {
				kinds[u.GetKind()]++
				// Apply a copy: Apply writes the server's answer into it, and
				// the checks below are of what the chart rendered.
				if err := c.Apply(ctx, client.ApplyConfigurationFromUnstructured(u.DeepCopy()), client.FieldOwner("helm-render-test"), client.ForceOwnership); err != nil {
					t.Fatalf("applying %s %s: %v", u.GetKind(), u.GetName(), err)
				}
				inBundleNamespace := (u.GetKind() == "Role" || u.GetKind() == "RoleBinding") && strings.HasSuffix(u.GetName(), "-trust-bundle")
				switch {
				case inBundleNamespace && u.GetNamespace() != tt.bundleNamespace:
					t.Errorf("%s %s is in namespace %q, not the trust bundle's %q", u.GetKind(), u.GetName(), u.GetNamespace(), tt.bundleNamespace)
				case !inBundleNamespace && u.GetNamespace() != "" && u.GetNamespace() != tt.namespace:
					t.Errorf("%s %s is in namespace %q, not the release's", u.GetKind(), u.GetName(), u.GetNamespace())
				}
				switch u.GetKind() {
				case "CustomResourceDefinition":
					waitEstablished(t, c, u.GetName())
					var crd apiextensionsv1.CustomResourceDefinition
					fromUnstructured(t, u, &crd)
					if !reflect.DeepEqual(crd.Spec, wantCRD.Spec) {
						t.Error("the chart's CRD differs from deploy/crd: run scripts/generate.sh")
					}
				case "ClusterRole":
					var role rbacv1.ClusterRole
					fromUnstructured(t, u, &role)
					if !reflect.DeepEqual(role.Rules, wantRules) {
						t.Errorf("the chart's ClusterRole rules differ from deploy/rbac/role.yaml:\n got %v\nwant %v", role.Rules, wantRules)
					}
				case "ClusterRoleBinding":
					var b rbacv1.ClusterRoleBinding
					fromUnstructured(t, u, &b)
					if len(b.Subjects) != 1 || b.Subjects[0].Namespace != tt.namespace || b.RoleRef.Name == "" {
						t.Errorf("ClusterRoleBinding %+v does not bind the release's ServiceAccount", b)
					}
				case "Role":
					var role rbacv1.Role
					fromUnstructured(t, u, &role)
					want := roleFor(wantRoles, role.Name)
					if want == nil || !reflect.DeepEqual(role.Rules, want.Rules) {
						t.Errorf("the chart's Role %s differs from deploy/rbac/role.yaml:\n got %v\nwant %v", role.Name, role.Rules, want)
					}
				case "RoleBinding":
					var b rbacv1.RoleBinding
					fromUnstructured(t, u, &b)
					if len(b.Subjects) != 1 || b.Subjects[0].Namespace != tt.namespace || b.RoleRef.Kind != "Role" || b.RoleRef.Name != b.Name {
						t.Errorf("RoleBinding %+v does not bind its Role to the release's ServiceAccount", b)
					}
				case "Deployment":
					deployment = &appsv1.Deployment{}
					fromUnstructured(t, u, deployment)
				}
			}
			if !reflect.DeepEqual(kinds, tt.kinds) {
				t.Errorf("rendered kinds %v, want %v", kinds, tt.kinds)
			}
			if deployment == nil {
				t.Fatal("no Deployment rendered")
			}
			var stored appsv1.Deployment
			if err := c.Get(ctx, client.ObjectKeyFromObject(deployment), &stored); err != nil {
				t.Fatal(err)
			}
			checkHardened(t, &stored)
			args := stored.Spec.Template.Spec.Containers[0].Args
			o, err := parseFlags(args, func(string) string { return "" }, io.Discard)
			if err != nil {
				t.Fatalf("the Deployment's args %v: %v", args, err)
			}
			tt.check(t, &stored, o, args)
		})
	}
}

// checkHardened checks the operator's pod as stored by the API server: not
// root, no privilege escalation, a read-only root, no capabilities, the
// runtime's seccomp profile, and probes on the probe port.
func checkHardened(t *testing.T, d *appsv1.Deployment) {
	t.Helper()
	spec := d.Spec.Template.Spec
	if len(spec.Containers) != 1 {
		t.Fatalf("%d containers, want 1", len(spec.Containers))
	}
	ctr := spec.Containers[0]
	psc, sc := spec.SecurityContext, ctr.SecurityContext
	switch {
	case psc == nil || psc.RunAsNonRoot == nil || !*psc.RunAsNonRoot:
		t.Error("the pod may run as root")
	case psc.SeccompProfile == nil || psc.SeccompProfile.Type != corev1.SeccompProfileTypeRuntimeDefault:
		t.Error("the pod has no RuntimeDefault seccomp profile")
	case sc == nil || sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation:
		t.Error("the container may escalate privileges")
	case sc.ReadOnlyRootFilesystem == nil || !*sc.ReadOnlyRootFilesystem:
		t.Error("the container's root filesystem is writable")
	case sc.Capabilities == nil || !slices.Contains(sc.Capabilities.Drop, "ALL") || len(sc.Capabilities.Add) > 0:
		t.Error("the container keeps capabilities")
	}
	for _, p := range []struct {
		probe *corev1.Probe
		path  string
	}{{ctr.LivenessProbe, "/healthz"}, {ctr.ReadinessProbe, "/readyz"}} {
		if p.probe == nil || p.probe.HTTPGet == nil || p.probe.HTTPGet.Path != p.path || p.probe.HTTPGet.Port.String() != "probes" {
			t.Errorf("no %s probe on the probes port: %+v", p.path, p.probe)
		}
	}
}

func containerPort(c corev1.Container, name string) int32 {
	for _, p := range c.Ports {
		if p.Name == name {
			return p.ContainerPort
		}
	}
	return 0
}

func fromUnstructured(t *testing.T, u *unstructured.Unstructured, into any) {
	t.Helper()
	if err := runtime.DefaultUnstructuredConverter.FromUnstructuredWithValidation(u.Object, into, true); err != nil {
		t.Fatalf("%s %s: %v", u.GetKind(), u.GetName(), err)
	}
}

// roleFor is the generated Role that the chart's Role name stands for.
func roleFor(roles map[string]*rbacv1.Role, name string) *rbacv1.Role {
	for suffix, r := range roles {
		if strings.HasSuffix(name, suffix) {
			return r
		}
	}
	return nil
}

func generatedCRD(t *testing.T, root string) *apiextensionsv1.CustomResourceDefinition {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(root, "deploy", "crd", "agent.kagenti.dev_agentcards.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var crd apiextensionsv1.CustomResourceDefinition
	if err := sigsyaml.UnmarshalStrict(bytes.TrimPrefix(data, []byte("---\n")), &crd); err != nil {
		t.Fatal(err)
	}
	return &crd
}
