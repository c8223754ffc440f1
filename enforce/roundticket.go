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
	"hash"
	"io"
	"strings"
	"sync"
	"time"

	"github.com/agentid/agentid/jsonrpc"
	"github.com/agentid/agentid/store"
)

// Round tickets carry a multi-round-trip call across a validation server
// (`agentid proxy --server`). The server does not see the MCP server's
// input_required answers, so it cannot know that a tools/call retries an
// earlier round, and would spend a rate-limit unit on every round. Instead,
// every Check that allows a call issues a ticket; the proxy keeps it with
// the call and presents it (Call.Round) with the retry. A ticket is an
// HMAC over the call it was issued for (tool, arguments, policy, session):
// the server honours it once, before it expires, for the same call, and
// then spends no rate-limit unit. A ticket that is forged, expired, used,
// of another policy or another session is no ticket: the retry is a new
// call. One that names another tool or other arguments is refused, as a
// retry bound on stdio is (ROUND_MISMATCH).

// ticketVersion prefixes every ticket, so that a format change is refused
// rather than misread.
const ticketVersion = "r1."

// ticketLabel separates this HMAC's inputs from any other use of the key.
const ticketLabel = "agentid round ticket v1\x00"

// ticket is what a round ticket says.
type ticket struct {
	expires    time.Time
	round      int      // the round the retry continues (1: the first request)
	id         [16]byte // consumed on redemption
	tool, args [16]byte // of the raw name and the raw arguments
}

const ticketPayloadLen = 8 + 1 + 16 + 16 + 16

// roundTickets issues and redeems round tickets.
type roundTickets struct {
	key    []byte
	nonces store.NonceStore
	macs   sync.Pool // of hash.Hash: HMAC-SHA256 under key
}

// NewRoundKey returns a random key for Config.RoundKey.
func NewRoundKey() []byte {
	k := make([]byte, 32)
	rand.Read(k)
	return k
}

// issue returns the ticket of a retry that continues round of d, or "" when
// the call has had all the rounds it may share.
func (rt *roundTickets) issue(d decided, round int, sessionID string, now time.Time) string {
	if round >= maxRoundsPerCall {
		return ""
	}
	t := ticket{expires: now.Add(roundTTL).Truncate(time.Second), round: round}
	rand.Read(t.id[:])
	copy(t.tool[:], d.tool[:])
	copy(t.args[:], d.args[:])
	return rt.encode(t, d.policy, sessionID)
}

// encode spells t, for the policy and session it binds.
func (rt *roundTickets) encode(t ticket, policyHash, sessionID string) string {
	var payload [ticketPayloadLen]byte
	binary.BigEndian.PutUint64(payload[:8], uint64(t.expires.Unix()))
	payload[8] = byte(t.round)
	copy(payload[9:25], t.id[:])
	copy(payload[25:41], t.tool[:])
	copy(payload[41:57], t.args[:])
	var mac [sha256.Size]byte
	rt.mac(mac[:0], ticketLabel, payload[:], policyHash, sessionID)
	enc := base64.RawURLEncoding
	out := make([]byte, 0, len(ticketVersion)+enc.EncodedLen(len(payload))+1+enc.EncodedLen(len(mac)))
	out = append(out, ticketVersion...)
	out = enc.AppendEncode(out, payload[:])
	out = append(out, '.')
	out = enc.AppendEncode(out, mac[:])
	return string(out)
}

// mac appends to dst the HMAC of payload for the policy and session. The
// HMAC states are pooled: every allowed Check issues a ticket.
func (rt *roundTickets) mac(dst []byte, label string, payload []byte, policyHash, sessionID string) []byte {
	m, _ := rt.macs.Get().(hash.Hash)
	if m == nil {
		m = hmac.New(sha256.New, rt.key)
	}
	defer rt.macs.Put(m)
	m.Reset()
	io.WriteString(m, label)
	m.Write(payload)
	io.WriteString(m, policyHash)
	m.Write([]byte{0})
	io.WriteString(m, sessionID)
	return m.Sum(dst)
}

// errNoTicket: what was presented is no ticket of this call's policy and
// session, or no longer valid; the retry is a new call.
var errNoTicket = errors.New("enforce: not a valid round ticket")

// parse verifies s against the policy and session and returns what it says.
func (rt *roundTickets) parse(s, policyHash, sessionID string, now time.Time) (ticket, error) {
	var t ticket
	rest, ok := strings.CutPrefix(s, ticketVersion)
	if !ok || len(s) > 256 || !base64URLText(rest) {
		return t, errNoTicket
	}
	p64, m64, ok := strings.Cut(rest, ".")
	if !ok {
		return t, errNoTicket
	}
	// Strict: one ticket has one spelling (no stray trailing bits).
	enc := base64.RawURLEncoding.Strict()
	payload, err := enc.DecodeString(p64)
	if err != nil || len(payload) != ticketPayloadLen {
		return t, errNoTicket
	}
	mac, err := enc.DecodeString(m64)
	var want [sha256.Size]byte
	if err != nil || !hmac.Equal(mac, rt.mac(want[:0], ticketLabel, payload, policyHash, sessionID)) {
		return t, errNoTicket
	}
	t.expires = time.Unix(int64(binary.BigEndian.Uint64(payload[:8])), 0)
	t.round = int(payload[8])
	copy(t.id[:], payload[9:25])
	copy(t.tool[:], payload[25:41])
	copy(t.args[:], payload[41:57])
	if !now.Before(t.expires) || t.round < 1 || t.round >= maxRoundsPerCall {
		return t, errNoTicket
	}
	return t, nil
}

// redeem binds a Check to the round its ticket continues (v.continues),
// once. It reports false when the call was answered: the ticket is this
// session's but names another tool or other arguments.
func (c *Core) redeem(ctx context.Context, st *snapshot, msg *jsonrpc.Message, call string, v *Verdict) bool {
	cs := v.check
	if cs == nil || cs.round == "" || v.continues != nil {
		return true
	}
	d := cs.decided
	now := c.cfg.Now()
	t, err := c.tickets.parse(cs.round, st.Hash, cs.sessionID(), now)
	if err != nil {
		c.cfg.Log.Debug("round ticket not honoured: the retry is a new call", "tool", call)
		return true
	}
	if sameTool, sameArgs := sameCall(t.tool, t.args, d); !sameTool || !sameArgs {
		refuseMismatch(msg, call, !sameTool, nil, v)
		return false
	}
	fresh, err := c.tickets.nonces.CheckAndRecord(ctx, "round:"+hex.EncodeToString(t.id[:]), t.expires.Sub(now))
	if err != nil || !fresh {
		// Used already, or the store cannot tell: a new call, which the
		// rate limit and its failover mode then decide.
		return true
	}
	d.round = t.round
	v.continues = &continuation{waitingRound: waitingRound{decided: d, expires: t.expires}}
	return true
}

// nextTicket is the ticket a Check's answer carries: for the retry of this
// call, should the MCP server answer it with input_required.
func (c *Core) nextTicket(v *Verdict) string {
	cs := v.check
	round := 1
	if v.continues != nil {
		round = v.continues.round + 1
	}
	return c.tickets.issue(cs.decided, round, cs.sessionID(), c.cfg.Now())
}

func (cs *checkState) sessionID() string {
	if cs.claims == nil {
		return ""
	}
	return cs.claims.SessionID
}

// base64URLText reports whether s holds only base64url characters and the
// dots between the parts: Go's decoders skip CR and LF, which would give
// one ticket many spellings.
func base64URLText(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('A' <= c && c <= 'Z' || 'a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '-' || c == '_' || c == '.') {
			return false
		}
	}
	return true
}
