package enforce

import (
	"encoding/json"
	"strconv"

	"github.com/agentid/agentid/aip"
	"github.com/agentid/agentid/audit"
	"github.com/agentid/agentid/dlp"
	"github.com/agentid/agentid/identity"
	"github.com/agentid/agentid/jsonrpc"
	"github.com/agentid/agentid/policy"
)

// Audit events of the core (spec §8 leaves event names open; these are
// agentid's). Identity events are identity.Event* and the request-DLP events
// dlp.Event*.
const (
	EventInvalidMessage       = "INVALID_MESSAGE"
	EventMethodBlocked        = "METHOD_BLOCKED"
	EventProtectedPathBlocked = "PROTECTED_PATH_BLOCKED"
	EventPolicyInvalid        = "POLICY_INVALID"
	EventTokenRejected        = "TOKEN_REJECTED"
	EventTokenNotRequired     = "TOKEN_INVALID_NOT_REQUIRED"
	EventApproved             = "APPROVED"
	EventApprovalDenied       = "APPROVAL_DENIED"
	EventApprovalTimeout      = "APPROVAL_TIMEOUT"
	EventApprovalCancelled    = "APPROVAL_CANCELLED"
	EventUnsolicitedResponse  = "UNSOLICITED_RESPONSE"
	EventClientResponse       = "CLIENT_RESPONSE"
	EventServerMessageDropped = "SERVER_MESSAGE_DROPPED"
	EventDLPTriggered         = "DLP_TRIGGERED"
	EventDLPScanFailed        = "DLP_SCAN_FAILED"
	// EventValidationUnavailable: shared state could not be read and the
	// call was refused (failover_mode); EventFailover: fail_open let it
	// through unchecked; EventFailoverLocal: local_policy decided it with
	// this process's own state.
	EventValidationUnavailable = "VALIDATION_UNAVAILABLE"
	EventFailover              = "FAILOVER"
	EventFailoverLocal         = "FAILOVER_LOCAL_POLICY"
)

// finish gives every record of v the fields every record carries: the
// policy mode and hash in force, and the identity session.
func (c *Core) finish(st *snapshot, v *Verdict) {
	session := st.sessionID()
	for i := range v.Audit {
		r := &v.Audit[i]
		r.PolicyMode = st.Mode()
		if r.PolicyHash == "" {
			r.PolicyHash = st.Hash
		}
		if r.SessionID == "" {
			r.SessionID = session
		}
	}
}

// decisionRecord is the record of a method or tool decision.
func decisionRecord(dec policy.Decision, msg *jsonrpc.Message, args json.RawMessage, tool string) audit.Record {
	rec := audit.Record{
		Direction:  aip.Upstream,
		Decision:   dec.AuditDecision(),
		Violation:  dec.Violation(),
		Method:     msg.Method,
		Tool:       tool,
		Args:       args,
		FailedArg:  dec.FailedArg,
		FailedRule: dec.FailedRule,
		Reason:     dec.Reason,
		ID:         msg.ID,
		// The id and the arguments come from jsonrpc.Decode (the arguments
		// possibly redacted by dlp.RedactJSON, or the quoted placeholder of
		// redactForAudit): the log does not validate them again.
		Validated: true,
	}
	if dec.Violation() {
		rec.Code = dec.Code
	}
	switch dec.ViolationType {
	case aip.ViolationMethodNotAllowed:
		rec.Event = EventMethodBlocked
	case aip.ViolationProtectedPath:
		rec.Event = EventProtectedPathBlocked
	}
	return rec
}

// hygieneRecord is the record of a message refused before any policy
// decision.
func hygieneRecord(code int, reason string, id json.RawMessage, method string) audit.Record {
	return audit.Record{Direction: aip.Upstream, Decision: aip.AuditBlock, Violation: true,
		Event: EventInvalidMessage, Code: code, Reason: reason, ID: id, Method: method}
}

// droppedRecord is the record of a server message that is not passed on.
func droppedRecord(event string, id json.RawMessage, reason string) audit.Record {
	return audit.Record{Direction: aip.Downstream, Decision: aip.AuditBlock, Violation: true,
		Event: event, ID: id, Reason: reason}
}

// auditRedaction is a tool call's arguments as they may be written to the
// audit log, with the request-scope redaction that produced them.
type auditRedaction struct {
	args json.RawMessage
	// scanned is false when DLP is off or there are no arguments; otherwise
	// res and err are RedactJSONValidated(Request, arguments).
	scanned bool
	res     dlp.Result
	err     error
}

// redactForAudit redacts the arguments with the request-scope patterns even
// when request scanning is off. Request-side DLP reuses the redaction rather
// than scanning the same arguments with the same patterns a second time.
func redactForAudit(s *dlp.Scanner, args json.RawMessage) auditRedaction {
	if s == nil || !s.Enabled() || len(args) == 0 {
		return auditRedaction{args: args}
	}
	res, err := s.RedactJSONValidated(dlp.Request, args) // by jsonrpc.Decode, or Check's caller
	if err != nil {
		return auditRedaction{args: json.RawMessage(strconv.Quote("[unscannable arguments withheld]")), scanned: true, err: err}
	}
	if res.Truncated {
		// Not scanned in full: not written to the log either.
		return auditRedaction{args: json.RawMessage(strconv.Quote("[arguments over dlp.max_scan_size withheld]")), scanned: true, res: res}
	}
	return auditRedaction{args: res.Data, scanned: true, res: res}
}

func countFindings(fs []dlp.Finding) int {
	n := 0
	for _, f := range fs {
		n += f.Count
	}
	return n
}

func dlpAuditDecision(a dlp.RequestAction) string {
	if a == dlp.Forward {
		return aip.AuditAllow
	}
	return aip.AuditBlock
}

func boolPtr(b bool) *bool { return &b }

// identityEvent turns an identity event (§8.4: TOKEN_ISSUED, TOKEN_ROTATED,
// TOKEN_VALIDATION_FAILED, REVOCATION) into an audit record for
// Config.Events, with the fields every record carries.
func (c *Core) identityEvent(e identity.Event) {
	if c.cfg.Events == nil {
		return
	}
	rec := audit.Record{
		Timestamp:  e.Time,
		Direction:  aip.Upstream,
		Decision:   aip.AuditAllow,
		PolicyMode: c.Policy().Mode(),
		Event:      e.Type,
		SessionID:  e.SessionID,
		TokenID:    e.TokenID,
		PolicyHash: e.PolicyHash,
		Reason:     e.Reason,
		Extra:      map[string]any{},
	}
	if !e.ExpiresAt.IsZero() {
		rec.Extra["expires_at"] = identity.FormatTime(e.ExpiresAt)
	}
	if e.OldTokenID != "" {
		rec.Extra["old_token_id"] = e.OldTokenID
		rec.Extra["new_token_id"] = e.NewTokenID
	}
	if e.RevocationType != "" {
		rec.Extra["type"] = e.RevocationType
	}
	if e.Type == identity.EventTokenValidationFailed {
		rec.Decision, rec.Violation, rec.Code = aip.AuditBlock, true, e.Code
		rec.Extra["error"] = e.Error
	}
	c.cfg.Events(rec)
}
