package aip

// JSON-RPC 2.0 error codes.
const (
	CodeParseError     = -32700
	CodeInvalidRequest = -32600
	CodeMethodNotFound = -32601
	CodeInvalidParams  = -32602
	CodeInternalError  = -32603
)

// AIP error codes (§7). -32003 is deliberately absent: v1alpha2 leaves it
// unassigned and older documents gave it three different meanings.
const (
	CodeForbidden              = -32001
	CodeRateLimited            = -32002
	CodeUserDenied             = -32004
	CodeUserTimeout            = -32005
	CodeMethodNotAllowed       = -32006
	CodeProtectedPath          = -32007
	CodeTokenRequired          = -32008
	CodeTokenInvalid           = -32009
	CodePolicySignatureInvalid = -32010
	CodeTokenRevoked           = -32011
	CodeAudienceMismatch       = -32012
	CodeSchemaMismatch         = -32013
	CodeDLPRedactionFailed     = -32014
)

// Message returns the exact error message that JSON-RPC 2.0 or AIP
// prescribes for code. Other codes in the JSON-RPC server-error range
// -32099..-32000 get "Server error"; any other code gets "Unknown error".
func Message(code int) string {
	switch code {
	case CodeParseError:
		return "Parse error"
	case CodeInvalidRequest:
		return "Invalid Request"
	case CodeMethodNotFound:
		return "Method not found"
	case CodeInvalidParams:
		return "Invalid params"
	case CodeInternalError:
		return "Internal error"
	case CodeForbidden:
		return "Forbidden"
	case CodeRateLimited:
		return "Rate limit exceeded"
	case CodeUserDenied:
		return "User denied"
	case CodeUserTimeout:
		return "User approval timeout"
	case CodeMethodNotAllowed:
		return "Method not allowed"
	case CodeProtectedPath:
		return "Access denied: protected path"
	case CodeTokenRequired:
		return "Token required"
	case CodeTokenInvalid:
		return "Token invalid"
	case CodePolicySignatureInvalid:
		return "Policy signature invalid"
	case CodeTokenRevoked:
		return "Token revoked"
	case CodeAudienceMismatch:
		return "Audience mismatch"
	case CodeSchemaMismatch:
		return "Schema mismatch"
	case CodeDLPRedactionFailed:
		return "DLP redaction failed"
	}
	if -32099 <= code && code <= -32000 {
		return "Server error"
	}
	return "Unknown error"
}

// IsAIP reports whether code is one of the AIP codes of §7 (as opposed to a
// JSON-RPC 2.0 code or an unassigned one).
func IsAIP(code int) bool {
	switch code {
	case CodeForbidden, CodeRateLimited, CodeUserDenied, CodeUserTimeout,
		CodeMethodNotAllowed, CodeProtectedPath, CodeTokenRequired, CodeTokenInvalid,
		CodePolicySignatureInvalid, CodeTokenRevoked, CodeAudienceMismatch,
		CodeSchemaMismatch, CodeDLPRedactionFailed:
		return true
	}
	return false
}

// DataKey is the member of an error's data that marks the error as agentid's
// own decision rather than the MCP server's or a transport's (DESIGN
// decision 13b): several AIP codes are codes that MCP SDKs reserve
// (-32001, -32002, -32004, -32005), so the code alone cannot tell. Its value
// is ErrorName(code).
const DataKey = "aip_error"

// MarkData marks an error's data as agentid's own (DataKey: ErrorName(code)),
// making the map when data is nil, and returns it.
func MarkData(code int, data map[string]any) map[string]any {
	if data == nil {
		data = make(map[string]any, 1)
	}
	data[DataKey] = ErrorName(code)
	return data
}

// ErrorName is the stable, machine-readable name of an error code, the value
// of DataKey: "forbidden", "rate_limited", "user_denied", ...
func ErrorName(code int) string {
	switch code {
	case CodeParseError:
		return "parse_error"
	case CodeInvalidRequest:
		return "invalid_request"
	case CodeMethodNotFound:
		return "method_not_found"
	case CodeInvalidParams:
		return "invalid_params"
	case CodeInternalError:
		return "internal_error"
	case CodeForbidden:
		return "forbidden"
	case CodeRateLimited:
		return "rate_limited"
	case CodeUserDenied:
		return "user_denied"
	case CodeUserTimeout:
		return "user_timeout"
	case CodeMethodNotAllowed:
		return "method_not_allowed"
	case CodeProtectedPath:
		return "protected_path"
	case CodeTokenRequired:
		return "token_required"
	case CodeTokenInvalid:
		return "token_invalid"
	case CodePolicySignatureInvalid:
		return "policy_signature_invalid"
	case CodeTokenRevoked:
		return "token_revoked"
	case CodeAudienceMismatch:
		return "audience_mismatch"
	case CodeSchemaMismatch:
		return "schema_mismatch"
	case CodeDLPRedactionFailed:
		return "dlp_redaction_failed"
	}
	return "error"
}
