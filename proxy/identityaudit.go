package proxy

import (
	"log/slog"

	"github.com/agentid/agentid/aip"
	"github.com/agentid/agentid/audit"
	"github.com/agentid/agentid/identity"
)

// IdentityAuditor returns an identity.Config.OnEvent function that writes
// the identity events of spec §8.4 (TOKEN_ISSUED, TOKEN_ROTATED,
// TOKEN_VALIDATION_FAILED, REVOCATION) to the audit log, with the five
// fields every record carries. mode reports the policy mode in force.
func IdentityAuditor(a *audit.Logger, mode func() string, log *slog.Logger) func(identity.Event) {
	return func(e identity.Event) {
		rec := audit.Record{
			Timestamp:  e.Time,
			Direction:  aip.Upstream,
			Decision:   aip.AuditAllow,
			PolicyMode: mode(),
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
		if err := a.Log(rec); err != nil && log != nil {
			log.Error("audit log write failed", "error", err)
		}
	}
}
