// Package cardtest makes what the operator's tests verify: an in-memory
// SPIFFE certificate authority issuing X509-SVIDs, AgentCards signed with
// them by the real agentcard signer, and HTTP servers that serve a card at
// the well-known path the way an agent pod does.
package cardtest
