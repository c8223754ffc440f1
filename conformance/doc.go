// Package conformance runs the AIP conformance vectors (spec §9) against
// this build.
//
// Vectors are executed black-box through the real proxy: the runner plays
// the MCP client, an in-process stub plays the MCP server, and the outcome is
// read from the JSON-RPC bytes the client receives and from the audit log.
// Results are keyed by file and id, since ids repeat across files. Vectors
// the build cannot run are reported as skipped with the reason, never
// silently passed.
package conformance
