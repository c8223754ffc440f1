// Package proxy is the stdio policy proxy: it sits between an MCP client and
// an MCP server and enforces an AgentPolicy on every JSON-RPC message.
//
// A message's way through the proxy reads top to bottom in relay.go:
//
//	client → strict decode → method check → tool decision (rate limit,
//	protected paths, rules, allowlist, arguments, schema pin) → request DLP →
//	approval → server
//	server → strict decode → tools/list filter → response DLP → client
//
// Every decision is written to the audit log. Denials are answered with the
// AIP error for the original request id; denied notifications and stray
// responses are dropped and audited, never answered. Only validated messages
// are forwarded, and they are forwarded as the original bytes unless the
// proxy had to change them (redaction, tools/list filtering).
//
// Run spawns the MCP server as a child process and relays between it and the
// proxy's own stdin and stdout.
package proxy
