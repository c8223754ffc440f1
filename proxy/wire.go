package proxy

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"sort"
	"strconv"
	"sync"

	"github.com/agentid/agentid/aip"
	"github.com/agentid/agentid/audit"
	"github.com/agentid/agentid/dlp"
	"github.com/agentid/agentid/jsonrpc"
	"github.com/agentid/agentid/policy"
)

// lineWriter serializes whole lines onto one peer: the upstream loop, the
// downstream loop and approval goroutines all write to the client.
type lineWriter struct {
	mu  sync.Mutex
	w   io.Writer
	buf []byte
	err error
}

// write sends b, which already ends in a newline.
func (lw *lineWriter) write(b []byte) error {
	lw.mu.Lock()
	defer lw.mu.Unlock()
	if lw.err != nil {
		return lw.err
	}
	_, lw.err = lw.w.Write(b)
	return lw.err
}

// writeLine sends line followed by a newline in a single write, so a reader
// never sees a partial message. A nil line is a dropped message.
func (lw *lineWriter) writeLine(line []byte) error {
	if line == nil {
		return nil
	}
	lw.mu.Lock()
	defer lw.mu.Unlock()
	if lw.err != nil {
		return lw.err
	}
	lw.buf = append(append(lw.buf[:0], line...), '\n')
	_, lw.err = lw.w.Write(lw.buf)
	if cap(lw.buf) > 1<<20 {
		lw.buf = nil // do not pin one huge message's buffer forever
	}
	return lw.err
}

// idKey canonicalizes a JSON-RPC id so that a peer re-encoding it
// ("\u0061" for "a") still matches. jsonrpc.Decode admits only strings and
// integers.
func idKey(raw json.RawMessage) string {
	raw = bytes.TrimSpace(raw)
	if len(raw) > 0 && raw[0] == '"' {
		var s string
		if json.Unmarshal(raw, &s) == nil {
			return "s" + s
		}
	}
	return "n" + string(raw)
}

// buildMessage re-encodes a message whose result, error or params the proxy
// changed. Members keep their raw bytes; only the envelope is rebuilt.
func buildMessage(msg *jsonrpc.Message) []byte {
	var b bytes.Buffer
	b.WriteString(`{"jsonrpc":"2.0"`)
	if msg.ID != nil {
		b.WriteString(`,"id":`)
		b.Write(msg.ID)
	}
	if msg.Kind != jsonrpc.KindResponse {
		b.WriteString(`,"method":`)
		b.Write(encodeString(msg.Method))
		if msg.Params != nil {
			b.WriteString(`,"params":`)
			b.Write(msg.Params)
		}
	} else if msg.Result != nil {
		b.WriteString(`,"result":`)
		b.Write(msg.Result)
	} else {
		b.WriteString(`,"error":`)
		b.Write(msg.Error)
	}
	b.WriteByte('}')
	return b.Bytes()
}

func buildResponse(msg *jsonrpc.Message) []byte { return buildMessage(msg) }

// replaceArguments returns msg with params.arguments replaced. Other params
// members keep their raw bytes.
func replaceArguments(msg *jsonrpc.Message, args json.RawMessage) ([]byte, error) {
	params, err := rawObject(msg.Params)
	if err != nil {
		return nil, err
	}
	params["arguments"] = args
	encoded, err := encodeRawObject(params)
	if err != nil {
		return nil, err
	}
	m := *msg
	m.Params = encoded
	return buildMessage(&m), nil
}

// rawObject splits a JSON object into its members, keeping raw values.
// Its input has passed jsonrpc's strict decoding, so keys are unique.
func rawObject(data json.RawMessage) (map[string]json.RawMessage, error) {
	var m map[string]json.RawMessage
	if err := json.Unmarshal(data, &m); err != nil {
		return nil, fmt.Errorf("proxy: %w", err)
	}
	if m == nil {
		return nil, fmt.Errorf("proxy: expected a JSON object")
	}
	return m, nil
}

// encodeRawObject writes members in sorted key order with raw values.
func encodeRawObject(m map[string]json.RawMessage) (json.RawMessage, error) {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var b bytes.Buffer
	b.WriteByte('{')
	for i, k := range keys {
		if i > 0 {
			b.WriteByte(',')
		}
		b.Write(encodeString(k))
		b.WriteByte(':')
		b.Write(m[k])
	}
	b.WriteByte('}')
	return b.Bytes(), nil
}

// encodeString encodes s as a JSON string without HTML escaping.
func encodeString(s string) []byte {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(s)
	return bytes.TrimRight(b.Bytes(), "\n")
}

func sameBytes(a, b []byte) bool { return bytes.Equal(a, b) }

func boolPtr(b bool) *bool { return &b }

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

// audit writes rec with the fields every record carries: the policy mode
// and hash in force, and the identity session.
func (r *relay) audit(rec audit.Record) {
	st := r.p.state.Load()
	rec.PolicyMode = aip.ModeEnforce // no policy loaded: everything is blocked
	if p := st.engine.Policy(); p != nil {
		rec.PolicyMode = p.Mode()
	}
	if rec.PolicyHash == "" {
		rec.PolicyHash = st.hash
	}
	if rec.SessionID == "" {
		rec.SessionID = r.sessionID()
	}
	if err := r.cfg.Audit.Log(rec); err != nil {
		r.cfg.Log.Error("audit log write failed", "error", err)
	}
}

// sessionID is the identity session's id, "" without identity.
func (r *relay) sessionID() string {
	if r.cfg.Identity == nil {
		return ""
	}
	return r.cfg.Identity.SessionID()
}

// auditOption adds a detail to a decision record.
type auditOption func(*audit.Record)

func withEvent(e string) auditOption    { return func(r *audit.Record) { r.Event = e } }
func withTokenID(id string) auditOption { return func(r *audit.Record) { r.TokenID = id } }

// auditDecision records a method or tool decision.
func (r *relay) auditDecision(st *policyState, dec policy.Decision, msg *jsonrpc.Message, args json.RawMessage, tool string, opts ...auditOption) {
	rec := audit.Record{
		Direction:  "upstream",
		Decision:   dec.AuditDecision(),
		Violation:  dec.Violation(),
		Method:     msg.Method,
		Tool:       tool,
		Args:       args,
		FailedArg:  dec.FailedArg,
		FailedRule: dec.FailedRule,
		Reason:     dec.Reason,
		ID:         msg.ID,
		PolicyHash: st.hash,
	}
	if dec.Violation() {
		rec.Code = dec.Code
	}
	switch dec.ViolationType {
	case aip.ViolationMethodNotAllowed:
		rec.Event = "METHOD_BLOCKED"
	case aip.ViolationProtectedPath:
		rec.Event = "PROTECTED_PATH_BLOCKED"
	}
	for _, o := range opts {
		o(&rec)
	}
	r.audit(rec)
}

// auditHygiene records a message refused before any policy decision.
func (r *relay) auditHygiene(code int, reason string, id json.RawMessage, method string) {
	r.audit(audit.Record{Direction: "upstream", Decision: aip.AuditBlock, Violation: true,
		Event: "INVALID_MESSAGE", Code: code, Reason: reason, ID: id, Method: method})
}

// auditRedaction is a tool call's arguments as they may be written to the
// audit log, with the request-scope redaction that produced them.
type auditRedaction struct {
	args json.RawMessage
	// scanned is false when DLP is off or there are no arguments; otherwise
	// res and err are RedactJSON(Request, arguments).
	scanned bool
	res     dlp.Result
	err     error
}

// redactForAudit redacts the arguments with the request-scope patterns even
// when request scanning is off. Request-side DLP reuses the redaction rather
// than scanning the same arguments with the same patterns a second time.
func (r *relay) redactForAudit(st *policyState, args json.RawMessage) auditRedaction {
	if st.dlp == nil || !st.dlp.Enabled() || len(args) == 0 {
		return auditRedaction{args: args}
	}
	res, err := st.dlp.RedactJSON(dlp.Request, args)
	if err != nil {
		return auditRedaction{args: json.RawMessage(strconv.Quote("[unscannable arguments withheld]")), scanned: true, err: err}
	}
	return auditRedaction{args: res.Data, scanned: true, res: res}
}

// stripToken removes params._meta["aip.io/token"] from a request or
// notification and returns the line to forward and the token ("" when
// none). A message without one is returned as its original bytes. A token
// that is not a string is refused: it cannot be validated, and forwarding
// it would leak whatever it is.
func stripToken(msg *jsonrpc.Message) (line []byte, token string, err error) {
	// Only a params object naming _meta can carry a token; a key can also be
	// spelled with \u escapes ("\u005fmeta"), so those are parsed too.
	if len(msg.Params) == 0 || msg.Params[0] != '{' ||
		!bytes.Contains(msg.Params, []byte("_meta")) && !bytes.Contains(msg.Params, []byte(`\u`)) {
		return msg.Raw, "", nil
	}
	params, err := rawObject(msg.Params)
	if err != nil {
		return nil, "", err
	}
	metaRaw, ok := params["_meta"]
	if !ok {
		return msg.Raw, "", nil
	}
	meta, err := rawObject(metaRaw)
	if err != nil {
		return nil, "", fmt.Errorf("proxy: params._meta: %w", err)
	}
	tokRaw, ok := meta[TokenMetaKey]
	if !ok {
		return msg.Raw, "", nil
	}
	if err := json.Unmarshal(tokRaw, &token); err != nil {
		return nil, "", fmt.Errorf("proxy: params._meta[%q] must be a string", TokenMetaKey)
	}
	delete(meta, TokenMetaKey)
	if len(meta) == 0 {
		delete(params, "_meta")
	} else if params["_meta"], err = encodeRawObject(meta); err != nil {
		return nil, "", err
	}
	encoded, err := encodeRawObject(params)
	if err != nil {
		return nil, "", err
	}
	m := *msg
	m.Params = encoded
	return buildMessage(&m), token, nil
}
