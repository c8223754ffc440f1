package agentcard

import (
	"errors"
	"testing"

	"github.com/spiffe/go-spiffe/v2/spiffeid"
)

func TestBinding(t *testing.T) {
	f := newFixture(t)
	other := newCA(t, "evil.com")
	f.bundles = bundleSet(f.ca, other)
	exampleTD := spiffeid.RequireTrustDomainFromString("example.org")
	otherTD := spiffeid.RequireTrustDomainFromString("partner.example.com")
	k8sID, err := KubernetesID(exampleTD, "agents", "weather")
	if err != nil {
		t.Fatal(err)
	}
	if k8sID.String() != testID {
		t.Fatalf("KubernetesID = %s", k8sID)
	}
	otherAgent, _ := KubernetesID(exampleTD, "agents", "billing")
	evilCard := func(t *testing.T) []byte {
		s := other.issue(t, "spiffe://evil.com/ns/agents/sa/weather", p256)
		return f.handCard(t, jwsSpec{header: stdHeader(s, ES256), key: s.key, alg: ES256})
	}
	ourCard := func(t *testing.T) []byte { return f.sign(t, baseCard) }

	for _, tc := range []struct {
		name    string
		card    func(*testing.T) []byte
		opts    []VerifierOption
		bound   bool
		message string
	}{
		{"SPIFFE ID in the configured trust domain is Bound", ourCard, []VerifierOption{WithTrustDomain(exampleTD)}, true,
			"SPIFFE ID " + testID + " belongs to trust domain example.org"},
		{"wrong trust domain is NotBound", evilCard, []VerifierOption{WithTrustDomain(exampleTD)}, false,
			"SPIFFE ID spiffe://evil.com/ns/agents/sa/weather does not belong to trust domain example.org"},
		{"per-card trust domain override rejects the operator default", ourCard, []VerifierOption{WithTrustDomain(otherTD)}, false,
			"SPIFFE ID " + testID + " does not belong to trust domain partner.example.com"},
		{"no SPIFFE ID (nothing verified) is NotBound", func(t *testing.T) []byte { return baseCard }, []VerifierOption{WithTrustDomain(exampleTD)}, false,
			msgNoSPIFFEID},
		{"no trust domain configured is NotBound", ourCard, []VerifierOption{WithBinding()}, false, msgNoTrustDomain},
		{"exact expected ID (Kubernetes namespace and service account) is Bound", ourCard, []VerifierOption{WithExpectedID(k8sID)}, true,
			"SPIFFE ID " + testID + " belongs to trust domain example.org and is the expected ID"},
		{"another agent's card in the same trust domain is NotBound (Kagenti §5.1 #1)", ourCard, []VerifierOption{WithExpectedID(otherAgent)}, false,
			"SPIFFE ID " + testID + " is not the expected spiffe://example.org/ns/agents/sa/billing"},
		{"pattern over namespaces is Bound", ourCard, []VerifierOption{WithExpectedIDPattern("spiffe://example.org/ns/*/sa/weather")}, true,
			"SPIFFE ID " + testID + " belongs to trust domain example.org and matches spiffe://example.org/ns/*/sa/weather"},
		{"pattern wildcard does not cross path segments", ourCard, []VerifierOption{WithExpectedIDPattern("spiffe://example.org/*")}, false,
			"SPIFFE ID " + testID + " does not match spiffe://example.org/*"},
		{"pattern in the right trust domain but another service account", ourCard, []VerifierOption{WithExpectedIDPattern("spiffe://example.org/ns/*/sa/billing")}, false,
			"SPIFFE ID " + testID + " does not match spiffe://example.org/ns/*/sa/billing"},
		{"pattern's trust domain is the floor", evilCard, []VerifierOption{WithExpectedIDPattern("spiffe://example.org/ns/*/sa/weather")}, false,
			"SPIFFE ID spiffe://evil.com/ns/agents/sa/weather does not belong to trust domain example.org"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			res, err := f.verifier(t, tc.opts...).Verify(tc.card(t))
			if res.Binding == nil {
				t.Fatal("no binding result")
			}
			if res.Binding.Bound != tc.bound || res.Binding.Message != tc.message {
				t.Fatalf("binding %+v\nwant bound=%v message %q", res.Binding, tc.bound, tc.message)
			}
			wantReason := BindingNotBound
			if tc.bound {
				wantReason = BindingBound
			}
			if res.Binding.Reason != wantReason {
				t.Fatalf("reason %q", res.Binding.Reason)
			}
			switch {
			case tc.bound && err != nil:
				t.Fatalf("bound card refused: %v", err)
			case !tc.bound && err == nil:
				t.Fatal("unbound card accepted")
			case !tc.bound && res.Verified && !errors.Is(err, ErrNotBound):
				t.Fatalf("error %v, want ErrNotBound", err)
			}
		})
	}
}

func TestBindingPrefersABoundSignature(t *testing.T) {
	// A card signed by two identities (say, during a migration) is bound
	// through whichever signature satisfies the binding.
	f := newFixture(t)
	billing := f.ca.issue(t, "spiffe://example.org/ns/agents/sa/billing", p256)
	p1, s1 := handSign(t, baseCard, jwsSpec{header: stdHeader(billing, ES256), key: billing.key, alg: ES256})
	p2, s2 := handSign(t, baseCard, f.stdSpec())
	card := withSigs(t, baseCard, [2]string{p1, s1}, [2]string{p2, s2})
	id, _ := KubernetesID(f.ca.td, "agents", "weather")
	res, err := f.verifier(t, WithExpectedID(id)).Verify(card)
	if err != nil || res.SignatureIndex != 1 || res.SPIFFEID != testID {
		t.Fatalf("%v %+v", err, res)
	}
}

func TestKubernetesIDRejectsEmptyParts(t *testing.T) {
	td := spiffeid.RequireTrustDomainFromString("example.org")
	for _, tc := range [][2]string{{"", "sa"}, {"ns", ""}, {"a/b", "sa"}, {"..", "sa"}} {
		if _, err := KubernetesID(td, tc[0], tc[1]); err == nil {
			t.Errorf("KubernetesID(%q, %q) accepted", tc[0], tc[1])
		}
	}
}
