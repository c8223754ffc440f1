package enforce

import (
	"context"
	"encoding/json"
	"time"

	"github.com/agentid/agentid/aip"
	"github.com/agentid/agentid/approve"
	"github.com/agentid/agentid/audit"
	"github.com/agentid/agentid/jsonrpc"
	"github.com/agentid/agentid/policy"
)

// Verdict is what the core decided about one message. The transport writes
// Audit first, then sends ToServer and ToClient (each one message, without a
// trailing newline; nil sends nothing). When the audit records cannot be
// written, it calls AuditFailed and sends what that leaves instead: a
// decision that cannot be recorded is not carried out.
type Verdict struct {
	ToServer []byte
	ToClient []byte
	Audit    []audit.Record
	// Approval is set when a human must approve the call first (action:
	// ask): the transport obtains the answer with Approval.Obtain, off its
	// read loop, and passes it to Core.Resolve.
	Approval *Approval

	// silent is set for a client notification: it is decided like a
	// request but never answered (JSON-RPC forbids it).
	silent bool
	// answerOnFailure says the client is answered with an error for
	// failureID when the records cannot be written (it is built only
	// then); undo releases the session state the verdict reserved.
	answerOnFailure bool
	failureID       json.RawMessage
	undo            func()
	// check, set by Core.Check, collects the decision instead of a message
	// to send.
	check *checkState
	// caller, set by FromCaller (byCaller true), is the sender the
	// transport authenticated; held by value, so that deciding a message
	// does not allocate it.
	caller   Caller
	byCaller bool
	// request says the client message was a request (it expects a
	// response); method is its method as sent, "" for a response.
	request bool
	method  string
	// answers is the id of the client request that ToClient answers, for
	// a server message's verdict.
	answers json.RawMessage
	// undeliver forgets what the verdict recorded of a server message
	// (see Undelivered).
	undeliver func()
	// continues is set when the call is a retry bound to an earlier round
	// of the same call (rounds.go).
	continues *continuation
	// ticket is the round ticket a validation server issued for this call
	// (Check.Round), kept with the call in flight.
	ticket string
	// withheld: response DLP could not scan the server's message, which
	// was not delivered as it came.
	withheld bool
}

// Undelivered tells the core that ToClient of a server message's verdict
// never reached the client (its event stream broke before the write): the
// core forgets having seen the message, so that the same message replayed
// on a resumed stream (Last-Event-ID) is decided and delivered then. A
// response is again awaited, a server request no longer outstanding.
func (v *Verdict) Undelivered() {
	if v.undeliver != nil {
		v.undeliver()
		v.undeliver = nil
	}
}

// Answers reports the id of the client request a server message's verdict
// answers: the response the client receives, or the error that replaces a
// response the core withheld. A transport that answers each request on its
// own channel routes ToClient by it.
func (v *Verdict) Answers() (id json.RawMessage, ok bool) {
	return v.answers, v.answers != nil
}

// IDKey is the form in which the core compares JSON-RPC ids: ids equal as
// values (0, -0, 0.0; "a" and "\u0061") have one key. A transport that
// routes by id must use it, or two ids the core holds for one could be
// routed apart.
func IDKey(id json.RawMessage) string { return idKey(id) }

// Request reports whether the client message decided was a request, and
// then its id and method (as sent): a transport that answers each request
// on its own channel (HTTP) waits for the response only then.
func (v *Verdict) Request() (id json.RawMessage, method string, ok bool) {
	if !v.request {
		return nil, "", false
	}
	return v.failureID, v.method, true
}

// decided records the tool decision for Check.
func (v *Verdict) decided(d policy.Decision) {
	if v.check != nil {
		v.check.dec, v.check.hasDec = d, true
	}
}

// AuditFailed turns v into the verdict for when its audit records could not
// be written: nothing is forwarded, no approval is asked, and a request is
// answered with an internal error ("audit log unavailable").
func (v *Verdict) AuditFailed() {
	if v.undo != nil {
		v.undo()
	}
	v.ToServer, v.ToClient, v.Approval = nil, nil, nil
	if v.answerOnFailure {
		v.ToClient = auditUnavailable(v.failureID)
	}
}

func (v *Verdict) record(r audit.Record) { v.Audit = append(v.Audit, r) }

// reply answers the client with an error for id; a notification is never
// answered.
func (v *Verdict) reply(id json.RawMessage, code int, data map[string]any) {
	if v.check != nil {
		v.check.code, v.check.data = code, data
		return
	}
	if v.silent {
		return
	}
	v.ToClient = errorLine(id, code, aip.Message(code), data)
}

// errorLine is an error response without the trailing newline. Its data
// carries aip.DataKey: every error the core answers is agentid's decision,
// and a client must be able to tell it from the server's own errors under
// the same codes.
func errorLine(id json.RawMessage, code int, message string, data any) []byte {
	switch d := data.(type) {
	case map[string]any:
		aip.MarkData(code, d)
	case map[string]string:
		d[aip.DataKey] = aip.ErrorName(code)
	case nil:
		data = aip.MarkData(code, nil)
	}
	b := jsonrpc.ErrorResponse(id, code, message, data)
	return b[:len(b)-1]
}

// auditUnavailable is the answer to a request whose decision could not be
// recorded.
func auditUnavailable(id json.RawMessage) []byte {
	return errorLine(id, aip.CodeInternalError, aip.Message(aip.CodeInternalError), map[string]any{"reason": "audit log unavailable"})
}

// Approval is a call waiting for a human's answer.
type Approval struct {
	// Request is what the approver is shown and must answer.
	Request approve.Request

	session *Session
	st      *snapshot
	msg     *jsonrpc.Message
	tool    string
	line    []byte          // the message to forward when approved
	args    json.RawMessage // the arguments as audited (redacted)
	dec     policy.Decision
	tokenID string
	timeout time.Duration

	// stop and cancelled are guarded by session.mu: a client's
	// notifications/cancelled sets cancelled and stops Obtain.
	stop      context.CancelFunc
	cancelled bool
}

// Obtain asks approver, bounded by the request's expiry, and returns the
// answer: an approver that fails has not approved, and one that did not
// answer in time has timed out.
func (a *Approval) Obtain(ctx context.Context, approver approve.Approver) (approve.Answer, error) {
	ctx, cancel := context.WithTimeout(ctx, a.timeout)
	defer cancel()
	a.session.mu.Lock()
	a.stop = cancel
	cancelled := a.cancelled
	a.session.mu.Unlock()
	if cancelled {
		return approve.Denied, context.Canceled
	}
	answer, err := approver.Approve(ctx, a.Request)
	if err != nil && answer == approve.Approved {
		answer = approve.Denied
	}
	if answer == approve.Denied && ctx.Err() != nil {
		answer = approve.TimedOut
	}
	return answer, err
}
