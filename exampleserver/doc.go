// Package exampleserver is a small MCP server with no dependencies, built
// into agentid so that `agentid demo` and the proxy tests have a server to
// protect without installing anything.
//
// It speaks the MCP stdio transport: newline-delimited JSON-RPC 2.0 on a
// reader and a writer. Its tools work on an in-memory file system seeded
// with a demo project that holds deliberately leaky content (an AWS access
// key, a password, an SSH private key), so that the demo can show data loss
// prevention and protected paths at work. Nothing it does touches the real
// disk or runs a real command: run_command only says what it would have run.
//
// The server is deliberately forgiving about order (it answers requests
// before initialize) and strict about framing (every line it cannot parse is
// answered with a JSON-RPC error rather than ending the session), because a
// proxy test must be able to send it anything.
package exampleserver
