package v1alpha1

// Condition types of an AgentCard.
const (
	// ConditionSynced: the workload was resolved and its card fetched (and,
	// when the operator enforces, accepted).
	ConditionSynced = "Synced"
	// ConditionSignatureVerified: a signature of the card verified.
	ConditionSignatureVerified = "SignatureVerified"
	// ConditionBound: the signer is the expected identity.
	ConditionBound = "Bound"
	// ConditionVerified: signature verified and, when identityBinding is
	// strict, bound. It is what the label and network policies follow.
	ConditionVerified = "Verified"
	// ConditionReady: Synced, and Verified or not evaluated.
	ConditionReady = "Ready"
	// ConditionNetworkPolicyApplied: the card's NetworkPolicy is in place
	// (only with --enforce-network-policies; not a Kagenti condition, which
	// reports nothing about its policies).
	ConditionNetworkPolicyApplied = "NetworkPolicyApplied"
)

// Condition reasons, with the Kagenti operator's names.
const (
	ReasonSyncSucceeded    = "SyncSucceeded"
	ReasonWorkloadNotFound = "WorkloadNotFound"
	ReasonNotAgentWorkload = "NotAgentWorkload"
	ReasonWorkloadError    = "WorkloadError"
	ReasonWorkloadNotReady = "WorkloadNotReady"
	ReasonNoProtocol       = "NoProtocol"
	ReasonServiceNotFound  = "ServiceNotFound"
	ReasonFetchFailed      = "FetchFailed"
	// ReasonTrustBundleUnavailable: the trust bundle could not be loaded,
	// so no card can be verified (not a Kagenti reason: Kagenti reports
	// every card as unverified instead).
	ReasonTrustBundleUnavailable = "TrustBundleUnavailable"
	// ReasonDuplicateTarget: an older AgentCard targets the same workload
	// and owns its label (Kagenti's webhook refuses such a card).
	ReasonDuplicateTarget = "DuplicateTarget"

	ReasonSignatureValid        = "SignatureValid"
	ReasonSignatureInvalid      = "SignatureInvalid"
	ReasonSignatureInvalidAudit = "SignatureInvalidAudit"

	ReasonBound         = "Bound"
	ReasonNotBound      = "NotBound"
	ReasonAgentNotFound = "AgentNotFound"
	// ReasonTrustDomainNotInBundle: the trust domain the card binds to
	// (its identityBinding.trustDomain, else the operator's) has no bundle
	// in the trust bundle ConfigMap, so no signer can be bound to it (not a
	// Kagenti reason: its flat pool has no trust domains).
	ReasonTrustDomainNotInBundle = "TrustDomainNotInBundle"

	ReasonSignatureVerified = "SignatureVerified"
	ReasonNotVerified       = "NotVerified"
	ReasonMTLSVerified      = "mTLSVerified"

	ReasonReadyToServe = "ReadyToServe"
	ReasonNotSynced    = "NotSynced"
)

// Reasons of the NetworkPolicyApplied condition.
const (
	// ReasonPolicyPermissive: the card is verified; its policy restricts
	// nothing.
	ReasonPolicyPermissive = "PolicyPermissive"
	// ReasonPolicyRestrictive: the card is not verified (or not yet
	// evaluated); its policy admits only the operator and lets the pods
	// reach DNS and the API server.
	ReasonPolicyRestrictive = "PolicyRestrictive"
	// ReasonPolicyAudit: audit mode; the policy is permissive and the
	// message says what enforce mode would apply.
	ReasonPolicyAudit = "PolicyAudit"
	// ReasonPolicyConflict: a NetworkPolicy of the card's policy name
	// exists and is not controlled by the card; it is left alone.
	ReasonPolicyConflict = "PolicyConflict"
	// ReasonPolicyFailed: the policy could not be built or written.
	ReasonPolicyFailed = "PolicyFailed"
	// ReasonNoWorkload: the target could not be resolved, so there is no
	// selector to build a policy with; a policy already in place is kept.
	ReasonNoWorkload = "NoWorkload"
)

// Labels that the operator reads on workloads and writes on their pod
// templates.
const (
	// LabelSignatureVerified is set to "true" on a workload's pod template
	// while its card is verified.
	LabelSignatureVerified = "agent.kagenti.dev/signature-verified"
	// LabelSignatureVerifiedRossoctl is the same label under the prefix of
	// rossoctl, the Kagenti operator's current name, set beside it with
	// --rossoctl-labels for policies that key on that name.
	LabelSignatureVerifiedRossoctl = "agent.rossoctl.dev/signature-verified"
	// LabelNetworkPolicyMode is set on the operator's NetworkPolicies to
	// permissive or restrictive, so that kubectl get networkpolicies -l
	// agent.kagenti.dev/network-policy-mode=restrictive lists the isolated
	// agents.
	LabelNetworkPolicyMode = "agent.kagenti.dev/network-policy-mode"
	// LabelAgentType marks agent workloads: kagenti.io/type=agent.
	LabelAgentType = "kagenti.io/type"
	// AgentTypeAgent is LabelAgentType's value on agent workloads.
	AgentTypeAgent = "agent"
	// LabelProtocolPrefix prefixes a workload's protocol labels:
	// protocol.kagenti.io/a2a.
	LabelProtocolPrefix = "protocol.kagenti.io/"
	// LabelProtocolDeprecated and LabelAgentProtocolDeprecated name the
	// protocol in their value; still read, as by Kagenti.
	LabelProtocolDeprecated      = "kagenti.io/protocol"
	LabelAgentProtocolDeprecated = "kagenti.io/agent-protocol"
	// ProtocolA2A is the only protocol whose card is fetched.
	ProtocolA2A = "a2a"
	// LabelDiscovery set to DiscoveryDisabled on a workload keeps the
	// operator from creating an AgentCard for it (and deletes the one it
	// created). Not a Kagenti label: Kagenti has no opt-out.
	LabelDiscovery    = "agent.kagenti.dev/discovery"
	DiscoveryDisabled = "disabled"
)
