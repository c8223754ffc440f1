package enforce

import (
	"context"
	"encoding/json"
	"time"

	"github.com/agentid/agentid/aip"
	"github.com/agentid/agentid/audit"
	"github.com/agentid/agentid/identity"
	"github.com/agentid/agentid/jsonrpc"
	"github.com/agentid/agentid/policy"
)

// Remote is a validation server that decides tool calls for this process
// (`agentid proxy --server URL`, spec §6). Identity, rate limits and the
// policy's decision on a tool and its arguments are then the server's;
// message hygiene, advertised names, DLP, approvals and the audit log stay
// with the transport's core, which also applies failover_mode when the
// server cannot decide ("for clients", §3.8.3).
type Remote interface {
	// Check asks the server to decide call. An error means it did not
	// decide (unreachable, slower than server.timeout, an answer that is
	// no decision): the core applies failover_mode.
	Check(ctx context.Context, call Call) (Check, error)
	// Token obtains a token from the server for this process's session,
	// the answer to the client's TokenMethod.
	Token(ctx context.Context) (RemoteToken, error)
}

// RemoteToken is a token a validation server issued.
type RemoteToken struct {
	Token, TokenID, SessionID string
	ExpiresAt                 time.Time
}

// remoteDecision asks the validation server to decide a tool call (in
// place of localDecision). done reports that the call was answered.
func (c *Core) remoteDecision(ctx context.Context, st *snapshot, s *Session, msg *jsonrpc.Message, call jsonrpc.ToolCall, token string, auditArgs json.RawMessage, v *Verdict) (dec policy.Decision, tokenID string, done bool) {
	if token != "" {
		// For the audit log only: the server verifies the token.
		if claims, err := identity.ParseUnverified(token); err == nil {
			tokenID = claims.TokenID()
		}
	}
	// The server has no tools/list of its own: what this session saw of
	// the tool is what its schema pin is checked against.
	req := Call{Tool: call.Name, Arguments: call.Arguments, Token: token, ToolDefinition: s.toolDefinition(call.Name), Rounds: true}
	if v.continues != nil {
		// The server spent the call's rate-limit unit on its first round.
		req.Round = v.continues.ticket
	}
	res, err := c.cfg.Remote.Check(ctx, req)
	if err != nil {
		c.cfg.Log.Error("validation server unavailable", "error", err)
		if st.ServerFailover() == LocalPolicy {
			v.record(audit.Record{Direction: aip.Upstream, Decision: aip.AuditAllow, Violation: true, Event: EventFailoverLocal,
				Method: msg.Method, Tool: call.Name, ID: msg.ID, TokenID: tokenID,
				Reason: "validation server unavailable; failover_mode=local_policy decides with the local policy"})
			return c.localDecision(ctx, st, s, msg, call, token, auditArgs, v)
		}
		if c.storeUnavailable(st, msg, call.Name, "validation server", false, v) {
			return dec, tokenID, true
		}
		// fail_open, within its constraints.
		return policy.Decision{Action: policy.Allow, Tool: policy.NormalizeName(call.Name)}, tokenID, false
	}
	c.outage.recovered()
	v.ticket = res.Round
	if res.Decision != aip.DecisionBlock {
		// Protected paths are the agent's host's: the server cannot expand
		// "~" or follow symlinks there, so the proxy checks them itself.
		if local := st.Engine.CheckHostPaths(policy.ToolCall{Name: call.Name, Arguments: call.Arguments, Validated: true}); local.Action == policy.Block {
			return local, tokenID, false
		}
	}
	dec = policy.Decision{Tool: policy.NormalizeName(call.Name), Code: res.Code, Reason: res.Reason}
	if len(res.Violations) > 0 {
		dec.ViolationType, dec.FailedArg = res.Violations[0].Type, res.Violations[0].Field
	}
	switch res.Decision {
	case aip.DecisionAllow:
		dec.Action = policy.Allow
		dec.Monitored = dec.ViolationType != ""
		return dec, tokenID, false
	case aip.DecisionAsk:
		dec.Action = policy.Ask
		return dec, tokenID, false
	}
	dec.Action = policy.Block
	switch dec.Code {
	case aip.CodeTokenRequired, aip.CodeTokenInvalid, aip.CodeTokenRevoked, aip.CodeAudienceMismatch:
		v.record(audit.Record{Direction: aip.Upstream, Decision: aip.AuditBlock, Violation: true, Event: EventTokenRejected,
			Method: msg.Method, Tool: call.Name, Args: auditArgs, ID: msg.ID, TokenID: tokenID, Code: dec.Code, Reason: res.TokenError})
		data := map[string]any{"tool": call.Name, "reason": res.Reason}
		if res.TokenError != "" {
			data["token_error"] = res.TokenError
		}
		v.reply(msg.ID, dec.Code, data)
		return dec, tokenID, true
	case 0:
		dec.Code = aip.CodeForbidden
	}
	if dec.Code == aip.CodeRateLimited {
		dec.ViolationType = aip.ViolationRateLimited
	}
	return dec, tokenID, false
}

// remoteToken answers TokenMethod with a token from the validation server.
func (c *Core) remoteToken(ctx context.Context, msg *jsonrpc.Message, v *Verdict) {
	t, err := c.cfg.Remote.Token(ctx)
	if err != nil {
		c.cfg.Log.Error("token from the validation server failed", "error", err)
		v.reply(msg.ID, aip.CodeInternalError, map[string]any{"reason": "token issuance failed"})
		return
	}
	result, err := json.Marshal(map[string]any{
		"token": t.Token, "token_id": t.TokenID, "session_id": t.SessionID, "expires_at": identity.FormatTime(t.ExpiresAt),
	})
	if err != nil {
		v.reply(msg.ID, aip.CodeInternalError, map[string]any{"reason": "token issuance failed"})
		return
	}
	v.ToClient = buildMessage(&jsonrpc.Message{Kind: jsonrpc.KindResponse, ID: msg.ID, Result: result})
}
