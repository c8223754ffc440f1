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

// Call is a tool call decided without a conversation around it: the body of
// a validation server's POST /v1/validate (spec §6.2) and the token that
// came with it.
type Call struct {
	// Tool is the tool name as the agent would send it.
	Tool string
	// Arguments is the arguments object, already validated as strict JSON
	// (jsonrpc's rules: no duplicate or case-variant keys) by the caller.
	Arguments json.RawMessage
	// Token is the identity token from the Authorization header, "" when
	// none was presented.
	Token string
	// RequireToken requires a valid token whatever identity.require_token
	// says: the caller is authenticated by its token alone (a validation
	// server's listener off loopback), so a call without one is refused at
	// step 0, before it spends a rate limit.
	RequireToken bool
	// ToolDefinition is the tool's entry in the server's tools/list as the
	// caller saw it (a proxy deciding through this server), nil when it
	// saw none. A rule that pins the tool's schema_hash is checked against
	// it; without it, a pinned tool's schema is unknown and the call is
	// refused.
	ToolDefinition json.RawMessage
	// Round is the round ticket of an earlier Check of this call
	// (Check.Round), presented with a retry of a multi-round-trip call
	// (MCP 2026-07-28's input_required): a valid one binds the retry to
	// the call's first round, which spent its rate-limit unit. "" for a
	// new call.
	Round string
	// Rounds says the caller carries multi-round-trip calls (a proxy
	// deciding through this server): only then does Check issue the
	// ticket of the next round, which costs an HMAC and a random id.
	Rounds bool
}

// Check is the core's decision on a Call: the same steps, in the same order
// and with the same outcome, as for a tools/call message on stdio (method
// authorization of tools/call, identity, rate limit, tool, arguments and
// protected paths, request DLP, approval). What a conversation adds (the
// server's advertised tools, schema pins learned from its tools/list, ids in
// flight) does not apply.
type Check struct {
	// Decision is aip.DecisionAllow, aip.DecisionBlock or aip.DecisionAsk.
	// Monitor mode allows what it would block, and lists the violations.
	Decision string
	// Code is the AIP error code of a refusal (e.g. -32001, -32002,
	// -32008, -32009); 0 when the call is allowed or must be approved.
	Code int
	// Reason is the refusal's short, non-revealing reason.
	Reason string
	// TokenError is the token_error of a -32009 refusal.
	TokenError string
	// Violations lists what the policy found wrong with the call, also in
	// monitor mode; nil when nothing was.
	Violations []Violation
	// Token holds the claims of the presented token when it validated (and
	// was consumed).
	Token *identity.Claims
	// Audit holds the records of the decision, for the caller to write
	// before it answers.
	Audit []audit.Record
	// Round is the ticket a retry of this call presents as Call.Round,
	// set when the call is allowed or must be approved; "" once the call
	// has had every round it may share.
	Round string
}

// Violation is one entry of the violations array of spec §6.2.2.
type Violation struct {
	Type    string `json:"type"`
	Field   string `json:"field,omitempty"`
	Message string `json:"message"`
}

// checkState collects, for Check, what the tools/call pipeline would have
// answered.
type checkState struct {
	requireToken bool
	toolDef      json.RawMessage
	code         int
	data         map[string]any
	dec          policy.Decision
	hasDec       bool
	claims       *identity.Claims
	round        string  // the ticket presented (Call.Round)
	decided      decided // the call, as round tickets bind it
}

// Check decides call against the policy in force (see Check).
func (c *Core) Check(ctx context.Context, call Call) Check {
	st := c.state.Load()
	v := Verdict{check: &checkState{requireToken: call.RequireToken, toolDef: call.ToolDefinition, round: call.Round}}
	msg := &jsonrpc.Message{Kind: jsonrpc.KindRequest, Method: "tools/call"}
	if dec := decideMethod(st, msg); dec.Action == policy.Block {
		v.record(decisionRecord(dec, msg, nil, call.Tool))
		v.reply(nil, dec.Code, map[string]any{"method": msg.Method, "reason": dec.Reason})
	} else {
		c.decideCall(ctx, st, &Session{}, msg, dec, jsonrpc.ToolCall{Name: call.Tool, Arguments: call.Arguments}, nil, call.Token, &v)
	}
	c.finish(st, &v)
	r := v.check.result(v.Audit)
	if call.Rounds && r.Decision != aip.DecisionBlock && v.check.hasDec {
		r.Round = c.nextTicket(&v)
	}
	return r
}

func (cs *checkState) result(records []audit.Record) Check {
	r := Check{Decision: aip.DecisionAllow, Code: cs.code, Token: cs.claims, Audit: records}
	if cs.code != 0 {
		r.Decision = aip.DecisionBlock
		r.Reason, _ = cs.data["reason"].(string)
		r.TokenError, _ = cs.data["token_error"].(string)
		if r.Reason == "" {
			r.Reason = aip.Message(cs.code)
		}
	}
	d := cs.dec
	switch {
	case !cs.hasDec:
	case cs.code == 0 && d.Action == policy.Ask:
		r.Decision = aip.DecisionAsk
		r.Reason = d.Reason
	case d.ViolationType != "" && (cs.code == d.Code || d.Monitored):
		r.Violations = []Violation{violationOf(d)}
		if d.Monitored {
			r.Reason = d.Reason
		}
	}
	if r.Violations == nil && cs.code != 0 {
		if t := violationTypeOf(cs.code, r.Reason); t != "" {
			r.Violations = []Violation{{Type: t, Message: r.Reason}}
		}
	}
	return r
}

// violationOf describes a policy decision's violation. An argument that
// does not match its pattern is reported with the pattern, as spec §6.2's
// examples do: the caller sent the value and may see what it had to match.
func violationOf(d policy.Decision) Violation {
	v := Violation{Type: d.ViolationType, Field: d.FailedArg, Message: d.Reason}
	if d.ViolationType == aip.ViolationArgumentValidation && d.FailedArg != "" && d.FailedRule != "" {
		v.Message = "Value does not match pattern: " + d.FailedRule
	}
	return v
}

// violationTypeOf names the violation of a refusal that no policy decision
// describes (rate limit, request DLP).
func violationTypeOf(code int, reason string) string {
	switch code {
	case aip.CodeRateLimited:
		return aip.ViolationRateLimited
	case aip.CodeDLPRedactionFailed:
		return aip.ViolationDLP
	case aip.CodeForbidden:
		if reason == "Sensitive data in arguments" {
			return aip.ViolationDLP
		}
	}
	return ""
}

// ExpiresIn is the whole seconds left of the token's lifetime at now, for
// token_status.expires_in; 0 when it has expired.
func (r Check) ExpiresIn(now time.Time) int64 {
	if r.Token == nil {
		return 0
	}
	s := int64(r.Token.ExpiresAt.Sub(now) / time.Second)
	if s < 0 {
		return 0
	}
	return s
}
