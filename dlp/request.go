package dlp

import (
	"encoding/json"
	"errors"

	"github.com/agentid/agentid/internal/strictjson"
	"github.com/agentid/agentid/policy"
)

// RequestAction is what the caller does with a tool call after ScanRequest.
type RequestAction uint8

const (
	// Forward sends RequestOutcome.Arguments to the server.
	Forward RequestAction = iota
	// BlockRequest answers the call with -32001.
	BlockRequest
	// RejectRequest answers the call with -32014 "DLP redaction failed".
	RejectRequest
)

func (a RequestAction) String() string {
	switch a {
	case Forward:
		return "forward"
	case BlockRequest:
		return "block"
	case RejectRequest:
		return "reject"
	}
	return "unknown"
}

// Audit event names of request-side DLP (§3.6.4).
const (
	EventRequestRedaction = "DLP_REQUEST_REDACTION"
	EventRequestMatch     = "DLP_REQUEST_MATCH"
)

// Failure reasons reported in RequestOutcome.Reason.
const (
	ReasonValidationFailed = "argument_validation_failed"
	ReasonInvalidJSON      = "invalid_json"
	ReasonScanFailed       = "scan_failed"
	// ReasonTooLarge: the arguments exceed max_scan_size, so they were not
	// scanned in full, and a budget that runs out refuses (fail closed).
	ReasonTooLarge = "exceeds_max_scan_size"
	// ReasonDuplicateKey: redacting the keys would have given an object two
	// keys that read the same (see ErrDuplicateKey).
	ReasonDuplicateKey = "duplicate_key"
)

// RequestOutcome is the decision of request-side DLP for one tool call.
type RequestOutcome struct {
	Action RequestAction
	// Arguments is what to forward: the redacted arguments after a
	// successful redaction, the original ones otherwise.
	Arguments json.RawMessage
	Findings  []Finding
	// Event is "" when nothing matched, EventRequestRedaction when
	// on_request_match is redact, and EventRequestMatch otherwise.
	Event string
	// Reason is the failure_reason when the arguments could not be
	// redacted or scanned.
	Reason string
	// ValidationError is the revalidation error behind
	// ReasonValidationFailed, for the -32014 error data.
	ValidationError string
	// Rule is the first matching pattern in policy order.
	Rule string
	// Truncated reports that the arguments exceeded max_scan_size.
	Truncated bool
}

// ScanRequest applies request-side DLP (§3.6.4) to a tool call's arguments:
// on_request_match decides between block, redact and warn, and when the
// redacted arguments are unusable on_redaction_failure decides between
// block, allow_original and reject. revalidate, which may be nil, re-runs
// the policy's argument validation (allow_args, strict_args); a redaction it
// rejects is a redaction failure.
//
// When the scanner does not scan requests the arguments are forwarded
// untouched. Arguments that are not valid JSON are blocked whatever the
// configuration, because they cannot be scanned.
func (s *Scanner) ScanRequest(args json.RawMessage, revalidate func(json.RawMessage) error) RequestOutcome {
	if !s.ScansRequests() || len(args) == 0 {
		return RequestOutcome{Action: Forward, Arguments: args}
	}
	res, err := s.RedactJSON(Request, args)
	return s.ScanRequestRedacted(args, res, err, revalidate)
}

// ScanRequestRedacted is ScanRequest for a caller that has already run
// RedactJSON(Request, args), for instance to write the arguments to the
// audit log: res and err are that call's results, and the arguments are
// not scanned a second time. Passing anything else is a programming error.
func (s *Scanner) ScanRequestRedacted(args json.RawMessage, res Result, err error, revalidate func(json.RawMessage) error) RequestOutcome {
	out := RequestOutcome{Action: Forward, Arguments: args}
	if !s.ScansRequests() || len(args) == 0 {
		return out
	}
	dupKey := errors.Is(err, ErrDuplicateKey)
	if err != nil && !dupKey {
		out.Action, out.Event, out.Reason = BlockRequest, EventRequestMatch, ReasonScanFailed
		return out
	}
	out.Truncated = res.Truncated
	if res.Truncated {
		// What lies past max_scan_size was never looked at: it is not
		// forwarded, whatever on_request_match says about what was seen.
		out.Findings = res.Findings
		out.Action, out.Event, out.Reason = BlockRequest, EventRequestMatch, ReasonTooLarge
		return out
	}
	if len(res.Findings) == 0 {
		return out
	}
	out.Findings = res.Findings
	out.Rule = res.Findings[0].Rule
	switch s.onRequestMatch {
	case policy.OnMatchWarn:
		out.Event = EventRequestMatch
		return out
	case policy.OnMatchRedact:
		out.Event = EventRequestRedaction
	default:
		out.Action, out.Event = BlockRequest, EventRequestMatch
		return out
	}

	// RedactJSON only splices valid string literals into valid JSON, so
	// the syntax check below is a guard against a bug here, not an
	// expected path; duplicate keys are what it refuses to create.
	switch {
	case dupKey:
		out.Reason = ReasonDuplicateKey
	case strictjson.Validate(strictjson.Syntax, res.Data) != nil:
		out.Reason = ReasonInvalidJSON
	case revalidate != nil:
		if err := revalidate(res.Data); err != nil {
			out.Reason, out.ValidationError = ReasonValidationFailed, err.Error()
		}
	}
	if out.Reason == "" {
		out.Arguments = res.Data
		return out
	}
	switch s.onFailure {
	case policy.OnFailureAllowOriginal:
		// Forward the original, as configured; the event records it.
	case policy.OnFailureReject:
		out.Action = RejectRequest
	default:
		out.Action = BlockRequest
	}
	return out
}
