// Package policy loads, validates and evaluates AIP AgentPolicy documents
// (spec aip-v1alpha2 §3 and §4).
//
// # Loading
//
// Load reads a policy file and Parse validates an in-memory document. Both
// fail closed: a policy that is not exactly what the spec defines does not
// load, because a typo such as "protectd_paths" that is silently ignored
// leaves the agent unprotected. Loading proceeds in stages:
//
//  1. YAML hygiene. The document must be at most MaxDocumentSize bytes and a
//     single YAML document; duplicate keys, non-string keys (including YAML
//     1.1 booleans such as an unquoted n: or on:), non-finite numbers, deep
//     nesting and alias expansion beyond a fixed budget are rejected before
//     anything else looks at the content.
//  2. The corrected v1alpha2 JSON Schema embedded from
//     schema/agent-policy-v1alpha2.schema.json. Every object has
//     additionalProperties:false, so unknown keys and case variants
//     (Allowed_Tools) fail with their field path. Both aip.io/v1alpha1 and
//     aip.io/v1alpha2 are accepted; v1alpha2 fields in a v1alpha1 document
//     are applied and reported as warnings.
//  3. Strict decoding into Policy (encoding/json with DisallowUnknownFields).
//  4. Semantic checks the schema cannot express: regexes compile with RE2
//     (Go's regexp; lookahead and backreferences are rejected with an
//     explanation), rate limits, durations (Go syntax plus whole days, "7d"),
//     sizes, duplicate rules for the same normalized tool, identity timing
//     constraints (rotation_interval < token_ttl <= nonce_window), audience,
//     key and nonce-storage settings, and the server's listen address, TLS
//     and endpoints.
//
// All errors of a document are reported together in a *LoadError, sorted by
// field path ("spec.tool_rules[2].allow_args.url"); each is a FieldError.
// Findings that do not prevent loading (monitor mode, unanchored argument
// regexes, fail_open without constraints, ...) are returned as Warnings.
//
// # Defaults
//
// The document is kept as written: optional scalars are pointers and
// defaults are never stored in it, because the policy hash covers only what
// the author wrote. Accessors apply the spec's defaults on read: Mode,
// StrictArgsDefault, ToolRule.EffectiveAction, the DLP methods, and
// IdentityConfig and ServerConfig, which return fully resolved settings with
// parsed durations. An unset rotation_interval is min(4m, 0.8*token_ttl), so
// a short token_ttl alone is valid; an explicit one must be less than
// token_ttl, and "0s" disables rotation.
//
// # Decisions
//
// An Engine (NewEngine) compiles a validated policy once and answers
// DecideMethod and DecideTool with a Decision. Deciding is pure: no I/O other
// than the clock of the rate limiters, so the proxy, the validation server
// and the conformance runner share it. Checks run in the spec's
// defence-in-depth order: method, rate limit, protected paths, tool rules
// and allowlist, arguments, schema pin; monitor mode is applied last.
//
// Tool and method names are normalized (NormalizeName: NFKC, lowercase,
// invisible characters removed, trimmed) for the decision only. The caller
// forwards the original bytes, and must still check that the raw name is one
// the server advertised, so that a look-alike name cannot reach a different
// tool than the one the policy allowed.
package policy
