package manager

import (
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/agentid/agentid/api/v1alpha1"
	"github.com/agentid/agentid/operator/discovery"
	"github.com/agentid/agentid/operator/internal/cardtest"
)

// TestDiscoveredCardsAreVerifiedAndGiveWayToOnesPeopleWrite runs the whole
// operator with discovery on: a labelled agent gets a card without anyone
// writing one, the card is verified and the workload labelled; when a
// person then writes a card for the same workload, the discovered card is
// deleted and theirs takes over, verified, without the workload's label
// going (which would roll it twice).
func TestDiscoveredCardsAreVerifiedAndGiveWayToOnesPeopleWrite(t *testing.T) {
	ca := cardtest.NewCA(t, "example.org")
	svid := ca.SVID(t, "spiffe://example.org/ns/agents/sa/weather-sa")
	w := newWorld(t, ca.SPIFFEBundle(t))
	w.addWeather(t, cardtest.Sign(t, cardtest.Card("weather"), svid))
	cfg := w.config(t)
	cfg.Discovery = true
	w.start(t, cfg)
	c := w.c

	discovered := &v1alpha1.AgentCard{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: discovery.CardName("weather", "Deployment")}}
	waitExists(t, c, discovered)
	got := waitCondition(t, c, discovered, v1alpha1.ConditionVerified, metav1.ConditionTrue)
	if ib := got.Spec.IdentityBinding; ib == nil || ib.Strict {
		t.Errorf("identityBinding %+v, want {} (the operator has a trust domain)", ib)
	}
	waitCondition(t, c, discovered, v1alpha1.ConditionBound, metav1.ConditionTrue)
	waitLabel(t, c, w.d, true)
	generation := deploymentGeneration(t, c, w.d)

	mine := w.card(t)
	waitGone(t, c, discovered)
	waitCondition(t, c, mine, v1alpha1.ConditionVerified, metav1.ConditionTrue)
	waitLabel(t, c, w.d, true)
	if g := deploymentGeneration(t, c, w.d); g != generation {
		t.Errorf("the Deployment's generation moved from %d to %d: the handover changed its pod template", generation, g)
	}
}

func deploymentGeneration(t *testing.T, c client.Client, d *appsv1.Deployment) int64 {
	t.Helper()
	var got appsv1.Deployment
	if err := c.Get(t.Context(), client.ObjectKeyFromObject(d), &got); err != nil {
		t.Fatal(err)
	}
	return got.Generation
}

func waitExists(t *testing.T, c client.Client, card *v1alpha1.AgentCard) {
	t.Helper()
	waitCard(t, c, card, func(err error) bool { return err == nil })
}

func waitGone(t *testing.T, c client.Client, card *v1alpha1.AgentCard) {
	t.Helper()
	waitCard(t, c, card, apierrors.IsNotFound)
}

func waitCard(t *testing.T, c client.Client, card *v1alpha1.AgentCard, done func(error) bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		err := c.Get(t.Context(), client.ObjectKeyFromObject(card), &v1alpha1.AgentCard{})
		if done(err) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for AgentCard %s: %v", card.Name, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
