// Package netpolicy builds and applies the NetworkPolicy that follows an
// AgentCard's verification (agentid-operator --enforce-network-policies).
//
// Each AgentCard has one NetworkPolicy, named after the card (Name), with a
// controller ownerReference to it, selecting the pods of the card's
// workload by the workload's own spec.selector (matchLabels and
// matchExpressions), never by its mutable pod-template labels:
//
//   - permissive, while the card is verified: every ingress and egress is
//     allowed;
//   - restrictive, while it is not verified or not yet evaluated: ingress
//     only from the operator's pods (so that it can fetch the card again and
//     see it recover), egress only to cluster DNS and to the API server,
//     whose addresses and ports come from the EndpointSlices of
//     default/kubernetes (no port is assumed). Without them the policy stays
//     restrictive and denies that egress.
//
// Audit mode never applies the restrictive policy: the policy is permissive
// and the outcome says what enforce mode would have applied.
//
// Build and APIServerEgress are pure; Enforcer writes the policy through a
// client, never adopting or overwriting a NetworkPolicy that the card does
// not control.
//
// NetworkPolicies are additive: the restrictive policy cannot take away
// what another policy selecting the same pods allows, and the permissive one
// allows everything to and from the pods, also what a namespace's own
// default-deny policy would refuse.
package netpolicy
