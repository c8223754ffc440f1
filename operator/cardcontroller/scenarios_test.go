package cardcontroller

import (
	"context"
	"fmt"
	"maps"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	networkingv1 "k8s.io/api/networking/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	"github.com/agentid/agentid/agentcard"
	"github.com/agentid/agentid/api/v1alpha1"
	"github.com/agentid/agentid/operator/internal/cardtest"
	"github.com/agentid/agentid/operator/netpolicy"
)

// scenario is one requirement on the reconciler, checked against both the
// fake client (TestScenariosFakeClient) and a real kube-apiserver
// (TestScenariosEnvtest).
type scenario struct {
	name string
	// audit runs the operator with --signature-audit-mode.
	audit bool
	// federated gives the operator the bundle of the foreign CA's trust
	// domain (partner.example) beside its own, as a bundle set does.
	federated bool
	// binding is the AgentCard's spec.identityBinding.
	binding func(f *fixture) *v1alpha1.IdentityBinding
	// before, when set, is served and reconciled first (so that the label
	// is on when card is served).
	before func(f *fixture) []byte
	// card is what the agent serves.
	card  func(f *fixture) []byte
	check func(t *testing.T, f *fixture, res reconcile.Result, card *v1alpha1.AgentCard)
}

func strict(f *fixture) *v1alpha1.IdentityBinding { return &v1alpha1.IdentityBinding{Strict: true} }

func validCard(f *fixture) []byte { return f.signedCard(f.ca.Ours, f.id(testTD, testSA)) }

// partnerBinding binds the card to the federated trust domain
// partner.example, strictly; partnerCard is signed with the workload's
// SVID of that trust domain, by its CA.
func partnerBinding(f *fixture) *v1alpha1.IdentityBinding {
	return &v1alpha1.IdentityBinding{TrustDomain: "partner.example", Strict: true}
}

func partnerCard(f *fixture) []byte {
	return f.signedCard(f.ca.Foreign, f.id("partner.example", testSA))
}

var scenarios = []scenario{{
	name:    "a card signed with the workload's own SVID is verified, bound, published and labelled",
	binding: strict,
	card:    validCard,
	check: func(t *testing.T, f *fixture, res reconcile.Result, card *v1alpha1.AgentCard) {
		st := card.Status
		wantBool(t, "validSignature", st.ValidSignature, true)
		wantBool(t, "signatureIdentityMatch", st.SignatureIdentityMatch, true)
		if want := f.id(testTD, testSA); st.SignatureSpiffeID != want || st.ExpectedSpiffeID != want {
			t.Errorf("signatureSpiffeId = %q, expectedSpiffeID = %q, want both %q", st.SignatureSpiffeID, st.ExpectedSpiffeID, want)
		}
		if st.BindingStatus == nil || !st.BindingStatus.Bound || st.BindingStatus.Reason != v1alpha1.ReasonBound || st.BindingStatus.LastEvaluationTime == nil {
			t.Errorf("bindingStatus = %+v, want bound with reason Bound and a time", st.BindingStatus)
		}
		wantCondition(t, card, v1alpha1.ConditionSynced, metav1.ConditionTrue, v1alpha1.ReasonSyncSucceeded)
		wantCondition(t, card, v1alpha1.ConditionSignatureVerified, metav1.ConditionTrue, v1alpha1.ReasonSignatureValid)
		wantCondition(t, card, v1alpha1.ConditionBound, metav1.ConditionTrue, v1alpha1.ReasonBound)
		wantCondition(t, card, v1alpha1.ConditionVerified, metav1.ConditionTrue, v1alpha1.ReasonSignatureVerified)
		wantCondition(t, card, v1alpha1.ConditionReady, metav1.ConditionTrue, v1alpha1.ReasonReadyToServe)
		if st.Card == nil || !strings.Contains(string(st.Card.Raw), `"weather"`) {
			t.Errorf("status.card = %v, want the served card", st.Card)
		}
		if len(st.CardID) != 64 || st.LastSyncTime == nil || st.Protocol != v1alpha1.ProtocolA2A || st.TargetRef == nil {
			t.Errorf("cardId %q, lastSyncTime %v, protocol %q, targetRef %v: want all set", st.CardID, st.LastSyncTime, st.Protocol, st.TargetRef)
		}
		if st.SignatureKeyID == "" || !strings.Contains(st.SignatureVerificationDetails, "verified") {
			t.Errorf("signatureKeyId %q, details %q", st.SignatureKeyID, st.SignatureVerificationDetails)
		}
		if v, ok := f.label(f.name); !ok || v != "true" {
			t.Errorf("pod template label = %q, %v; want true", v, ok)
		}
		if res.RequeueAfter <= 0 || res.RequeueAfter > DefaultSyncPeriod {
			t.Errorf("RequeueAfter = %v, want at most the 30s sync period", res.RequeueAfter)
		}
	},
}, {
	name:    "a tampered card is rejected, not published, and the label is removed",
	binding: strict,
	before:  validCard,
	card:    func(f *fixture) []byte { return tamper(f.t, validCard(f)) },
	check: func(t *testing.T, f *fixture, res reconcile.Result, card *v1alpha1.AgentCard) {
		st := card.Status
		wantBool(t, "validSignature", st.ValidSignature, false)
		wantBool(t, "signatureIdentityMatch", st.SignatureIdentityMatch, false)
		if st.SignatureSpiffeID != "" {
			t.Errorf("signatureSpiffeId = %q, want it cleared", st.SignatureSpiffeID)
		}
		if !strings.Contains(st.SignatureVerificationDetails, "bad_signature") {
			t.Errorf("details = %q, want the bad_signature reason", st.SignatureVerificationDetails)
		}
		wantCondition(t, card, v1alpha1.ConditionSynced, metav1.ConditionFalse, v1alpha1.ReasonSignatureInvalid)
		wantCondition(t, card, v1alpha1.ConditionSignatureVerified, metav1.ConditionFalse, v1alpha1.ReasonSignatureInvalid)
		wantCondition(t, card, v1alpha1.ConditionVerified, metav1.ConditionFalse, v1alpha1.ReasonSignatureInvalid)
		wantCondition(t, card, v1alpha1.ConditionReady, metav1.ConditionFalse, v1alpha1.ReasonNotSynced)
		if st.Card != nil {
			t.Errorf("status.card = %s, want the rejected card withheld", st.Card.Raw)
		}
		if _, ok := f.label(f.name); ok {
			t.Error("the verified label is still on the pod template")
		}
		if res.RequeueAfter != retrySlow {
			t.Errorf("RequeueAfter = %v, want %v", res.RequeueAfter, retrySlow)
		}
	},
}, {
	name:    "in audit mode a tampered card is recorded, published, and the label kept",
	audit:   true,
	binding: strict,
	before:  validCard,
	card:    func(f *fixture) []byte { return tamper(f.t, validCard(f)) },
	check: func(t *testing.T, f *fixture, res reconcile.Result, card *v1alpha1.AgentCard) {
		wantBool(t, "validSignature", card.Status.ValidSignature, false)
		wantCondition(t, card, v1alpha1.ConditionSynced, metav1.ConditionTrue, v1alpha1.ReasonSyncSucceeded)
		wantCondition(t, card, v1alpha1.ConditionSignatureVerified, metav1.ConditionFalse, v1alpha1.ReasonSignatureInvalidAudit)
		wantCondition(t, card, v1alpha1.ConditionVerified, metav1.ConditionFalse, v1alpha1.ReasonSignatureInvalid)
		wantCondition(t, card, v1alpha1.ConditionReady, metav1.ConditionFalse, v1alpha1.ReasonNotVerified)
		if card.Status.Card == nil || !strings.Contains(string(card.Status.Card.Raw), "evil agent") {
			t.Error("status.card does not hold the served card in audit mode")
		}
		if v, ok := f.label(f.name); !ok || v != "true" {
			t.Errorf("pod template label = %q, %v; audit mode must not remove it", v, ok)
		}
	},
}, {
	name: "a card bound to another trust domain than its signer's is not bound, and under strict not verified",
	binding: func(f *fixture) *v1alpha1.IdentityBinding {
		return &v1alpha1.IdentityBinding{TrustDomain: "partner.example", Strict: true}
	},
	// Both trust domains have bundles: the failure is the mismatch alone.
	federated: true,
	card:      validCard,
	check: func(t *testing.T, f *fixture, res reconcile.Result, card *v1alpha1.AgentCard) {
		st := card.Status
		wantBool(t, "validSignature", st.ValidSignature, true)
		wantBool(t, "signatureIdentityMatch", st.SignatureIdentityMatch, false)
		if st.BindingStatus == nil || st.BindingStatus.Bound || !strings.Contains(st.BindingStatus.Message, "does not belong to trust domain partner.example") {
			t.Errorf("bindingStatus = %+v, want NotBound for trust domain partner.example", st.BindingStatus)
		}
		wantCondition(t, card, v1alpha1.ConditionSignatureVerified, metav1.ConditionTrue, v1alpha1.ReasonSignatureValid)
		wantCondition(t, card, v1alpha1.ConditionBound, metav1.ConditionFalse, v1alpha1.ReasonNotBound)
		wantCondition(t, card, v1alpha1.ConditionVerified, metav1.ConditionFalse, v1alpha1.ReasonNotVerified)
		wantCondition(t, card, v1alpha1.ConditionReady, metav1.ConditionFalse, v1alpha1.ReasonNotVerified)
		if st.Card != nil {
			t.Error("status.card published for a card that is not verified")
		}
		if _, ok := f.label(f.name); ok {
			t.Error("the verified label is still on the pod template")
		}
	},
}, {
	name:      "a card bound to a federated trust domain and signed with that domain's SVID is verified against that domain's bundle",
	binding:   partnerBinding,
	federated: true,
	card:      partnerCard,
	check: func(t *testing.T, f *fixture, res reconcile.Result, card *v1alpha1.AgentCard) {
		st := card.Status
		wantBool(t, "validSignature", st.ValidSignature, true)
		wantBool(t, "signatureIdentityMatch", st.SignatureIdentityMatch, true)
		if want := f.id("partner.example", testSA); st.SignatureSpiffeID != want || st.ExpectedSpiffeID != want {
			t.Errorf("signatureSpiffeId = %q, expectedSpiffeID = %q, want both %q", st.SignatureSpiffeID, st.ExpectedSpiffeID, want)
		}
		wantCondition(t, card, v1alpha1.ConditionBound, metav1.ConditionTrue, v1alpha1.ReasonBound)
		wantCondition(t, card, v1alpha1.ConditionVerified, metav1.ConditionTrue, v1alpha1.ReasonSignatureVerified)
		if v, ok := f.label(f.name); !ok || v != "true" {
			t.Errorf("pod template label = %q, %v; want true", v, ok)
		}
	},
}, {
	name:    "a card bound to a federated trust domain whose bundle the operator lacks says so, and is not verified",
	binding: partnerBinding,
	card:    partnerCard,
	check: func(t *testing.T, f *fixture, res reconcile.Result, card *v1alpha1.AgentCard) {
		st := card.Status
		wantBool(t, "validSignature", st.ValidSignature, false)
		want := "no trust bundle for trust domain partner.example: the trust bundle ConfigMap holds example.org"
		if st.BindingStatus == nil || st.BindingStatus.Bound || st.BindingStatus.Message != want {
			t.Errorf("bindingStatus = %+v, want not bound with %q", st.BindingStatus, want)
		}
		wantCondition(t, card, v1alpha1.ConditionBound, metav1.ConditionFalse, v1alpha1.ReasonTrustDomainNotInBundle)
		wantCondition(t, card, v1alpha1.ConditionVerified, metav1.ConditionFalse, v1alpha1.ReasonSignatureInvalid)
		if st.Card != nil {
			t.Error("status.card published for a card that is not verified")
		}
		if _, ok := f.label(f.name); ok {
			t.Error("the pod template is labelled verified")
		}
	},
}, {
	name:    "a card signed in a trust domain whose bundle the operator lacks is rejected",
	binding: strict,
	card:    func(f *fixture) []byte { return f.signedCard(f.ca.Foreign, f.id("partner.example", testSA)) },
	check: func(t *testing.T, f *fixture, res reconcile.Result, card *v1alpha1.AgentCard) {
		wantBool(t, "validSignature", card.Status.ValidSignature, false)
		if !strings.Contains(card.Status.SignatureVerificationDetails, "unknown_trust_domain") {
			t.Errorf("details = %q, want unknown_trust_domain", card.Status.SignatureVerificationDetails)
		}
		wantCondition(t, card, v1alpha1.ConditionVerified, metav1.ConditionFalse, v1alpha1.ReasonSignatureInvalid)
		if _, ok := f.label(f.name); ok {
			t.Error("the pod template is labelled verified")
		}
	},
}, {
	name:    "another agent's card (another service account's SVID) is not bound and, under strict, not verified",
	binding: strict,
	before:  validCard,
	card:    func(f *fixture) []byte { return f.signedCard(f.ca.Ours, f.id(testTD, "billing-sa")) },
	check: func(t *testing.T, f *fixture, res reconcile.Result, card *v1alpha1.AgentCard) {
		st := card.Status
		wantBool(t, "validSignature", st.ValidSignature, true)
		wantBool(t, "signatureIdentityMatch", st.SignatureIdentityMatch, false)
		if st.BindingStatus == nil || !strings.Contains(st.BindingStatus.Message, "is not the expected "+f.id(testTD, testSA)) {
			t.Errorf("bindingStatus = %+v, want the expected-ID mismatch", st.BindingStatus)
		}
		wantCondition(t, card, v1alpha1.ConditionBound, metav1.ConditionFalse, v1alpha1.ReasonNotBound)
		wantCondition(t, card, v1alpha1.ConditionVerified, metav1.ConditionFalse, v1alpha1.ReasonNotVerified)
		if _, ok := f.label(f.name); ok {
			t.Error("the verified label is still on the pod template")
		}
	},
}, {
	name:    "another agent's card is recorded as not bound but stays verified when binding is not strict",
	binding: func(f *fixture) *v1alpha1.IdentityBinding { return &v1alpha1.IdentityBinding{} },
	card:    func(f *fixture) []byte { return f.signedCard(f.ca.Ours, f.id(testTD, "billing-sa")) },
	check: func(t *testing.T, f *fixture, res reconcile.Result, card *v1alpha1.AgentCard) {
		wantBool(t, "signatureIdentityMatch", card.Status.SignatureIdentityMatch, false)
		wantCondition(t, card, v1alpha1.ConditionBound, metav1.ConditionFalse, v1alpha1.ReasonNotBound)
		wantCondition(t, card, v1alpha1.ConditionVerified, metav1.ConditionTrue, v1alpha1.ReasonSignatureVerified)
		if v, ok := f.label(f.name); !ok || v != "true" {
			t.Errorf("pod template label = %q, %v; want true", v, ok)
		}
	},
}, {
	name: "an expected SPIFFE ID pattern binds every service account it matches",
	binding: func(f *fixture) *v1alpha1.IdentityBinding {
		return &v1alpha1.IdentityBinding{Strict: true, ExpectedSpiffeID: "spiffe://" + testTD + "/ns/" + f.ns + "/sa/*"}
	},
	card: func(f *fixture) []byte { return f.signedCard(f.ca.Ours, f.id(testTD, "billing-sa")) },
	check: func(t *testing.T, f *fixture, res reconcile.Result, card *v1alpha1.AgentCard) {
		wantCondition(t, card, v1alpha1.ConditionBound, metav1.ConditionTrue, v1alpha1.ReasonBound)
		wantCondition(t, card, v1alpha1.ConditionVerified, metav1.ConditionTrue, v1alpha1.ReasonSignatureVerified)
	},
}, {
	name:    "a card signed with an expired SVID is rejected",
	binding: strict,
	card: func(f *fixture) []byte {
		now := time.Now()
		svid := f.ca.Ours.SVID(f.t, f.id(testTD, testSA), cardtest.Validity(now.Add(-3*time.Hour), now.Add(-time.Hour)))
		return cardtest.Sign(f.t, cardtest.Card(f.name), svid, agentcard.WithSigningTime(now.Add(-2*time.Hour)))
	},
	check: func(t *testing.T, f *fixture, res reconcile.Result, card *v1alpha1.AgentCard) {
		wantBool(t, "validSignature", card.Status.ValidSignature, false)
		if d := card.Status.SignatureVerificationDetails; !strings.Contains(d, ": expired") && !strings.Contains(d, "leaf_expired") {
			t.Errorf("details = %q, want the expiry (expired or leaf_expired)", d)
		}
		wantCondition(t, card, v1alpha1.ConditionSignatureVerified, metav1.ConditionFalse, v1alpha1.ReasonSignatureInvalid)
	},
}, {
	name: "without identityBinding a verified card has no binding status and is Verified",
	card: validCard,
	check: func(t *testing.T, f *fixture, res reconcile.Result, card *v1alpha1.AgentCard) {
		st := card.Status
		if st.BindingStatus != nil || st.SignatureIdentityMatch != nil || hasCondition(card, v1alpha1.ConditionBound) {
			t.Errorf("bindingStatus %+v, signatureIdentityMatch %s: want none without identityBinding", st.BindingStatus, fmtBool(st.SignatureIdentityMatch))
		}
		wantCondition(t, card, v1alpha1.ConditionVerified, metav1.ConditionTrue, v1alpha1.ReasonSignatureVerified)
		wantCondition(t, card, v1alpha1.ConditionReady, metav1.ConditionTrue, v1alpha1.ReasonReadyToServe)
	},
}}

// policyWrites counts the NetworkPolicy writes through a client.
type policyWrites struct {
	client.Client
	n atomic.Int32
}

func (c *policyWrites) Update(ctx context.Context, obj client.Object, opts ...client.UpdateOption) error {
	if _, ok := obj.(*networkingv1.NetworkPolicy); ok {
		c.n.Add(1)
	}
	return c.Client.Update(ctx, obj, opts...)
}

func (c *policyWrites) Create(ctx context.Context, obj client.Object, opts ...client.CreateOption) error {
	if _, ok := obj.(*networkingv1.NetworkPolicy); ok {
		c.n.Add(1)
	}
	return c.Client.Create(ctx, obj, opts...)
}

// runScenarios runs every scenario against a client that newClient makes
// (one per scenario).
func runScenarios(t *testing.T, newClient func(t *testing.T) client.Client) {
	cas := newCAs(t)
	for _, sc := range scenarios {
		t.Run(sc.name, func(t *testing.T) {
			f := newFixture(t, newClient(t), cas)
			f.opts.AuditMode = sc.audit
			if sc.federated {
				f.federate()
			}
			var binding *v1alpha1.IdentityBinding
			if sc.binding != nil {
				binding = sc.binding(f)
			}
			f.enforceNetworkPolicies()
			card := f.card(binding)
			if sc.before != nil {
				f.serve(sc.before(f))
				_, got := f.run(card)
				if v, ok := f.label(f.name); !ok || v != "true" {
					t.Fatalf("before: label = %q, %v; want true (conditions %+v)", v, ok, got.Status.Conditions)
				}
				wantPolicy(t, f, card, netpolicy.Permissive)
			}
			f.serve(sc.card(f))
			res, got := f.run(card)
			sc.check(t, f, res, got)
			checkScenarioPolicy(t, f, got, sc.audit)
			// What the API server stores is what the builder builds (no
			// field it defaults is left out): another reconcile does not
			// write the policy again.
			counting := &policyWrites{Client: f.c}
			f.c, f.reconcile, f.opts.NetworkPolicies = counting, nil, nil
			f.run(card)
			if n := counting.n.Load(); n != 0 {
				t.Errorf("a reconcile that changed nothing wrote the NetworkPolicy %d times", n)
			}
			if t.Failed() {
				t.Logf("status: %+v", got.Status)
			}
		})
	}
}

// checkScenarioPolicy: in every scenario the NetworkPolicy follows the
// Verified condition, as the label does: permissive when verified (also
// when a binding failure is not strict), restrictive when not (a flip from
// verified included, for the scenarios with a before), and never
// restrictive in audit mode, where the condition records what enforce mode
// would do.
func checkScenarioPolicy(t *testing.T, f *fixture, card *v1alpha1.AgentCard, audit bool) {
	t.Helper()
	verified := meta.IsStatusConditionTrue(card.Status.Conditions, v1alpha1.ConditionVerified)
	switch {
	case verified:
		wantPolicy(t, f, card, netpolicy.Permissive)
		wantCondition(t, card, v1alpha1.ConditionNetworkPolicyApplied, metav1.ConditionTrue, v1alpha1.ReasonPolicyPermissive)
	case audit:
		wantPolicy(t, f, card, netpolicy.Permissive)
		wantCondition(t, card, v1alpha1.ConditionNetworkPolicyApplied, metav1.ConditionTrue, v1alpha1.ReasonPolicyAudit)
		if c := meta.FindStatusCondition(card.Status.Conditions, v1alpha1.ConditionNetworkPolicyApplied); c != nil && !strings.Contains(c.Message, "enforce mode would apply the restrictive policy") {
			t.Errorf("NetworkPolicyApplied message %q does not record the would-be outcome", c.Message)
		}
	default:
		np := wantPolicy(t, f, card, netpolicy.Restrictive)
		wantCondition(t, card, v1alpha1.ConditionNetworkPolicyApplied, metav1.ConditionTrue, v1alpha1.ReasonPolicyRestrictive)
		wantAPIServerEgress(t, f, np)
	}
}

// wantAPIServerEgress checks that the policy's ipBlock egress is exactly
// the addresses and ports of the API server's EndpointSlices.
func wantAPIServerEgress(t *testing.T, f *fixture, np *networkingv1.NetworkPolicy) {
	t.Helper()
	want := map[string]bool{}
	for _, s := range f.apiServerSlices() {
		for _, e := range s.Endpoints {
			for _, a := range e.Addresses {
				for _, p := range s.Ports {
					bits := "/32"
					if s.AddressType == discoveryv1.AddressTypeIPv6 {
						bits = "/128"
					}
					proto := corev1.ProtocolTCP
					if p.Protocol != nil {
						proto = *p.Protocol
					}
					want[fmt.Sprintf("%s%s %s/%d", a, bits, proto, *p.Port)] = true
				}
			}
		}
	}
	got := map[string]bool{}
	for _, r := range np.Spec.Egress {
		for _, peer := range r.To {
			if peer.IPBlock == nil {
				continue
			}
			for _, p := range r.Ports {
				got[fmt.Sprintf("%s %s/%d", peer.IPBlock.CIDR, *p.Protocol, p.Port.IntVal)] = true
			}
		}
	}
	if len(want) == 0 || !maps.Equal(got, want) {
		t.Errorf("API-server egress %v, want the EndpointSlices' %v", got, want)
	}
}

func TestScenariosFakeClient(t *testing.T) {
	runScenarios(t, func(t *testing.T) client.Client { return newFakeClient(t) })
}

func hasCondition(card *v1alpha1.AgentCard, typ string) bool {
	for _, c := range card.Status.Conditions {
		if c.Type == typ {
			return true
		}
	}
	return false
}
