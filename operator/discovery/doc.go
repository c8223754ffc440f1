// Package discovery creates an AgentCard for every agent workload that has
// none, as the Kagenti operator's AgentCardSync controller does, so that
// labelling a workload is enough to have its card verified.
//
// A Deployment or StatefulSet is an agent workload when it carries
// kagenti.io/type=agent and a protocol label (protocol.kagenti.io/<name>,
// or the deprecated kagenti.io/protocol or kagenti.io/agent-protocol). Its
// card is named <workload>-<kind in lower case>-card, targets the workload,
// is labelled app.kubernetes.io/managed-by=agentid-operator, and has the
// workload as its controlling owner, so that deleting the workload deletes
// the card. When the operator has a trust domain, the card asks for
// identity binding (identityBinding: {}), as Kagenti's do.
//
// Discovery never creates a second card for a workload that already has
// one, and it gives way to people: when another card targets a workload
// that has a discovered card, the discovered card is deleted, so that the
// card a person wrote is the one that owns the workload (package
// cardcontroller refuses all but one card per workload). A workload
// labelled agent.kagenti.dev/discovery=disabled gets no card, and loses the
// one discovery made for it.
package discovery
