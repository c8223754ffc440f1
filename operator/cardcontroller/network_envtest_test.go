package cardcontroller

import (
	"fmt"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	networkingv1 "k8s.io/api/networking/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"

	"github.com/agentid/agentid/api/v1alpha1"
	"github.com/agentid/agentid/operator/netpolicy"
)

// TestNetworkPolicyInAManager runs the controller with
// --enforce-network-policies in a real manager on the API server, nothing
// reconciled by hand: the policy follows the card from verified to
// tampered, follows the API server's EndpointSlices through the watch,
// has its drift reverted through Owns, and goes with the card.
func TestNetworkPolicyInAManager(t *testing.T) {
	c := apiClient(t)
	f := newFixture(t, c, newCAs(t))
	f.enforceNetworkPolicies()
	f.serve(validCard(f))
	startManager(t, f)
	card := &v1alpha1.AgentCard{
		ObjectMeta: metav1.ObjectMeta{Namespace: f.ns, Name: f.name + "-card"},
		Spec: v1alpha1.AgentCardSpec{
			TargetRef:       v1alpha1.TargetRef{APIVersion: "apps/v1", Kind: "Deployment", Name: f.name},
			IdentityBinding: &v1alpha1.IdentityBinding{Strict: true},
			SyncPeriod:      &metav1.Duration{Duration: time.Second}, // so that a new card is seen soon
		},
	}
	f.create(card)
	waitPolicy(t, f, card, func(np *networkingv1.NetworkPolicy) bool {
		return np.Labels[v1alpha1.LabelNetworkPolicyMode] == string(netpolicy.Permissive)
	})
	wantPolicy(t, f, card, netpolicy.Permissive)

	// Verified -> tampered: restrictive (the 1s sync period fetches the
	// card again; from here on only the watches wake it, a rejected card
	// being requeued after a minute).
	f.serve(tamper(t, validCard(f)))
	waitPolicy(t, f, card, func(np *networkingv1.NetworkPolicy) bool {
		return np.Labels[v1alpha1.LabelNetworkPolicyMode] == string(netpolicy.Restrictive)
	})
	np := wantPolicy(t, f, card, netpolicy.Restrictive)
	wantAPIServerEgress(t, f, np)
	got := f.get(card)
	wantCondition(t, got, v1alpha1.ConditionVerified, metav1.ConditionFalse, v1alpha1.ReasonSignatureInvalid)

	// A new API-server EndpointSlice (another address, another port): the
	// watch rebuilds the policy.
	port, proto := int32(7443), corev1.ProtocolTCP
	extra := &discoveryv1.EndpointSlice{
		ObjectMeta: metav1.ObjectMeta{Namespace: netpolicy.APIServerNamespace, Name: "kubernetes-" + f.ns,
			Labels: map[string]string{discoveryv1.LabelServiceName: netpolicy.APIServerService}},
		AddressType: discoveryv1.AddressTypeIPv6,
		Endpoints:   []discoveryv1.Endpoint{{Addresses: []string{"fd00:10::1"}}},
		Ports:       []discoveryv1.EndpointPort{{Name: ptrTo("https"), Port: &port, Protocol: &proto}},
	}
	f.create(extra)
	t.Cleanup(func() { c.Delete(f.ctx, extra) })
	waitPolicy(t, f, card, func(np *networkingv1.NetworkPolicy) bool { return hasEgress(np, "fd00:10::1/128", 7443) })
	wantAPIServerEgress(t, f, f.policy(card))

	// An update of it is followed.
	extra.Endpoints[0].Addresses = []string{"fd00:10::2"}
	if err := c.Update(f.ctx, extra); err != nil {
		t.Fatal(err)
	}
	waitPolicy(t, f, card, func(np *networkingv1.NetworkPolicy) bool {
		return hasEgress(np, "fd00:10::2/128", 7443) && !hasEgress(np, "fd00:10::1/128", 7443)
	})
	wantAPIServerEgress(t, f, f.policy(card))

	// And its deletion.
	if err := c.Delete(f.ctx, extra); err != nil {
		t.Fatal(err)
	}
	waitPolicy(t, f, card, func(np *networkingv1.NetworkPolicy) bool { return !hasEgress(np, "fd00:10::2/128", 7443) })
	wantAPIServerEgress(t, f, f.policy(card))

	// Drift (someone opens the policy) is reverted through the watch.
	np = f.policy(card)
	np.Spec.Ingress = []networkingv1.NetworkPolicyIngressRule{{}}
	np.Spec.Egress = []networkingv1.NetworkPolicyEgressRule{{}}
	if err := c.Update(f.ctx, np); err != nil {
		t.Fatal(err)
	}
	waitPolicy(t, f, card, func(np *networkingv1.NetworkPolicy) bool {
		return len(np.Spec.Ingress) == 1 && len(np.Spec.Ingress[0].From) == 1 && len(np.Spec.Egress) > 0 && len(np.Spec.Egress[0].To) > 0
	})

	// The card's deletion removes the policy. envtest runs no garbage
	// collector: the policy's ownerReference (checked by wantPolicy) is
	// what removes it in a cluster; the finalizer removes it at once.
	if err := c.Delete(f.ctx, f.get(card)); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(20 * time.Second)
	for f.policy(card) != nil {
		if time.Now().After(deadline) {
			t.Fatal("the NetworkPolicy outlived its AgentCard")
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestNetworkPolicyInAuditModeInAManager: audit mode never restricts, even
// a tampered card on the API server.
func TestNetworkPolicyInAuditModeInAManager(t *testing.T) {
	c := apiClient(t)
	f := newFixture(t, c, newCAs(t))
	f.enforceNetworkPolicies()
	f.opts.AuditMode = true
	f.serve(tamper(t, validCard(f)))
	startManager(t, f)
	card := f.card(&v1alpha1.IdentityBinding{Strict: true})
	waitFor(t, f, card, func(ac *v1alpha1.AgentCard) bool {
		c := meta.FindStatusCondition(ac.Status.Conditions, v1alpha1.ConditionNetworkPolicyApplied)
		return c != nil && c.Reason == v1alpha1.ReasonPolicyAudit
	})
	wantPolicy(t, f, card, netpolicy.Permissive)
	if f.recorder.has("NetworkPolicyRestrictive") {
		t.Error("a restrictive policy was applied in audit mode")
	}
}

func hasEgress(np *networkingv1.NetworkPolicy, cidr string, port int32) bool {
	for _, r := range np.Spec.Egress {
		for _, p := range r.To {
			if p.IPBlock == nil || p.IPBlock.CIDR != cidr {
				continue
			}
			for _, pp := range r.Ports {
				if pp.Port != nil && *pp.Port == intstr.FromInt32(port) {
					return true
				}
			}
		}
	}
	return false
}

// waitPolicy waits until the card's policy exists and satisfies ok.
func waitPolicy(t *testing.T, f *fixture, card *v1alpha1.AgentCard, ok func(*networkingv1.NetworkPolicy) bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		np := f.policy(card)
		if np != nil && ok(np) {
			return
		}
		if time.Now().After(deadline) {
			var have string
			if np != nil {
				have = fmt.Sprintf("%+v %+v", np.Labels, np.Spec)
			}
			t.Fatalf("timed out waiting for the NetworkPolicy; have %s; card status %+v", have, f.get(card).Status.Conditions)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
