// Package server is agentid's AIP validation server (spec §6, `agentid
// serve`): many agents, over HTTP, decided by the same enforcement core as
// the stdio proxy (enforce.Core.Check), with state shared between replicas
// through the stores they are given.
//
// Endpoints (paths from the policy's server.endpoints; defaults shown):
//
//	POST /v1/validate  decide a tool call; token in Authorization: Bearer only
//	POST /v1/token     issue a token for a remote agent (admin or mTLS client)
//	POST /v1/revoke    revoke a session or a token (admin only)
//	GET  /v1/jwks      the keys that verify tokens
//	GET  /health       healthy, degraded or unhealthy (503)
//	GET  /metrics      Prometheus metrics
//
// Every policy outcome of /v1/validate is a 200 with a decision body, but a
// rate limit (429); token failures are 401 (DESIGN decision 13). A server
// that cannot decide (a store is down and failover_mode refuses, the audit
// log cannot be written) answers 503 or 500: never an allow.
//
// Several policies can be served at once, one per tenant: a token selects
// the policy whose audience it names, and a Team A token never acts under
// Team B's policy (its audience and policy hash belong to Team A).
//
// The Handler does no listening of its own; Serve adds the transport rules
// (TLS off loopback, mTLS, timeouts, certificate reload, graceful drain).
package server
