package manager

import (
	"testing"
	"time"

	"github.com/spiffe/go-spiffe/v2/bundle/spiffebundle"
	"github.com/spiffe/go-spiffe/v2/spiffeid"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/agentid/agentid/api/v1alpha1"
	"github.com/agentid/agentid/internal/testenv"
	"github.com/agentid/agentid/operator/internal/cardtest"
)

// With --spiffe-endpoint-socket the operator fetches cards over SPIFFE mTLS
// with the SVID a real spire-agent's Workload API gives it, from a real
// spire-server that also issued the agent's SVID; the agent's server
// presents the SVID that signed its card.
func TestTheOperatorFetchesOverMTLSWithItsWorkloadAPISVID(t *testing.T) {
	const operatorID = "spiffe://example.org/ns/agentid-system/sa/agentid-operator"
	const agentID = "spiffe://example.org/ns/agents/sa/weather-sa"
	spire := testenv.StartSPIREServer(t, "example.org")
	addr := spire.StartAgent(t)
	spire.CreateEntry(t, operatorID)
	agent := spire.Mint(t, agentID, time.Hour)
	bundleData := spire.Bundle(t)
	bundle, err := spiffebundle.Parse(spiffeid.RequireTrustDomainFromString("example.org"), bundleData)
	if err != nil {
		t.Fatal(err)
	}

	w := newWorld(t, bundleData)
	w.addWeather(t, nil)
	w.agent = cardtest.NewMTLSServer(t, cardtest.Sign(t, cardtest.Card("weather"), agent), agent, bundle.X509Bundle())
	cfg := w.config(t)
	cfg.WorkloadAPIAddr = addr
	w.start(t, cfg)

	got := waitCondition(t, w.c, w.card(t), v1alpha1.ConditionVerified, metav1.ConditionTrue)
	if c := meta.FindStatusCondition(got.Status.Conditions, v1alpha1.ConditionVerified); c.Reason != v1alpha1.ReasonMTLSVerified {
		t.Errorf("Verified reason %q, want %s", c.Reason, v1alpha1.ReasonMTLSVerified)
	}
	if got.Status.AttestedAgentSpiffeID != agentID || got.Status.SignatureSpiffeID != agentID {
		t.Errorf("attestedAgentSpiffeId %q, signatureSpiffeId %q; want %s", got.Status.AttestedAgentSpiffeID, got.Status.SignatureSpiffeID, agentID)
	}
	if peers := w.agent.ClientIDs(); len(peers) == 0 || peers[0] != operatorID {
		t.Errorf("the agent's server saw client SVIDs %v, want the operator's %s", peers, operatorID)
	}
}
