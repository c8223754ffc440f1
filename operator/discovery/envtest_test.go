package discovery

import (
	"path/filepath"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	ctrlconfig "sigs.k8s.io/controller-runtime/pkg/config"
	"sigs.k8s.io/controller-runtime/pkg/envtest"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	"github.com/agentid/agentid/api/v1alpha1"
	"github.com/agentid/agentid/internal/testenv"
	"github.com/agentid/agentid/internal/testenv/generatedrbac"
)

// TestDiscoveryOnARealAPIServer runs the discovery controllers against a
// real API server (envtest, with deploy/crd installed): first by hand with
// only the generated ClusterRole's permissions, then in a real manager,
// every rule of the package through the watches.
func TestDiscoveryOnARealAPIServer(t *testing.T) {
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
	c, err := client.New(cfg, client.Options{Scheme: newScheme(t)})
	if err != nil {
		t.Fatal(err)
	}
	e := &apiEnv{t: t, c: c}
	e.create(&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}})

	t.Run("the generated ClusterRole is enough to create and delete cards", func(t *testing.T) {
		// Reconcile by hand, before the manager runs, as a user that holds
		// only deploy/rbac/role.yaml, through a client without a cache (so
		// every read is an API call the role must allow).
		e := e.sub(t)
		const user = "system:serviceaccount:agentid-system:agentid-operator"
		if err := generatedrbac.MustRead(t).Grant(t.Context(), c, "agentid-operator-discovery-rbac-test", user); err != nil {
			t.Fatal(err)
		}
		u, err := env.ControlPlane.AddUser(envtest.User{Name: user}, cfg)
		if err != nil {
			t.Fatal(err)
		}
		operator, err := client.New(u.Config(), client.Options{Scheme: newScheme(t)})
		if err != nil {
			t.Fatal(err)
		}
		rs, err := New(operator, &eventLog{}, Options{})
		if err != nil {
			t.Fatal(err)
		}
		e.deployment("rbac", agentLabels())
		r := rs[0] // Deployments
		req := reconcile.Request{NamespacedName: types.NamespacedName{Namespace: ns, Name: "rbac"}}
		if _, err := r.Reconcile(t.Context(), req); err != nil {
			t.Fatalf("discovering as the operator: %v", err)
		}
		if !e.exists(CardName("rbac", "Deployment")) {
			t.Fatal("no card created")
		}
		e.patchLabels("rbac", map[string]string{v1alpha1.LabelDiscovery: v1alpha1.DiscoveryDisabled})
		if _, err := r.Reconcile(t.Context(), req); err != nil {
			t.Fatalf("removing the card as the operator: %v", err)
		}
		if e.exists(CardName("rbac", "Deployment")) {
			t.Error("the card was not deleted")
		}
	})

	skip := true
	mgr, err := ctrl.NewManager(cfg, ctrl.Options{
		Scheme:     newScheme(t),
		Metrics:    metricsserver.Options{BindAddress: "0"},
		Controller: ctrlconfig.Controller{SkipNameValidation: &skip},
	})
	if err != nil {
		t.Fatal(err)
	}
	rs, err := New(mgr.GetClient(), &eventLog{}, Options{BindIdentity: true})
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range rs {
		if err := r.Setup(mgr); err != nil {
			t.Fatal(err)
		}
	}
	done := make(chan error, 1)
	go func() { done <- mgr.Start(t.Context()) }()
	t.Cleanup(func() {
		if err := <-done; err != nil {
			t.Errorf("manager: %v", err)
		}
	})
	e.cached = mgr.GetClient()

	t.Run("agent Deployments and StatefulSets get their cards, owned by them", func(t *testing.T) {
		e := e.sub(t)
		d := e.deployment("weather", agentLabels())
		s := e.statefulSet("weather", agentLabels())
		for _, w := range []client.Object{d, s} {
			kind := "Deployment"
			if _, ok := w.(*appsv1.StatefulSet); ok {
				kind = "StatefulSet"
			}
			card := e.waitCard(CardName("weather", kind))
			owner := metav1.GetControllerOf(card)
			if owner == nil || owner.UID != w.GetUID() || owner.Kind != kind {
				t.Errorf("%s: controller %+v, want the %s", card.Name, owner, kind)
			}
			if card.Spec.TargetRef != (v1alpha1.TargetRef{APIVersion: "apps/v1", Kind: kind, Name: "weather"}) || card.Spec.IdentityBinding == nil {
				t.Errorf("%s: spec %+v", card.Name, card.Spec)
			}
			if card.Spec.SyncPeriod == nil || card.Spec.SyncPeriod.Duration != 30*time.Second {
				t.Errorf("%s: syncPeriod %v, want the CRD's default 30s", card.Name, card.Spec.SyncPeriod)
			}
		}
	})

	t.Run("workloads that are no agents, lack a protocol, opted out or have a card get none", func(t *testing.T) {
		e := e.sub(t)
		optOut := agentLabels()
		optOut[v1alpha1.LabelDiscovery] = v1alpha1.DiscoveryDisabled
		e.create(manualCard("hand-written", "Deployment", "carded"))
		e.waitCached("hand-written")
		e.deployment("plain", nil)
		e.deployment("noproto", map[string]string{v1alpha1.LabelAgentType: v1alpha1.AgentTypeAgent})
		e.deployment("optout", optOut)
		e.deployment("carded", agentLabels())
		// The Deployment controller reconciles one workload at a time, in
		// the order the watch delivers them: once the last one has its card,
		// the others have been decided.
		e.deployment("last", agentLabels())
		e.waitCard(CardName("last", "Deployment"))
		for _, name := range []string{"plain", "noproto", "optout", "carded"} {
			if e.exists(CardName(name, "Deployment")) {
				t.Errorf("%s got a card", name)
			}
		}
	})

	t.Run("opting out later deletes the discovered card", func(t *testing.T) {
		e := e.sub(t)
		e.deployment("leaving", agentLabels())
		e.waitCard(CardName("leaving", "Deployment"))
		e.patchLabels("leaving", map[string]string{v1alpha1.LabelDiscovery: v1alpha1.DiscoveryDisabled})
		e.waitGone(CardName("leaving", "Deployment"))
	})

	t.Run("a discovered card that is deleted comes back", func(t *testing.T) {
		e := e.sub(t)
		e.deployment("stubborn", agentLabels())
		first := e.waitCard(CardName("stubborn", "Deployment"))
		if err := c.Delete(t.Context(), first); err != nil {
			t.Fatal(err)
		}
		deadline := time.Now().Add(20 * time.Second)
		for {
			var got v1alpha1.AgentCard
			err := c.Get(t.Context(), types.NamespacedName{Namespace: ns, Name: first.Name}, &got)
			if err == nil && got.UID != first.UID {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("the deleted card was not created again: %v", err)
			}
			time.Sleep(50 * time.Millisecond)
		}
	})

	t.Run("a card someone writes replaces the discovered one", func(t *testing.T) {
		e := e.sub(t)
		e.deployment("replaced", agentLabels())
		e.waitCard(CardName("replaced", "Deployment"))
		e.create(manualCard("written-by-hand", "Deployment", "replaced"))
		e.waitGone(CardName("replaced", "Deployment"))
		if !e.exists("written-by-hand") {
			t.Error("the hand-written card went too")
		}
	})
}

// apiEnv creates objects on the API server for one (sub)test.
type apiEnv struct {
	t      *testing.T
	c      client.Client
	cached client.Client // the manager's, which reads its cache
}

func (e *apiEnv) sub(t *testing.T) *apiEnv { return &apiEnv{t: t, c: e.c, cached: e.cached} }

// waitCached waits until the manager's cache holds the card, so that what
// the controllers do next is decided with it in view.
func (e *apiEnv) waitCached(name string) {
	e.t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		err := e.cached.Get(e.t.Context(), types.NamespacedName{Namespace: ns, Name: name}, &v1alpha1.AgentCard{})
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			e.t.Fatalf("AgentCard %s never reached the cache: %v", name, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func (e *apiEnv) create(o client.Object) {
	e.t.Helper()
	if err := e.c.Create(e.t.Context(), o); err != nil {
		e.t.Fatalf("creating %T %s: %v", o, o.GetName(), err)
	}
}

func podTemplate(name string) corev1.PodTemplateSpec {
	return corev1.PodTemplateSpec{
		ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{"app": name}},
		Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "agent", Image: "example.invalid/agent:1"}}},
	}
}

func (e *apiEnv) deployment(name string, labels map[string]string) *appsv1.Deployment {
	e.t.Helper()
	d := &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name, Labels: labels},
		Spec: appsv1.DeploymentSpec{
			Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": name}},
			Template: podTemplate(name),
		},
	}
	e.create(d)
	return d
}

func (e *apiEnv) statefulSet(name string, labels map[string]string) *appsv1.StatefulSet {
	e.t.Helper()
	s := &appsv1.StatefulSet{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name, Labels: labels},
		Spec: appsv1.StatefulSetSpec{
			Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": name}},
			Template: podTemplate(name),
		},
	}
	e.create(s)
	return s
}

func (e *apiEnv) patchLabels(deployment string, labels map[string]string) {
	e.t.Helper()
	d := &appsv1.Deployment{}
	if err := e.c.Get(e.t.Context(), types.NamespacedName{Namespace: ns, Name: deployment}, d); err != nil {
		e.t.Fatal(err)
	}
	patch := client.MergeFrom(d.DeepCopy())
	for k, v := range labels {
		d.Labels[k] = v
	}
	if err := e.c.Patch(e.t.Context(), d, patch); err != nil {
		e.t.Fatal(err)
	}
}

func (e *apiEnv) exists(card string) bool {
	e.t.Helper()
	err := e.c.Get(e.t.Context(), types.NamespacedName{Namespace: ns, Name: card}, &v1alpha1.AgentCard{})
	if err != nil && !apierrors.IsNotFound(err) {
		e.t.Fatal(err)
	}
	return err == nil
}

func (e *apiEnv) waitCard(name string) *v1alpha1.AgentCard {
	e.t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		var got v1alpha1.AgentCard
		err := e.c.Get(e.t.Context(), types.NamespacedName{Namespace: ns, Name: name}, &got)
		if err == nil {
			return &got
		}
		if time.Now().After(deadline) {
			e.t.Fatalf("no AgentCard %s: %v", name, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func (e *apiEnv) waitGone(name string) {
	e.t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for e.exists(name) {
		if time.Now().After(deadline) {
			e.t.Fatalf("AgentCard %s was not deleted", name)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
