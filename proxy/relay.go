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
	"time"

	"github.com/agentid/agentid/approve"
	"github.com/agentid/agentid/audit"
	"github.com/agentid/agentid/dlp"
	"github.com/agentid/agentid/jsonrpc"
	"github.com/agentid/agentid/policy"
)

// Config wires the parts the proxy enforces with.
type Config struct {
	// Engine decides every method and tool call. Required.
	Engine *policy.Engine
	// DLP scans requests and responses; nil disables scanning.
	DLP *dlp.Scanner
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
	// PolicyHash and SessionID are copied into audit records and approval
	// requests when set.
	PolicyHash string
	SessionID  string
}

// Proxy enforces a policy on one client/server conversation.
type Proxy struct {
	cfg Config
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
	return &Proxy{cfg: cfg}
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
			r.auditHygiene(jsonrpc.CodeInvalidRequest, "message exceeds the line size limit", nil, "")
			if werr := r.toClient.write(jsonrpc.ErrorResponse(nil, jsonrpc.CodeInvalidRequest, jsonrpc.CodeMessage(jsonrpc.CodeInvalidRequest), map[string]any{"reason": "message too large"})); werr != nil {
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
			rpcErr = &jsonrpc.Error{Code: jsonrpc.CodeParseError, Message: jsonrpc.CodeMessage(jsonrpc.CodeParseError)}
		}
		r.auditHygiene(rpcErr.Code, rpcErr.Message, rpcErr.ID, "")
		return r.toClient.write(jsonrpc.ErrorResponse(rpcErr.ID, rpcErr.Code, rpcErr.Message, rpcErr.Data))
	}

	switch msg.Kind {
	case jsonrpc.KindResponse:
		return r.clientResponse(msg)
	case jsonrpc.KindNotification:
		return r.clientNotification(msg)
	default:
		return r.clientRequest(msg)
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
		r.audit(audit.Record{Direction: "upstream", Decision: policy.AuditBlock, Violation: true,
			Event: "UNSOLICITED_RESPONSE", ID: msg.ID, Reason: "response to no outstanding server request"})
		return nil
	}
	r.audit(audit.Record{Direction: "upstream", Decision: policy.AuditAllow, Event: "CLIENT_RESPONSE", ID: msg.ID})
	return r.toServer.writeLine(msg.Raw)
}

// clientNotification forwards an allowed notification. Denied notifications
// are dropped and audited: JSON-RPC forbids answering a notification.
func (r *relay) clientNotification(msg *jsonrpc.Message) error {
	dec := r.decideMethod(msg.Method)
	r.auditDecision(dec, msg, nil, "")
	if dec.Action != policy.Allow {
		return nil
	}
	return r.toServer.writeLine(msg.Raw)
}

// decideMethod applies method authorization on the normalized name. A raw
// name that differs from its normalized form by more than letter case is
// refused: the server would dispatch on bytes the policy never saw (e.g.
// "tools/call\u200b"). Case alone is tolerated, since MCP method names are
// case-sensitive on the server and the conformance suite requires
// "TOOLS/CALL" to be decided as tools/call (and "logging/setLevel" exists).
func (r *relay) decideMethod(method string) policy.Decision {
	if norm := policy.NormalizeName(method); norm != strings.ToLower(method) {
		return policy.Decision{
			Action:        policy.Block,
			Code:          jsonrpc.CodeMethodNotAllowed,
			Reason:        "Method name is not in normalized form",
			ViolationType: policy.ViolationMethodNotAllowed,
			Method:        norm,
		}
	}
	return r.cfg.Engine.DecideMethod(method)
}

func (r *relay) clientRequest(msg *jsonrpc.Message) error {
	dec := r.decideMethod(msg.Method)
	if dec.Action == policy.Block {
		r.auditDecision(dec, msg, nil, "")
		return r.toClient.write(jsonrpc.AIPError(msg.ID, dec.Code, map[string]any{"method": msg.Method, "reason": dec.Reason}))
	}
	key := idKey(msg.ID)
	r.mu.Lock()
	_, dup := r.pendingClient[key]
	r.mu.Unlock()
	if dup {
		// Two requests in flight with one id would let a response meant for
		// one be taken for the other (e.g. an unfiltered tools/list).
		r.auditHygiene(jsonrpc.CodeInvalidRequest, "duplicate id of a request in flight", msg.ID, msg.Method)
		return r.toClient.write(jsonrpc.ErrorResponse(msg.ID, jsonrpc.CodeInvalidRequest, jsonrpc.CodeMessage(jsonrpc.CodeInvalidRequest), map[string]any{"reason": "duplicate request id"}))
	}
	if dec.Method == "tools/call" {
		return r.toolCall(msg, dec)
	}
	r.auditDecision(dec, msg, nil, "")
	return r.forward(msg, dec.Method, msg.Raw)
}

// forward records the request as pending and sends line to the server.
func (r *relay) forward(msg *jsonrpc.Message, method string, line []byte) error {
	key := idKey(msg.ID)
	r.mu.Lock()
	r.pendingClient[key] = method
	r.mu.Unlock()
	return r.toServer.writeLine(line)
}

// toolCall runs the tool-level pipeline of spec §4.3 for one tools/call.
func (r *relay) toolCall(msg *jsonrpc.Message, methodDec policy.Decision) error {
	call, err := jsonrpc.ParseToolCall(msg.Params)
	if err != nil {
		r.auditHygiene(jsonrpc.CodeInvalidParams, err.Error(), msg.ID, msg.Method)
		return r.toClient.write(jsonrpc.ErrorResponse(msg.ID, jsonrpc.CodeInvalidParams, jsonrpc.CodeMessage(jsonrpc.CodeInvalidParams), map[string]any{"reason": "invalid tools/call params"}))
	}

	dec := r.cfg.Engine.DecideTool(policy.ToolCall{
		Name:       call.Name,
		Arguments:  call.Arguments,
		Now:        r.cfg.Now(),
		SchemaHash: r.schemaHash(call.Name),
	})
	dec.Method = methodDec.Method
	if dec.Action != policy.Block {
		dec = r.checkAdvertised(call.Name, dec)
	}

	auditArgs := r.redactForAudit(call.Arguments)
	if dec.Action == policy.Block {
		r.auditDecision(dec, msg, auditArgs, call.Name)
		return r.toClient.write(jsonrpc.AIPError(msg.ID, dec.Code, map[string]any{"tool": call.Name, "reason": dec.Reason}))
	}

	line := msg.Raw
	if r.cfg.DLP != nil && r.cfg.DLP.ScansRequests() && len(call.Arguments) > 0 {
		out := r.cfg.DLP.ScanRequest(call.Arguments, func(args json.RawMessage) error {
			d := r.cfg.Engine.ValidateArguments(call.Name, args)
			if d.ViolationType != "" {
				return fmt.Errorf("%s: %s", d.ViolationType, d.Reason)
			}
			return nil
		})
		if len(out.Findings) > 0 {
			r.audit(audit.Record{Direction: "upstream", Decision: dlpAuditDecision(out.Action), Violation: true,
				Event: out.Event, Method: dec.Method, Tool: dec.Tool, ID: msg.ID, DLPRule: out.Rule,
				DLPMatchCount: countFindings(out.Findings), FailureReason: out.Reason, Forwarded: boolPtr(out.Action == dlp.Forward)})
		}
		switch out.Action {
		case dlp.BlockRequest:
			return r.toClient.write(jsonrpc.AIPError(msg.ID, jsonrpc.CodeForbidden, map[string]any{"tool": call.Name, "reason": "Sensitive data in arguments"}))
		case dlp.RejectRequest:
			return r.toClient.write(jsonrpc.AIPError(msg.ID, jsonrpc.CodeDLPRedactionFailed, map[string]any{
				"tool": call.Name, "reason": "Redaction failed", "dlp_rule": out.Rule, "validation_error": out.Reason}))
		}
		if out.Arguments != nil && !sameBytes(out.Arguments, call.Arguments) {
			line, err = replaceArguments(msg, out.Arguments)
			if err != nil {
				return r.toClient.write(jsonrpc.AIPError(msg.ID, jsonrpc.CodeForbidden, map[string]any{"tool": call.Name, "reason": "Request could not be rewritten"}))
			}
			auditArgs = out.Arguments
		}
	}

	if dec.Action == policy.Ask {
		r.ask(msg, dec, call, line, auditArgs)
		return nil
	}
	r.auditDecision(dec, msg, auditArgs, call.Name)
	return r.forward(msg, dec.Method, line)
}

// ask obtains approval off the relay goroutine so a pending prompt never
// stalls other traffic, then forwards or answers.
func (r *relay) ask(msg *jsonrpc.Message, dec policy.Decision, call jsonrpc.ToolCall, line []byte, displayArgs json.RawMessage) {
	digest, err := approve.Digest(call.Name, call.Arguments)
	if err != nil {
		r.auditDecision(policy.Decision{Action: policy.Block, Code: jsonrpc.CodeForbidden, Reason: "approval digest failed", ViolationType: policy.ViolationRuleBlock, Method: dec.Method, Tool: dec.Tool}, msg, displayArgs, call.Name)
		_ = r.toClient.write(jsonrpc.AIPError(msg.ID, jsonrpc.CodeForbidden, map[string]any{"tool": call.Name, "reason": "Approval failed"}))
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
		PolicyHash: r.cfg.PolicyHash,
		SessionID:  r.cfg.SessionID,
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
		if err == nil && answer == approve.Denied && ctx.Err() != nil {
			answer = approve.TimedOut
		}
		cancel()
		if err != nil {
			r.cfg.Log.Warn("approval failed", "tool", call.Name, "error", err)
		}
		switch answer {
		case approve.Approved:
			r.auditDecision(dec, msg, displayArgs, call.Name, "APPROVED")
			if err := r.toServer.writeLine(line); err != nil {
				r.cfg.Log.Warn("forwarding approved call failed", "error", err)
			}
			return
		case approve.TimedOut:
			r.releasePending(key)
			d := dec
			d.Action, d.Code, d.Reason, d.ViolationType = policy.Block, jsonrpc.CodeUserTimeout, "Approval timed out", policy.ViolationRuleBlock
			r.auditDecision(d, msg, displayArgs, call.Name, "APPROVAL_TIMEOUT")
			_ = r.toClient.write(jsonrpc.AIPError(msg.ID, jsonrpc.CodeUserTimeout, map[string]any{"tool": call.Name, "reason": d.Reason}))
		default:
			r.releasePending(key)
			d := dec
			d.Action, d.Code, d.Reason, d.ViolationType = policy.Block, jsonrpc.CodeUserDenied, "Denied by approver", policy.ViolationRuleBlock
			r.auditDecision(d, msg, displayArgs, call.Name, "APPROVAL_DENIED")
			_ = r.toClient.write(jsonrpc.AIPError(msg.ID, jsonrpc.CodeUserDenied, map[string]any{"tool": call.Name, "reason": d.Reason}))
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
			r.audit(audit.Record{Direction: "downstream", Decision: policy.AuditBlock, Violation: true,
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
	msg, err := jsonrpc.Decode(line)
	if err != nil {
		// A server writing garbage must not confuse the client: drop it.
		r.cfg.Log.Warn("server wrote an invalid message; dropped", "error", err)
		r.audit(audit.Record{Direction: "downstream", Decision: policy.AuditBlock, Violation: true,
			Event: "SERVER_MESSAGE_DROPPED", Reason: err.Error()})
		return nil
	}
	switch msg.Kind {
	case jsonrpc.KindResponse:
		return r.serverResponse(msg)
	case jsonrpc.KindRequest:
		key := idKey(msg.ID)
		r.mu.Lock()
		r.pendingServer[key] = struct{}{}
		r.mu.Unlock()
		return r.toClient.writeLine(r.redactServerMessage(msg, "params", msg.Params))
	default:
		if policy.NormalizeName(msg.Method) == "notifications/tools/list_changed" {
			r.mu.Lock()
			r.tools.reset()
			r.mu.Unlock()
		}
		return r.toClient.writeLine(r.redactServerMessage(msg, "params", msg.Params))
	}
}

func (r *relay) serverResponse(msg *jsonrpc.Message) error {
	key := idKey(msg.ID)
	r.mu.Lock()
	method, ok := r.pendingClient[key]
	delete(r.pendingClient, key)
	r.mu.Unlock()
	if !ok {
		r.audit(audit.Record{Direction: "downstream", Decision: policy.AuditBlock, Violation: true,
			Event: "UNSOLICITED_RESPONSE", ID: msg.ID, Reason: "response to no outstanding client request"})
		return nil
	}
	line := msg.Raw
	if method == "tools/list" && msg.Result != nil {
		filtered, changed, err := r.filterToolsList(msg.Result)
		if err != nil {
			r.cfg.Log.Warn("tools/list result unreadable; withheld", "error", err)
			return r.toClient.write(jsonrpc.ErrorResponse(msg.ID, jsonrpc.CodeInternalError, jsonrpc.CodeMessage(jsonrpc.CodeInternalError), map[string]any{"reason": "invalid tools/list result from server"}))
		}
		if changed {
			msg.Result = filtered
			line = buildResponse(msg)
		}
	}
	if msg.Result != nil {
		line = r.redactServerMessageFrom(msg, line, "result", msg.Result)
	} else {
		line = r.redactServerMessageFrom(msg, line, "error", msg.Error)
	}
	return r.toClient.writeLine(line)
}

// redactServerMessage applies response-side DLP to one member of a server
// message and returns the line to send.
func (r *relay) redactServerMessage(msg *jsonrpc.Message, member string, raw json.RawMessage) []byte {
	return r.redactServerMessageFrom(msg, msg.Raw, member, raw)
}

func (r *relay) redactServerMessageFrom(msg *jsonrpc.Message, line []byte, member string, raw json.RawMessage) []byte {
	if r.cfg.DLP == nil || !r.cfg.DLP.ScansResponses() || len(raw) == 0 {
		return line
	}
	res, err := r.cfg.DLP.RedactJSON(dlp.Response, raw)
	if err != nil {
		// Content that cannot be scanned does not leave the proxy: a
		// response becomes an error for its id, anything else is dropped.
		r.cfg.Log.Warn("server message could not be scanned; withheld", "error", err)
		r.audit(audit.Record{Direction: "downstream", Decision: policy.AuditBlock, Violation: true,
			Event: "DLP_SCAN_FAILED", ID: msg.ID, Reason: err.Error()})
		if msg.Kind == jsonrpc.KindResponse {
			return jsonrpc.ErrorResponse(msg.ID, jsonrpc.CodeInternalError, jsonrpc.CodeMessage(jsonrpc.CodeInternalError),
				map[string]any{"reason": "response could not be scanned"})
		}
		return nil
	}
	if res.Truncated {
		r.cfg.Log.Warn("content exceeds dlp.max_scan_size; only the beginning was scanned", "limit", "max_scan_size")
	}
	for _, f := range res.Findings {
		r.audit(audit.Record{Direction: "downstream", Decision: policy.AuditAllow, Violation: true, Event: "DLP_TRIGGERED",
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
