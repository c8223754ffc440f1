// Package approve asks a human whether a tool call whose policy rule says
// `action: ask` (AIP v1alpha2 §3.5.1) may proceed.
//
// An approval is bound to exactly one call (design decision 6a): the Request
// shows the tool, its arguments as redacted by DLP, the policy hash, the
// session and an expiry, and carries Digest(key, tool, original arguments), keyed so that it reveals nothing redacted. A
// webhook must echo that digest in its answer, so an answer meant for one
// call cannot be replayed for another.
//
// Every Approver fails closed. Approve returns Approved only when a human (or
// the configured webhook) said yes to this call, and then with a nil error.
// Every other outcome is Denied or TimedOut; a non-nil error explains an
// outcome that was not an explicit human "no" (no terminal, a malformed
// webhook answer, a closed input), for the audit log. Callers therefore
// switch on the Answer and log the error. The proxy answers Denied with
// -32004 "User denied" and TimedOut with -32005 "User approval timeout" (§7).
//
// Approve blocks until the human answers or the context ends, which may take
// a minute. It is the caller's job to run it off the goroutine that relays
// messages, so that a pending approval never stalls other traffic (the
// reference implementation's prompt froze the whole session). Terminal
// prompts are shown one at a time; a call waiting for its turn still honours
// its context and returns TimedOut when it ends.
//
// The terminal approver talks to the controlling terminal (/dev/tty), never to
// standard input or output: on a stdio proxy those carry the MCP protocol.
// When no terminal can be opened, Default falls back to Headless, which
// denies every request immediately.
package approve
