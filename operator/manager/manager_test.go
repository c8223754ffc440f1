package manager

import (
	"context"
	"io"
	"log/slog"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/util/flowcontrol"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/envtest"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/spiffe/go-spiffe/v2/spiffeid"

	"github.com/agentid/agentid/api/v1alpha1"
	"github.com/agentid/agentid/internal/testenv"
	"github.com/agentid/agentid/operator/internal/cardtest"
	"github.com/agentid/agentid/operator/netpolicy"
)

func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// world is one API server (envtest) with an agent Deployment, its Service
// and the server that serves its card, and the operator as
// cmd/agentid-operator builds it, watching a trust bundle ConfigMap.
type world struct {
	c       client.Client
	bundle  *corev1.ConfigMap
	d       *appsv1.Deployment
	agent   *cardtest.Server
	probes  string
	metrics *prometheus.Registry
	cfg     *rest.Config
	env     *envtest.Environment
}

const ns, bundleNS = "agents", "spire-system"

func newWorld(t *testing.T, bundleData []byte) *world {
	t.Helper()
	assets := testenv.EnvtestAssets(t)
	env := &envtest.Environment{
		BinaryAssetsDirectory: assets,
		CRDDirectoryPaths:     []string{filepath.Join(testenv.Root(t), "deploy", "crd")},
		ErrorIfCRDPathMissing: true,
	}
	cfg, err := env.Start()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := env.Stop(); err != nil {
			t.Errorf("stopping envtest: %v", err)
		}
	})
	scheme := runtime.NewScheme()
	if err := clientgoscheme.AddToScheme(scheme); err != nil {
		t.Fatal(err)
	}
	if err := v1alpha1.AddToScheme(scheme); err != nil {
		t.Fatal(err)
	}
	c, err := client.New(cfg, client.Options{Scheme: scheme})
	if err != nil {
		t.Fatal(err)
	}
	w := &world{c: c, cfg: cfg, env: env, metrics: prometheus.NewRegistry()}
	w.create(t, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: bundleNS}})
	w.bundle = &corev1.ConfigMap{
		ObjectMeta: metav1.ObjectMeta{Namespace: bundleNS, Name: "spire-bundle"},
		Data:       map[string]string{"bundle.spiffe": string(bundleData)},
	}
	w.create(t, w.bundle)
	return w
}

// addWeather creates the weather agent in namespace agents: a ready
// Deployment whose pods run as weather-sa, its Service, and a server that
// serves card.
func (w *world) addWeather(t *testing.T, card []byte) {
	t.Helper()
	w.create(t, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}})
	one := int32(1)
	w.d = &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "weather", Labels: map[string]string{
			v1alpha1.LabelAgentType: v1alpha1.AgentTypeAgent, v1alpha1.LabelProtocolPrefix + "a2a": "",
		}},
		Spec: appsv1.DeploymentSpec{
			Replicas: &one,
			Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": "weather"}},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{"app": "weather"}},
				Spec:       corev1.PodSpec{ServiceAccountName: "weather-sa", Containers: []corev1.Container{{Name: "a", Image: "x"}}},
			},
		},
	}
	w.create(t, w.d)
	w.d.Status = appsv1.DeploymentStatus{Replicas: 1, Conditions: []appsv1.DeploymentCondition{{Type: appsv1.DeploymentAvailable, Status: corev1.ConditionTrue, Reason: "Test"}}}
	if err := w.c.Status().Update(t.Context(), w.d); err != nil {
		t.Fatal(err)
	}
	w.create(t, &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "weather"},
		Spec:       corev1.ServiceSpec{Selector: map[string]string{"app": "weather"}, Ports: []corev1.ServicePort{{Port: 8000}}},
	})
	w.agent = cardtest.NewServer(t, card)
}

// config is the operator's configuration for the weather agent.
func (w *world) config(t *testing.T) Config {
	w.probes = freeAddr(t)
	return Config{
		RequireSignature: true,
		TrustDomain:      spiffeid.RequireTrustDomainFromString("example.org"),
		Bundle:           types.NamespacedName{Namespace: bundleNS, Name: "spire-bundle"},
		MetricsAddr:      "0",
		ProbeAddr:        w.probes,
		ServiceURL:       func(*corev1.Service, corev1.ServicePort) string { return w.agent.URL },
		Logger:           slog.New(slog.NewTextHandler(io.Discard, nil)),
		Registerer:       w.metrics,
		testing:          true,
	}
}

// start runs the operator until the test ends.
func (w *world) start(t *testing.T, c Config) {
	t.Helper()
	stop := w.startUntil(t, t.Context(), c)
	t.Cleanup(stop)
}

// startUntil runs the operator until ctx ends; the returned function waits
// for it to stop.
func (w *world) startUntil(t *testing.T, ctx context.Context, c Config) func() {
	t.Helper()
	mgr, err := New(ctx, w.cfg, c)
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- mgr.Start(ctx) }()
	return func() {
		if err := <-done; err != nil {
			t.Errorf("manager: %v", err)
		}
	}
}

func (w *world) create(t *testing.T, o client.Object) {
	t.Helper()
	if err := w.c.Create(t.Context(), o); err != nil {
		t.Fatalf("creating %s: %v", o.GetName(), err)
	}
}

// card creates the AgentCard of the agent, with strict binding.
func (w *world) card(t *testing.T) *v1alpha1.AgentCard {
	t.Helper()
	card := &v1alpha1.AgentCard{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "weather-card"},
		Spec: v1alpha1.AgentCardSpec{
			TargetRef:       v1alpha1.TargetRef{APIVersion: "apps/v1", Kind: "Deployment", Name: "weather"},
			IdentityBinding: &v1alpha1.IdentityBinding{Strict: true},
		},
	}
	w.create(t, card)
	return card
}

func (w *world) setBundle(t *testing.T, data []byte) {
	t.Helper()
	w.bundle.Data["bundle.spiffe"] = string(data)
	if err := w.c.Update(t.Context(), w.bundle); err != nil {
		t.Fatal(err)
	}
}

// TestOperatorVerifiesAgainstTheWatchedBundle runs the whole operator
// against a real API server: the trust bundle comes from a ConfigMap, a
// card signed by its CA is verified and labelled, a rotation to another CA
// makes the same card unverified through the ConfigMap watch alone, and the
// probes answer.
func TestOperatorVerifiesAgainstTheWatchedBundle(t *testing.T) {
	ca := cardtest.NewCA(t, "example.org")
	svid := ca.SVID(t, "spiffe://example.org/ns/agents/sa/weather-sa")
	w := newWorld(t, ca.SPIFFEBundle(t))
	w.addWeather(t, cardtest.Sign(t, cardtest.Card("weather"), svid))
	w.start(t, w.config(t))
	c := w.c

	began := time.Now()
	card := w.card(t)
	waitCondition(t, c, card, v1alpha1.ConditionVerified, metav1.ConditionTrue)
	t.Logf("verified %v after the AgentCard was created", time.Since(began).Round(time.Millisecond))
	waitLabel(t, c, w.d, true)

	for _, path := range []string{"/healthz", "/readyz"} {
		resp, err := http.Get("http://" + w.probes + path)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Errorf("GET %s = %d, want 200", path, resp.StatusCode)
		}
	}

	// Rotate to a CA that did not sign the card: the bundle watch, not a
	// timer (the card's sync period is 30s), brings the change.
	other := cardtest.NewCA(t, "example.org")
	began = time.Now()
	w.setBundle(t, other.SPIFFEBundle(t))
	waitCondition(t, c, card, v1alpha1.ConditionVerified, metav1.ConditionFalse)
	t.Logf("unverified %v after the bundle rotated", time.Since(began).Round(time.Millisecond))
	waitLabel(t, c, w.d, false)

	// Restored, then deleted: a missing bundle is reported, and the label
	// is left alone.
	w.setBundle(t, ca.SPIFFEBundle(t))
	waitCondition(t, c, card, v1alpha1.ConditionVerified, metav1.ConditionTrue)
	waitLabel(t, c, w.d, true)
	if err := c.Delete(t.Context(), w.bundle); err != nil {
		t.Fatal(err)
	}
	got := waitCondition(t, c, card, v1alpha1.ConditionSynced, metav1.ConditionFalse)
	if s := meta.FindStatusCondition(got.Status.Conditions, v1alpha1.ConditionSynced); s.Reason != v1alpha1.ReasonTrustBundleUnavailable {
		t.Errorf("Synced = %s/%s, want TrustBundleUnavailable", s.Status, s.Reason)
	}
	waitLabel(t, c, w.d, true)

	// The rotation and the deletion show in the metrics too.
	want := map[string]bool{
		"a2a_signature_verification_total":           false,
		"kagenti_x5c_trust_bundle_load_errors_total": false,
		"agentid_trust_bundle_authorities":           false,
	}
	families, err := w.metrics.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range families {
		if _, ok := want[f.GetName()]; ok {
			want[f.GetName()] = true
		}
		switch f.GetName() {
		case "agentid_trust_bundle_authorities":
			if v := f.GetMetric()[0].GetGauge().GetValue(); v != 0 {
				t.Errorf("agentid_trust_bundle_authorities = %v after the bundle was deleted, want 0", v)
			}
		case "a2a_signature_verification_total":
			results := map[string]float64{}
			for _, m := range f.GetMetric() {
				for _, l := range m.GetLabel() {
					if l.GetName() == "result" {
						results[l.GetValue()] += m.GetCounter().GetValue()
					}
				}
			}
			if results["success"] < 2 || results["failed"] < 1 {
				t.Errorf("verifications by result = %v, want at least 2 successes and 1 failure", results)
			}
		}
	}
	for name, seen := range want {
		if !seen {
			t.Errorf("metric %s not registered", name)
		}
	}
}

// TestOperatorVerifiesSPIREMintedCards uses the real SPIRE: the bundle in
// the ConfigMap is what spire-server prints, and the cards are signed by
// the agentcard signer with SVIDs that spire-server minted.
func TestOperatorVerifiesSPIREMintedCards(t *testing.T) {
	spire := testenv.StartSPIREServer(t, "example.org")
	own := spire.Mint(t, "spiffe://example.org/ns/agents/sa/weather-sa", time.Hour)
	w := newWorld(t, spire.Bundle(t))
	w.addWeather(t, cardtest.Sign(t, cardtest.Card("weather"), own))
	w.start(t, w.config(t))

	card := w.card(t)
	got := waitCondition(t, w.c, card, v1alpha1.ConditionVerified, metav1.ConditionTrue)
	if got.Status.SignatureSpiffeID != "spiffe://example.org/ns/agents/sa/weather-sa" || !got.Status.BindingStatus.Bound {
		t.Errorf("signatureSpiffeId %q, bindingStatus %+v", got.Status.SignatureSpiffeID, got.Status.BindingStatus)
	}
	waitLabel(t, w.c, w.d, true)

	// The agent starts serving another agent's card, also minted by the
	// same SPIRE: signature fine, identity not the workload's.
	billing := spire.Mint(t, "spiffe://example.org/ns/agents/sa/billing-sa", time.Hour)
	w.agent.SetCard(cardtest.Sign(t, cardtest.Card("weather"), billing))
	// Nudge a reconcile now rather than in 30s: any change of the card's
	// spec (here a sync period) is one.
	patch := client.MergeFrom(got.DeepCopy())
	got.Spec.SyncPeriod = &metav1.Duration{Duration: 20 * time.Second}
	if err := w.c.Patch(t.Context(), got, patch); err != nil {
		t.Fatal(err)
	}
	got = waitCondition(t, w.c, card, v1alpha1.ConditionBound, metav1.ConditionFalse)
	if c := meta.FindStatusCondition(got.Status.Conditions, v1alpha1.ConditionSignatureVerified); c == nil || c.Status != metav1.ConditionTrue {
		t.Errorf("SignatureVerified = %+v, want True for a SPIRE-minted SVID", c)
	}
	waitCondition(t, w.c, card, v1alpha1.ConditionVerified, metav1.ConditionFalse)
	waitLabel(t, w.c, w.d, false)
}

// TestOperatorRestartPicksUpWhatChangedMeanwhile stops the operator after
// a card verified, lets the agent serve a tampered card while no operator
// runs, and starts a new one (with leader election, as in a cluster): it
// must refuse the card and remove the label on its first pass, from the
// state the API server holds, not from memory.
func TestOperatorRestartPicksUpWhatChangedMeanwhile(t *testing.T) {
	ca := cardtest.NewCA(t, "example.org")
	signed := cardtest.Sign(t, cardtest.Card("weather"), ca.SVID(t, "spiffe://example.org/ns/agents/sa/weather-sa"))
	w := newWorld(t, ca.SPIFFEBundle(t))
	w.addWeather(t, signed)
	w.create(t, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "agentid-system"}})

	cfg := w.config(t)
	cfg.LeaderElection, cfg.LeaderElectionNamespace = true, "agentid-system"
	ctx, cancel := context.WithCancel(t.Context())
	wait := w.startUntil(t, ctx, cfg)
	card := w.card(t)
	waitCondition(t, w.c, card, v1alpha1.ConditionVerified, metav1.ConditionTrue)
	waitLabel(t, w.c, w.d, true)
	cancel()
	wait()

	w.agent.SetCard([]byte(strings.Replace(string(signed), "test agent", "evil agent", 1)))
	cfg2 := w.config(t)
	cfg2.LeaderElection, cfg2.LeaderElectionNamespace = true, "agentid-system"
	cfg2.Registerer = prometheus.NewRegistry()
	began := time.Now()
	w.start(t, cfg2)
	got := waitCondition(t, w.c, card, v1alpha1.ConditionVerified, metav1.ConditionFalse)
	t.Logf("the restarted operator refused the tampered card %v after it started", time.Since(began).Round(time.Millisecond))
	if got.Status.Card != nil {
		t.Error("the restarted operator kept publishing the card it now rejects")
	}
	waitLabel(t, w.c, w.d, false)
}

func waitCondition(t *testing.T, c client.Client, card *v1alpha1.AgentCard, typ string, status metav1.ConditionStatus) *v1alpha1.AgentCard {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		var got v1alpha1.AgentCard
		if err := c.Get(t.Context(), client.ObjectKeyFromObject(card), &got); err != nil {
			t.Fatal(err)
		}
		if cond := meta.FindStatusCondition(got.Status.Conditions, typ); cond != nil && cond.Status == status {
			return &got
		}
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s=%s; conditions: %+v", typ, status, got.Status.Conditions)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func waitLabel(t *testing.T, c client.Client, d *appsv1.Deployment, want bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		var got appsv1.Deployment
		if err := c.Get(t.Context(), client.ObjectKeyFromObject(d), &got); err != nil {
			t.Fatal(err)
		}
		_, has := got.Spec.Template.Labels[v1alpha1.LabelSignatureVerified]
		if has == want {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for the label to be %v", want)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func TestARestConfigWithoutQPSIsNotRateLimitedOnTheClient(t *testing.T) {
	limiter := flowcontrol.NewTokenBucketRateLimiter(1, 1)
	for _, tc := range []struct {
		name    string
		in      rest.Config
		wantQPS float32
	}{
		{"no QPS: unlimited, as ctrl.GetConfig makes it", rest.Config{}, -1},
		{"a QPS of its own is kept", rest.Config{QPS: 50, Burst: 100}, 50},
		{"unlimited stays unlimited", rest.Config{QPS: -1}, -1},
		{"a rate limiter of its own is kept", rest.Config{RateLimiter: limiter}, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			in := tc.in
			got := unlimited(&in)
			if got.QPS != tc.wantQPS || got.Burst != tc.in.Burst || got.RateLimiter != tc.in.RateLimiter {
				t.Errorf("QPS %v, burst %d, limiter %v; want %v, %d, %v", got.QPS, got.Burst, got.RateLimiter, tc.wantQPS, tc.in.Burst, tc.in.RateLimiter)
			}
			if in.QPS != tc.in.QPS {
				t.Errorf("the caller's config was changed: QPS %v", in.QPS)
			}
		})
	}
}

func TestValidate(t *testing.T) {
	td := spiffeid.RequireTrustDomainFromString("example.org")
	b := types.NamespacedName{Namespace: "spire-system", Name: "spire-bundle"}
	for _, tt := range []struct {
		name string
		c    Config
		ok   bool
	}{
		{"without signature verification nothing is required", Config{}, true},
		{"verification with a trust domain and a bundle is valid", Config{RequireSignature: true, TrustDomain: td, Bundle: b}, true},
		{"verification without a trust domain is refused", Config{RequireSignature: true, Bundle: b}, false},
		{"verification without a bundle is refused", Config{RequireSignature: true, TrustDomain: td}, false},
		{"mTLS fetching with verification is valid", Config{RequireSignature: true, TrustDomain: td, Bundle: b, WorkloadAPIAddr: "unix:///run/spire/agent.sock"}, true},
		{"mTLS fetching without verification is refused", Config{WorkloadAPIAddr: "unix:///run/spire/agent.sock"}, false},
		{"network policies with verification are valid", Config{RequireSignature: true, TrustDomain: td, Bundle: b, NetworkPolicies: netpolConfig()}, true},
		{"network policies without verification are refused (every agent would be isolated)", Config{NetworkPolicies: netpolConfig()}, false},
		{"network policies without the operator's namespace are refused", Config{RequireSignature: true, TrustDomain: td, Bundle: b, NetworkPolicies: &netpolicy.Config{OperatorPods: netpolConfig().OperatorPods}}, false},
	} {
		if err := tt.c.Validate(); (err == nil) != tt.ok {
			t.Errorf("%s: Validate() = %v", tt.name, err)
		}
	}
}

func TestAnUnreachableWorkloadAPIFailsTheStart(t *testing.T) {
	ctx, cancel := context.WithTimeout(t.Context(), 500*time.Millisecond)
	defer cancel()
	sock := filepath.Join(t.TempDir(), "none.sock")
	if _, err := openWorkloadAPI(ctx, "unix://"+sock); err == nil || !strings.Contains(err.Error(), "no X509-SVID") {
		t.Fatalf("openWorkloadAPI = %v, want an error: the operator must not fall back to plain HTTP", err)
	}
	if _, err := openWorkloadAPI(ctx, "http://example.org"); err == nil {
		t.Fatal("openWorkloadAPI accepted an address that is no Workload API address")
	}
}
