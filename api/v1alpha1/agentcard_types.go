package v1alpha1

import (
	"strings"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
)

// AgentCard asks the operator to fetch, verify and bind the A2A AgentCard
// that a workload serves, and reports the outcome in its status.
//
// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:resource:shortName=agentcards;cards,categories=kagenti
// +kubebuilder:printcolumn:name="Protocol",type=string,JSONPath=`.status.protocol`
// +kubebuilder:printcolumn:name="Kind",type=string,JSONPath=`.spec.targetRef.kind`,priority=1
// +kubebuilder:printcolumn:name="Target",type=string,JSONPath=`.spec.targetRef.name`
// +kubebuilder:printcolumn:name="Agent",type=string,JSONPath=`.status.card.name`
// +kubebuilder:printcolumn:name="Verified",type=boolean,JSONPath=`.status.validSignature`
// +kubebuilder:printcolumn:name="Bound",type=boolean,JSONPath=`.status.bindingStatus.bound`
// +kubebuilder:printcolumn:name="Synced",type=string,JSONPath=`.status.conditions[?(@.type=="Synced")].status`
// +kubebuilder:printcolumn:name="LastSync",type=date,JSONPath=`.status.lastSyncTime`
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`
type AgentCard struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	// +required
	Spec   AgentCardSpec   `json:"spec"`
	Status AgentCardStatus `json:"status,omitempty"`
}

// AgentCardList is a list of AgentCards.
//
// +kubebuilder:object:root=true
type AgentCardList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []AgentCard `json:"items"`
}

// AgentCardSpec says which workload serves the card and how its signer must
// be bound.
type AgentCardSpec struct {
	// TargetRef is the workload that serves the card, in the AgentCard's
	// namespace. Deployments and StatefulSets are verified and labelled;
	// other kinds are read only.
	// +required
	TargetRef TargetRef `json:"targetRef"`

	// SyncPeriod is how often the card is fetched and verified again, as a
	// Go duration between 1s and 24h.
	// +optional
	// +kubebuilder:default="30s"
	// +kubebuilder:validation:Type=string
	// +kubebuilder:validation:Pattern=`^([0-9]+(\.[0-9]+)?(ns|us|µs|ms|s|m|h))+$`
	// +kubebuilder:validation:XValidation:rule="duration(self) >= duration('1s') && duration(self) <= duration('24h')",message="syncPeriod must be between 1s and 24h"
	SyncPeriod *metav1.Duration `json:"syncPeriod,omitempty"`

	// IdentityBinding, when present, requires the card's signer to be a
	// workload of a trust domain and, optionally, one expected identity.
	// +optional
	IdentityBinding *IdentityBinding `json:"identityBinding,omitempty"`
}

// TargetRef names a workload in the AgentCard's namespace.
type TargetRef struct {
	// APIVersion of the workload, such as apps/v1.
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	APIVersion string `json:"apiVersion"`
	// Kind of the workload, such as Deployment or StatefulSet.
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=63
	Kind string `json:"kind"`
	// Name of the workload.
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	Name string `json:"name"`
}

// IdentityBinding binds a card's signer to a SPIFFE identity.
//
// +kubebuilder:validation:XValidation:rule="!has(self.trustDomain) || !has(self.expectedSpiffeID) || self.expectedSpiffeID.startsWith('spiffe://' + self.trustDomain + '/')",message="expectedSpiffeID must be in trustDomain"
type IdentityBinding struct {
	// TrustDomain the signer's SPIFFE ID must belong to; it overrides the
	// operator's --spire-trust-domain for this card.
	// +optional
	// +kubebuilder:validation:MaxLength=255
	// +kubebuilder:validation:Pattern=`^[a-z0-9._-]+$`
	TrustDomain string `json:"trustDomain,omitempty"`

	// Strict enforces the binding: a card whose signer is not bound is not
	// verified. When false, a binding failure is only recorded.
	// +optional
	// +kubebuilder:default=false
	Strict bool `json:"strict,omitempty"`

	// ExpectedSpiffeID is the signer's exact SPIFFE ID, or a pattern whose
	// path segments may use * to match one segment. It defaults to
	// spiffe://<trust domain>/ns/<namespace>/sa/<service account of the
	// workload's pods>, so that one agent cannot present another's card.
	// +optional
	// +kubebuilder:validation:MaxLength=2048
	// +kubebuilder:validation:Pattern=`^spiffe://[a-z0-9._-]+/[^?#]+$`
	ExpectedSpiffeID string `json:"expectedSpiffeID,omitempty"`
}

// AgentCardStatus is the outcome of the last fetch and verification. Field
// names are the Kagenti operator's.
type AgentCardStatus struct {
	// ObservedGeneration is the spec generation the status describes.
	// +optional
	ObservedGeneration int64 `json:"observedGeneration,omitempty"`

	// Card is the fetched card as served, signatures included. It is left
	// out when the card was rejected and the operator enforces.
	// +optional
	// +kubebuilder:pruning:PreserveUnknownFields
	Card *runtime.RawExtension `json:"card,omitempty"`

	// CardID is the SHA-256 (hex) of the signed content: the RFC 8785 form
	// of the card without its signatures.
	// +optional
	CardID string `json:"cardId,omitempty"`

	// Protocol is the agent protocol the workload declares, such as a2a.
	// +optional
	Protocol string `json:"protocol,omitempty"`

	// TargetRef is the workload the card was resolved to.
	// +optional
	TargetRef *TargetRef `json:"targetRef,omitempty"`

	// LastSyncTime is when the card content was last fetched with a change
	// of cardId (or first fetched).
	// +optional
	LastSyncTime *metav1.Time `json:"lastSyncTime,omitempty"`

	// ValidSignature is true when a signature of the card verified through
	// its x5c chain to the trust bundle.
	// +optional
	ValidSignature *bool `json:"validSignature,omitempty"`

	// SignatureVerificationDetails says why, in one bounded line.
	// +optional
	SignatureVerificationDetails string `json:"signatureVerificationDetails,omitempty"`

	// SignatureKeyID is the kid of the verified signature.
	// +optional
	SignatureKeyID string `json:"signatureKeyId,omitempty"`

	// SignatureSpiffeID is the SPIFFE ID of the verified signature's SVID.
	// +optional
	SignatureSpiffeID string `json:"signatureSpiffeId,omitempty"`

	// SignatureIdentityMatch is true when the signature verified and its
	// signer is bound; unset without identityBinding.
	// +optional
	SignatureIdentityMatch *bool `json:"signatureIdentityMatch,omitempty"`

	// ExpectedSpiffeID is the SPIFFE ID (or pattern) the signer was bound
	// to.
	// +optional
	ExpectedSpiffeID string `json:"expectedSpiffeID,omitempty"`

	// AttestedAgentSpiffeID is the SPIFFE ID the agent's server presented
	// when the card was fetched over SPIFFE mTLS.
	// +optional
	AttestedAgentSpiffeID string `json:"attestedAgentSpiffeId,omitempty"`

	// BindingStatus is the outcome of the identity binding; unset without
	// identityBinding.
	// +optional
	BindingStatus *BindingStatus `json:"bindingStatus,omitempty"`

	// Conditions: Synced, SignatureVerified, Bound, Verified, Ready and, with
	// --enforce-network-policies, NetworkPolicyApplied.
	// +optional
	// +listType=map
	// +listMapKey=type
	Conditions []metav1.Condition `json:"conditions,omitempty"`
}

// BindingStatus is the outcome of binding the signer to an identity.
type BindingStatus struct {
	// Bound is true when the signer's SPIFFE ID is the expected identity.
	// +required
	Bound bool `json:"bound"`
	// Reason is Bound, NotBound or AgentNotFound.
	// +optional
	Reason string `json:"reason,omitempty"`
	// Message explains the reason.
	// +optional
	Message string `json:"message,omitempty"`
	// LastEvaluationTime is when bound, reason or message last changed.
	// +optional
	LastEvaluationTime *metav1.Time `json:"lastEvaluationTime,omitempty"`
}

// Group is the API group of the target's apiVersion ("" for the core
// group): apps for apps/v1.
func (r TargetRef) Group() string {
	group, _, found := strings.Cut(r.APIVersion, "/")
	if !found {
		return ""
	}
	return group
}

// SameWorkload reports whether r and o name the same workload of a
// namespace: the same API group, kind and name. The version does not
// count: apps/v1 and apps/v1beta2 name one Deployment.
func (r TargetRef) SameWorkload(o TargetRef) bool {
	return r.Group() == o.Group() && r.Kind == o.Kind && r.Name == o.Name
}
