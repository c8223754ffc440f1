// Package cardcontroller reconciles AgentCards: for each one it resolves the
// target workload, waits for it to be ready, finds the Service that selects
// its pods, fetches the card the workload serves, verifies the card with
// package agentcard against the trust bundle, binds the signer to the
// workload's SPIFFE identity, and reports the outcome in the AgentCard's
// status with the Kagenti operator's field names, conditions and reasons.
//
// The outcome, with strict = spec.identityBinding.strict:
//
//	verified = signature verified && (no identityBinding || bound || !strict)
//	Ready    = Synced && (Verified or not evaluated)
//
// While a card is verified, the workload's pod template carries the label
// agent.kagenti.dev/signature-verified=true, set and removed by a merge
// patch of that one key so that the rest of the workload stays as its owner
// (a person, Helm, a GitOps tool) wrote it. When the operator enforces (no
// --signature-audit-mode), a card that is not verified loses the label and
// is not published in status.card; in audit mode the label is never removed
// and the card is published. A trust bundle that cannot be loaded leaves
// the label alone and says so in the conditions, so that an outage of the
// bundle does not roll every agent.
//
// With --enforce-network-policies (Options.NetworkPolicies), each card also
// has a NetworkPolicy on its workload's pods (package netpolicy) that follows
// the Verified condition as the label does: permissive while verified,
// restrictive while not or not yet evaluated, never restrictive in audit
// mode, kept as it is while the trust bundle cannot be loaded; the
// NetworkPolicyApplied condition says which and why.
//
// The status is written only when it changed, so a steady state costs one
// fetch per sync period and no writes.
package cardcontroller
