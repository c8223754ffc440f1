package agentcard

import (
	"errors"
	"fmt"
	"path"
	"strings"

	"github.com/spiffe/go-spiffe/v2/spiffeid"
)

// bindingPolicy is what a verified SPIFFE ID must satisfy: always the trust
// domain (the floor), and optionally one exact ID or one pattern.
type bindingPolicy struct {
	td       spiffeid.TrustDomain // zero: none configured
	expected spiffeid.ID          // zero: none
	pattern  string               // "": none
}

func (v *Verifier) bindingPolicy() *bindingPolicy {
	if v.binding == nil {
		v.binding = &bindingPolicy{}
	}
	return v.binding
}

// WithTrustDomain binds verified SPIFFE IDs to trust domain td: a card signed
// by an SVID of any other trust domain is NotBound. This is Kagenti's
// binding, and the floor under WithExpectedID and WithExpectedIDPattern.
func WithTrustDomain(td spiffeid.TrustDomain) VerifierOption {
	return func(v *Verifier) error {
		if td.IsZero() {
			return errors.New("agentcard: WithTrustDomain: empty trust domain")
		}
		b := v.bindingPolicy()
		if !b.td.IsZero() && b.td != td {
			return fmt.Errorf("agentcard: WithTrustDomain: %s conflicts with %s", td, b.td)
		}
		b.td = td
		return nil
	}
}

// WithExpectedID binds the card to exactly one SPIFFE ID, so that one agent
// cannot present another agent's card even within a trust domain. Its trust
// domain becomes the floor if none was set.
func WithExpectedID(id spiffeid.ID) VerifierOption {
	return func(v *Verifier) error {
		if id.IsZero() {
			return errors.New("agentcard: WithExpectedID: empty ID")
		}
		b := v.bindingPolicy()
		if !b.td.IsZero() && b.td != id.TrustDomain() {
			return fmt.Errorf("agentcard: WithExpectedID: %s is not in trust domain %s", id, b.td)
		}
		b.td = id.TrustDomain()
		b.expected = id
		return nil
	}
}

// WithExpectedIDPattern binds the card to SPIFFE IDs matching pattern, a
// SPIFFE ID whose path may contain path.Match wildcards: `*` matches within
// one path segment, so "spiffe://example.org/ns/*/sa/agent" accepts the
// agent service account of every namespace and nothing deeper. The trust
// domain must be literal and becomes the floor if none was set.
func WithExpectedIDPattern(pattern string) VerifierOption {
	return func(v *Verifier) error {
		rest, ok := strings.CutPrefix(pattern, "spiffe://")
		if !ok {
			return errors.New("agentcard: WithExpectedIDPattern: pattern must start with spiffe://")
		}
		tdName, p, _ := strings.Cut(rest, "/")
		td, err := spiffeid.TrustDomainFromString(tdName)
		if err != nil {
			return fmt.Errorf("agentcard: WithExpectedIDPattern: %w", err)
		}
		if p == "" {
			return errors.New("agentcard: WithExpectedIDPattern: pattern has no path")
		}
		if _, err := path.Match(pattern, ""); err != nil {
			return fmt.Errorf("agentcard: WithExpectedIDPattern: %w", err)
		}
		b := v.bindingPolicy()
		if !b.td.IsZero() && b.td != td {
			return fmt.Errorf("agentcard: WithExpectedIDPattern: %s is not in trust domain %s", pattern, b.td)
		}
		b.td = td
		b.pattern = pattern
		return nil
	}
}

// WithBinding turns on binding evaluation without requiring anything: every
// card is NotBound with Kagenti's "No trust domain configured" message until
// a trust domain is set. It mirrors an AgentCard with an empty
// identityBinding and an operator without --spire-trust-domain.
func WithBinding() VerifierOption {
	return func(v *Verifier) error {
		v.bindingPolicy()
		return nil
	}
}

// KubernetesID returns the SPIFFE ID that the Kagenti ClusterSPIFFEID
// template gives a pod: spiffe://<td>/ns/<namespace>/sa/<serviceAccount>.
func KubernetesID(td spiffeid.TrustDomain, namespace, serviceAccount string) (spiffeid.ID, error) {
	if namespace == "" || serviceAccount == "" {
		return spiffeid.ID{}, errors.New("agentcard: KubernetesID: namespace and service account are required")
	}
	id, err := spiffeid.FromSegments(td, "ns", namespace, "sa", serviceAccount)
	if err != nil {
		return spiffeid.ID{}, fmt.Errorf("agentcard: KubernetesID: %w", err)
	}
	return id, nil
}

// evaluate binds the SPIFFE ID of a verified signature ("" when none
// verified). The ID was parsed and validated by go-spiffe during
// verification, so comparing its canonical string form is exact.
func (b *bindingPolicy) evaluate(id string) Binding {
	out := Binding{Reason: BindingNotBound}
	if !b.td.IsZero() {
		out.TrustDomain = b.td.Name()
	}
	if !b.expected.IsZero() {
		out.ExpectedID = b.expected.String()
	}
	out.ExpectedPattern = b.pattern
	switch {
	case id == "":
		out.Message = msgNoSPIFFEID
		return out
	case b.td.IsZero():
		out.Message = msgNoTrustDomain
		return out
	}
	parsed, err := spiffeid.FromString(id)
	if err != nil || parsed.TrustDomain() != b.td || parsed.Path() == "" {
		out.Message = fmt.Sprintf("SPIFFE ID %s does not belong to trust domain %s", id, b.td.Name())
		return out
	}
	if !b.expected.IsZero() && parsed != b.expected {
		out.Message = fmt.Sprintf("SPIFFE ID %s is not the expected %s", id, b.expected)
		return out
	}
	if b.pattern != "" {
		if ok, _ := path.Match(b.pattern, id); !ok {
			out.Message = fmt.Sprintf("SPIFFE ID %s does not match %s", id, b.pattern)
			return out
		}
	}
	out.Bound = true
	out.Reason = BindingBound
	out.Message = fmt.Sprintf("SPIFFE ID %s belongs to trust domain %s", id, b.td.Name())
	switch {
	case !b.expected.IsZero():
		out.Message += " and is the expected ID"
	case b.pattern != "":
		out.Message += " and matches " + b.pattern
	}
	return out
}
