package enforce

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"strings"
	"time"

	"github.com/agentid/agentid/internal/strictjson"
	"github.com/agentid/agentid/jsonrpc"
)

// Rounds outside a session. Every MCP 2026-07-28 request over HTTP is a
// conversation of its own (NewRequestSession): the input_required result
// that ends one request and the retry that continues the call arrive in
// different conversations, perhaps at different gateway replicas, so
// nothing a Session remembers can bind them. The core carries the binding
// in the request state instead: it seals the state the client receives
// (after DLP) into an envelope, an HMAC over the call it continues (tool,
// arguments, policy, the caller's AIP session, the approval) under the
// round key, and opens it again when the retry comes back, forwarding the
// server's own state (or none, when its result had none). An envelope is
// honoured once (its id is recorded in the nonce store the replicas
// share), before it expires, for the same call: the retry then spends no
// rate-limit unit and is not asked again, as on stdio. One whose seal does
// not hold (forged, expired, used, another policy or session) is a new call
// with the server's state; one for another tool or other arguments is
// refused (ROUND_MISMATCH). Unlike a round on stdio, an envelope is used
// up by a retry that a later check refuses: its next attempt is a new call.

// sealedPrefix marks an envelope; the client treats it as opaque.
const sealedPrefix = "agentid.rs1."

const sealedLabel = "agentid sealed request state v1\x00"

// maxSealedState bounds the server state the core seals; a larger one is
// left as the server sent it, and its retry is a new call.
const maxSealedState = 64 << 10

// sealedHead is the fixed part of an envelope's payload: expiry, round, id,
// tool and arguments hashes, flags (approved, has a state).
const sealedHead = 8 + 1 + 16 + 16 + 16 + 1

const (
	sealedApproved = 1 << iota
	sealedHasState
)

// sealedRound is what an envelope says.
type sealedRound struct {
	ticket
	approved bool
	hasState bool
	state    string // the server's request state
}

var errSealBroken = errors.New("enforce: the request state's seal does not hold")

// seal returns the envelope of state (hasState false: the result had none)
// for the retry of d, decided in its round.
func (rt *roundTickets) seal(d decided, hasState bool, state string, now time.Time) string {
	r := sealedRound{ticket: ticket{expires: now.Add(roundTTL).Truncate(time.Second), round: d.round}, approved: d.approved, hasState: hasState, state: state}
	rand.Read(r.id[:])
	copy(r.tool[:], d.tool[:16])
	copy(r.args[:], d.args[:16])
	return rt.encodeSealed(r, d.policy, d.session)
}

// encodeSealed spells r, for the policy and session it binds.
func (rt *roundTickets) encodeSealed(r sealedRound, policyHash, sessionID string) string {
	payload := make([]byte, sealedHead, sealedHead+len(r.state))
	binary.BigEndian.PutUint64(payload[:8], uint64(r.expires.Unix()))
	payload[8] = byte(r.round)
	copy(payload[9:25], r.id[:])
	copy(payload[25:41], r.tool[:])
	copy(payload[41:57], r.args[:])
	if r.approved {
		payload[57] |= sealedApproved
	}
	if r.hasState {
		payload[57] |= sealedHasState
		payload = append(payload, r.state...)
	}
	var mac [sha256.Size]byte
	rt.mac(mac[:0], sealedLabel, payload, policyHash, sessionID)
	enc := base64.RawURLEncoding
	return sealedPrefix + enc.EncodeToString(payload) + "." + enc.EncodeToString(mac[:])
}

// open reads an envelope. ours is false when s is none (a state the
// server chose, or one no envelope decodes from); then r is empty. When
// ours, r holds the server's state even if the seal does not hold (err),
// since that state is what the server must see.
func (rt *roundTickets) open(s, policyHash, sessionID string, now time.Time) (r sealedRound, ours bool, err error) {
	rest, ok := strings.CutPrefix(s, sealedPrefix)
	if !ok || !base64URLText(rest) {
		return r, false, nil
	}
	p64, m64, ok := strings.Cut(rest, ".")
	enc := base64.RawURLEncoding.Strict()
	payload, err := enc.DecodeString(p64)
	if !ok || err != nil || len(payload) < sealedHead || len(payload) > sealedHead+maxSealedState {
		return r, false, nil
	}
	r.expires = time.Unix(int64(binary.BigEndian.Uint64(payload[:8])), 0)
	r.round = int(payload[8])
	copy(r.id[:], payload[9:25])
	copy(r.tool[:], payload[25:41])
	copy(r.args[:], payload[41:57])
	r.approved = payload[57]&sealedApproved != 0
	r.hasState = payload[57]&sealedHasState != 0
	r.state = string(payload[sealedHead:])
	if !r.hasState && r.state != "" {
		return sealedRound{}, false, nil
	}
	mac, err := enc.DecodeString(m64)
	var want [sha256.Size]byte
	if err != nil || !hmac.Equal(mac, rt.mac(want[:0], sealedLabel, payload, policyHash, sessionID)) {
		return r, true, errSealBroken
	}
	if !now.Before(r.expires) || r.round < 1 || r.round >= maxRoundsPerCall {
		return r, true, errSealBroken
	}
	return r, true, nil
}

// sealRound seals the request state of an input_required result answering
// d, in a conversation of one request, and rebuilds the message the client
// receives.
func (c *Core) sealRound(msg *jsonrpc.Message, d decided, v *Verdict) {
	state, hasState, _ := inputRequired(msg.Result)
	if !hasState && foldedMember(msg.Result, "requestState") != nil {
		// A request state that is not a string: left alone, its retry is a
		// new call.
		return
	}
	if len(state) > maxSealedState {
		return
	}
	env := c.tickets.seal(d, hasState, state, c.cfg.Now())
	msg.Result = withFoldedMember(msg.Result, "requestState", encodeString(env))
	v.ToClient = buildMessage(msg)
}

// openRound opens the envelope a retry carries in a conversation of one
// request, gives the server back its own state, and binds the retry to the
// round it continues (v.continues) when the seal holds. It returns the
// message to forward (without its token), and ok false when the call was
// answered: the envelope is this caller's but names another tool or other
// arguments.
func (c *Core) openRound(ctx context.Context, st *snapshot, msg *jsonrpc.Message, call jsonrpc.ToolCall, d decided, line []byte, auditArgs []byte, v *Verdict) ([]byte, bool) {
	state, hasState, _ := retryParams(msg.Params)
	if !hasState {
		return line, true
	}
	now := c.cfg.Now()
	r, ours, err := c.tickets.open(state, st.Hash, d.session, now)
	if !ours {
		return line, true
	}
	// The server never sees the envelope: it gets what it sent.
	var val []byte
	if r.hasState {
		val = encodeString(r.state)
	}
	msg.Params = withFoldedMember(msg.Params, "requestState", val)
	msg.Raw = buildMessage(msg)
	line, _, stripErr := stripToken(msg)
	if stripErr != nil {
		// stripToken accepted these params before; only requestState
		// changed.
		line = msg.Raw
	}
	if err != nil {
		return line, true
	}
	if sameTool, sameArgs := sameCall(r.tool, r.args, d); !sameTool || !sameArgs {
		refuseMismatch(msg, call.Name, !sameTool, auditArgs, v)
		return nil, false
	}
	fresh, err := c.tickets.nonces.CheckAndRecord(ctx, "sealed:"+hex.EncodeToString(r.id[:]), r.expires.Sub(now))
	if err != nil || !fresh {
		return line, true
	}
	d.round, d.approved = r.round, r.approved
	v.continues = &continuation{waitingRound: waitingRound{decided: d, expires: r.expires}}
	return line, true
}

// callerSession is the AIP session of the request's authenticated sender,
// "" when it presented no token.
func callerSession(v *Verdict) string {
	if v.caller.Token == nil {
		return ""
	}
	return v.caller.Token.SessionID
}

// foldedMember returns the raw value of the member of obj whose name folds
// to name (as a client library may match it), nil when there is none.
func foldedMember(obj []byte, name string) []byte {
	var v []byte
	_ = eachMember(obj, func(key, _, val []byte) error {
		if v == nil && strictjson.EqualFold(key, []byte(name)) {
			v = val
		}
		return nil
	})
	return v
}

// withFoldedMember returns obj with the member whose name folds to name
// given the value val, or removed when val is nil; val is added under name
// when there is no such member. obj passed strict decoding, so at most one
// member folds to name.
func withFoldedMember(obj []byte, name string, val []byte) []byte {
	out := []byte{'{'}
	found := false
	_ = eachMember(obj, func(key, lit, v []byte) error {
		if strictjson.EqualFold(key, []byte(name)) {
			found = true
			if val != nil {
				out = appendMember(out, lit, val)
			}
			return nil
		}
		out = appendMember(out, lit, v)
		return nil
	})
	if !found && val != nil {
		out = appendMember(out, encodeString(name), val)
	}
	return append(out, '}')
}
