// Package operator is the home of agentid-operator, the Kubernetes operator
// that verifies the A2A AgentCards of agent workloads (api/v1alpha1) and
// enforces the result. Each controller lives in a package of its own below
// this one, with its tests beside it:
//
//   - cardcontroller: fetches each AgentCard's card from its workload,
//     verifies and binds it with package agentcard, writes the status and
//     labels the workload;
//   - discovery: creates the AgentCard of each agent workload that has
//     none;
//   - netpolicy: the NetworkPolicy of each card (--enforce-network-policies),
//     permissive while the card is verified and restrictive otherwise, which
//     cardcontroller applies;
//   - trustbundle: the SPIFFE trust bundle, read from a ConfigMap;
//   - manager: the controller-runtime manager that holds them, with probes,
//     metrics and leader election.
//
// cmd/agentid-operator only parses flags into a manager.Config; cmd/agentid never imports them, so that the
// command-line tool does not carry the Kubernetes client.
//
// The RBAC markers of the manager itself (leader election) are here; the
// controllers carry their own. scripts/generate.sh turns them into
// deploy/rbac/role.yaml: a ClusterRole, and a Role for each namespace the
// operator needs only one of. The Lease of leader election lives in the
// operator's own namespace, so its Role is namespaced; agentid-system is
// the namespace of the kustomize base, and the Helm chart puts the Role in
// the release's namespace instead. Leader election reports its transitions
// as core Events on the Lease, in that namespace too.
//
// +kubebuilder:rbac:groups=coordination.k8s.io,namespace=agentid-system,resources=leases,verbs=get;list;watch;create;update;patch;delete
// +kubebuilder:rbac:groups="",namespace=agentid-system,resources=events,verbs=create;patch
// +kubebuilder:rbac:groups=events.k8s.io,resources=events,verbs=create;patch
package operator
