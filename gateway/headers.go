package gateway

import (
	"encoding/base64"
	"encoding/json"
	"net/http"
	"strings"

	"github.com/agentid/agentid/aip"
	"github.com/agentid/agentid/audit"
	"github.com/agentid/agentid/jsonrpc"
	"github.com/agentid/agentid/policy"
)

// MCP 2026-07-28 repeats a request's method and target in headers
// (Mcp-Method, Mcp-Name) so that intermediaries can route without reading
// the body, and requires servers to refuse a mismatch with HTTP 400 and
// -32020 (SEP-2243).
const (
	CodeHeaderMismatch  = -32020
	EventHeaderMismatch = "HEADER_MISMATCH"
	// Era2026 is the first protocol version with the stateless transport.
	Era2026 = "2026-07-28"
)

// namedMethods are the methods whose target goes in Mcp-Name, and the
// params member that holds it.
var namedMethods = map[string]string{"tools/call": "name", "prompts/get": "name", "resources/read": "uri"}

// headerMismatch checks a client message's Mcp-Method and Mcp-Name headers
// against its body, decoded (msg), before any policy decision: a router
// that trusts the headers and agentid, which decides on the body, must mean
// the same tool. The headers are required from protocol version 2026-07-28
// on, and checked whenever they are present. It returns why they do not
// match, "" when they do. A body that does not decode is not checked here:
// the core answers it.
func headerMismatch(h http.Header, msg *jsonrpc.Message) string {
	methods, names := h.Values("Mcp-Method"), h.Values("Mcp-Name")
	required := protocolVersion(h) >= policy.Era2026
	if !required && len(methods) == 0 && len(names) == 0 {
		return ""
	}
	if msg.Kind == jsonrpc.KindResponse {
		// A response has no method: headers that name one would be taken
		// by an intermediary for a call.
		if len(methods) > 0 || len(names) > 0 {
			return "Mcp-Method or Mcp-Name header on a response"
		}
		return ""
	}
	switch {
	case len(methods) > 1:
		return "more than one Mcp-Method header"
	case len(methods) == 0 && required && msg.Kind == jsonrpc.KindRequest:
		return "missing required Mcp-Method header"
	case len(methods) == 1 && methods[0] != msg.Method:
		return "Mcp-Method header does not match the body's method"
	}
	member, named := namedMethods[msg.Method]
	if !named {
		if len(names) > 0 {
			return "Mcp-Name header on a method without a name"
		}
		return ""
	}
	if len(names) > 1 {
		return "more than one Mcp-Name header"
	}
	if len(names) == 0 {
		if required && msg.Kind == jsonrpc.KindRequest {
			return "missing required Mcp-Name header"
		}
		return ""
	}
	target, ok := requestTarget(msg, member)
	if !ok {
		return "Mcp-Name header without a name in the body"
	}
	if headerValue(names[0]) != target {
		return "Mcp-Name header does not match the body's " + member
	}
	return ""
}

// requestTarget is the string member of msg's params that Mcp-Name repeats.
// A tools/call's name is the one the core decides on (Message.ToolCall,
// read while Decode validated the message, so the params are not parsed
// again); the others are parsed here. Decode has refused duplicate keys,
// lone surrogates and invalid UTF-8, so both readings agree.
func requestTarget(msg *jsonrpc.Message, member string) (string, bool) {
	if msg.Method == "tools/call" {
		if tc, err := msg.ToolCall(); err == nil {
			return tc.Name, true
		}
	}
	var params map[string]json.RawMessage
	var target string
	if json.Unmarshal(msg.Params, &params) != nil || json.Unmarshal(params[member], &target) != nil {
		return "", false
	}
	return target, true
}

// headerValue decodes the "=?base64?…?=" form that MCP uses for header
// values that are not plain ASCII.
func headerValue(v string) string {
	if enc, ok := strings.CutPrefix(v, "=?base64?"); ok {
		if enc, ok = strings.CutSuffix(enc, "?="); ok {
			if b, err := base64.StdEncoding.DecodeString(enc); err == nil {
				return string(b)
			}
		}
	}
	return v
}

// protocolVersion is the request's MCP-Protocol-Version header.
func protocolVersion(h http.Header) string { return h.Get("Mcp-Protocol-Version") }

// refuseMismatch answers a header mismatch (400, -32020) and audits it.
func (g *Gateway) refuseMismatch(w http.ResponseWriter, body []byte, reason string, who principal) {
	id, _ := jsonrpc.IDFromHead(body)
	rec := audit.Record{Direction: aip.Upstream, Decision: aip.AuditBlock, Violation: true, Event: EventHeaderMismatch,
		ID: id, Reason: reason, Code: CodeHeaderMismatch}
	annotate(&rec, who, nil)
	if err := g.cfg.Audit.Log(rec); err != nil {
		g.cfg.Log.Error("audit write failed", "error", err)
	}
	writeMessage(w, http.StatusBadRequest, jsonrpc.ErrorResponse(id, CodeHeaderMismatch, "Header mismatch", map[string]any{"reason": reason}))
}
