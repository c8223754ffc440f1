package manager

import (
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	networkingv1 "k8s.io/api/networking/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/agentid/agentid/api/v1alpha1"
	"github.com/agentid/agentid/operator/internal/cardtest"
	"github.com/agentid/agentid/operator/netpolicy"
)

func netpolConfig() *netpolicy.Config {
	return &netpolicy.Config{
		OperatorNamespace: "agentid-system",
		OperatorPods:      &metav1.LabelSelector{MatchLabels: map[string]string{"app.kubernetes.io/name": "agentid-operator"}},
		DNSNamespace:      "kube-system",
		DNSPods:           &metav1.LabelSelector{MatchLabels: map[string]string{"k8s-app": "kube-dns"}},
	}
}

// TestOperatorEnforcesNetworkPolicies runs the operator as
// cmd/agentid-operator builds it with --enforce-network-policies, whose
// cache holds only the operator's own policies and the API server's
// EndpointSlices: a verified card's policy is permissive; a CA rotation
// makes it restrictive through the bundle watch, with the API server's
// EndpointSlice addresses; deleting the card deletes it; and a policy of
// the card's name that is not the operator's (outside its cache) is found
// and left alone.
func TestOperatorEnforcesNetworkPolicies(t *testing.T) {
	ca := cardtest.NewCA(t, "example.org")
	svid := ca.SVID(t, "spiffe://example.org/ns/agents/sa/weather-sa")
	w := newWorld(t, ca.SPIFFEBundle(t))
	w.addWeather(t, cardtest.Sign(t, cardtest.Card("weather"), svid))
	apiServerAddrs := ensureAPIServerSlice(t, w.c)
	cfg := w.config(t)
	cfg.NetworkPolicies = netpolConfig()
	w.start(t, cfg)
	c := w.c

	card := w.card(t)
	waitPolicyReason(t, c, card, v1alpha1.ReasonPolicyPermissive)
	np := getPolicy(t, c, card)
	if np == nil || np.Spec.PodSelector.MatchLabels["app"] != "weather" || len(np.Spec.PodSelector.MatchLabels) != 1 {
		t.Fatalf("policy %+v, want the Deployment's selector app=weather", np)
	}

	w.setBundle(t, cardtest.NewCA(t, "example.org").SPIFFEBundle(t))
	waitPolicyReason(t, c, card, v1alpha1.ReasonPolicyRestrictive)
	np = getPolicy(t, c, card)
	if np.Labels[v1alpha1.LabelNetworkPolicyMode] != "restrictive" {
		t.Errorf("mode %q", np.Labels[v1alpha1.LabelNetworkPolicyMode])
	}
	got := map[string]bool{}
	for _, r := range np.Spec.Egress {
		for _, p := range r.To {
			if p.IPBlock != nil {
				got[p.IPBlock.CIDR] = true
			}
		}
	}
	for _, a := range apiServerAddrs {
		if !got[a] {
			t.Errorf("API-server egress %v lacks %s from the EndpointSlices", got, a)
		}
	}
	if len(got) != len(apiServerAddrs) {
		t.Errorf("API-server egress %v, want exactly %v", got, apiServerAddrs)
	}
	wantGauge(t, w, "agentid_network_policies", "restrictive", 1)
	wantGauge(t, w, "agentid_network_policy_apiserver_endpoints", "", float64(len(apiServerAddrs)))

	// Deleting the card deletes its policy.
	if err := c.Delete(t.Context(), card); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(20 * time.Second)
	for getPolicy(t, c, card) != nil {
		if time.Now().After(deadline) {
			t.Fatal("the NetworkPolicy outlived its AgentCard")
		}
		time.Sleep(50 * time.Millisecond)
	}
	for {
		var gone v1alpha1.AgentCard
		if err := c.Get(t.Context(), client.ObjectKeyFromObject(card), &gone); apierrors.IsNotFound(err) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the AgentCard was not finalized")
		}
		time.Sleep(50 * time.Millisecond)
	}
	wantGauge(t, w, "agentid_network_policies", "restrictive", 0) // forgotten before the finalizer went

	// Someone else's policy of that name, unlabelled, so not in the
	// operator's cache: found, reported, not touched.
	theirs := &networkingv1.NetworkPolicy{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: netpolicy.Name(card.Name)},
		Spec:       networkingv1.NetworkPolicySpec{PodSelector: metav1.LabelSelector{MatchLabels: map[string]string{"app": "db"}}},
	}
	w.create(t, theirs)
	again := w.card(t)
	waitPolicyReason(t, c, again, v1alpha1.ReasonPolicyConflict)
	if np := getPolicy(t, c, again); np.ResourceVersion != theirs.ResourceVersion {
		t.Error("the policy that is not the operator's was changed")
	}
	wantGauge(t, w, "agentid_network_policies", "conflict", 1)
}

// ensureAPIServerSlice returns the /32 and /128 of the API server's
// EndpointSlices, creating one when the API server publishes none.
func ensureAPIServerSlice(t *testing.T, c client.Client) []string {
	t.Helper()
	var list discoveryv1.EndpointSliceList
	if err := c.List(t.Context(), &list, client.InNamespace("default"), client.MatchingLabels{discoveryv1.LabelServiceName: "kubernetes"}); err != nil {
		t.Fatal(err)
	}
	if len(list.Items) == 0 {
		port, proto := int32(6443), corev1.ProtocolTCP
		s := discoveryv1.EndpointSlice{
			ObjectMeta:  metav1.ObjectMeta{Namespace: "default", Name: "kubernetes", Labels: map[string]string{discoveryv1.LabelServiceName: "kubernetes"}},
			AddressType: discoveryv1.AddressTypeIPv4,
			Endpoints:   []discoveryv1.Endpoint{{Addresses: []string{"10.0.0.1"}}},
			Ports:       []discoveryv1.EndpointPort{{Port: &port, Protocol: &proto}},
		}
		if err := c.Create(t.Context(), &s); err != nil {
			t.Fatal(err)
		}
		list.Items = append(list.Items, s)
	} else {
		t.Logf("the API server publishes %d EndpointSlice(s) of default/kubernetes", len(list.Items))
	}
	var out []string
	for _, s := range list.Items {
		bits := "/32"
		if s.AddressType == discoveryv1.AddressTypeIPv6 {
			bits = "/128"
		}
		for _, e := range s.Endpoints {
			for _, a := range e.Addresses {
				out = append(out, a+bits)
			}
		}
	}
	return out
}

func getPolicy(t *testing.T, c client.Client, card *v1alpha1.AgentCard) *networkingv1.NetworkPolicy {
	t.Helper()
	var np networkingv1.NetworkPolicy
	err := c.Get(t.Context(), types.NamespacedName{Namespace: card.Namespace, Name: netpolicy.Name(card.Name)}, &np)
	if apierrors.IsNotFound(err) {
		return nil
	}
	if err != nil {
		t.Fatal(err)
	}
	return &np
}

func waitPolicyReason(t *testing.T, c client.Client, card *v1alpha1.AgentCard, reason string) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		var got v1alpha1.AgentCard
		if err := c.Get(t.Context(), client.ObjectKeyFromObject(card), &got); err != nil {
			t.Fatal(err)
		}
		if cond := meta.FindStatusCondition(got.Status.Conditions, v1alpha1.ConditionNetworkPolicyApplied); cond != nil && cond.Reason == reason {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for NetworkPolicyApplied reason %s; conditions: %+v", reason, got.Status.Conditions)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// wantGauge checks a gauge of w's registry; state "" is the unlabelled one.
func wantGauge(t *testing.T, w *world, name, state string, want float64) {
	t.Helper()
	families, err := w.metrics.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range families {
		if f.GetName() != name {
			continue
		}
		for _, m := range f.GetMetric() {
			match := state == ""
			for _, l := range m.GetLabel() {
				if l.GetName() == "state" && l.GetValue() == state {
					match = true
				}
			}
			if match {
				if v := m.GetGauge().GetValue(); v != want {
					t.Errorf("%s{state=%q} = %v, want %v", name, state, v, want)
				}
				return
			}
		}
	}
	t.Errorf("metric %s{state=%q} not found", name, state)
}
