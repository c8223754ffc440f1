package enforce

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"strings"

	"github.com/agentid/agentid/aip"
	"github.com/agentid/agentid/audit"
	"github.com/agentid/agentid/dlp"
	"github.com/agentid/agentid/jsonrpc"
	"github.com/agentid/agentid/policy"
)

// FromServer decides one message from the server: a response to a client
// request, a server→client request or a notification. Like FromClient's,
// its verdict may refer to line, and nothing else the core keeps does.
func (c *Core) FromServer(ctx context.Context, s *Session, line []byte) Verdict {
	st := c.state.Load()
	var v Verdict
	msg, err := jsonrpc.Decode(line)
	if err != nil {
		// A server writing garbage must not confuse the client: drop it.
		c.cfg.Log.Warn("server wrote an invalid message; dropped", "error", err)
		v.record(droppedRecord(EventServerMessageDropped, nil, err.Error()))
		c.finish(st, &v)
		return v
	}
	switch msg.Kind {
	case jsonrpc.KindResponse:
		c.serverResponse(st, s, msg, &v)
	case jsonrpc.KindRequest:
		if c.serverMethodDenied(st, msg, &v) {
			break
		}
		key := idKey(msg.ID)
		s.serverAsked(key)
		v.ToClient = c.redactServerMessage(st, msg, msg.Raw, "params", msg.Params, &v)
		v.undo = func() { s.clientAnswered(key) }
		v.undeliver = v.undo
	default:
		if c.serverMethodDenied(st, msg, &v) {
			break
		}
		if policy.NormalizeName(msg.Method) == "notifications/tools/list_changed" {
			s.mu.Lock()
			s.tools.reset()
			s.mu.Unlock()
		}
		v.ToClient = c.redactServerMessage(st, msg, msg.Raw, "params", msg.Params, &v)
	}
	c.finish(st, &v)
	return v
}

// serverMethodDenied applies denied_methods to a server→client request or
// notification: a denied request is answered to the server with -32006, a
// denied notification dropped; both are audited.
func (c *Core) serverMethodDenied(st *snapshot, msg *jsonrpc.Message, v *Verdict) bool {
	dec := st.Engine.DecideServerMethod(msg.Method)
	if dec.ViolationType == "" {
		return false
	}
	rec := decisionRecord(dec, msg, nil, "")
	rec.Direction = aip.Downstream
	v.record(rec)
	if dec.Action != policy.Block {
		return false // monitor mode: recorded, delivered
	}
	if msg.Kind == jsonrpc.KindRequest {
		v.ToServer = errorLine(msg.ID, dec.Code, aip.Message(dec.Code), map[string]any{"method": msg.Method, "reason": dec.Reason})
	}
	return true
}

// ServerOversized is the verdict for a server message over the transport's
// size limit, of which head is the beginning: it is dropped. When head
// shows the id of a response the client is waiting for, the client is
// answered at once with an error (it would otherwise wait for its own
// timeout); when it shows a request of the server's, the server is.
func (c *Core) ServerOversized(s *Session, head []byte) Verdict {
	st := c.state.Load()
	var v Verdict
	id, ok, isRequest := jsonrpc.RequestFromHead(head)
	v.record(droppedRecord(EventServerMessageDropped, id, "message exceeds the size limit"))
	switch {
	case ok && isRequest:
		// A request of the server's own (sampling, elicitation): the
		// server is told, rather than left waiting for an answer.
		v.ToServer = errorLine(id, aip.CodeInvalidRequest, aip.Message(aip.CodeInvalidRequest), map[string]any{"reason": "request exceeds the size limit"})
	case ok:
		if _, waiting := s.answered(idKey(id)); waiting {
			v.reply(id, aip.CodeInternalError, map[string]any{"reason": "response exceeds the size limit"})
			v.answers = id
		}
	}
	c.finish(st, &v)
	return v
}

// ServerFailed is the verdict for a client request whose response will not
// come: the transport could not deliver it or read the answer (an HTTP
// upstream that is unreachable or answered with an HTTP error). The request
// is no longer in flight, and the client is answered at once with an
// internal error saying why, when it is still waiting.
func (c *Core) ServerFailed(s *Session, id json.RawMessage, reason string) Verdict {
	st := c.state.Load()
	var v Verdict
	if _, waiting := s.answered(idKey(id)); waiting {
		v.record(droppedRecord(EventServerMessageDropped, id, reason))
		v.reply(id, aip.CodeInternalError, map[string]any{"reason": reason})
		v.answers = id
	}
	c.finish(st, &v)
	return v
}

func (c *Core) serverResponse(st *snapshot, s *Session, msg *jsonrpc.Message, v *Verdict) {
	key := idKey(msg.ID)
	method, call, tracked, ok := s.answeredCall(key)
	if !ok {
		v.record(droppedRecord(EventUnsolicitedResponse, msg.ID, "response to no outstanding client request"))
		return
	}
	// A response withheld for want of an audit record still answers the
	// client's request, with an error.
	v.answerOnFailure, v.failureID = true, msg.ID
	v.answers = msg.ID
	v.undeliver = func() { s.reserve(key, method) }
	line := msg.Raw
	if method == "tools/list" && msg.Result != nil {
		filtered, changed, err := c.filterToolsList(st, s, msg.Result)
		if err != nil {
			c.cfg.Log.Warn("tools/list result unreadable; withheld", "error", err)
			v.reply(msg.ID, aip.CodeInternalError, map[string]any{"reason": "invalid tools/list result from server"})
			return
		}
		if changed {
			msg.Result = filtered
			line = buildMessage(msg)
		}
	}
	if msg.Result != nil {
		// A result that asks for input (MCP 2026-07-28): what it asks is
		// subject to denied_methods, and its retry continues the call.
		asks := asksForInput(method, msg.Result)
		if asks && c.inputRequestDenied(st, msg, v) {
			return
		}
		v.ToClient = c.redactServerMessage(st, msg, line, "result", msg.Result, v)
		switch {
		case !asks || !tracked || v.withheld:
		case s.exactNames:
			c.sealRound(msg, call, v)
		default:
			c.awaitRetry(s, call, msg.Result)
		}
	} else {
		v.ToClient = c.redactServerMessage(st, msg, line, "error", msg.Error, v)
	}
}

// redactServerMessage applies response-side DLP to one member of a server
// message and returns the message to send (nil: drop it).
func (c *Core) redactServerMessage(st *snapshot, msg *jsonrpc.Message, line []byte, member string, raw json.RawMessage, v *Verdict) []byte {
	if st.DLP == nil || !st.DLP.ScansResponses() || len(raw) == 0 {
		return line
	}
	res, err := st.DLP.RedactJSONValidated(dlp.Response, raw) // a member of a message jsonrpc.Decode admitted
	if err != nil {
		// Content that cannot be scanned does not leave the core: a
		// response becomes an error for its id, anything else is dropped.
		c.cfg.Log.Warn("server message could not be scanned; withheld", "error", err)
		v.withheld = true
		v.record(droppedRecord(EventDLPScanFailed, msg.ID, err.Error()))
		if msg.Kind == jsonrpc.KindResponse {
			return errorLine(msg.ID, aip.CodeInternalError, aip.Message(aip.CodeInternalError),
				map[string]any{"reason": "response could not be scanned"})
		}
		return nil
	}
	if res.Truncated {
		// §3.6.3 lets a scanner look at the first max_scan_size bytes only;
		// what it did not look at is not forwarded (a budget that runs out
		// fails closed). A response becomes an error that says why.
		c.cfg.Log.Warn("server message exceeds dlp.max_scan_size; withheld", "bytes", len(raw))
		v.withheld = true
		v.record(droppedRecord(EventDLPScanFailed, msg.ID, "exceeds dlp.max_scan_size"))
		if msg.Kind == jsonrpc.KindResponse {
			return errorLine(msg.ID, aip.CodeInternalError, aip.Message(aip.CodeInternalError),
				map[string]any{"reason": "response exceeds dlp.max_scan_size and was not scanned in full"})
		}
		return nil
	}
	for _, f := range res.Findings {
		v.record(audit.Record{Direction: aip.Downstream, Decision: aip.AuditAllow, Violation: true, Event: EventDLPTriggered,
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

// filterToolsList records the advertised tools and removes those the client
// must not see: tools the policy always blocks (unless ShowBlockedTools) and
// tools whose normalized names collide.
func (c *Core) filterToolsList(st *snapshot, s *Session, result json.RawMessage) (json.RawMessage, bool, error) {
	members, err := rawObject(result)
	if err != nil {
		return nil, false, err
	}
	// A client reads the member its JSON library matches: Go's
	// encoding/json takes "Tools" or "toolſ" for "tools". The strict decoder
	// admits at most one spelling, and whichever it is gets filtered.
	toolsKey := ""
	for k := range members {
		if strings.EqualFold(k, "tools") {
			toolsKey = k
		}
	}
	if toolsKey == "" {
		return result, false, nil
	}
	rawTools := members[toolsKey]
	var tools []json.RawMessage
	if err := json.Unmarshal(rawTools, &tools); err != nil {
		return nil, false, fmt.Errorf("enforce: tools/list tools: %w", err)
	}
	names := make([]string, len(tools))
	listed := make(map[string]int, len(tools))
	s.mu.Lock()
	for i, t := range tools {
		var def struct {
			Name *string `json:"name"`
		}
		if err := json.Unmarshal(t, &def); err != nil || def.Name == nil {
			s.mu.Unlock()
			return nil, false, fmt.Errorf("enforce: tools/list entry %d has no name", i)
		}
		names[i] = *def.Name
		listed[*def.Name]++
		s.tools.add(*def.Name, t)
	}
	for name, n := range listed {
		if n > 1 {
			// Two definitions under one name: the client may show either,
			// and a pin could check only one. Both are hidden and calls
			// to the name blocked, as for names that collide.
			s.tools.twice(name)
		}
	}
	s.mu.Unlock()

	kept := tools[:0:0]
	for i, t := range tools {
		name := names[i]
		s.mu.Lock()
		ambiguous := s.tools.ambiguous(name)
		s.mu.Unlock()
		if ambiguous {
			c.cfg.Log.Warn("server advertises one tool name twice, or names whose normalized forms collide; hidden and blocked", "tool", name)
			continue
		}
		if !c.cfg.ShowBlockedTools && !st.Engine.ToolVisible(name, s.schemaHash(st.Engine, name)) {
			continue
		}
		kept = append(kept, t)
	}
	if len(kept) == len(tools) {
		return result, false, nil
	}
	var b bytes.Buffer
	b.WriteByte('[')
	for i, t := range kept {
		if i > 0 {
			b.WriteByte(',')
		}
		b.Write(t)
	}
	b.WriteByte(']')
	members[toolsKey] = b.Bytes()
	return encodeRawObject(members), true, nil
}
