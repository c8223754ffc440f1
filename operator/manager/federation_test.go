package manager

import (
	"strings"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/agentid/agentid/api/v1alpha1"
	"github.com/agentid/agentid/operator/internal/cardtest"
	"github.com/agentid/agentid/operator/trustbundle"
)

// TestOperatorVerifiesAFederatedTrustDomainOnlyWithItsBundle: on a real API
// server, a card bound to the federated trust domain partner.example and
// signed with that domain's SVID is refused while the bundle ConfigMap
// holds only the operator's trust domain (TrustDomainNotInBundle), verified
// once the ConfigMap is a bundle set document that holds partner.example,
// refused again when the set drops it, and verified when a federated key
// adds it beside a single bundle — each change arriving through the watch.
func TestOperatorVerifiesAFederatedTrustDomainOnlyWithItsBundle(t *testing.T) {
	ours, partner := cardtest.NewCA(t, "example.org"), cardtest.NewCA(t, "partner.example")
	w := newWorld(t, ours.SPIFFEBundle(t))
	w.addWeather(t, cardtest.Sign(t, cardtest.Card("weather"), partner.SVID(t, "spiffe://partner.example/ns/agents/sa/weather-sa")))
	w.start(t, w.config(t))

	card := &v1alpha1.AgentCard{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "weather-card"},
		Spec: v1alpha1.AgentCardSpec{
			TargetRef:       v1alpha1.TargetRef{APIVersion: "apps/v1", Kind: "Deployment", Name: "weather"},
			IdentityBinding: &v1alpha1.IdentityBinding{TrustDomain: "partner.example", Strict: true},
		},
	}
	w.create(t, card)
	got := waitBound(t, w, v1alpha1.ReasonTrustDomainNotInBundle)
	if meta.IsStatusConditionTrue(got.Status.Conditions, v1alpha1.ConditionVerified) {
		t.Fatal("verified without the federated trust domain's bundle")
	}

	// A bundle set document with both trust domains.
	set := func(members ...string) []byte {
		return []byte("{" + strings.Join(members, ", ") + "}")
	}
	oursMember := `"example.org": ` + string(ours.SPIFFEBundle(t))
	partnerMember := `"spiffe://partner.example": ` + string(partner.SPIFFEBundle(t))
	w.setBundle(t, set(oursMember, partnerMember))
	got = waitCondition(t, w.c, card, v1alpha1.ConditionVerified, metav1.ConditionTrue)
	if got.Status.SignatureSpiffeID != "spiffe://partner.example/ns/agents/sa/weather-sa" || !got.Status.BindingStatus.Bound {
		t.Errorf("signatureSpiffeId %q, bindingStatus %+v", got.Status.SignatureSpiffeID, got.Status.BindingStatus)
	}
	waitLabel(t, w.c, w.d, true)

	// Federation ends: the set drops partner.example.
	w.setBundle(t, set(oursMember))
	waitBound(t, w, v1alpha1.ReasonTrustDomainNotInBundle)
	waitCondition(t, w.c, card, v1alpha1.ConditionVerified, metav1.ConditionFalse)
	waitLabel(t, w.c, w.d, false)

	// The single-bundle form again, with partner.example in a federated key.
	w.bundle.Data[trustbundle.FederatedKeyPrefix+"partner.example"] = string(partner.SPIFFEBundle(t))
	w.setBundle(t, ours.SPIFFEBundle(t))
	waitCondition(t, w.c, card, v1alpha1.ConditionVerified, metav1.ConditionTrue)
	waitLabel(t, w.c, w.d, true)
}

// waitBound waits until the weather card's Bound condition has reason.
func waitBound(t *testing.T, w *world, reason string) *v1alpha1.AgentCard {
	t.Helper()
	card := &v1alpha1.AgentCard{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "weather-card"}}
	deadline := time.Now().Add(20 * time.Second)
	for {
		var got v1alpha1.AgentCard
		if err := w.c.Get(t.Context(), client.ObjectKeyFromObject(card), &got); err != nil {
			t.Fatal(err)
		}
		if c := meta.FindStatusCondition(got.Status.Conditions, v1alpha1.ConditionBound); c != nil && c.Status == metav1.ConditionFalse && c.Reason == reason {
			return &got
		}
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for Bound=False/%s; conditions: %+v", reason, got.Status.Conditions)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
