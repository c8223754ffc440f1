// Package gateway is `agentid gateway`: the AIP enforcement of `agentid
// proxy` for MCP over Streamable HTTP, in front of a remote MCP server.
//
// Every client message is one HTTP POST; it goes through the same
// enforcement core as a line on stdio (enforce.Core.FromCaller), and every
// server message, whether the JSON body of a response or an event of a
// text/event-stream, through the same response path (enforce.Core.FromServer:
// DLP, tools/list filtering and pins, id bookkeeping). Only what the core
// lets through reaches the other side.
//
// Identity is per request: the AIP token travels in "Authorization: Bearer"
// (never in the body, never in the query), is validated once by the core's
// identity manager (audience, binding, single use through the shared nonce
// store) and is never forwarded upstream. A verified client certificate's
// SPIFFE ID is recorded too. A session (Mcp-Session-Id) belongs to the
// identity that opened it; the gateway mints its own session ids and maps
// them to the upstream's, so that a client never learns, and cannot choose,
// the id the upstream knows it by.
//
// The HTTP rules of the MCP transport are enforced before any decision:
// one JSON-RPC message per POST (batches are refused by the core),
// application/json bodies within a size limit, an Origin allowlist and,
// on loopback, a Host check against DNS rebinding. Event streams are bounded
// in number per session and in duration, and a client that stops reading one
// is cut off rather than holding the upstream.
//
// The gateway mounts the endpoints of the validation server it is built on
// (package server: /v1/token, /v1/jwks, /health, /metrics, ...) beside the
// MCP endpoint, and publishes OAuth protected-resource metadata (RFC 9728)
// so that MCP clients can discover how to authenticate.
package gateway
