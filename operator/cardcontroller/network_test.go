package cardcontroller

import (
	"context"
	"errors"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/interceptor"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	"github.com/agentid/agentid/api/v1alpha1"
	"github.com/agentid/agentid/operator/internal/cardtest"
	"github.com/agentid/agentid/operator/netpolicy"
)

func TestWithoutEnforcementThereIsNoPolicyAndNoCondition(t *testing.T) {
	f := newFixture(t, newFakeClient(t), newCAs(t))
	f.serve(tamper(t, validCard(f)))
	card := f.card(&v1alpha1.IdentityBinding{Strict: true})
	_, got := f.run(card)
	if f.policy(card) != nil || hasCondition(got, v1alpha1.ConditionNetworkPolicyApplied) {
		t.Error("a NetworkPolicy or its condition without --enforce-network-policies")
	}
}

func TestNetworkPolicyBeforeVerification(t *testing.T) {
	f := newFixture(t, newFakeClient(t), newCAs(t))
	f.enforceNetworkPolicies()
	f.setDeploymentReadyByName(f.name, false)
	f.serve(validCard(f))
	card := f.card(&v1alpha1.IdentityBinding{Strict: true})

	// Not evaluated yet: restrictive, never open by default.
	_, got := f.run(card)
	wantCondition(t, got, v1alpha1.ConditionSynced, metav1.ConditionFalse, v1alpha1.ReasonWorkloadNotReady)
	wantPolicy(t, f, card, netpolicy.Restrictive)
	wantCondition(t, got, v1alpha1.ConditionNetworkPolicyApplied, metav1.ConditionTrue, v1alpha1.ReasonPolicyRestrictive)
	if c := condition(got, v1alpha1.ConditionNetworkPolicyApplied); !strings.Contains(c.Message, "not verified yet") || !strings.Contains(c.Message, "not ready") {
		t.Errorf("message %q does not say the card is not evaluated yet and why", c.Message)
	}

	f.setDeploymentReadyByName(f.name, true)
	_, got = f.run(card)
	wantPolicy(t, f, card, netpolicy.Permissive)
	if !f.recorder.has("NetworkPolicyRestrictive") || !f.recorder.has("NetworkPolicyPermissive") {
		t.Errorf("events %v, want the restrictive and the permissive flip", f.recorder.events)
	}

	// A fetch failure later keeps the last verdict, as the label.
	f.servers[f.name] = "http://127.0.0.1:1" // nothing listens there
	_, got = f.run(card)
	wantCondition(t, got, v1alpha1.ConditionSynced, metav1.ConditionFalse, v1alpha1.ReasonFetchFailed)
	wantPolicy(t, f, card, netpolicy.Permissive)
}

func TestNetworkPolicyDuringATrustBundleOutage(t *testing.T) {
	f := newFixture(t, newFakeClient(t), newCAs(t))
	f.enforceNetworkPolicies()
	f.serve(validCard(f))
	card := f.card(&v1alpha1.IdentityBinding{Strict: true})
	f.run(card)
	wantPolicy(t, f, card, netpolicy.Permissive)

	f.bundle.err = errors.New("trustbundle: ConfigMap spire/spire-bundle not found")
	_, got := f.run(card)
	wantCondition(t, got, v1alpha1.ConditionVerified, metav1.ConditionUnknown, v1alpha1.ReasonTrustBundleUnavailable)
	wantPolicy(t, f, card, netpolicy.Permissive)
	if c := condition(got, v1alpha1.ConditionNetworkPolicyApplied); c == nil || !strings.Contains(c.Message, "kept") {
		t.Errorf("condition %+v, want the policy kept while the bundle is unavailable", c)
	}

	// A card first seen during the outage is restrictive.
	other := newFixture(t, f.c, f.ca)
	other.enforceNetworkPolicies()
	other.bundle.err = f.bundle.err
	fresh := other.card(nil)
	other.run(fresh)
	wantPolicy(t, other, fresh, netpolicy.Restrictive)
}

func TestNetworkPolicyOfAWorkloadThatIsNoLongerAnAgent(t *testing.T) {
	f := newFixture(t, newFakeClient(t), newCAs(t))
	f.enforceNetworkPolicies()
	f.serve(validCard(f))
	card := f.card(nil)
	f.run(card)
	f.patchDeploymentLabels(map[string]*string{v1alpha1.LabelAgentType: nil})
	_, got := f.run(card)
	wantPolicy(t, f, card, netpolicy.Restrictive)
	if c := condition(got, v1alpha1.ConditionNetworkPolicyApplied); c == nil || !strings.Contains(c.Message, "does not carry the label") {
		t.Errorf("condition %+v, want the reason", c)
	}
}

func TestNetworkPolicyWithoutAWorkload(t *testing.T) {
	f := newFixture(t, newFakeClient(t), newCAs(t))
	f.enforceNetworkPolicies()
	card := &v1alpha1.AgentCard{
		ObjectMeta: metav1.ObjectMeta{Namespace: f.ns, Name: "ghost-card"},
		Spec:       v1alpha1.AgentCardSpec{TargetRef: v1alpha1.TargetRef{APIVersion: "apps/v1", Kind: "Deployment", Name: "ghost"}},
	}
	f.create(card)
	_, got := f.run(card)
	if f.policy(card) != nil {
		t.Error("a policy without a workload to select")
	}
	wantCondition(t, got, v1alpha1.ConditionNetworkPolicyApplied, metav1.ConditionFalse, v1alpha1.ReasonNoWorkload)
}

func TestADuplicateCardHasNoPolicy(t *testing.T) {
	f := newFixture(t, newFakeClient(t), newCAs(t))
	f.enforceNetworkPolicies()
	f.serve(validCard(f))
	first := f.card(&v1alpha1.IdentityBinding{Strict: true})
	f.run(first)
	second := &v1alpha1.AgentCard{ObjectMeta: metav1.ObjectMeta{Namespace: f.ns, Name: "zz-second-card"}, Spec: first.Spec}
	f.create(second)
	_, got := f.run(second)
	// Policies add up: a second one could only widen the owner's.
	if f.policy(second) != nil {
		t.Error("the duplicate card has a NetworkPolicy of its own")
	}
	wantCondition(t, got, v1alpha1.ConditionNetworkPolicyApplied, metav1.ConditionFalse, v1alpha1.ReasonDuplicateTarget)
	wantPolicy(t, f, first, netpolicy.Permissive)
}

func TestAStatefulSetsPolicySelectsByItsSelectorsExpressions(t *testing.T) {
	f := newFixture(t, newFakeClient(t), newCAs(t))
	f.enforceNetworkPolicies()
	one := int32(1)
	sel := &metav1.LabelSelector{
		MatchLabels:      map[string]string{"app": "memory"},
		MatchExpressions: []metav1.LabelSelectorRequirement{{Key: "track", Operator: metav1.LabelSelectorOpIn, Values: []string{"stable", "canary"}}},
	}
	s := &appsv1.StatefulSet{
		ObjectMeta: metav1.ObjectMeta{Namespace: f.ns, Name: "memory", Labels: map[string]string{
			v1alpha1.LabelAgentType: v1alpha1.AgentTypeAgent, v1alpha1.LabelProtocolPrefix + v1alpha1.ProtocolA2A: "",
		}},
		Spec: appsv1.StatefulSetSpec{
			Replicas: &one,
			Selector: sel,
			Template: corev1.PodTemplateSpec{
				// Template labels beyond the selector must not leak into
				// the policy (Kagenti selects by all of them).
				ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{"app": "memory", "track": "stable", "version": "v7"}},
				Spec:       corev1.PodSpec{ServiceAccountName: "memory-sa", Containers: []corev1.Container{{Name: "a", Image: "x"}}},
			},
		},
	}
	f.create(s)
	s.Status = appsv1.StatefulSetStatus{Replicas: 1, ReadyReplicas: 1}
	if err := f.c.Status().Update(f.ctx, s); err != nil {
		t.Fatal(err)
	}
	f.create(&corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Namespace: f.ns, Name: "memory"},
		Spec:       corev1.ServiceSpec{Selector: map[string]string{"app": "memory"}, Ports: []corev1.ServicePort{{Port: 9000}}},
	})
	srv := cardtest.NewServer(t, f.signedCard(f.ca.Ours, f.id(testTD, "memory-sa")))
	f.servers["memory"] = srv.URL
	card := &v1alpha1.AgentCard{
		ObjectMeta: metav1.ObjectMeta{Namespace: f.ns, Name: "memory-card"},
		Spec:       v1alpha1.AgentCardSpec{TargetRef: v1alpha1.TargetRef{APIVersion: "apps/v1", Kind: "StatefulSet", Name: "memory"}},
	}
	f.create(card)
	_, got := f.run(card)
	wantCondition(t, got, v1alpha1.ConditionVerified, metav1.ConditionTrue, v1alpha1.ReasonSignatureVerified)
	np := f.policy(card)
	if np == nil || !equality.Semantic.DeepEqual(np.Spec.PodSelector, *sel) {
		t.Fatalf("policy %+v, want the StatefulSet's selector %+v", np, sel)
	}
	if np.Name != "memory-card-signature-policy" {
		t.Errorf("name %q", np.Name)
	}
}

func TestDeletingTheCardDeletesItsPolicy(t *testing.T) {
	f := newFixture(t, newFakeClient(t), newCAs(t))
	f.enforceNetworkPolicies()
	f.serve(tamper(t, validCard(f)))
	card := f.card(&v1alpha1.IdentityBinding{Strict: true})
	_, got := f.run(card)
	wantPolicy(t, f, card, netpolicy.Restrictive)
	if err := f.c.Delete(f.ctx, got); err != nil {
		t.Fatal(err)
	}
	if _, err := f.reconciler().Reconcile(f.ctx, reconcile.Request{NamespacedName: client.ObjectKeyFromObject(card)}); err != nil {
		t.Fatal(err)
	}
	if f.policy(card) != nil {
		t.Error("the NetworkPolicy outlived its AgentCard")
	}
}

func TestAPolicyWriteFailureIsReportedAndRetried(t *testing.T) {
	base := newFakeClient(t)
	c := interceptor.NewClient(base.(client.WithWatch), interceptor.Funcs{Create: func(ctx context.Context, c client.WithWatch, obj client.Object, opts ...client.CreateOption) error {
		if _, ok := obj.(*networkingv1.NetworkPolicy); ok {
			return errors.New("admission webhook denied the request")
		}
		return c.Create(ctx, obj, opts...)
	}})
	f := newFixture(t, c, newCAs(t))
	f.enforceNetworkPolicies()
	f.serve(validCard(f))
	card := f.card(nil)
	_, err := f.reconciler().Reconcile(f.ctx, reconcile.Request{NamespacedName: client.ObjectKeyFromObject(card)})
	if err == nil || !strings.Contains(err.Error(), "admission webhook denied") {
		t.Errorf("Reconcile: %v, want the write error for a retry with backoff", err)
	}
	got := f.get(card)
	wantCondition(t, got, v1alpha1.ConditionNetworkPolicyApplied, metav1.ConditionFalse, v1alpha1.ReasonPolicyFailed)
	// The rest of the outcome is still recorded.
	wantCondition(t, got, v1alpha1.ConditionVerified, metav1.ConditionTrue, v1alpha1.ReasonSignatureVerified)
	if v, _ := f.label(f.name); v != "true" {
		t.Error("the label was not set")
	}
}

func TestNewRefusesNetworkPoliciesWithoutVerification(t *testing.T) {
	c := newFakeClient(t)
	e, err := netpolicy.NewEnforcer(netpolicy.Options{Client: c, Recorder: &eventLog{}, Config: testNetpolConfig()})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := New(c, nil, &eventLog{}, Options{NetworkPolicies: e}); err == nil || !strings.Contains(err.Error(), "network policies need signature verification") {
		t.Errorf("err = %v", err)
	}
}

// TestANetworkPolicyThatIsNotTheCardsIsNotOverwritten runs on both clients.
func TestANetworkPolicyThatIsNotTheCardsIsNotOverwritten(t *testing.T) {
	for name, newClient := range map[string]func(t *testing.T) client.Client{
		"fake client": func(t *testing.T) client.Client { return newFakeClient(t) },
		"API server":  apiClient,
	} {
		t.Run(name, func(t *testing.T) {
			f := newFixture(t, newClient(t), newCAs(t))
			f.enforceNetworkPolicies()
			f.serve(tamper(t, validCard(f)))
			theirs := &networkingv1.NetworkPolicy{
				ObjectMeta: metav1.ObjectMeta{Namespace: f.ns, Name: netpolicy.Name(f.name + "-card")},
				Spec: networkingv1.NetworkPolicySpec{
					PodSelector: metav1.LabelSelector{MatchLabels: map[string]string{"app": "database"}},
					Ingress:     []networkingv1.NetworkPolicyIngressRule{{}},
				},
			}
			f.create(theirs)
			card := f.card(&v1alpha1.IdentityBinding{Strict: true})
			_, got := f.run(card)
			wantCondition(t, got, v1alpha1.ConditionNetworkPolicyApplied, metav1.ConditionFalse, v1alpha1.ReasonPolicyConflict)
			np := f.policy(card)
			if np.ResourceVersion != theirs.ResourceVersion || np.Spec.PodSelector.MatchLabels["app"] != "database" || len(np.OwnerReferences) != 0 {
				t.Errorf("the existing policy was changed: %+v", np)
			}
			if !f.recorder.has("NetworkPolicyConflict") {
				t.Errorf("events %v, want NetworkPolicyConflict", f.recorder.events)
			}
			// Deleting the card leaves it alone too.
			if err := f.c.Delete(f.ctx, got); err != nil {
				t.Fatal(err)
			}
			if _, err := f.reconciler().Reconcile(f.ctx, reconcile.Request{NamespacedName: client.ObjectKeyFromObject(card)}); err != nil {
				t.Fatal(err)
			}
			var still networkingv1.NetworkPolicy
			if err := f.c.Get(f.ctx, types.NamespacedName{Namespace: f.ns, Name: theirs.Name}, &still); err != nil {
				t.Errorf("deleting the card deleted a policy that was not its own: %v", err)
			}
		})
	}
}
