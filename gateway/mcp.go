package gateway

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"time"

	"github.com/agentid/agentid/audit"
	"github.com/agentid/agentid/enforce"
	"github.com/agentid/agentid/jsonrpc"
	"github.com/agentid/agentid/policy"
)

const sessionHeader = "Mcp-Session-Id"

// exchange is one client request through the gateway: who sent it, the
// session it belongs to (nil outside one) and the conversation state the
// core decides it in.
type exchange struct {
	who  principal
	sess *session
	conv *enforce.Session
}

// upstreamID is the session id the upstream knows, "" outside a session.
func (x *exchange) upstreamID() string {
	if x.sess == nil {
		return ""
	}
	return x.sess.upstream
}

// resolve finds the session a request names. ok is false, and the request
// answered, when it names one that does not exist or belongs to another
// identity (404, the transport's "start a new session").
func (g *Gateway) resolve(w http.ResponseWriter, r *http.Request, who principal) (x exchange, ok bool) {
	x.who = who
	ids := r.Header.Values(sessionHeader)
	switch len(ids) {
	case 0:
		// Outside a session (initialize, or a stateless upstream): the ids
		// in flight and the advertised tools belong to this request alone.
		x.conv = enforce.NewRequestSession()
		return x, true
	case 1:
	default:
		httpError(w, http.StatusBadRequest, "more than one Mcp-Session-Id")
		return x, false
	}
	x.sess = g.sessions.get(ids[0], who)
	if x.sess == nil {
		httpError(w, http.StatusNotFound, "session not found")
		return x, false
	}
	x.conv = x.sess.conv
	return x, true
}

func (g *Gateway) post(w http.ResponseWriter, r *http.Request) {
	if mediaType(r.Header.Get("Content-Type")) != "application/json" {
		httpError(w, http.StatusUnsupportedMediaType, "Content-Type must be application/json")
		return
	}
	if !accepts(r) {
		httpError(w, http.StatusNotAcceptable, "Accept must list application/json and text/event-stream")
		return
	}
	// Who sent it is known from the headers: an unauthenticated client
	// gets its 401 before the gateway reads, let alone holds, its body.
	caller, who, ok := g.authenticate(w, r, nil)
	if !ok {
		return
	}
	body, over, err := readSized(r.Body, r.ContentLength, g.cfg.MaxBodyBytes)
	if err != nil {
		httpError(w, http.StatusBadRequest, "request body could not be read")
		return
	}
	if over {
		v := g.core.ClientOversized(body)
		g.carryOut(r.Context(), &v, who, nil)
		writeMessage(w, http.StatusRequestEntityTooLarge, v.ToClient)
		return
	}
	body = flatten(body)
	// Decoded once, for the header check and the core: a body that does
	// not decode goes to the core as bytes, which answers it.
	msg, decodeErr := jsonrpc.Decode(body)
	if decodeErr == nil {
		if why := headerMismatch(r.Header, msg); why != "" {
			g.refuseMismatch(w, body, why, who)
			return
		}
	}
	x, ok := g.resolve(w, r, who)
	if !ok {
		return
	}
	r, span := g.startSpan(r)
	defer span.End()
	ctx := r.Context()
	var v enforce.Verdict
	if decodeErr == nil {
		v = g.core.FromCallerMessage(ctx, x.conv, msg, caller)
	} else {
		v = g.core.FromCaller(ctx, x.conv, body, caller)
	}
	id, method, isRequest := v.Request()
	if !g.carryOut(ctx, &v, who, x.sess) {
		describe(span, &v, who, x.sess)
		writeMessage(w, http.StatusOK, v.ToClient)
		return
	}
	if v.Approval != nil {
		a := v.Approval
		ans, _ := a.Obtain(ctx, g.cfg.Approver)
		v = g.core.Resolve(a, ans)
		g.carryOut(ctx, &v, who, x.sess)
	}
	describe(span, &v, who, x.sess)
	g.cfg.Server.Decided(v.Audit)
	if v.ToServer == nil {
		if v.ToClient != nil {
			writeMessage(w, http.StatusOK, v.ToClient)
			return
		}
		// A notification or a response the policy dropped: it is never
		// answered in JSON-RPC, and the HTTP status says it was not taken.
		httpError(w, http.StatusForbidden, "message refused by policy")
		return
	}

	if g.cfg.Command != nil {
		g.postStdio(w, r, &x, &v)
		return
	}
	resp, err := g.up.do(r.Context(), http.MethodPost, x.upstreamID(), v.ToServer, g.paramHeaders(r.Header))
	if err != nil {
		g.cfg.Log.Warn("upstream unreachable", "error", err)
		g.failed(w, r, &x, id, isRequest, http.StatusBadGateway, "upstream unavailable")
		return
	}
	defer resp.Body.Close()
	if x.sess == nil && isRequest && policy.NormalizeName(method) == "initialize" && resp.StatusCode == http.StatusOK {
		if sid := resp.Header.Get(sessionHeader); sid != "" {
			sess, expired, err := g.sessions.add(sid, x.conv, who, clientKey(who, r))
			g.closeUpstream(r.Context(), expired)
			if err != nil {
				// The upstream's session is ended: nobody will use it.
				g.closeUpstream(r.Context(), []*session{{upstream: sid}})
				status, why := sessionRefusal(err)
				g.failed(w, r, &x, id, isRequest, status, why)
				return
			}
			x.sess = sess
		}
	}
	if x.sess != nil {
		w.Header().Set(sessionHeader, x.sess.id)
	}
	contentType := mediaType(resp.Header.Get("Content-Type"))
	switch {
	case resp.StatusCode == http.StatusNotFound && x.sess != nil:
		// The upstream ended the session: so does the gateway, and the
		// client starts a new one, as the transport prescribes.
		g.sessions.remove(x.sess)
		g.failedQuietly(r, &x, id, isRequest, "session ended upstream")
		w.Header().Del(sessionHeader)
		httpError(w, http.StatusNotFound, "session not found")
	case resp.StatusCode == http.StatusAccepted && !isRequest:
		w.WriteHeader(http.StatusAccepted)
	case resp.StatusCode >= 400 && isRequest && contentType == "application/json":
		// The upstream's own JSON-RPC error for the request (a 400 for a
		// request it refuses): relayed through the response path like any
		// answer, with its status.
		g.jsonResponse(w, r, &x, resp, id, isRequest)
	case resp.StatusCode != http.StatusOK:
		status := resp.StatusCode
		if status < 400 {
			status = http.StatusBadGateway // a request must be answered
		}
		g.failed(w, r, &x, id, isRequest, status, "upstream answered HTTP "+http.StatusText(resp.StatusCode))
	case contentType == "text/event-stream":
		g.stream(w, r, &x, resp, false)
	case contentType == "application/json":
		g.jsonResponse(w, r, &x, resp, id, isRequest)
	default:
		g.failed(w, r, &x, id, isRequest, http.StatusBadGateway, "upstream answered with an unknown content type")
	}
}

// sessionRefusal is the answer to an initialize the session table refused.
func sessionRefusal(err error) (int, string) {
	if errors.Is(err, errTooManySessionsForClient) {
		return http.StatusTooManyRequests, "too many sessions for this client"
	}
	return http.StatusServiceUnavailable, "too many sessions"
}

// jsonResponse relays an upstream answer that is one JSON-RPC message.
func (g *Gateway) jsonResponse(w http.ResponseWriter, r *http.Request, x *exchange, resp *http.Response, id []byte, isRequest bool) {
	body, over, err := readResponse(resp, g.cfg.MaxBodyBytes)
	if err != nil {
		g.failed(w, r, x, id, isRequest, http.StatusBadGateway, "upstream response could not be read")
		return
	}
	var v enforce.Verdict
	if over {
		v = g.core.ServerOversized(x.conv, body)
	} else {
		v = g.core.FromServer(r.Context(), x.conv, flatten(body))
	}
	g.carryOut(r.Context(), &v, x.who, x.sess)
	g.toUpstream(r.Context(), x, v.ToServer)
	if v.ToClient == nil {
		g.failed(w, r, x, id, isRequest, http.StatusBadGateway, "upstream response withheld")
		return
	}
	writeMessage(w, resp.StatusCode, v.ToClient)
}

// failed answers a request whose response will not come from upstream: with
// status, and the JSON-RPC error the core gives for its id when the client is
// still waiting.
func (g *Gateway) failed(w http.ResponseWriter, r *http.Request, x *exchange, id []byte, isRequest bool, status int, reason string) {
	if !isRequest {
		httpError(w, status, reason)
		return
	}
	v := g.core.ServerFailed(x.conv, id, reason)
	g.carryOut(r.Context(), &v, x.who, x.sess)
	if v.ToClient == nil {
		httpError(w, status, reason)
		return
	}
	writeMessage(w, status, v.ToClient)
}

// failedQuietly ends a request in flight without answering it.
func (g *Gateway) failedQuietly(r *http.Request, x *exchange, id []byte, isRequest bool, reason string) {
	if isRequest {
		v := g.core.ServerFailed(x.conv, id, reason)
		g.carryOut(r.Context(), &v, x.who, x.sess)
	}
}

func (g *Gateway) get(w http.ResponseWriter, r *http.Request) {
	if !acceptsSSE(r) {
		httpError(w, http.StatusNotAcceptable, "Accept must list text/event-stream")
		return
	}
	_, who, ok := g.authenticate(w, r, nil)
	if !ok {
		return
	}
	if len(r.Header.Values(sessionHeader)) == 0 {
		httpError(w, http.StatusBadRequest, "Mcp-Session-Id required")
		return
	}
	x, ok := g.resolve(w, r, who)
	if !ok {
		return
	}
	if n := x.sess.streams.Add(1); int(n) > g.cfg.MaxStreamsPerSession {
		x.sess.streams.Add(-1)
		httpError(w, http.StatusTooManyRequests, "too many streams open for this session")
		return
	}
	defer x.sess.streams.Add(-1)
	ctx, cancel := context.WithTimeout(r.Context(), g.cfg.MaxStreamDuration)
	defer cancel()
	if x.sess.child != nil {
		w.Header().Set(sessionHeader, x.sess.id)
		g.streamStdio(w, r.WithContext(ctx), &x, x.sess.child, nil, nil)
		return
	}
	resp, err := g.up.do(ctx, http.MethodGet, x.upstreamID(), nil, r.Header)
	if err != nil {
		httpError(w, http.StatusBadGateway, "upstream unavailable")
		return
	}
	defer resp.Body.Close()
	switch {
	case resp.StatusCode == http.StatusNotFound:
		g.sessions.remove(x.sess)
		httpError(w, http.StatusNotFound, "session not found")
	case resp.StatusCode != http.StatusOK:
		if resp.StatusCode == http.StatusMethodNotAllowed {
			w.Header().Set("Allow", "POST, DELETE")
		}
		httpError(w, resp.StatusCode, "upstream answered HTTP "+http.StatusText(resp.StatusCode))
	case mediaType(resp.Header.Get("Content-Type")) != "text/event-stream":
		httpError(w, http.StatusBadGateway, "upstream answered with an unknown content type")
	default:
		w.Header().Set(sessionHeader, x.sess.id)
		g.stream(w, r.WithContext(ctx), &x, resp, true)
	}
}

func acceptsSSE(r *http.Request) bool {
	for _, v := range r.Header.Values("Accept") {
		for part := range strings.SplitSeq(v, ",") {
			switch mediaType(strings.TrimSpace(part)) {
			case "text/event-stream", "text/*", "*/*":
				return true
			}
		}
	}
	return false
}

func (g *Gateway) delete(w http.ResponseWriter, r *http.Request) {
	_, who, ok := g.authenticate(w, r, nil)
	if !ok {
		return
	}
	if len(r.Header.Values(sessionHeader)) == 0 {
		httpError(w, http.StatusBadRequest, "Mcp-Session-Id required")
		return
	}
	x, ok := g.resolve(w, r, who)
	if !ok {
		return
	}
	g.sessions.remove(x.sess)
	if x.sess.child != nil {
		x.sess.child.close()
		w.WriteHeader(http.StatusNoContent)
		return
	}
	resp, err := g.up.do(r.Context(), http.MethodDelete, x.upstreamID(), nil, r.Header)
	if err != nil {
		httpError(w, http.StatusBadGateway, "upstream unavailable")
		return
	}
	resp.Body.Close()
	if resp.StatusCode >= 300 && resp.StatusCode != http.StatusMethodNotAllowed {
		httpError(w, resp.StatusCode, "upstream answered HTTP "+http.StatusText(resp.StatusCode))
		return
	}
	w.WriteHeader(resp.StatusCode)
}

// closeUpstream ends, upstream, the sessions the gateway forgot.
func (g *Gateway) closeUpstream(ctx context.Context, gone []*session) {
	for _, s := range gone {
		if s.child != nil {
			go s.child.close()
			continue
		}
		go func(sid string) {
			ctx, cancel := detached(ctx, 10*time.Second)
			defer cancel()
			if resp, err := g.up.do(ctx, http.MethodDelete, sid, nil, http.Header{}); err == nil {
				resp.Body.Close()
			}
		}(s.upstream)
	}
}

// toUpstream sends the upstream what the core answers it (a server request
// the policy refused, or one over the size limit), as a POST in its
// session.
func (g *Gateway) toUpstream(ctx context.Context, x *exchange, msg []byte) {
	if msg == nil {
		return
	}
	sid := x.upstreamID()
	go func() {
		ctx, cancel := detached(ctx, 10*time.Second)
		defer cancel()
		resp, err := g.up.do(ctx, http.MethodPost, sid, msg, http.Header{})
		if err != nil {
			g.cfg.Log.Warn("answer to the upstream's request not delivered", "error", err)
			return
		}
		resp.Body.Close()
	}()
}

// carryOut writes v's audit records, each naming the request's identity,
// and reports whether v may be carried out. When they cannot be written,
// v is turned into its refusal (enforce.Verdict.AuditFailed), unless the
// gateway is configured to carry on.
func (g *Gateway) carryOut(ctx context.Context, v *enforce.Verdict, who principal, sess *session) bool {
	if len(v.Audit) == 0 {
		return true
	}
	for i := range v.Audit {
		annotate(&v.Audit[i], who, sess)
	}
	if err := g.cfg.Audit.LogAll(v.Audit); err != nil {
		g.cfg.Log.Error("audit write failed", "error", err)
		if !g.cfg.AuditBestEffort {
			v.AuditFailed()
			return false
		}
	}
	return true
}

// annotate adds the identity of the request to a record: the agent and AIP
// session of its token, its client certificate, and the MCP session.
func annotate(r *audit.Record, who principal, sess *session) {
	if who == (principal{}) && sess == nil {
		return
	}
	if r.Extra == nil {
		r.Extra = make(map[string]any, 4)
	}
	if who.Agent != "" {
		// The agent's own AIP session and token, not the gateway core's.
		r.Extra["agent_id"] = who.Agent
		r.SessionID = who.Session
		if r.TokenID == "" {
			r.TokenID = who.TokenID
		}
	}
	if who.Peer != "" {
		r.Extra["client_spiffe_id"] = who.Peer
	}
	if sess != nil {
		r.Extra["mcp_session_id"] = sess.id
	}
}

var errStreamClosed = errors.New("gateway: client stopped reading the stream")
