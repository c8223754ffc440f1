package cardcontroller

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/client-go/rest"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	ctrlconfig "sigs.k8s.io/controller-runtime/pkg/config"
	"sigs.k8s.io/controller-runtime/pkg/envtest"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	"github.com/agentid/agentid/api/v1alpha1"
	"github.com/agentid/agentid/internal/testenv"
	"github.com/agentid/agentid/internal/testenv/generatedrbac"
	"github.com/agentid/agentid/operator/netpolicy"
)

// The envtest suites run against a real kube-apiserver and etcd (built by
// scripts/ensure-envtest.sh), shared by the tests of this package: started
// by the first test that needs it, stopped by TestMain.

var shared struct {
	once sync.Once
	env  *envtest.Environment
	cfg  *rest.Config
	err  error
}

func TestMain(m *testing.M) {
	code := m.Run()
	if shared.env != nil {
		if err := shared.env.Stop(); err != nil {
			os.Stderr.WriteString("stopping envtest: " + err.Error() + "\n")
		}
	}
	os.Exit(code)
}

// apiServer returns the config of the shared API server, with the AgentCard
// CRD of deploy/crd installed.
func apiServer(t *testing.T) *rest.Config {
	t.Helper()
	assets := testenv.EnvtestAssets(t)
	root := testenv.Root(t)
	shared.once.Do(func() {
		began := time.Now()
		shared.env = &envtest.Environment{
			BinaryAssetsDirectory: assets,
			CRDDirectoryPaths:     []string{filepath.Join(root, "deploy", "crd")},
			ErrorIfCRDPathMissing: true,
		}
		shared.cfg, shared.err = shared.env.Start()
		if shared.err != nil {
			shared.env = nil
		}
		t.Logf("envtest started in %v", time.Since(began).Round(time.Millisecond))
	})
	if shared.err != nil {
		t.Fatalf("starting envtest: %v", shared.err)
	}
	return shared.cfg
}

// apiClient is a direct (uncached) client of the shared API server.
func apiClient(t *testing.T) client.Client {
	t.Helper()
	c, err := client.New(apiServer(t), client.Options{Scheme: newScheme(t)})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestScenariosEnvtest(t *testing.T) {
	c := apiClient(t)
	runScenarios(t, func(t *testing.T) client.Client { return c })
}

// TestCRDValidation checks the schema and CEL rules of deploy/crd on the
// real API server.
func TestCRDValidation(t *testing.T) {
	c := apiClient(t)
	ctx := t.Context()
	ns := "crd-validation"
	if err := c.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}); err != nil {
		t.Fatal(err)
	}
	target := v1alpha1.TargetRef{APIVersion: "apps/v1", Kind: "Deployment", Name: "weather"}
	tests := []struct {
		name    string
		spec    v1alpha1.AgentCardSpec
		wantErr string // "" means accepted
	}{
		{"a card with a target and nothing else is accepted", v1alpha1.AgentCardSpec{TargetRef: target}, ""},
		{"a target without a name is refused", v1alpha1.AgentCardSpec{TargetRef: v1alpha1.TargetRef{APIVersion: "apps/v1", Kind: "Deployment"}}, "spec.targetRef.name"},
		{"a sync period under a second is refused", v1alpha1.AgentCardSpec{TargetRef: target, SyncPeriod: &metav1.Duration{Duration: 10 * time.Millisecond}}, "syncPeriod must be between 1s and 24h"},
		{"a sync period over a day is refused", v1alpha1.AgentCardSpec{TargetRef: target, SyncPeriod: &metav1.Duration{Duration: 25 * time.Hour}}, "syncPeriod must be between 1s and 24h"},
		{"an upper-case trust domain is refused (SPIFFE trust domains are lower case)", v1alpha1.AgentCardSpec{TargetRef: target, IdentityBinding: &v1alpha1.IdentityBinding{TrustDomain: "Example.org"}}, "spec.identityBinding.trustDomain"},
		{"an expected ID outside the card's trust domain is refused", v1alpha1.AgentCardSpec{TargetRef: target, IdentityBinding: &v1alpha1.IdentityBinding{TrustDomain: "example.org", ExpectedSpiffeID: "spiffe://other.org/ns/a/sa/b"}}, "expectedSpiffeID must be in trustDomain"},
		{"an expected ID in the card's trust domain is accepted", v1alpha1.AgentCardSpec{TargetRef: target, IdentityBinding: &v1alpha1.IdentityBinding{TrustDomain: "example.org", ExpectedSpiffeID: "spiffe://example.org/ns/a/sa/*"}}, ""},
		{"an expected ID that is not a SPIFFE ID is refused", v1alpha1.AgentCardSpec{TargetRef: target, IdentityBinding: &v1alpha1.IdentityBinding{ExpectedSpiffeID: "https://example.org/a"}}, "spec.identityBinding.expectedSpiffeID"},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			card := &v1alpha1.AgentCard{
				ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "card-" + string(rune('a'+i))},
				Spec:       tt.spec,
			}
			err := c.Create(ctx, card)
			switch {
			case tt.wantErr == "" && err != nil:
				t.Fatalf("refused: %v", err)
			case tt.wantErr != "" && err == nil:
				t.Fatalf("accepted, want an error about %s", tt.wantErr)
			case tt.wantErr != "" && !strings.Contains(err.Error(), tt.wantErr):
				t.Fatalf("error %v, want one about %s", err, tt.wantErr)
			}
			if err == nil && tt.spec.SyncPeriod == nil {
				if card.Spec.SyncPeriod == nil || card.Spec.SyncPeriod.Duration != DefaultSyncPeriod {
					t.Errorf("syncPeriod = %v, want the default 30s", card.Spec.SyncPeriod)
				}
			}
		})
	}
}

// TestCRDValidationOfRawSyncPeriods sends sync periods that are no Go
// duration at all, which the typed API cannot express.
func TestCRDValidationOfRawSyncPeriods(t *testing.T) {
	c := apiClient(t)
	ctx := t.Context()
	ns := "crd-validation-raw"
	if err := c.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}); err != nil {
		t.Fatal(err)
	}
	for _, period := range []string{"soon", "30", "-5s", "1d"} {
		u := &unstructured.Unstructured{Object: map[string]any{
			"apiVersion": "agent.kagenti.dev/v1alpha1",
			"kind":       "AgentCard",
			"metadata":   map[string]any{"name": "raw", "namespace": ns},
			"spec": map[string]any{
				"targetRef":  map[string]any{"apiVersion": "apps/v1", "kind": "Deployment", "name": "w"},
				"syncPeriod": period,
			},
		}}
		if err := c.Create(ctx, u); err == nil || !strings.Contains(err.Error(), "spec.syncPeriod") {
			t.Errorf("syncPeriod %q: %v, want a refusal naming spec.syncPeriod", period, err)
		}
	}
}

// startManager runs the controller in a real manager on the shared API
// server until the test ends.
func startManager(t *testing.T, f *fixture) {
	t.Helper()
	mgr, err := ctrl.NewManager(apiServer(t), ctrl.Options{
		Scheme:     newScheme(t),
		Metrics:    metricsserver.Options{BindAddress: "0"},
		Controller: ctrlconfig.Controller{SkipNameValidation: ptrTrue()},
	})
	if err != nil {
		t.Fatal(err)
	}
	opts := f.opts
	if f.netpol {
		e, err := netpolicy.NewEnforcer(netpolicy.Options{Client: mgr.GetClient(), APIReader: mgr.GetAPIReader(), Recorder: f.recorder, Config: testNetpolConfig()})
		if err != nil {
			t.Fatal(err)
		}
		opts.NetworkPolicies = e
	}
	r, err := New(mgr.GetClient(), f.bundle, f.recorder, opts)
	if err != nil {
		t.Fatal(err)
	}
	if err := r.Setup(t.Context(), mgr, SetupOptions{}); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- mgr.Start(t.Context()) }()
	t.Cleanup(func() {
		if err := <-done; err != nil {
			t.Errorf("manager: %v", err)
		}
	})
}

func ptrTrue() *bool { b := true; return &b }

// TestManagerReconcilesOnWatch runs the controller in a real manager: the
// card is verified as soon as the Deployment turns ready, through the
// watch, without calling Reconcile by hand.
func TestManagerReconcilesOnWatch(t *testing.T) {
	c := apiClient(t)
	f := newFixture(t, c, newCAs(t))
	f.setDeploymentReadyByName(f.name, false)
	f.serve(validCard(f))
	startManager(t, f)

	card := f.card(&v1alpha1.IdentityBinding{Strict: true})
	waitFor(t, f, card, func(ac *v1alpha1.AgentCard) bool {
		c := meta.FindStatusCondition(ac.Status.Conditions, v1alpha1.ConditionSynced)
		return c != nil && c.Reason == v1alpha1.ReasonWorkloadNotReady
	})
	began := time.Now()
	f.setDeploymentReadyByName(f.name, true)
	waitFor(t, f, card, func(ac *v1alpha1.AgentCard) bool {
		return meta.IsStatusConditionTrue(ac.Status.Conditions, v1alpha1.ConditionVerified)
	})
	t.Logf("verified %v after the Deployment turned ready", time.Since(began).Round(time.Millisecond))
	waitLabelOn(t, f)
}

// TestManagerWakesACardWaitingForItsService: a card whose workload has no
// Service yet is reconciled when the Service appears, not 30s later.
func TestManagerWakesACardWaitingForItsService(t *testing.T) {
	c := apiClient(t)
	f := newFixture(t, c, newCAs(t))
	if err := c.Delete(t.Context(), &corev1.Service{ObjectMeta: metav1.ObjectMeta{Namespace: f.ns, Name: f.name}}); err != nil {
		t.Fatal(err)
	}
	f.serve(validCard(f))
	startManager(t, f)
	card := f.card(nil)
	waitFor(t, f, card, func(ac *v1alpha1.AgentCard) bool {
		c := meta.FindStatusCondition(ac.Status.Conditions, v1alpha1.ConditionSynced)
		return c != nil && c.Reason == v1alpha1.ReasonServiceNotFound
	})
	began := time.Now()
	f.create(&corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Namespace: f.ns, Name: f.name},
		Spec:       corev1.ServiceSpec{Selector: map[string]string{"app": f.name}, Ports: []corev1.ServicePort{{Port: 8000}}},
	})
	waitFor(t, f, card, func(ac *v1alpha1.AgentCard) bool {
		return meta.IsStatusConditionTrue(ac.Status.Conditions, v1alpha1.ConditionVerified)
	})
	if d := time.Since(began); d > 10*time.Second {
		t.Errorf("verified %v after the Service appeared: the requeue, not the watch, did it", d)
	}
}

// waitLabelOn waits for the verified label, which follows the status write.
func waitLabelOn(t *testing.T, f *fixture) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		if v, ok := f.label(f.name); ok && v == "true" {
			return
		}
		if time.Now().After(deadline) {
			t.Fatal("the pod template was not labelled verified")
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func waitFor(t *testing.T, f *fixture, card *v1alpha1.AgentCard, ok func(*v1alpha1.AgentCard) bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		got := f.get(card)
		if ok(got) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("timed out; status: %+v", got.Status)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestGeneratedRBACIsEnoughToReconcile runs the reconciler as a user that
// holds only deploy/rbac/role.yaml: the permissions the markers generate
// must cover everything it does, from the finalizer to the label.
func TestGeneratedRBACIsEnoughToReconcile(t *testing.T) {
	cfg := apiServer(t)
	admin := apiClient(t)
	ctx := t.Context()

	const user = "system:serviceaccount:agentid-system:agentid-operator"
	if err := generatedrbac.MustRead(t).Grant(ctx, admin, "agentid-operator-rbac-test", user); err != nil {
		t.Fatal(err)
	}
	u, err := shared.env.ControlPlane.AddUser(envtest.User{Name: user}, cfg)
	if err != nil {
		t.Fatal(err)
	}
	operator, err := client.New(u.Config(), client.Options{Scheme: newScheme(t)})
	if err != nil {
		t.Fatal(err)
	}
	// Without the role this user may not even read AgentCards; check that
	// the binding, not a permissive server, is what lets it through.
	stranger, err := shared.env.ControlPlane.AddUser(envtest.User{Name: "stranger"}, cfg)
	if err != nil {
		t.Fatal(err)
	}
	sc, err := client.New(stranger.Config(), client.Options{Scheme: newScheme(t)})
	if err != nil {
		t.Fatal(err)
	}
	var list v1alpha1.AgentCardList
	if err := sc.List(ctx, &list); err == nil {
		t.Fatal("a user without the role listed AgentCards: the API server does not enforce RBAC")
	}

	f := newFixture(t, admin, newCAs(t))
	f.enforceNetworkPolicies()
	f.serve(validCard(f))
	card := f.card(&v1alpha1.IdentityBinding{Strict: true})
	f.c = operator // the reconciler acts as the operator from here on
	_, got := f.run(card)
	wantCondition(t, got, v1alpha1.ConditionVerified, metav1.ConditionTrue, v1alpha1.ReasonSignatureVerified)
	if v, ok := f.label(f.name); !ok || v != "true" {
		t.Errorf("pod template label = %q, %v; want true", v, ok)
	}
	wantPolicy(t, f, card, netpolicy.Permissive)
	// A flip updates the policy and lists the API server's EndpointSlices.
	f.serve(tamper(t, validCard(f)))
	_, got = f.run(card)
	wantCondition(t, got, v1alpha1.ConditionNetworkPolicyApplied, metav1.ConditionTrue, v1alpha1.ReasonPolicyRestrictive)
	wantAPIServerEgress(t, f, wantPolicy(t, f, card, netpolicy.Restrictive))
	if err := admin.Delete(ctx, got); err != nil {
		t.Fatal(err)
	}
	if _, err := f.reconciler().Reconcile(ctx, reconcile.Request{NamespacedName: client.ObjectKeyFromObject(card)}); err != nil {
		t.Fatalf("finalizing as the operator: %v", err)
	}
	if _, ok := f.label(f.name); ok {
		t.Error("the label outlived the card")
	}
	if f.policy(card) != nil {
		t.Error("the NetworkPolicy outlived the card")
	}
}

// TestManagerHandsAWorkloadToTheDuplicateWhenItsOwnerIsDeleted: on a real
// API server, a second card for a verified workload is refused
// (DuplicateTarget), and when the first card is deleted the second takes
// over through the watch, without the label ever leaving the pod template
// (which would roll the workload twice).
func TestManagerHandsAWorkloadToTheDuplicateWhenItsOwnerIsDeleted(t *testing.T) {
	c := apiClient(t)
	f := newFixture(t, c, newCAs(t))
	f.serve(validCard(f))
	startManager(t, f)

	owner := f.card(&v1alpha1.IdentityBinding{Strict: true})
	waitFor(t, f, owner, func(ac *v1alpha1.AgentCard) bool {
		return meta.IsStatusConditionTrue(ac.Status.Conditions, v1alpha1.ConditionVerified)
	})
	waitLabelOn(t, f)
	dup := &v1alpha1.AgentCard{
		// A name after the owner's: the two may be created in one second.
		ObjectMeta: metav1.ObjectMeta{Namespace: f.ns, Name: "zz-second-card"},
		Spec:       v1alpha1.AgentCardSpec{TargetRef: owner.Spec.TargetRef, IdentityBinding: &v1alpha1.IdentityBinding{Strict: true}},
	}
	f.create(dup)
	want := "an AgentCard already targets Deployment " + f.name + " in namespace " + f.ns + ": " + owner.Name
	waitFor(t, f, dup, func(ac *v1alpha1.AgentCard) bool {
		s := meta.FindStatusCondition(ac.Status.Conditions, v1alpha1.ConditionSynced)
		return s != nil && s.Reason == v1alpha1.ReasonDuplicateTarget && s.Message == want
	})
	if got := f.get(dup); got.Status.Card != nil || got.Status.ValidSignature != nil {
		t.Errorf("the duplicate was verified or published: %+v", got.Status)
	}
	generation := f.deploymentGeneration()

	if err := c.Delete(t.Context(), owner); err != nil {
		t.Fatal(err)
	}
	// The duplicate's own retry is a minute away; waitFor gives up after
	// 20 s, so only the watch on the owner's deletion can get it here.
	waitFor(t, f, dup, func(ac *v1alpha1.AgentCard) bool {
		return meta.IsStatusConditionTrue(ac.Status.Conditions, v1alpha1.ConditionVerified) && ac.Status.Card != nil
	})
	waitGone(t, c, owner)
	if v, ok := f.label(f.name); !ok || v != "true" {
		t.Errorf("after the handover the label is %q, %v; want true", v, ok)
	}
	if g := f.deploymentGeneration(); g != generation {
		t.Errorf("the Deployment's generation moved from %d to %d: the handover changed its pod template", generation, g)
	}
}

// TestManagerPicksOneOwnerAmongCardsCreatedAtOnce: cards for one workload
// created concurrently (as two kubectl applies or a webhook race would)
// end with exactly one owner, the oldest then first by name, and the others
// refused naming it.
func TestManagerPicksOneOwnerAmongCardsCreatedAtOnce(t *testing.T) {
	c := apiClient(t)
	f := newFixture(t, c, newCAs(t))
	f.serve(validCard(f))
	startManager(t, f)

	names := []string{"card-d", "card-b", "card-c", "card-a"}
	errs := make(chan error, len(names))
	for _, name := range names {
		go func() {
			errs <- c.Create(t.Context(), &v1alpha1.AgentCard{
				ObjectMeta: metav1.ObjectMeta{Namespace: f.ns, Name: name},
				Spec: v1alpha1.AgentCardSpec{
					TargetRef:       v1alpha1.TargetRef{APIVersion: "apps/v1", Kind: "Deployment", Name: f.name},
					IdentityBinding: &v1alpha1.IdentityBinding{Strict: true},
				},
			})
		}()
	}
	for range names {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	var list v1alpha1.AgentCardList
	if err := c.List(t.Context(), &list, client.InNamespace(f.ns)); err != nil {
		t.Fatal(err)
	}
	owner := list.Items[0]
	for _, o := range list.Items[1:] {
		if o.CreationTimestamp.Before(&owner.CreationTimestamp) || o.CreationTimestamp.Equal(&owner.CreationTimestamp) && o.Name < owner.Name {
			owner = o
		}
	}
	for _, o := range list.Items {
		t.Logf("%s created %v", o.Name, o.CreationTimestamp.Time)
	}
	t.Logf("owner %s", owner.Name)
	t.Cleanup(func() {
		if !t.Failed() {
			return
		}
		// What each card said last (t.Context is done by now).
		var list v1alpha1.AgentCardList
		if err := c.List(context.Background(), &list, client.InNamespace(f.ns)); err != nil {
			t.Log(err)
		}
		for _, o := range list.Items {
			t.Logf("%s: Synced %+v", o.Name, meta.FindStatusCondition(o.Status.Conditions, v1alpha1.ConditionSynced))
		}
	})
	for _, o := range list.Items {
		if o.Name == owner.Name {
			waitFor(t, f, &o, func(ac *v1alpha1.AgentCard) bool {
				return meta.IsStatusConditionTrue(ac.Status.Conditions, v1alpha1.ConditionVerified)
			})
			continue
		}
		waitFor(t, f, &o, func(ac *v1alpha1.AgentCard) bool {
			s := meta.FindStatusCondition(ac.Status.Conditions, v1alpha1.ConditionSynced)
			return s != nil && s.Reason == v1alpha1.ReasonDuplicateTarget && strings.HasSuffix(s.Message, ": "+owner.Name)
		})
	}
}

func (f *fixture) deploymentGeneration() int64 {
	f.t.Helper()
	var d appsv1.Deployment
	if err := f.c.Get(f.ctx, client.ObjectKey{Namespace: f.ns, Name: f.name}, &d); err != nil {
		f.t.Fatal(err)
	}
	return d.Generation
}

// waitGone waits until the card's finalizer has run and it is gone.
func waitGone(t *testing.T, c client.Client, card *v1alpha1.AgentCard) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		err := c.Get(t.Context(), client.ObjectKeyFromObject(card), &v1alpha1.AgentCard{})
		if apierrors.IsNotFound(err) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s was not finalized: %v", card.Name, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
