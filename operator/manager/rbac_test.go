package manager

import (
	"testing"

	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/envtest"

	"github.com/agentid/agentid/api/v1alpha1"
	"github.com/agentid/agentid/internal/testenv/generatedrbac"
	"github.com/agentid/agentid/operator/internal/cardtest"
)

// TestOperatorRunsWithTheNamespacedRoles runs the whole operator, with
// leader election, as a user that holds only deploy/rbac/role.yaml: the
// ClusterRole and the Roles for the Lease (agentid-system) and the trust
// bundle (spire-system). The operator verifies a card and follows a bundle
// rotation through its watch, while the same user may read no ConfigMap
// and no Lease outside those namespaces, and the manager's cache holds
// no ConfigMap but the bundle.
func TestOperatorRunsWithTheNamespacedRoles(t *testing.T) {
	ca := cardtest.NewCA(t, "example.org")
	w := newWorld(t, ca.SPIFFEBundle(t))
	w.addWeather(t, cardtest.Sign(t, cardtest.Card("weather"), ca.SVID(t, "spiffe://example.org/ns/agents/sa/weather-sa")))
	secret := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "weather-config"}, Data: map[string]string{"k": "v"}}
	w.create(t, secret)

	rbac := generatedrbac.MustRead(t)
	for _, want := range []string{"agentid-system", bundleNS} {
		if rbac.Role(want) == nil {
			t.Fatalf("deploy/rbac/role.yaml has no Role in %s", want)
		}
	}
	for _, r := range rbac.ClusterRole.Rules {
		for _, res := range r.Resources {
			if res == "configmaps" || res == "leases" {
				t.Errorf("the ClusterRole grants %s cluster-wide: %+v", res, r)
			}
		}
	}
	const user = "system:serviceaccount:agentid-system:agentid-operator"
	if err := rbac.Grant(t.Context(), w.c, "agentid-operator-namespaced-test", user); err != nil {
		t.Fatal(err)
	}
	u, err := w.env.ControlPlane.AddUser(envtest.User{Name: user}, w.cfg)
	if err != nil {
		t.Fatal(err)
	}
	as, err := client.New(u.Config(), client.Options{Scheme: w.c.Scheme()})
	if err != nil {
		t.Fatal(err)
	}

	cfg := w.config(t)
	cfg.LeaderElection, cfg.LeaderElectionNamespace = true, "agentid-system"
	mgr, err := New(t.Context(), u.Config(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- mgr.Start(t.Context()) }()
	t.Cleanup(func() {
		if err := <-done; err != nil {
			t.Errorf("manager: %v", err)
		}
	})

	card := w.card(t)
	waitCondition(t, w.c, card, v1alpha1.ConditionVerified, metav1.ConditionTrue)
	waitLabel(t, w.c, w.d, true)
	// The Lease was taken in the operator's namespace.
	var lease coordinationv1.Lease
	if err := w.c.Get(t.Context(), types.NamespacedName{Namespace: "agentid-system", Name: LeaderElectionID}, &lease); err != nil {
		t.Errorf("no leader election Lease in agentid-system: %v", err)
	}
	// The bundle's watch works within the Role: a rotation unverifies.
	w.setBundle(t, cardtest.NewCA(t, "example.org").SPIFFEBundle(t))
	waitCondition(t, w.c, card, v1alpha1.ConditionVerified, metav1.ConditionFalse)

	// What the operator's identity may not do.
	ctx := t.Context()
	forbidden := []struct {
		what string
		call func() error
	}{
		{"list ConfigMaps cluster-wide", func() error { return as.List(ctx, &corev1.ConfigMapList{}) }},
		{"list ConfigMaps of the agents' namespace", func() error { return as.List(ctx, &corev1.ConfigMapList{}, client.InNamespace(ns)) }},
		{"read a ConfigMap of the agents' namespace", func() error { return as.Get(ctx, client.ObjectKeyFromObject(secret), &corev1.ConfigMap{}) }},
		{"list Leases cluster-wide", func() error { return as.List(ctx, &coordinationv1.LeaseList{}) }},
		{"list Leases of the agents' namespace", func() error { return as.List(ctx, &coordinationv1.LeaseList{}, client.InNamespace(ns)) }},
	}
	for _, f := range forbidden {
		if err := f.call(); !apierrors.IsForbidden(err) {
			t.Errorf("%s: %v, want Forbidden", f.what, err)
		}
	}
	if err := as.List(ctx, &corev1.ConfigMapList{}, client.InNamespace(bundleNS)); err != nil {
		t.Errorf("listing the bundle's namespace: %v", err)
	}
	// Nor does the manager's client reach another ConfigMap through its
	// cache: the cache knows only the bundle's namespace and name.
	if err := mgr.GetClient().Get(ctx, client.ObjectKeyFromObject(secret), &corev1.ConfigMap{}); err == nil {
		t.Error("the manager's client read a ConfigMap outside the trust bundle's namespace")
	}
	var cached corev1.ConfigMapList
	if err := mgr.GetCache().List(ctx, &cached); err != nil {
		t.Fatal(err)
	}
	if len(cached.Items) != 1 || cached.Items[0].Name != w.bundle.Name {
		t.Errorf("the cache holds %d ConfigMaps, want only the bundle", len(cached.Items))
	}
}
