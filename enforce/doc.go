// Package enforce is agentid's one enforcement core: it decides every
// JSON-RPC message of an MCP conversation against an AgentPolicy, for every
// transport (the stdio proxy, and the HTTP server and gateway built on it).
//
// A transport owns only I/O, framing and concurrency. For each message it
// calls Core.FromClient or Core.FromServer and gets a Verdict back: the bytes
// to send to the server and to the client, the audit records to write first,
// and, for `action: ask`, an Approval to obtain before calling Core.Resolve.
// The core does no I/O of its own; its side effects go through what it is
// given: the identity manager (with its nonce and revocation stores), the
// policy engine's path resolver, and the clock.
//
// A client message goes through the order of AIP §4.3:
//
//	strict decode → method hygiene and method authorization → identity
//	(step 0) → rate limit, protected paths, rule, allowlist, arguments,
//	schema pin (policy.Engine) → advertised names → request DLP → approval
//
// and a server message through the response path:
//
//	strict decode → id bookkeeping → tools/list filter and pins → DLP
//
// Only validated messages are forwarded, as their original bytes unless the
// core had to change them (token stripped, redaction, tools/list filtering).
// Denials are answered with the AIP error for the request's id; denied
// notifications and stray responses are dropped and audited, never answered.
//
// A Core holds the policy in force as an immutable snapshot, replaced as a
// whole by SetPolicy or Reload, so a reload never applies half a policy to a
// message. A Session holds one conversation's state: ids in flight in both
// directions and the tools the server advertised.
package enforce
