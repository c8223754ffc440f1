// Package conformance runs the AIP conformance vectors (spec §9) against
// this build.
//
// Vectors are executed black-box through the real proxy: the runner plays
// the MCP client, an in-process stub plays the MCP server, and the outcome is
// read from the JSON-RPC bytes the client receives and from the audit log
// (identity events included, written as `agentid proxy` writes them).
// Results are keyed by file and id, since ids repeat across files.
//
// What a result says:
//   - PASS: the vector's own expectations were compared and held.
//   - PASS with Result.RunnerDefined: part of what was checked (an
//     expectation, an input or the reading of a key) is the runner's, not
//     the vector's, and the result says which and why (validation-060 has no
//     expectations of its own; validation-010's first step gives no token
//     under require_token; identity-030's token ids name the session's
//     current token because tokens are single-use). These passes are not
//     counted in Report.Passed; Report.Write lists them on the line before
//     the summary.
//   - FAIL: an expectation did not hold, or the vector has a key, value or
//     combination the runner does not understand (decoding is strict: every
//     member must be one the runner checks, named by its path in the
//     reason), or nothing to compare.
//   - SKIP: the build cannot run the vector (the server level), with the
//     reason; never a silent pass.
//
// The summary line is always last: "N passed, M failed, K skipped".
package conformance
