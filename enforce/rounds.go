package enforce

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/json"
	"time"

	"github.com/agentid/agentid/aip"
	"github.com/agentid/agentid/audit"
	"github.com/agentid/agentid/internal/strictjson"
	"github.com/agentid/agentid/jsonrpc"
	"github.com/agentid/agentid/policy"
)

// Multi round-trip requests (MCP 2026-07-28, SEP-2322): a server answers a
// tools/call with a result of resultType "input_required" (inputRequests,
// and an opaque requestState), and the client retries the call under a new
// id with params.inputResponses (and params.requestState echoed back). The
// rounds are one logical call: the core binds each retry to the decision on
// the first round, so that the call spends one rate-limit unit and is
// approved once, and refuses a retry that changes the tool or the arguments
// of the round it continues (docs/decisions.md).

// Audit events of multi-round-trip calls.
const (
	// EventRoundContinued: a retry decided as a round of a call already
	// decided (no second rate-limit unit, no second approval).
	EventRoundContinued = "ROUND_CONTINUED"
	// EventRoundMismatch: a retry whose tool or arguments differ from the
	// round it continues; refused.
	EventRoundMismatch = "ROUND_MISMATCH"
)

const (
	// roundTTL bounds how long an input_required result waits for its
	// retry: a user may take minutes to answer an elicitation, and a
	// retry after that is decided as a new call.
	roundTTL = 10 * time.Minute
	// maxWaitingRounds caps the rounds a session remembers: a server that
	// answers input_required and a client that never retries must not grow
	// it without limit. The round that expires first is forgotten first.
	maxWaitingRounds = 64
	// maxRoundsPerCall caps the requests of one logical call that share
	// its decision; a call still asking for input after that is decided
	// anew.
	maxRoundsPerCall = 32
)

// decided is what the core decided on a tools/call: what it must match to
// be the same call, and what it has already spent.
type decided struct {
	tool, args [sha256.Size]byte // of the raw name and the raw arguments
	policy     string            // hash of the policy it was decided under
	approved   bool              // a human approved it
	round      int               // 1 for the first request of the call
	// ticket is the validation server's round ticket for the retry of this
	// call (Check.Round), when a server decided it.
	ticket string
	// session is the AIP session of the sender the transport authenticated
	// (Caller), which a sealed request state is bound to.
	session string
}

// roundKey names the retry a server's input_required result waits for: its
// request state or, for a result without one, the call itself.
type roundKey [sha256.Size]byte

// waitingRound is an input_required result awaiting its retry.
type waitingRound struct {
	decided
	expires time.Time
}

// continuation is a retry bound to the round it continues.
type continuation struct {
	key roundKey
	waitingRound
}

// rounds is a session's multi-round-trip state. It is guarded by Session.mu.
type rounds struct {
	// inflight holds the decision on every tools/call in flight (forwarded
	// or waiting for approval), by id key, until the server answers.
	inflight map[string]decided
	waiting  map[roundKey]waitingRound
}

// decidedCall is the identity of call as the core decides it. Arguments are
// compared byte for byte: a re-encoding that JSON canonicalization would
// call equal may not be equal to the server (JCS maps distinct integers
// beyond 2^53 to one number), and a client retrying "the original request"
// sends the same bytes.
func decidedCall(st *snapshot, call jsonrpc.ToolCall) decided {
	return decided{
		tool:   sha256.Sum256([]byte(call.Name)),
		args:   sha256.Sum256(bytes.TrimSpace(call.Arguments)),
		policy: st.Hash,
		round:  1,
	}
}

func stateKey(state string) roundKey {
	return sha256.Sum256(append([]byte("requestState\x00"), state...))
}

// statelessKey is the key of a round whose result carried no request state:
// its retry carries none either (the client MUST NOT add one), only the same
// call with inputResponses.
func statelessKey(d decided) roundKey {
	b := make([]byte, 0, len("call\x00")+2*sha256.Size)
	b = append(append(append(b, "call\x00"...), d.tool[:]...), d.args[:]...)
	return sha256.Sum256(b)
}

// retryParams reads what makes a tools/call a retry: params.requestState (a
// string) and params.inputResponses. Keys are matched as a client library
// may match them (case-insensitively, as Go's encoding/json does), so that
// no spelling a server reads as the request state escapes the binding. It
// runs on every tools/call, so it walks the members without allocating.
func retryParams(params json.RawMessage) (state string, hasState, hasResponses bool) {
	if len(params) == 0 || params[0] != '{' {
		return "", false, false
	}
	var buf [32]byte
	for i := 1; ; {
		lit, val, next, ok := strictjson.NextMember(params, i)
		if !ok {
			return state, hasState, hasResponses
		}
		i = next
		if len(lit) < 2 {
			continue
		}
		key := lit[1 : len(lit)-1]
		if bytes.IndexByte(key, '\\') >= 0 {
			key = strictjson.AppendUnquote(buf[:0], lit)
		} else if len(key) != len("requestState") && len(key) != len("inputResponses") && isASCII(key) {
			continue // cannot fold to either name
		}
		switch {
		case strictjson.EqualFold(key, []byte("requestState")):
			// Decoded into a variable of this branch: the named result,
			// once its address is taken, would be allocated on every call.
			var st string
			if len(val) > 0 && val[0] == '"' && json.Unmarshal(val, &st) == nil {
				state, hasState = st, true
			}
		case strictjson.EqualFold(key, []byte("inputResponses")):
			hasResponses = true
		}
	}
}

func isASCII(b []byte) bool {
	for _, c := range b {
		if c >= 0x80 {
			return false
		}
	}
	return true
}

// inputRequired reads an input_required result: whether it is one, and the
// request state it carries. A result without resultType that carries
// inputRequests counts as one: a server that took the client for an earlier
// protocol version leaves resultType out, and the Go SDK client (v1.8)
// retries on inputRequests alone. Keys are matched as a client library may
// match them.
func inputRequired(result json.RawMessage) (state string, hasState, ok bool) {
	typed, requests := false, false
	walkTop(result, func(key, val []byte) bool {
		switch {
		case strictjson.EqualFold(key, []byte("resultType")):
			typed, ok = true, isString(val, "input_required")
		case strictjson.EqualFold(key, []byte("inputRequests")):
			requests = len(val) > 0 && val[0] == '{'
		case strictjson.EqualFold(key, []byte("requestState")):
			// Decoded into a variable of this branch: the named result,
			// once its address is taken, would be allocated on every call.
			var st string
			if len(val) > 0 && val[0] == '"' && json.Unmarshal(val, &st) == nil {
				state, hasState = st, true
			}
		}
		return true
	})
	return state, hasState, ok || !typed && requests
}

// isString reports whether the JSON value val is the string s, without
// allocating when it is spelled without escapes.
func isString(val []byte, s string) bool {
	if len(val) < 2 || val[0] != '"' {
		return false
	}
	if bytes.IndexByte(val, '\\') < 0 {
		return string(val[1:len(val)-1]) == s
	}
	var d string
	return json.Unmarshal(val, &d) == nil && d == s
}

// continuation binds a tools/call that retries an earlier round to that
// round's decision (v.continues). A retry whose round the core never saw,
// or whose round expired or was decided under another policy, is a new
// call. It reports false when the call was answered: the retry names
// another tool or carries other arguments than the round it continues.
// Every other check still runs on a bound retry; only the rate limit and
// the approval are not taken again.
func (c *Core) continuation(st *snapshot, s *Session, msg *jsonrpc.Message, call jsonrpc.ToolCall, d decided, auditArgs json.RawMessage, v *Verdict) bool {
	state, hasState, hasResponses := retryParams(msg.Params)
	var key roundKey
	switch {
	case hasState:
		key = stateKey(state)
	case hasResponses:
		key = statelessKey(d)
	default:
		return true
	}
	w, ok := s.takeRound(key, c.cfg.Now())
	if !ok {
		return true
	}
	if w.tool != d.tool || w.args != d.args {
		// The request state belongs to another call: a server that does
		// not bind its state to the call's parameters would act on what
		// was gathered (and approved) for that call with these. Refused,
		// in monitor mode too; the round is used up.
		refuseMismatch(msg, call.Name, w.tool != d.tool, auditArgs, v)
		return false
	}
	if w.policy != st.Hash {
		return true
	}
	v.continues = &continuation{key: key, waitingRound: w}
	return true
}

// refuseMismatch answers a retry bound to the round of another call (see
// continuation): otherTool when it names another tool, else it changes the
// arguments.
func refuseMismatch(msg *jsonrpc.Message, tool string, otherTool bool, auditArgs json.RawMessage, v *Verdict) {
	reason := "Retry changes the arguments of the call it continues"
	if otherTool {
		reason = "Retry names another tool than the call it continues"
	}
	dec := policy.Decision{Action: policy.Block, Code: aip.CodeForbidden, Reason: reason,
		ViolationType: aip.ViolationRuleBlock, Tool: policy.NormalizeName(tool)}
	rec := decisionRecord(dec, msg, auditArgs, tool)
	rec.Event = EventRoundMismatch
	v.record(rec)
	if v.check != nil {
		v.check.dec, v.check.hasDec = dec, true
	}
	v.reply(msg.ID, aip.CodeForbidden, map[string]any{"tool": tool, "reason": reason})
}

// sameCall compares the truncated hashes a round ticket or a sealed state
// carries with the call d, in constant time.
func sameCall(tool, args [16]byte, d decided) (sameTool, sameArgs bool) {
	return hmac.Equal(tool[:], d.tool[:16]), hmac.Equal(args[:], d.args[:16])
}

// continued marks the record of a bound retry's decision.
func continued(rec *audit.Record, v *Verdict) {
	if v.continues == nil {
		return
	}
	rec.Event = EventRoundContinued
	rec.Extra = map[string]any{"round": v.continues.round + 1, "approved_earlier": v.continues.approved}
}

// trackCall remembers the decision on the tools/call in flight under key
// (forwarded, or waiting for approval), so that an input_required answer
// can bind its retry. A continued round's decision carries over; the last
// round that maxRoundsPerCall allows is not tracked, so that its retry is a
// new call.
func trackCall(s *Session, key string, d decided, v *Verdict) {
	if k := v.continues; k != nil {
		d.approved, d.round = k.approved, k.round+1
	}
	if v.ticket != "" {
		d.ticket = v.ticket
	}
	if d.round >= maxRoundsPerCall {
		return
	}
	s.mu.Lock()
	if s.rounds.inflight == nil {
		s.rounds.inflight = make(map[string]decided)
	}
	s.rounds.inflight[key] = d
	s.mu.Unlock()
}

// restoreRound gives back the round of a bound retry that was not carried
// out (refused by a later check), so that the client's next attempt still
// continues the call.
func restoreRound(s *Session, v *Verdict, now time.Time) {
	k := v.continues
	if k == nil || v.ToServer != nil || v.Approval != nil {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.rounds.add(k.key, k.waitingRound, now)
}

// approvedCall records that the call in flight under key was approved.
func (s *Session) approvedCall(key string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if d, ok := s.rounds.inflight[key]; ok {
		d.approved = true
		s.rounds.inflight[key] = d
	}
}

// answeredCall is answered, and also takes the decision on the tools/call
// the response answers, if one is tracked.
func (s *Session) answeredCall(key string) (method string, d decided, tracked, ok bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	method, ok = s.pendingClient[key]
	delete(s.pendingClient, key)
	d, tracked = s.rounds.inflight[key]
	delete(s.rounds.inflight, key)
	return method, d, tracked, ok
}

// awaitRetry remembers, when result (as the client receives it, after DLP)
// asks for input, that its retry continues d. The request state is taken as
// the client will echo it.
func (c *Core) awaitRetry(s *Session, d decided, result json.RawMessage) {
	state, hasState, ok := inputRequired(result)
	if !ok {
		return
	}
	key := statelessKey(d)
	if hasState {
		key = stateKey(state)
	}
	now := c.cfg.Now()
	s.mu.Lock()
	defer s.mu.Unlock()
	s.rounds.add(key, waitingRound{decided: d, expires: now.Add(roundTTL)}, now)
}

// takeRound removes and returns the round waiting under key, unless it
// expired. A round is continued once: a request state replayed after its
// retry is a new call.
func (s *Session) takeRound(key roundKey, now time.Time) (waitingRound, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	w, ok := s.rounds.waiting[key]
	if !ok {
		return waitingRound{}, false
	}
	delete(s.rounds.waiting, key)
	return w, now.Before(w.expires)
}

// add remembers w under key, forgetting expired rounds and, at the cap, the
// one that expires first.
func (r *rounds) add(key roundKey, w waitingRound, now time.Time) {
	if r.waiting == nil {
		r.waiting = make(map[roundKey]waitingRound)
	}
	if _, ok := r.waiting[key]; !ok && len(r.waiting) >= maxWaitingRounds {
		var oldest roundKey
		var first time.Time
		for k, o := range r.waiting {
			if !now.Before(o.expires) {
				delete(r.waiting, k)
				continue
			}
			if first.IsZero() || o.expires.Before(first) {
				oldest, first = k, o.expires
			}
		}
		if len(r.waiting) >= maxWaitingRounds {
			delete(r.waiting, oldest)
		}
	}
	r.waiting[key] = w
}
