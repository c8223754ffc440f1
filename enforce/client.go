package enforce

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/agentid/agentid/aip"
	"github.com/agentid/agentid/approve"
	"github.com/agentid/agentid/audit"
	"github.com/agentid/agentid/dlp"
	"github.com/agentid/agentid/identity"
	"github.com/agentid/agentid/jsonrpc"
	"github.com/agentid/agentid/policy"
)

// FromClient decides one message from the client (one line on stdio, one
// HTTP request body).
//
// The verdict (its messages, records and Approval) may refer to line, which
// must therefore stay unchanged until the verdict is carried out, and until
// the approval is resolved when there is one; the core keeps no other
// reference to it. A transport can thus decide lines in its read buffer.
func (c *Core) FromClient(ctx context.Context, s *Session, line []byte) Verdict {
	return c.fromClient(ctx, s, line, Caller{}, false)
}

// Caller is the sender of a client message as a transport that
// authenticates every request (the HTTP gateway) established it before the
// core decides the message.
type Caller struct {
	// Token holds the claims of the identity token that the transport
	// validated, and so consumed, for this request (Authorization: Bearer);
	// nil when the request carried none. Step 0 of a tools/call takes
	// these claims; a token inside the message is stripped and ignored,
	// since over HTTP only the header counts (DESIGN decision 11).
	Token *identity.Claims
}

// FromCaller is FromClient for a message whose sender the transport
// authenticated (see Caller).
func (c *Core) FromCaller(ctx context.Context, s *Session, line []byte, caller Caller) Verdict {
	return c.fromClient(ctx, s, line, caller, true)
}

// FromCallerMessage is FromCaller for a message the transport has decoded
// already: msg is what jsonrpc.Decode returned for the line, unchanged. The
// gateway reads a request's method and name to check its headers before
// the core decides it, and one strict decode serves both. The verdict may
// refer to msg.Raw, as FromClient's to line.
func (c *Core) FromCallerMessage(ctx context.Context, s *Session, msg *jsonrpc.Message, caller Caller) Verdict {
	st := c.state.Load()
	var v Verdict
	v.caller, v.byCaller = caller, true
	c.clientMessage(ctx, st, s, msg, &v)
	c.finish(st, &v)
	return v
}

func (c *Core) fromClient(ctx context.Context, s *Session, line []byte, caller Caller, byCaller bool) Verdict {
	st := c.state.Load()
	var v Verdict
	v.caller, v.byCaller = caller, byCaller
	msg, err := jsonrpc.Decode(line)
	if err != nil {
		var rpcErr *jsonrpc.Error
		if !errors.As(err, &rpcErr) {
			rpcErr = &jsonrpc.Error{Code: aip.CodeParseError, Message: aip.Message(aip.CodeParseError)}
		}
		v.record(hygieneRecord(rpcErr.Code, rpcErr.Message, rpcErr.ID, ""))
		v.ToClient = errorLine(rpcErr.ID, rpcErr.Code, rpcErr.Message, rpcErr.Data)
	} else {
		c.clientMessage(ctx, st, s, msg, &v)
	}
	c.finish(st, &v)
	return v
}

// clientMessage decides a client message that decoded.
func (c *Core) clientMessage(ctx context.Context, st *snapshot, s *Session, msg *jsonrpc.Message, v *Verdict) {
	switch msg.Kind {
	case jsonrpc.KindResponse:
		c.clientResponse(s, msg, v)
	case jsonrpc.KindNotification:
		// A notification gets the same decision as a request with the
		// same method: servers execute notifications, so a tools/call
		// without an id is policed like one with. It is never answered.
		v.silent = true
		c.clientRequest(ctx, st, s, msg, v)
	default:
		c.clientRequest(ctx, st, s, msg, v)
	}
	if msg.Kind == jsonrpc.KindRequest {
		v.answerOnFailure, v.failureID = true, msg.ID
		v.request = true
	}
	v.method = msg.Method
}

// ClientOversized is the verdict for a client message over the transport's
// size limit, of which head is the beginning: it is refused unread, and
// answered at once under its id when head shows one (so the client does not
// wait for its own timeout).
func (c *Core) ClientOversized(head []byte) Verdict {
	st := c.state.Load()
	var v Verdict
	id, _ := jsonrpc.IDFromHead(head)
	v.record(hygieneRecord(aip.CodeInvalidRequest, "message exceeds the size limit", id, ""))
	v.reply(id, aip.CodeInvalidRequest, map[string]any{"reason": "message too large"})
	c.finish(st, &v)
	return v
}

// clientResponse forwards a client's answer to a server→client request
// (sampling, roots, elicitation) only if the server actually asked.
func (c *Core) clientResponse(s *Session, msg *jsonrpc.Message, v *Verdict) {
	key := idKey(msg.ID)
	if !s.clientAnswered(key) {
		v.record(audit.Record{Direction: aip.Upstream, Decision: aip.AuditBlock, Violation: true,
			Event: EventUnsolicitedResponse, ID: msg.ID, Reason: "response to no outstanding server request"})
		return
	}
	v.record(audit.Record{Direction: aip.Upstream, Decision: aip.AuditAllow, Event: EventClientResponse, ID: msg.ID})
	v.ToServer = msg.Raw
	v.undo = func() { s.serverAsked(key) }
}

// decideMethod applies method authorization on the normalized name. A raw
// name that differs from its normalized form by more than letter case is
// refused: the server would dispatch on bytes the policy never saw (e.g.
// "tools/call\u200b"). Case alone is tolerated, since MCP method names are
// case-sensitive on the server and the conformance suite requires
// "TOOLS/CALL" to be decided as tools/call (and "logging/setLevel" exists).
func decideMethod(st *snapshot, msg *jsonrpc.Message) policy.Decision {
	method := msg.Method
	if norm := policy.NormalizeName(method); norm != strings.ToLower(method) {
		return policy.Decision{
			Action:        policy.Block,
			Code:          aip.CodeMethodNotAllowed,
			Reason:        "Method name is not in normalized form",
			ViolationType: aip.ViolationMethodNotAllowed,
			Method:        norm,
		}
	}
	if st.Engine.EraAware() {
		return st.Engine.DecideMethodIn(method, protocolVersion(msg.Params))
	}
	return st.Engine.DecideMethod(method)
}

// protocolVersionKey is where an MCP 2026-07-28 request names its protocol
// version: every request carries it in params._meta, there being no
// initialize to negotiate it once.
const protocolVersionKey = "io.modelcontextprotocol/protocolVersion"

// protocolVersion is the protocol version a request names in its _meta, ""
// when it names none (every client before 2026-07-28).
func protocolVersion(params json.RawMessage) string {
	if !bytes.Contains(params, []byte("protocolVersion")) {
		return ""
	}
	// Found as a server's JSON library would find them (params are
	// strictly decoded: no two keys fold alike), without maps.
	raw := topMember(topMember(params, "_meta"), protocolVersionKey)
	if n := len(raw); n >= 2 && raw[0] == '"' && bytes.IndexByte(raw, '\\') < 0 {
		// A string without escapes (every version is one) is its bytes:
		// params were strictly decoded, so they are valid UTF-8 without
		// control characters.
		return string(raw[1 : n-1])
	}
	var v string
	if raw == nil || json.Unmarshal(raw, &v) != nil {
		return ""
	}
	return v
}

func (c *Core) clientRequest(ctx context.Context, st *snapshot, s *Session, msg *jsonrpc.Message, v *Verdict) {
	if msg.Method == TokenMethod {
		if v.silent {
			v.record(hygieneRecord(aip.CodeInvalidRequest, TokenMethod+" sent as a notification", nil, msg.Method))
			return
		}
		c.issueToken(ctx, st, msg, v)
		return
	}
	dec := decideMethod(st, msg)
	if dec.Action == policy.Block {
		v.record(decisionRecord(dec, msg, nil, ""))
		v.reply(msg.ID, dec.Code, map[string]any{"method": msg.Method, "reason": dec.Reason})
		return
	}
	if v.silent && (dec.Method == "notifications/cancelled" || dec.Method == "cancelled") && c.cancelPending(s, msg, dec, v) {
		return
	}
	if !v.silent && s.inFlight(idKey(msg.ID)) {
		// Two requests in flight with one id would let a response meant for
		// one be taken for the other (e.g. an unfiltered tools/list).
		v.record(hygieneRecord(aip.CodeInvalidRequest, "duplicate id of a request in flight", msg.ID, msg.Method))
		v.reply(msg.ID, aip.CodeInvalidRequest, map[string]any{"reason": "duplicate request id"})
		return
	}
	if dec.Method == "tools/call" {
		c.toolCall(ctx, st, s, msg, dec, v)
		return
	}
	line, _, err := stripToken(msg)
	if err != nil {
		v.record(hygieneRecord(aip.CodeInvalidParams, err.Error(), msg.ID, msg.Method))
		v.reply(msg.ID, aip.CodeInvalidParams, map[string]any{"reason": "invalid params"})
		return
	}
	var ok bool
	if line, ok = c.scanParams(st, msg, dec, line, v); !ok {
		return
	}
	v.record(decisionRecord(dec, msg, nil, ""))
	c.forward(s, msg, dec.Method, line, v)
}

// dlpBlockReason is the reason a request DLP block gives the client.
func dlpBlockReason(out dlp.RequestOutcome, what string) string {
	if out.Reason == dlp.ReasonTooLarge {
		return "Request exceeds dlp.max_scan_size"
	}
	return "Sensitive data in " + what
}

// scanParams applies request-side DLP to the params of a method other than
// tools/call (completion/complete, prompts/get, resources/read, ...): what
// a client sends there reaches the server as surely as tool arguments. It
// returns the message to forward, ok false when the request was answered.
func (c *Core) scanParams(st *snapshot, msg *jsonrpc.Message, dec policy.Decision, line []byte, v *Verdict) ([]byte, bool) {
	if st.DLP == nil || !st.DLP.ScansRequests() {
		return line, true
	}
	m := msg
	if len(line) == 0 || &line[0] != &msg.Raw[0] {
		// The token was stripped: scan what is forwarded.
		stripped, err := jsonrpc.Decode(line)
		if err != nil {
			return line, true
		}
		m = stripped
	}
	if len(m.Params) == 0 {
		return line, true
	}
	out := st.DLP.ScanRequest(m.Params, nil)
	if len(out.Findings) > 0 || out.Action != dlp.Forward {
		v.record(audit.Record{Direction: aip.Upstream, Decision: dlpAuditDecision(out.Action), Violation: true,
			Event: out.Event, Method: dec.Method, ID: msg.ID, DLPRule: out.Rule,
			DLPMatchCount: countFindings(out.Findings), FailureReason: out.Reason, Forwarded: boolPtr(out.Action == dlp.Forward)})
	}
	switch out.Action {
	case dlp.BlockRequest:
		v.reply(msg.ID, aip.CodeForbidden, map[string]any{"method": msg.Method, "reason": dlpBlockReason(out, "params")})
		return nil, false
	case dlp.RejectRequest:
		v.reply(msg.ID, aip.CodeDLPRedactionFailed, map[string]any{"method": msg.Method, "reason": "Redaction failed", "dlp_rule": out.Rule})
		return nil, false
	}
	if out.Arguments != nil && string(out.Arguments) != string(m.Params) {
		r := *m
		r.Params = out.Arguments
		return buildMessage(&r), true
	}
	return line, true
}

// cancelPending ends a call waiting for approval that the client cancels.
// The cancellation is not forwarded: the server never saw the call.
func (c *Core) cancelPending(s *Session, msg *jsonrpc.Message, dec policy.Decision, v *Verdict) bool {
	var p struct {
		RequestID json.RawMessage `json:"requestId"`
	}
	if len(msg.Params) == 0 || json.Unmarshal(msg.Params, &p) != nil || len(p.RequestID) == 0 {
		return false
	}
	if !s.cancelApproval(idKey(p.RequestID)) {
		return false
	}
	rec := decisionRecord(dec, msg, nil, "")
	rec.Event, rec.Reason = EventApprovalCancelled, "cancels a call waiting for approval; not forwarded"
	v.record(rec)
	return true
}

// forward records the request as in flight and sends line to the server.
// It returns the id key it reserved, "" when none.
func (c *Core) forward(s *Session, msg *jsonrpc.Message, method string, line []byte, v *Verdict) string {
	if v.check != nil {
		return "" // Check forwards nothing
	}
	if v.silent {
		v.ToServer = line // a notification expects no response
		return ""
	}
	key := idKey(msg.ID)
	if !s.reserve(key, method) {
		// Another request with this id was reserved concurrently.
		v.Audit = append(v.Audit[:0], hygieneRecord(aip.CodeInvalidRequest, "duplicate id of a request in flight", msg.ID, msg.Method))
		v.reply(msg.ID, aip.CodeInvalidRequest, map[string]any{"reason": "duplicate request id"})
		return ""
	}
	v.ToServer = line
	v.undo = func() { s.release(key) }
	return key
}

// issueToken answers TokenMethod with a fresh token of the session.
func (c *Core) issueToken(ctx context.Context, st *snapshot, msg *jsonrpc.Message, v *Verdict) {
	if c.cfg.Remote != nil {
		c.remoteToken(ctx, msg, v)
		return
	}
	if st.ident == nil {
		v.ToClient = errorLine(msg.ID, aip.CodeMethodNotFound, aip.Message(aip.CodeMethodNotFound),
			map[string]any{"reason": "identity is not enabled in the policy"})
		return
	}
	if st.failure != "" {
		v.reply(msg.ID, aip.CodePolicySignatureInvalid, map[string]any{"policy": st.Path(), "reason": st.failure})
		return
	}
	token, claims, err := st.ident.Issue(ctx)
	if err != nil {
		c.cfg.Log.Error("token issuance failed", "error", err)
		v.reply(msg.ID, aip.CodeInternalError, map[string]any{"reason": "token issuance failed"})
		return
	}
	result, err := json.Marshal(map[string]any{
		"token":      token,
		"token_id":   claims.TokenID(),
		"session_id": claims.SessionID,
		"expires_at": identity.FormatTime(claims.ExpiresAt),
	})
	if err != nil {
		v.reply(msg.ID, aip.CodeInternalError, map[string]any{"reason": "token issuance failed"})
		return
	}
	v.ToClient = buildMessage(&jsonrpc.Message{Kind: jsonrpc.KindResponse, ID: msg.ID, Result: result})
}

// toolCall runs the tool-level pipeline of spec §4.3 for one tools/call:
// identity (step 0), then the policy decision, then the advertised-name
// checks, then request DLP, then approval.
func (c *Core) toolCall(ctx context.Context, st *snapshot, s *Session, msg *jsonrpc.Message, methodDec policy.Decision, v *Verdict) {
	call, err := msg.ToolCall()
	if err != nil {
		v.record(hygieneRecord(aip.CodeInvalidParams, err.Error(), msg.ID, msg.Method))
		v.reply(msg.ID, aip.CodeInvalidParams, map[string]any{"reason": "invalid tools/call params"})
		return
	}
	// The token never goes further than this core: strip it first, so it
	// is neither forwarded nor logged.
	line, token, err := stripToken(msg)
	if err != nil {
		v.record(hygieneRecord(aip.CodeInvalidParams, err.Error(), msg.ID, msg.Method))
		v.reply(msg.ID, aip.CodeInvalidParams, map[string]any{"reason": "invalid tools/call params"})
		return
	}
	c.decideCall(ctx, st, s, msg, methodDec, call, line, token, v)
}

// decideCall decides a tool call whatever its transport: a tools/call
// message (line is the message to forward, without its token) or a call to
// Check (v.check set, line nil, nothing to forward).
func (c *Core) decideCall(ctx context.Context, st *snapshot, s *Session, msg *jsonrpc.Message, methodDec policy.Decision, call jsonrpc.ToolCall, line []byte, token string, v *Verdict) {
	var err error
	redacted := redactForAudit(st.DLP, call.Arguments)
	auditArgs := redacted.args

	if st.failure != "" {
		v.record(audit.Record{Direction: aip.Upstream, Decision: aip.AuditBlock, Violation: true, Event: EventPolicyInvalid,
			Method: msg.Method, Tool: call.Name, Args: auditArgs, ID: msg.ID, Validated: true, Code: aip.CodePolicySignatureInvalid, Reason: st.failure})
		v.reply(msg.ID, aip.CodePolicySignatureInvalid, map[string]any{"policy": st.Path(), "reason": st.failure})
		return
	}
	// A retry of a multi-round-trip call is bound to the decision on its
	// first round (rounds.go; through a validation server, roundticket.go).
	round := decidedCall(st, call)
	round.session = callerSession(v)
	switch {
	case v.check != nil:
		v.check.decided = round
	case s.exactNames:
		// A conversation of one request: the binding travels in the
		// request state (sealedstate.go).
		var ok bool
		if line, ok = c.openRound(ctx, st, msg, call, round, line, auditArgs, v); !ok {
			return
		}
	default:
		if !c.continuation(st, s, msg, call, round, auditArgs, v) {
			return
		}
		if v.continues != nil {
			defer restoreRound(s, v, c.cfg.Now())
		}
	}

	var dec policy.Decision
	var tokenID string
	var done bool
	if c.cfg.Remote != nil {
		dec, tokenID, done = c.remoteDecision(ctx, st, s, msg, call, token, auditArgs, v)
	} else {
		dec, tokenID, done = c.localDecision(ctx, st, s, msg, call, token, auditArgs, v)
	}
	if done {
		return
	}
	dec.Method = methodDec.Method
	if dec.Action != policy.Block {
		dec = checkAdvertised(st, s, call.Name, dec)
	}
	v.decided(dec)
	if dec.Action == policy.Block {
		rec := decisionRecord(dec, msg, auditArgs, call.Name)
		rec.TokenID = tokenID
		v.record(rec)
		v.reply(msg.ID, dec.Code, map[string]any{"tool": call.Name, "reason": dec.Reason})
		return
	}

	forwardArgs := call.Arguments
	if st.DLP != nil && st.DLP.ScansRequests() && len(call.Arguments) > 0 {
		revalidate := func(args json.RawMessage) error {
			d := st.Engine.ValidateArguments(call.Name, args)
			if d.ViolationType != "" {
				return fmt.Errorf("%s: %s", d.ViolationType, d.Reason)
			}
			return nil
		}
		var out dlp.RequestOutcome
		if redacted.scanned {
			// Same arguments, same scanner, same request-scope patterns as
			// the audit redaction above: reuse it.
			out = st.DLP.ScanRequestRedacted(call.Arguments, redacted.res, redacted.err, revalidate)
		} else {
			out = st.DLP.ScanRequest(call.Arguments, revalidate)
		}
		if len(out.Findings) > 0 {
			v.record(audit.Record{Direction: aip.Upstream, Decision: dlpAuditDecision(out.Action), Violation: true,
				Event: out.Event, Method: dec.Method, Tool: dec.Tool, ID: msg.ID, DLPRule: out.Rule, TokenID: tokenID,
				DLPMatchCount: countFindings(out.Findings), FailureReason: out.Reason, Forwarded: boolPtr(out.Action == dlp.Forward)})
		}
		switch out.Action {
		case dlp.BlockRequest:
			v.reply(msg.ID, aip.CodeForbidden, map[string]any{"tool": call.Name, "reason": dlpBlockReason(out, "arguments")})
			return
		case dlp.RejectRequest:
			v.reply(msg.ID, aip.CodeDLPRedactionFailed, map[string]any{
				"tool": call.Name, "reason": "Redaction failed", "dlp_rule": out.Rule, "validation_error": out.ValidationError})
			return
		}
		if v.check == nil && out.Arguments != nil && string(out.Arguments) != string(call.Arguments) {
			m := *msg
			if token != "" {
				// Work on the token-free params.
				if stripped, err := jsonrpc.Decode(line); err == nil {
					m = *stripped
				}
			}
			line, err = replaceArguments(&m, out.Arguments)
			if err != nil {
				v.reply(msg.ID, aip.CodeForbidden, map[string]any{"tool": call.Name, "reason": "Request could not be rewritten"})
				return
			}
			auditArgs = out.Arguments
			forwardArgs = out.Arguments
		}
	}
	if v.check == nil {
		// A Check has no params beside the arguments: the validation
		// request's other members are not forwarded anywhere.
		var ok bool
		if line, ok = c.scanCallSiblings(st, msg, dec, call.Name, tokenID, line, forwardArgs, v); !ok {
			return
		}
	}

	if dec.Action == policy.Ask && (v.continues == nil || !v.continues.approved) {
		if v.silent {
			// Nobody could be told the outcome, and an approved call would
			// have no request to answer: refused.
			denied := dec
			denied.Action, denied.Code, denied.Reason, denied.ViolationType = policy.Block, aip.CodeUserDenied, "Approval cannot be asked for a notification", aip.ViolationRuleBlock
			rec := decisionRecord(denied, msg, auditArgs, call.Name)
			rec.TokenID = tokenID
			v.record(rec)
			return
		}
		if v.check != nil {
			// The caller obtains the approval: Check only says so.
			rec := decisionRecord(dec, msg, auditArgs, call.Name)
			rec.TokenID = tokenID
			v.record(rec)
			return
		}
		c.ask(st, s, msg, dec, call, line, auditArgs, tokenID, v)
		if v.Approval != nil {
			trackCall(s, idKey(msg.ID), round, v)
		}
		return
	}
	rec := decisionRecord(dec, msg, auditArgs, call.Name)
	rec.TokenID = tokenID
	continued(&rec, v)
	v.record(rec)
	if key := c.forward(s, msg, dec.Method, line, v); key != "" {
		trackCall(s, key, round, v)
	}
}

// localDecision runs steps 0 to 2 of the tool pipeline in this process:
// identity, rate limit, and the policy's decision on the tool and its
// arguments. done reports that the call was answered.
func (c *Core) localDecision(ctx context.Context, st *snapshot, s *Session, msg *jsonrpc.Message, call jsonrpc.ToolCall, token string, auditArgs json.RawMessage, v *Verdict) (dec policy.Decision, tokenID string, done bool) {
	// Step 0: identity. Always enforced, in monitor mode too.
	tokenID, blocked := c.checkToken(ctx, st, msg, call.Name, token, auditArgs, v)
	if blocked {
		return dec, tokenID, true
	}
	// Step 1: the rate limit, spent before any other check.
	if c.rateLimited(ctx, st, msg, call.Name, auditArgs, tokenID, v) {
		return dec, tokenID, true
	}
	dec = st.Engine.DecideTool(policy.ToolCall{
		Name:       call.Name,
		Arguments:  call.Arguments,
		Validated:  true, // by jsonrpc.Decode
		SchemaHash: c.schemaHash(st, s, call.Name, v),
	})
	return dec, tokenID, false
}

// schemaHash is the hash of the tool's definition for a rule that pins it:
// from the server's tools/list as this session saw it, or, for Check, from
// the definition the caller saw.
func (c *Core) schemaHash(st *snapshot, s *Session, name string, v *Verdict) string {
	if v.check == nil || v.check.toolDef == nil {
		return s.schemaHash(st.Engine, name)
	}
	alg := st.Engine.SchemaHashAlg(name)
	if alg == "" {
		return ""
	}
	h, err := policy.ToolSchemaHash(v.check.toolDef, alg)
	if err != nil {
		return ""
	}
	return h
}

// scanCallSiblings applies request-side DLP to the params of a tools/call
// beside "arguments" (name, _meta without the token, any other member),
// keys included, with the same on_request_match. Redacting the tool name
// is a redaction failure: the call was decided on that name. It returns
// the message to forward (line, or params rebuilt around args when a
// member was redacted), ok false when the call was answered.
func (c *Core) scanCallSiblings(st *snapshot, msg *jsonrpc.Message, dec policy.Decision, tool, tokenID string, line []byte, args json.RawMessage, v *Verdict) ([]byte, bool) {
	if st.DLP == nil || !st.DLP.ScansRequests() {
		return line, true
	}
	siblings, err := callSiblings(msg.Params)
	if err != nil {
		v.reply(msg.ID, aip.CodeInvalidParams, map[string]any{"tool": tool, "reason": "invalid tools/call params"})
		return nil, false
	}
	name := memberValue(siblings, "name")
	out := st.DLP.ScanRequest(siblings, func(redacted json.RawMessage) error {
		if string(memberValue(redacted, "name")) != string(name) {
			return errors.New("name: the tool name cannot be redacted")
		}
		return nil
	})
	if len(out.Findings) > 0 {
		v.record(audit.Record{Direction: aip.Upstream, Decision: dlpAuditDecision(out.Action), Violation: true,
			Event: out.Event, Method: dec.Method, Tool: dec.Tool, ID: msg.ID, DLPRule: out.Rule, TokenID: tokenID,
			DLPMatchCount: countFindings(out.Findings), FailureReason: out.Reason, Forwarded: boolPtr(out.Action == dlp.Forward),
			Reason: "params beside arguments"})
	}
	switch out.Action {
	case dlp.BlockRequest:
		v.reply(msg.ID, aip.CodeForbidden, map[string]any{"tool": tool, "reason": dlpBlockReason(out, "params")})
		return nil, false
	case dlp.RejectRequest:
		v.reply(msg.ID, aip.CodeDLPRedactionFailed, map[string]any{
			"tool": tool, "reason": "Redaction failed", "dlp_rule": out.Rule, "validation_error": out.ValidationError})
		return nil, false
	}
	if string(out.Arguments) == string(siblings) {
		return line, true
	}
	m := *msg
	m.Params = withSiblings(out.Arguments, args)
	return buildMessage(&m), true
}

// checkToken is step 0 of spec §4.3. With require_token, a missing or empty
// token is -32008 and an invalid one -32009/-32011/-32012. Without it, a
// presented token is still validated (and consumed) and a failure audited,
// but the call is not blocked: that is the rollout mode of
// reference/aip.md §6 #10. It returns the token id for the audit log.
func (c *Core) checkToken(ctx context.Context, st *snapshot, msg *jsonrpc.Message, tool, token string, auditArgs json.RawMessage, v *Verdict) (tokenID string, blocked bool) {
	m := st.ident
	if m == nil {
		return "", false
	}
	if v.byCaller {
		if v.caller.Token != nil {
			c.outage.recovered()
			return v.caller.Token.TokenID(), false
		}
		token = ""
	}
	required := m.IdentityConfig().RequireToken || v.check != nil && v.check.requireToken
	if token == "" && !required {
		return "", false
	}
	var verr *identity.ValidationError
	if token == "" {
		verr = &identity.ValidationError{Code: aip.CodeTokenRequired, Reason: "Identity token required for this policy"}
	} else {
		claims, err := m.Validate(ctx, token)
		if err == nil {
			c.outage.recovered()
			if v.check != nil {
				v.check.claims = claims
			}
			return claims.TokenID(), false
		}
		verr = identity.AsValidationError(err)
		if verr == nil {
			// A store could not answer: the token's signature and claims
			// verified, its revocation or replay could not be checked.
			c.cfg.Log.Error("token validation unavailable", "error", err)
			return "", c.storeUnavailable(st, msg, tool, "identity store", false, v)
		}
		if verr.Claims != nil {
			tokenID = verr.Claims.TokenID()
		}
	}
	if !required {
		v.record(audit.Record{Direction: aip.Upstream, Decision: aip.AuditAllow, Violation: true, Event: EventTokenNotRequired,
			Method: msg.Method, Tool: tool, ID: msg.ID, TokenID: tokenID, Code: verr.Code, Reason: verr.TokenError})
		return tokenID, false
	}
	v.record(audit.Record{Direction: aip.Upstream, Decision: aip.AuditBlock, Violation: true, Event: EventTokenRejected,
		Method: msg.Method, Tool: tool, Args: auditArgs, ID: msg.ID, Validated: true, TokenID: tokenID, Code: verr.Code, Reason: verr.TokenError})
	v.reply(msg.ID, verr.Code, verr.Data(tool, false))
	return tokenID, true
}

// rateLimited counts the call against its tool's rate limit and answers
// -32002 when it is over (enforced in monitor mode too).
func (c *Core) rateLimited(ctx context.Context, st *snapshot, msg *jsonrpc.Message, tool string, auditArgs json.RawMessage, tokenID string, v *Verdict) bool {
	if !c.redeem(ctx, st, msg, tool, v) {
		return true
	}
	if v.continues != nil {
		return false // the call's first round spent its unit
	}
	rl, rule, ok := st.Engine.RateLimit(tool)
	if !ok {
		return false
	}
	key := rateKey(st.Policy.Policy.Metadata.Name, policy.NormalizeName(tool))
	now := c.cfg.Now()
	allowed, err := c.limits.Allow(ctx, key, rl.Count, rl.Per, now)
	if err != nil {
		c.cfg.Log.Error("rate-limit store unavailable", "error", err)
		if c.storeUnavailable(st, msg, tool, "rate-limit store", true, v) {
			return true
		}
		// local_policy counts in this process meanwhile; fail_open lets the
		// call through uncounted.
		allowed = true
		if st.ServerFailover() == LocalPolicy {
			// In process and instant: the shared store may have spent the
			// deadline already.
			allowed, _ = c.local.Allow(context.WithoutCancel(ctx), key, rl.Count, rl.Per, now)
		}
	} else {
		c.outage.recovered()
	}
	if allowed {
		return false
	}
	dec := st.Engine.RateLimited(tool, rule)
	rec := decisionRecord(dec, msg, auditArgs, tool)
	rec.TokenID = tokenID
	v.record(rec)
	v.reply(msg.ID, dec.Code, map[string]any{"tool": tool, "reason": dec.Reason})
	return true
}

// rateKey is the store key of a policy's limit on a tool: readable, and
// unambiguous whatever the names hold (quoted, so a name with ":" or a NUL
// byte, which a PostgreSQL text column refuses, cannot collide or fail).
func rateKey(policyName, tool string) string {
	return "rate:" + strconv.Quote(policyName) + ":" + strconv.Quote(tool)
}

// storeUnavailable applies failover_mode (§3.8.3) to a call whose shared
// state could not be read, and reports whether it was refused: fail_closed
// answers -32001 validation_unavailable; fail_open lets the call through
// within fail_open_constraints, auditing every such call; local_policy
// decides with this process's own state where it has one (rate limits,
// localOK) and refuses otherwise (a token's replay cannot be checked
// without the shared nonce store).
func (c *Core) storeUnavailable(st *snapshot, msg *jsonrpc.Message, tool, what string, localOK bool, v *Verdict) bool {
	fv := c.outage.decide(st.Server, st.failure, tool, c.cfg.Now())
	if fv.local && !localOK {
		fv = failoverVerdict{reason: "failover_mode local_policy: no local state for the " + what}
	}
	if fv.allow {
		event := EventFailover
		if fv.local {
			event = EventFailoverLocal
		}
		rec := audit.Record{Direction: aip.Upstream, Decision: aip.AuditAllow, Violation: true, Event: event,
			Method: msg.Method, Tool: tool, ID: msg.ID, Reason: what + " unavailable; failover_mode=" + st.ServerFailover()}
		v.record(rec)
		if !fv.local {
			c.cfg.Log.Warn("failover_mode=fail_open triggered", "store", what, "tool", tool)
		}
		if fv.started && c.cfg.OnFailOpen != nil {
			var hook string
			if lim := st.Server.FailOpen; lim != nil {
				hook = lim.AlertWebhook
			}
			c.cfg.OnFailOpen(FailOpenAlert{Webhook: hook, Since: c.cfg.Now(), Tool: tool, What: what, PolicyHash: st.Hash})
		}
		return false
	}
	v.record(audit.Record{Direction: aip.Upstream, Decision: aip.AuditBlock, Violation: true, Event: EventValidationUnavailable,
		Method: msg.Method, Tool: tool, ID: msg.ID, Code: aip.CodeForbidden, Reason: what + " unavailable; " + fv.reason})
	v.reply(msg.ID, aip.CodeForbidden, map[string]any{"tool": tool, "reason": aip.TokenErrValidationUnavailable})
	return true
}

// checkAdvertised blocks a call whose raw name is not exactly a tool the
// server advertised, or whose normalized name is shared by two advertised
// tools. These checks guard the integrity of the decision and are enforced
// in monitor mode too. Before the server's first tools/list the raw name is
// forwarded as decided on its normalized form (see docs/decisions.md).
func checkAdvertised(st *snapshot, s *Session, name string, dec policy.Decision) policy.Decision {
	seen, advertised, ambiguous := s.advertised(name)
	var reason string
	switch {
	case !seen && s.exactNames && !st.Engine.NamesTool(name):
		reason = "Tool name not as the policy spells it"
	case seen && !advertised:
		reason = "Tool not advertised by server"
	case seen && ambiguous:
		reason = "Ambiguous tool name"
	default:
		return dec
	}
	dec.Action = policy.Block
	dec.Code = aip.CodeForbidden
	dec.Reason = reason
	dec.ViolationType = aip.ViolationToolNotAllowed
	dec.Monitored = false
	return dec
}

// ask reserves the call's id and returns the approval to obtain; the
// transport obtains it off its read loop, so a pending prompt never stalls
// other traffic, and passes the answer to Resolve.
func (c *Core) ask(st *snapshot, s *Session, msg *jsonrpc.Message, dec policy.Decision, call jsonrpc.ToolCall, line []byte, displayArgs json.RawMessage, tokenID string, v *Verdict) {
	digest, err := approve.Digest(c.digestKey, call.Name, call.Arguments)
	if err != nil {
		failed := policy.Decision{Action: policy.Block, Code: aip.CodeForbidden, Reason: "approval digest failed",
			ViolationType: aip.ViolationRuleBlock, Method: dec.Method, Tool: dec.Tool}
		rec := decisionRecord(failed, msg, displayArgs, call.Name)
		rec.TokenID = tokenID
		v.record(rec)
		v.reply(msg.ID, aip.CodeForbidden, map[string]any{"tool": call.Name, "reason": "Approval failed"})
		return
	}
	// Reserve the id now so a duplicate cannot slip in while we wait.
	key := idKey(msg.ID)
	if !s.reserve(key, dec.Method) {
		v.record(hygieneRecord(aip.CodeInvalidRequest, "duplicate id of a request in flight", msg.ID, msg.Method))
		v.reply(msg.ID, aip.CodeInvalidRequest, map[string]any{"reason": "duplicate request id"})
		return
	}
	v.undo = func() { s.release(key) }
	v.Approval = &Approval{
		Request: approve.Request{
			Tool:       call.Name,
			Arguments:  displayArgs,
			PolicyHash: st.Hash,
			SessionID:  st.sessionID(),
			Expires:    c.cfg.Now().Add(c.cfg.ApprovalTimeout),
			Digest:     digest,
		},
		session: s, st: st, msg: msg, tool: call.Name, line: line, args: displayArgs, dec: dec, tokenID: tokenID,
		timeout: c.cfg.ApprovalTimeout,
	}
	s.waitFor(key, v.Approval)
	a := v.Approval
	v.undo = func() { s.approvalDone(key, a); s.release(key) }
}

// Resolve is the verdict on an approved, denied or timed-out call.
func (c *Core) Resolve(a *Approval, answer approve.Answer) Verdict {
	var v Verdict
	key := idKey(a.msg.ID)
	d := a.dec
	event := EventApproved
	if a.session.approvalDone(key, a) {
		// The client cancelled the call while it waited: it never runs,
		// and the client expects no response (MCP cancellation).
		a.session.release(key)
		d.Action, d.Code, d.Reason, d.ViolationType = policy.Block, aip.CodeUserDenied, "Cancelled by the client", aip.ViolationRuleBlock
		rec := decisionRecord(d, a.msg, a.args, a.tool)
		rec.Event, rec.TokenID = EventApprovalCancelled, a.tokenID
		v.record(rec)
		c.finish(a.st, &v)
		return v
	}
	switch answer {
	case approve.Approved:
		a.session.approvedCall(key)
		v.ToServer = a.line
		v.undo = func() { a.session.release(key) }
	case approve.TimedOut:
		a.session.release(key)
		d.Action, d.Code, d.Reason, d.ViolationType = policy.Block, aip.CodeUserTimeout, "Approval timed out", aip.ViolationRuleBlock
		event = EventApprovalTimeout
	default:
		a.session.release(key)
		d.Action, d.Code, d.Reason, d.ViolationType = policy.Block, aip.CodeUserDenied, "Denied by approver", aip.ViolationRuleBlock
		event = EventApprovalDenied
	}
	rec := decisionRecord(d, a.msg, a.args, a.tool)
	rec.Event, rec.TokenID = event, a.tokenID
	v.record(rec)
	if d.Action == policy.Block {
		v.reply(a.msg.ID, d.Code, map[string]any{"tool": a.tool, "reason": d.Reason})
	}
	v.answerOnFailure, v.failureID = true, a.msg.ID
	c.finish(a.st, &v)
	return v
}
