package proxy

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/agentid/agentid/aip"
	"github.com/agentid/agentid/approve"
	"github.com/agentid/agentid/audit"
	"github.com/agentid/agentid/dlp"
	"github.com/agentid/agentid/identity"
	"github.com/agentid/agentid/jsonrpc"
	"github.com/agentid/agentid/policy"
)

// Config wires the parts the proxy enforces with.
type Config struct {
	// Engine decides every method and tool call. Required.
	Engine *policy.Engine
	// DLP scans requests and responses; nil disables scanning.
	DLP *dlp.Scanner
	// PolicyHash is the loaded policy's hash, written to every audit record.
	PolicyHash string
	// Identity manages the session's identity tokens (spec §5); nil when
	// the policy does not enable identity.
	Identity *identity.Manager
	// Approver answers `action: ask`; nil means approve.Headless (deny).
	Approver approve.Approver
	// ApprovalTimeout bounds one approval; 0 means 60s.
	ApprovalTimeout time.Duration
	// Audit receives one record per decision; nil discards.
	Audit *audit.Logger
	// Log receives diagnostics (never protocol traffic); nil discards.
	Log *slog.Logger
	// MaxLineSize caps one message; 0 means jsonrpc.DefaultMaxLineSize.
	MaxLineSize int
	// ShowBlockedTools disables filtering of tools/list responses.
	ShowBlockedTools bool
	// Now is the clock; nil means time.Now.
	Now func() time.Time
}

// policyState is what a message is decided against. It is replaced as a
// whole when the policy is reloaded, and every message takes one snapshot,
// so a reload never applies half a policy to a message.
type policyState struct {
	engine *policy.Engine
	dlp    *dlp.Scanner
	hash   string
	// failure, when set, is why the last reload was refused (e.g. a bad
	// signature): tool calls are answered with -32010 until a good policy
	// loads (reference/aip.md §6 #15).
	failure string
	path    string
}

// Proxy enforces a policy on one client/server conversation.
type Proxy struct {
	cfg   Config
	state atomic.Pointer[policyState]
}

// New returns a proxy for cfg. It panics if cfg.Engine is nil, which is a
// programming error: a proxy without a policy must not exist.
func New(cfg Config) *Proxy {
	if cfg.Engine == nil {
		panic("proxy: nil policy engine")
	}
	if cfg.Approver == nil {
		cfg.Approver = approve.Headless()
	}
	if cfg.ApprovalTimeout <= 0 {
		cfg.ApprovalTimeout = 60 * time.Second
	}
	if cfg.Audit == nil {
		cfg.Audit = audit.Discard()
	}
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	if cfg.MaxLineSize <= 0 {
		cfg.MaxLineSize = jsonrpc.DefaultMaxLineSize
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	p := &Proxy{cfg: cfg}
	p.state.Store(newPolicyState(cfg.Engine, cfg.DLP, cfg.PolicyHash))
	return p
}

func newPolicyState(e *policy.Engine, s *dlp.Scanner, hash string) *policyState {
	st := &policyState{engine: e, dlp: s, hash: hash}
	if p := e.Policy(); p != nil {
		st.path = p.Path
	}
	return st
}

// SetPolicy replaces the policy for every message from now on (a reload).
// The identity manager, if any, is told about the new policy by the caller.
func (p *Proxy) SetPolicy(e *policy.Engine, s *dlp.Scanner, hash string) {
	p.state.Store(newPolicyState(e, s, hash))
}

// PolicyRejected records that a reload was refused. The previous policy stays
// in force for methods, but every tool call is answered with -32010 "Policy
// signature invalid" until SetPolicy installs a policy that verifies: a
// proxy must not keep acting on a policy its operator tried to replace.
func (p *Proxy) PolicyRejected(reason string) {
	old := p.state.Load()
	st := *old
	st.failure = reason
	p.state.Store(&st)
}

// Relay runs one conversation: client messages are read from fromClient and,
// when allowed, written to toServer; server messages are read from fromServer
// and written to toClient. It returns when the server's output ends (the
// server exited or closed stdout) or ctx is cancelled. When the client's input
// ends, toServer is closed if it is an io.Closer, so that the server sees EOF
// and can exit, as the MCP stdio transport prescribes.
func (p *Proxy) Relay(ctx context.Context, fromClient io.Reader, toClient io.Writer, toServer io.Writer, fromServer io.Reader) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	r := &relay{
		p:             p,
		cfg:           &p.cfg,
		ctx:           ctx,
		toClient:      &lineWriter{w: toClient},
		toServer:      &lineWriter{w: toServer},
		pendingClient: make(map[string]string),
		pendingServer: make(map[string]struct{}),
	}
	upstreamDone := make(chan error, 1)
	go func() {
		err := r.upstream(fromClient)
		r.approvals.Wait()
		if c, ok := toServer.(io.Closer); ok {
			c.Close()
		}
		upstreamDone <- err
	}()
	downstreamDone := make(chan error, 1)
	go func() { downstreamDone <- r.downstream(fromServer) }()

	select {
	case err := <-downstreamDone:
		// The server is gone; nothing more can be answered. Approvals still
		// pending are cancelled by the deferred cancel.
		return err
	case <-ctx.Done():
		return ctx.Err()
	case err := <-upstreamDone:
		if err != nil {
			return err
		}
		// The client is done; let the server finish what it was asked.
		select {
		case err := <-downstreamDone:
			return err
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// relay is the state of one conversation.
type relay struct {
	p        *Proxy
	cfg      *Config
	ctx      context.Context
	toClient *lineWriter
	toServer *lineWriter

	mu sync.Mutex
	// pendingClient maps the id of every forwarded client request to its
	// normalized method, so that the server's response can be matched (and
	// tools/list results filtered).
	pendingClient map[string]string
	// pendingServer holds ids of server→client requests awaiting the
	// client's response; a client response with any other id is dropped.
	pendingServer map[string]struct{}
	tools         toolCatalog

	approvals sync.WaitGroup
}

// upstream handles client → server traffic until the client's input ends.
func (r *relay) upstream(in io.Reader) error {
	rd := jsonrpc.NewReader(in, r.cfg.MaxLineSize)
	for {
		line, err := rd.ReadLine()
		switch {
		case errors.Is(err, io.EOF):
			return nil
		case errors.Is(err, jsonrpc.ErrLineTooLong):
			r.auditHygiene(aip.CodeInvalidRequest, "message exceeds the line size limit", nil, "")
			if werr := r.toClient.write(jsonrpc.ErrorResponse(nil, aip.CodeInvalidRequest, aip.Message(aip.CodeInvalidRequest), map[string]any{"reason": "message too large"})); werr != nil {
				return werr
			}
			continue
		case err != nil:
			return fmt.Errorf("proxy: reading client: %w", err)
		}
		if err := r.fromClient(line); err != nil {
			return err
		}
	}
}

// fromClient decides one client message. It returns an error only when a
// peer can no longer be written to.
func (r *relay) fromClient(line []byte) error {
	msg, err := jsonrpc.Decode(line)
	if err != nil {
		var rpcErr *jsonrpc.Error
		if !errors.As(err, &rpcErr) {
			rpcErr = &jsonrpc.Error{Code: aip.CodeParseError, Message: aip.Message(aip.CodeParseError)}
		}
		r.auditHygiene(rpcErr.Code, rpcErr.Message, rpcErr.ID, "")
		return r.toClient.write(jsonrpc.ErrorResponse(rpcErr.ID, rpcErr.Code, rpcErr.Message, rpcErr.Data))
	}
	st := r.p.state.Load()

	switch msg.Kind {
	case jsonrpc.KindResponse:
		return r.clientResponse(msg)
	case jsonrpc.KindNotification:
		return r.clientNotification(st, msg)
	default:
		return r.clientRequest(st, msg)
	}
}

// clientResponse forwards a client's answer to a server→client request
// (sampling, roots, elicitation) only if the server actually asked.
func (r *relay) clientResponse(msg *jsonrpc.Message) error {
	key := idKey(msg.ID)
	r.mu.Lock()
	_, ok := r.pendingServer[key]
	delete(r.pendingServer, key)
	r.mu.Unlock()
	if !ok {
		r.audit(audit.Record{Direction: "upstream", Decision: aip.AuditBlock, Violation: true,
			Event: "UNSOLICITED_RESPONSE", ID: msg.ID, Reason: "response to no outstanding server request"})
		return nil
	}
	r.audit(audit.Record{Direction: "upstream", Decision: aip.AuditAllow, Event: "CLIENT_RESPONSE", ID: msg.ID})
	return r.toServer.writeLine(msg.Raw)
}

// clientNotification forwards an allowed notification. Denied notifications
// are dropped and audited: JSON-RPC forbids answering a notification.
func (r *relay) clientNotification(st *policyState, msg *jsonrpc.Message) error {
	dec := decideMethod(st, msg.Method)
	r.auditDecision(st, dec, msg, nil, "")
	if dec.Action != policy.Allow {
		return nil
	}
	line, _, err := stripToken(msg)
	if err != nil {
		return nil // unreadable params: not forwarded
	}
	return r.toServer.writeLine(line)
}

// decideMethod applies method authorization on the normalized name. A raw
// name that differs from its normalized form by more than letter case is
// refused: the server would dispatch on bytes the policy never saw (e.g.
// "tools/call\u200b"). Case alone is tolerated, since MCP method names are
// case-sensitive on the server and the conformance suite requires
// "TOOLS/CALL" to be decided as tools/call (and "logging/setLevel" exists).
func decideMethod(st *policyState, method string) policy.Decision {
	if norm := policy.NormalizeName(method); norm != strings.ToLower(method) {
		return policy.Decision{
			Action:        policy.Block,
			Code:          aip.CodeMethodNotAllowed,
			Reason:        "Method name is not in normalized form",
			ViolationType: aip.ViolationMethodNotAllowed,
			Method:        norm,
		}
	}
	return st.engine.DecideMethod(method)
}

// TokenMethod is the proxy's own JSON-RPC method through which a stdio client
// obtains a fresh single-use identity token for its next call. It is
// answered by the proxy and never forwarded. The token is then presented in
// params._meta["aip.io/token"] of the call (DESIGN.md decision 11).
const TokenMethod = "aip.io/token"

// TokenMetaKey is the params._meta member that carries a token on stdio.
const TokenMetaKey = "aip.io/token"

func (r *relay) clientRequest(st *policyState, msg *jsonrpc.Message) error {
	if msg.Method == TokenMethod {
		return r.issueToken(st, msg)
	}
	dec := decideMethod(st, msg.Method)
	if dec.Action == policy.Block {
		r.auditDecision(st, dec, msg, nil, "")
		return r.toClient.write(jsonrpc.AIPError(msg.ID, dec.Code, map[string]any{"method": msg.Method, "reason": dec.Reason}))
	}
	key := idKey(msg.ID)
	r.mu.Lock()
	_, dup := r.pendingClient[key]
	r.mu.Unlock()
	if dup {
		// Two requests in flight with one id would let a response meant for
		// one be taken for the other (e.g. an unfiltered tools/list).
		r.auditHygiene(aip.CodeInvalidRequest, "duplicate id of a request in flight", msg.ID, msg.Method)
		return r.toClient.write(jsonrpc.ErrorResponse(msg.ID, aip.CodeInvalidRequest, aip.Message(aip.CodeInvalidRequest), map[string]any{"reason": "duplicate request id"}))
	}
	if dec.Method == "tools/call" {
		return r.toolCall(st, msg, dec)
	}
	line, _, err := stripToken(msg)
	if err != nil {
		r.auditHygiene(aip.CodeInvalidParams, err.Error(), msg.ID, msg.Method)
		return r.toClient.write(jsonrpc.ErrorResponse(msg.ID, aip.CodeInvalidParams, aip.Message(aip.CodeInvalidParams), map[string]any{"reason": "invalid params"}))
	}
	r.auditDecision(st, dec, msg, nil, "")
	return r.forward(msg, dec.Method, line)
}

// issueToken answers TokenMethod with a fresh token of the session.
func (r *relay) issueToken(st *policyState, msg *jsonrpc.Message) error {
	if r.cfg.Identity == nil {
		return r.toClient.write(jsonrpc.ErrorResponse(msg.ID, aip.CodeMethodNotFound, aip.Message(aip.CodeMethodNotFound),
			map[string]any{"reason": "identity is not enabled in the policy"}))
	}
	if st.failure != "" {
		return r.toClient.write(jsonrpc.AIPError(msg.ID, aip.CodePolicySignatureInvalid, map[string]any{"policy": st.path, "reason": st.failure}))
	}
	token, claims, err := r.cfg.Identity.Issue(r.ctx)
	if err != nil {
		r.cfg.Log.Error("token issuance failed", "error", err)
		return r.toClient.write(jsonrpc.ErrorResponse(msg.ID, aip.CodeInternalError, aip.Message(aip.CodeInternalError), map[string]any{"reason": "token issuance failed"}))
	}
	result, err := json.Marshal(map[string]any{
		"token":      token,
		"token_id":   claims.TokenID(),
		"session_id": claims.SessionID,
		"expires_at": identity.FormatTime(claims.ExpiresAt),
	})
	if err != nil {
		return err
	}
	return r.toClient.writeLine(buildMessage(&jsonrpc.Message{Kind: jsonrpc.KindResponse, ID: msg.ID, Result: result}))
}

// forward records the request as pending and sends line to the server.
func (r *relay) forward(msg *jsonrpc.Message, method string, line []byte) error {
	key := idKey(msg.ID)
	r.mu.Lock()
	r.pendingClient[key] = method
	r.mu.Unlock()
	return r.toServer.writeLine(line)
}

// toolCall runs the tool-level pipeline of spec §4.3 for one tools/call:
// identity (step 0), then the policy decision, then request DLP, then
// approval.
func (r *relay) toolCall(st *policyState, msg *jsonrpc.Message, methodDec policy.Decision) error {
	call, err := jsonrpc.ParseToolCall(msg.Params)
	if err != nil {
		r.auditHygiene(aip.CodeInvalidParams, err.Error(), msg.ID, msg.Method)
		return r.toClient.write(jsonrpc.ErrorResponse(msg.ID, aip.CodeInvalidParams, aip.Message(aip.CodeInvalidParams), map[string]any{"reason": "invalid tools/call params"}))
	}
	// The token never goes further than this proxy: strip it first, so it
	// is neither forwarded nor logged.
	line, token, err := stripToken(msg)
	if err != nil {
		r.auditHygiene(aip.CodeInvalidParams, err.Error(), msg.ID, msg.Method)
		return r.toClient.write(jsonrpc.ErrorResponse(msg.ID, aip.CodeInvalidParams, aip.Message(aip.CodeInvalidParams), map[string]any{"reason": "invalid tools/call params"}))
	}
	redacted := r.redactForAudit(st, call.Arguments)
	auditArgs := redacted.args

	if st.failure != "" {
		r.audit(audit.Record{Direction: "upstream", Decision: aip.AuditBlock, Violation: true, Event: "POLICY_INVALID",
			Method: msg.Method, Tool: call.Name, Args: auditArgs, ID: msg.ID, Code: aip.CodePolicySignatureInvalid, Reason: st.failure})
		return r.toClient.write(jsonrpc.AIPError(msg.ID, aip.CodePolicySignatureInvalid, map[string]any{"policy": st.path, "reason": st.failure}))
	}

	// Step 0: identity. Always enforced, in monitor mode too.
	tokenID, blocked, err := r.checkToken(st, msg, call.Name, token, auditArgs)
	if blocked || err != nil {
		return err
	}

	dec := st.engine.DecideTool(policy.ToolCall{
		Name:       call.Name,
		Arguments:  call.Arguments,
		Now:        r.cfg.Now(),
		SchemaHash: r.schemaHash(st, call.Name),
	})
	dec.Method = methodDec.Method
	if dec.Action != policy.Block {
		dec = r.checkAdvertised(call.Name, dec)
	}
	if dec.Action == policy.Block {
		r.auditDecision(st, dec, msg, auditArgs, call.Name, withTokenID(tokenID))
		return r.toClient.write(jsonrpc.AIPError(msg.ID, dec.Code, map[string]any{"tool": call.Name, "reason": dec.Reason}))
	}

	if st.dlp != nil && st.dlp.ScansRequests() && len(call.Arguments) > 0 {
		revalidate := func(args json.RawMessage) error {
			d := st.engine.ValidateArguments(call.Name, args)
			if d.ViolationType != "" {
				return fmt.Errorf("%s: %s", d.ViolationType, d.Reason)
			}
			return nil
		}
		var out dlp.RequestOutcome
		if redacted.scanned {
			// Same arguments, same scanner, same request-scope patterns as
			// the audit redaction above: reuse it.
			out = st.dlp.ScanRequestRedacted(call.Arguments, redacted.res, redacted.err, revalidate)
		} else {
			out = st.dlp.ScanRequest(call.Arguments, revalidate)
		}
		if len(out.Findings) > 0 {
			r.audit(audit.Record{Direction: "upstream", Decision: dlpAuditDecision(out.Action), Violation: true,
				Event: out.Event, Method: dec.Method, Tool: dec.Tool, ID: msg.ID, DLPRule: out.Rule, TokenID: tokenID,
				DLPMatchCount: countFindings(out.Findings), FailureReason: out.Reason, Forwarded: boolPtr(out.Action == dlp.Forward)})
		}
		switch out.Action {
		case dlp.BlockRequest:
			return r.toClient.write(jsonrpc.AIPError(msg.ID, aip.CodeForbidden, map[string]any{"tool": call.Name, "reason": "Sensitive data in arguments"}))
		case dlp.RejectRequest:
			return r.toClient.write(jsonrpc.AIPError(msg.ID, aip.CodeDLPRedactionFailed, map[string]any{
				"tool": call.Name, "reason": "Redaction failed", "dlp_rule": out.Rule, "validation_error": out.ValidationError}))
		}
		if out.Arguments != nil && !sameBytes(out.Arguments, call.Arguments) {
			m := *msg
			if token != "" {
				// Work on the token-free params.
				if stripped, err := jsonrpc.Decode(line); err == nil {
					m = *stripped
				}
			}
			line, err = replaceArguments(&m, out.Arguments)
			if err != nil {
				return r.toClient.write(jsonrpc.AIPError(msg.ID, aip.CodeForbidden, map[string]any{"tool": call.Name, "reason": "Request could not be rewritten"}))
			}
			auditArgs = out.Arguments
		}
	}

	if dec.Action == policy.Ask {
		r.ask(st, msg, dec, call, line, auditArgs, tokenID)
		return nil
	}
	r.auditDecision(st, dec, msg, auditArgs, call.Name, withTokenID(tokenID))
	return r.forward(msg, dec.Method, line)
}

// checkToken is step 0 of spec §4.3. With require_token, a missing or empty
// token is -32008 and an invalid one -32009/-32011/-32012. Without it, a
// presented token is still validated (and consumed) and a failure audited,
// but the call is not blocked: that is the rollout mode of
// reference/aip.md §6 #10. It returns the token id for the audit log.
func (r *relay) checkToken(st *policyState, msg *jsonrpc.Message, tool, token string, auditArgs json.RawMessage) (tokenID string, blocked bool, err error) {
	m := r.cfg.Identity
	if m == nil {
		return "", false, nil
	}
	required := m.IdentityConfig().RequireToken
	if token == "" && !required {
		return "", false, nil
	}
	var verr *identity.ValidationError
	if token == "" {
		verr = identity.AsValidationError(identityRequired())
	} else {
		claims, err := m.Validate(r.ctx, token)
		if err == nil {
			return claims.TokenID(), false, nil
		}
		verr = identity.AsValidationError(err)
		if verr == nil {
			// The stores failed: fail closed.
			r.cfg.Log.Error("token validation failed", "error", err)
			verr = &identity.ValidationError{Code: aip.CodeTokenInvalid, TokenError: "validation_unavailable", Reason: "Token validation unavailable"}
		}
		if verr.Claims != nil {
			tokenID = verr.Claims.TokenID()
		}
	}
	if !required {
		r.audit(audit.Record{Direction: "upstream", Decision: aip.AuditAllow, Violation: true, Event: "TOKEN_INVALID_NOT_REQUIRED",
			Method: msg.Method, Tool: tool, ID: msg.ID, TokenID: tokenID, Code: verr.Code, Reason: verr.TokenError})
		return tokenID, false, nil
	}
	r.audit(audit.Record{Direction: "upstream", Decision: aip.AuditBlock, Violation: true, Event: "TOKEN_REJECTED",
		Method: msg.Method, Tool: tool, Args: auditArgs, ID: msg.ID, TokenID: tokenID, Code: verr.Code, Reason: verr.TokenError})
	return tokenID, true, r.toClient.write(jsonrpc.AIPError(msg.ID, verr.Code, verr.Data(tool, false)))
}

// identityRequired is the error for a call without a token.
func identityRequired() error {
	return &identity.ValidationError{Code: aip.CodeTokenRequired, Reason: "Identity token required for this policy"}
}

// ask obtains approval off the relay goroutine so a pending prompt never
// stalls other traffic, then forwards or answers.
func (r *relay) ask(st *policyState, msg *jsonrpc.Message, dec policy.Decision, call jsonrpc.ToolCall, line []byte, displayArgs json.RawMessage, tokenID string) {
	digest, err := approve.Digest(call.Name, call.Arguments)
	if err != nil {
		r.auditDecision(st, policy.Decision{Action: policy.Block, Code: aip.CodeForbidden, Reason: "approval digest failed", ViolationType: aip.ViolationRuleBlock, Method: dec.Method, Tool: dec.Tool}, msg, displayArgs, call.Name, withTokenID(tokenID))
		_ = r.toClient.write(jsonrpc.AIPError(msg.ID, aip.CodeForbidden, map[string]any{"tool": call.Name, "reason": "Approval failed"}))
		return
	}
	// Reserve the id now so a duplicate cannot slip in while we wait.
	key := idKey(msg.ID)
	r.mu.Lock()
	r.pendingClient[key] = dec.Method
	r.mu.Unlock()

	req := approve.Request{
		Tool:       call.Name,
		Arguments:  displayArgs,
		PolicyHash: st.hash,
		SessionID:  r.sessionID(),
		Expires:    r.cfg.Now().Add(r.cfg.ApprovalTimeout),
		Digest:     digest,
	}
	r.approvals.Add(1)
	go func() {
		defer r.approvals.Done()
		ctx, cancel := context.WithTimeout(r.ctx, r.cfg.ApprovalTimeout)
		answer, err := r.cfg.Approver.Approve(ctx, req)
		if err != nil && answer == approve.Approved {
			answer = approve.Denied // an approver that errs has not approved
		}
		if answer == approve.Denied && ctx.Err() != nil {
			answer = approve.TimedOut
		}
		cancel()
		if err != nil {
			r.cfg.Log.Warn("approval failed", "tool", call.Name, "error", err)
		}
		switch answer {
		case approve.Approved:
			r.auditDecision(st, dec, msg, displayArgs, call.Name, withEvent("APPROVED"), withTokenID(tokenID))
			if err := r.toServer.writeLine(line); err != nil {
				r.cfg.Log.Warn("forwarding approved call failed", "error", err)
			}
			return
		case approve.TimedOut:
			r.releasePending(key)
			d := dec
			d.Action, d.Code, d.Reason, d.ViolationType = policy.Block, aip.CodeUserTimeout, "Approval timed out", aip.ViolationRuleBlock
			r.auditDecision(st, d, msg, displayArgs, call.Name, withEvent("APPROVAL_TIMEOUT"), withTokenID(tokenID))
			_ = r.toClient.write(jsonrpc.AIPError(msg.ID, aip.CodeUserTimeout, map[string]any{"tool": call.Name, "reason": d.Reason}))
		default:
			r.releasePending(key)
			d := dec
			d.Action, d.Code, d.Reason, d.ViolationType = policy.Block, aip.CodeUserDenied, "Denied by approver", aip.ViolationRuleBlock
			r.auditDecision(st, d, msg, displayArgs, call.Name, withEvent("APPROVAL_DENIED"), withTokenID(tokenID))
			_ = r.toClient.write(jsonrpc.AIPError(msg.ID, aip.CodeUserDenied, map[string]any{"tool": call.Name, "reason": d.Reason}))
		}
	}()
}

func (r *relay) releasePending(key string) {
	r.mu.Lock()
	delete(r.pendingClient, key)
	r.mu.Unlock()
}

// downstream handles server → client traffic until the server's output ends.
func (r *relay) downstream(in io.Reader) error {
	rd := jsonrpc.NewReader(in, r.cfg.MaxLineSize)
	for {
		line, err := rd.ReadLine()
		switch {
		case errors.Is(err, io.EOF):
			return nil
		case errors.Is(err, jsonrpc.ErrLineTooLong):
			r.cfg.Log.Warn("server message exceeds the line size limit; dropped", "limit", r.cfg.MaxLineSize)
			r.audit(audit.Record{Direction: "downstream", Decision: aip.AuditBlock, Violation: true,
				Event: "SERVER_MESSAGE_DROPPED", Reason: "message exceeds the line size limit"})
			continue
		case err != nil:
			return fmt.Errorf("proxy: reading server: %w", err)
		}
		if err := r.fromServer(line); err != nil {
			return err
		}
	}
}

func (r *relay) fromServer(line []byte) error {
	st := r.p.state.Load()
	msg, err := jsonrpc.Decode(line)
	if err != nil {
		// A server writing garbage must not confuse the client: drop it.
		r.cfg.Log.Warn("server wrote an invalid message; dropped", "error", err)
		r.audit(audit.Record{Direction: "downstream", Decision: aip.AuditBlock, Violation: true,
			Event: "SERVER_MESSAGE_DROPPED", Reason: err.Error()})
		return nil
	}
	switch msg.Kind {
	case jsonrpc.KindResponse:
		return r.serverResponse(st, msg)
	case jsonrpc.KindRequest:
		key := idKey(msg.ID)
		r.mu.Lock()
		r.pendingServer[key] = struct{}{}
		r.mu.Unlock()
		return r.toClient.writeLine(r.redactServerMessage(st, msg, msg.Raw, "params", msg.Params))
	default:
		if policy.NormalizeName(msg.Method) == "notifications/tools/list_changed" {
			r.mu.Lock()
			r.tools.reset()
			r.mu.Unlock()
		}
		return r.toClient.writeLine(r.redactServerMessage(st, msg, msg.Raw, "params", msg.Params))
	}
}

func (r *relay) serverResponse(st *policyState, msg *jsonrpc.Message) error {
	key := idKey(msg.ID)
	r.mu.Lock()
	method, ok := r.pendingClient[key]
	delete(r.pendingClient, key)
	r.mu.Unlock()
	if !ok {
		r.audit(audit.Record{Direction: "downstream", Decision: aip.AuditBlock, Violation: true,
			Event: "UNSOLICITED_RESPONSE", ID: msg.ID, Reason: "response to no outstanding client request"})
		return nil
	}
	line := msg.Raw
	if method == "tools/list" && msg.Result != nil {
		filtered, changed, err := r.filterToolsList(st, msg.Result)
		if err != nil {
			r.cfg.Log.Warn("tools/list result unreadable; withheld", "error", err)
			return r.toClient.write(jsonrpc.ErrorResponse(msg.ID, aip.CodeInternalError, aip.Message(aip.CodeInternalError), map[string]any{"reason": "invalid tools/list result from server"}))
		}
		if changed {
			msg.Result = filtered
			line = buildResponse(msg)
		}
	}
	if msg.Result != nil {
		line = r.redactServerMessage(st, msg, line, "result", msg.Result)
	} else {
		line = r.redactServerMessage(st, msg, line, "error", msg.Error)
	}
	return r.toClient.writeLine(line)
}

// redactServerMessage applies response-side DLP to one member of a server
// message and returns the line to send (nil: drop it).
func (r *relay) redactServerMessage(st *policyState, msg *jsonrpc.Message, line []byte, member string, raw json.RawMessage) []byte {
	if st.dlp == nil || !st.dlp.ScansResponses() || len(raw) == 0 {
		return line
	}
	res, err := st.dlp.RedactJSON(dlp.Response, raw)
	if err != nil {
		// Content that cannot be scanned does not leave the proxy: a
		// response becomes an error for its id, anything else is dropped.
		r.cfg.Log.Warn("server message could not be scanned; withheld", "error", err)
		r.audit(audit.Record{Direction: "downstream", Decision: aip.AuditBlock, Violation: true,
			Event: "DLP_SCAN_FAILED", ID: msg.ID, Reason: err.Error()})
		if msg.Kind == jsonrpc.KindResponse {
			return jsonrpc.ErrorResponse(msg.ID, aip.CodeInternalError, aip.Message(aip.CodeInternalError),
				map[string]any{"reason": "response could not be scanned"})
		}
		return nil
	}
	if res.Truncated {
		r.cfg.Log.Warn("content exceeds dlp.max_scan_size; only the beginning was scanned", "limit", "max_scan_size")
	}
	for _, f := range res.Findings {
		r.audit(audit.Record{Direction: "downstream", Decision: aip.AuditAllow, Violation: true, Event: "DLP_TRIGGERED",
			ID: msg.ID, DLPRule: f.Rule, DLPAction: "REDACTED", DLPMatchCount: f.Count})
	}
	if !res.Changed {
		return line
	}
	switch member {
	case "result":
		msg.Result = res.Data
	case "error":
		msg.Error = res.Data
	case "params":
		msg.Params = res.Data
	}
	return buildMessage(msg)
}
