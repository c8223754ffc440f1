// Package proxy is the stdio transport of the policy proxy: it sits between
// an MCP client and an MCP server and relays newline-delimited JSON-RPC,
// handing every message to the enforcement core (package enforce) and
// carrying out its verdict:
//
//	read a line → Core.FromClient / Core.FromServer → write the audit
//	records → send what the verdict says to the server and the client
//
// The proxy owns framing (a line size cap), the two pipes, the goroutines
// that obtain approvals off the read loops, and the MCP server's child
// process (Run). A verdict whose audit records cannot be written is not
// carried out (Config.AuditBestEffort relaxes that).
package proxy
