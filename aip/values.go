package aip

// Violation types: the validation server's violations[].type (§6.2) and the
// audit log's violation_type.
const (
	ViolationToolNotAllowed     = "tool_not_allowed"
	ViolationRuleBlock          = "rule_block"
	ViolationArgumentValidation = "argument_validation"
	ViolationStrictArgs         = "strict_args"
	ViolationProtectedPath      = "protected_path"
	ViolationRateLimited        = "rate_limited"
	ViolationMethodNotAllowed   = "method_not_allowed"
	ViolationSchemaMismatch     = "schema_mismatch"
	ViolationDLP                = "dlp"
)

// token_error values (§7.2, DESIGN decision 8). TokenErrSignatureInvalid and
// TokenErrNotYetValid are additions to the spec's list; the revocation values
// are reported with -32011 and are also used as revocation reasons.
// TokenErrValidationUnavailable is reported when a store could not answer.
const (
	TokenErrExpired               = "token_expired"
	TokenErrNotYetValid           = "token_not_yet_valid"
	TokenErrAudienceMismatch      = "audience_mismatch"
	TokenErrPolicyChanged         = "policy_changed"
	TokenErrSessionMismatch       = "session_mismatch"
	TokenErrBindingMismatch       = "binding_mismatch"
	TokenErrReplayDetected        = "replay_detected"
	TokenErrMalformed             = "malformed"
	TokenErrSignatureInvalid      = "signature_invalid"
	TokenErrSessionRevoked        = "session_revoked"
	TokenErrTokenRevoked          = "token_revoked"
	TokenErrValidationUnavailable = "validation_unavailable"
)

// Revocation types reported in -32011 data (§7.2).
const (
	RevocationSession = "session"
	RevocationToken   = "token"
)

// Audit decision values (§8.1).
const (
	AuditAllow        = "ALLOW"
	AuditBlock        = "BLOCK"
	AuditAllowMonitor = "ALLOW_MONITOR"
	AuditRateLimited  = "RATE_LIMITED"
)

// Audit directions (§8.1).
const (
	Upstream   = "upstream"   // client → server
	Downstream = "downstream" // server → client
)

// Policy modes (spec.mode, and the audit log's policy_mode).
const (
	ModeEnforce = "enforce"
	ModeMonitor = "monitor"
)

// Decisions of the validation endpoint's response (§6.2.2).
const (
	DecisionAllow = "allow"
	DecisionBlock = "block"
	DecisionAsk   = "ask"
)
