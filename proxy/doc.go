// Package proxy is the stdio transport of the policy proxy: it sits between
// an MCP client and an MCP server and relays newline-delimited JSON-RPC,
// handing every message to the enforcement core (package enforce) and
// carrying out its verdict:
//
//	read a line → Core.FromClient / Core.FromServer → write the audit
//	records → send what the verdict says to the server and the client
//
// Lines that arrived together are decided one by one and then carried out
// as a batch: all their audit records in one write, then one write to each
// peer. A line alone in the read buffer is carried out before the next read.
//
// The proxy owns framing (a line size cap), the two pipes, the goroutines
// that obtain approvals off the read loops, and the MCP server's child
// process (Run). A verdict whose audit records cannot be written is not
// carried out (Config.AuditBestEffort relaxes that).
package proxy
