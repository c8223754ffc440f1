package gateway

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/agentid/agentid/enforce"
)

// principal is who sent a request, as the gateway authenticated it.
type principal struct {
	Agent   string // the token's agent_id, "" without a valid token
	Session string // the token's AIP session id
	TokenID string
	Peer    string // the SPIFFE ID of a verified client certificate
}

// clientKey is what a client's sessions are counted under: its identity,
// or, without one, its address.
func clientKey(p principal, r *http.Request) string {
	if p != (principal{}) {
		return "id\x00" + p.Agent + "\x00" + p.Session + "\x00" + p.Peer
	}
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		host = r.RemoteAddr
	}
	return "addr\x00" + host
}

// owns reports whether p may use a session that owner opened: the same
// agent in the same AIP session, and the same client certificate. An
// anonymous session (no identity enabled, no certificate) is guarded by
// its id alone, as in plain MCP.
func (owner principal) owns(p principal) bool {
	return owner.Agent == p.Agent && owner.Session == p.Session && owner.Peer == p.Peer
}

// session is one MCP session (2025-11-25 Mcp-Session-Id) through the
// gateway: the conversation state the core keeps for it, and the id the
// upstream knows it by.
type session struct {
	id       string
	upstream string
	conv     *enforce.Session
	owner    principal
	client   string       // the key the per-client bound counts it under
	child    *child       // the stdio server of the session, nil for a remote upstream
	lastUsed atomic.Int64 // unix nanoseconds
	streams  atomic.Int32 // open GET streams
	sent     sentEvents
}

// traceKey keys the session ids shown in traces; per process, since a
// session lives in one replica.
var traceKey = func() []byte {
	k := make([]byte, 32)
	rand.Read(k)
	return k
}()

// traceID names the session in traces: a keyed hash of its id, which
// correlates the spans of one session without revealing the id.
func (s *session) traceID() string {
	m := hmac.New(sha256.New, traceKey)
	m.Write([]byte(s.id))
	return hex.EncodeToString(m.Sum(nil)[:12])
}

// sentEvents remembers what the gateway sent the client for the upstream's
// recent event ids. The transport cannot tell whether an event written to
// a stream that then broke reached the client; when the client resumes
// (Last-Event-ID) and the upstream replays the event, the client gets the
// same message again, decided once, rather than a response the core would
// now drop as answered.
type sentEvents struct {
	mu    sync.Mutex
	byID  map[string][]byte
	order []string
	size  int
}

// Bounds of sentEvents per session: the replay a resumption can need is
// the tail of one stream.
const (
	maxSentEvents = 256
	maxSentBytes  = 1 << 20
)

func (s *sentEvents) remember(id string, msg []byte) {
	if len(msg) > maxSentBytes {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.byID == nil {
		s.byID = make(map[string][]byte)
	}
	if _, dup := s.byID[id]; dup {
		return
	}
	s.byID[id] = append([]byte(nil), msg...)
	s.order = append(s.order, id)
	s.size += len(msg)
	for len(s.order) > maxSentEvents || s.size > maxSentBytes {
		old := s.order[0]
		s.order = s.order[1:]
		s.size -= len(s.byID[old])
		delete(s.byID, old)
	}
}

func (s *sentEvents) has(id string) bool {
	_, ok := s.lookup(id)
	return ok
}

func (s *sentEvents) lookup(id string) ([]byte, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	msg, ok := s.byID[id]
	return msg, ok
}

var (
	errTooManySessions          = errors.New("gateway: too many sessions")
	errTooManySessionsForClient = errors.New("gateway: too many sessions for this client")
)

// sessions is the gateway's session table, bounded in size; sessions idle
// for longer than idle are forgotten.
type sessions struct {
	mu   sync.Mutex
	byID map[string]*session
	max  int
	// perClient bounds the sessions of one client (its identity, or its
	// address when it has none), so that one cannot take them all.
	perClient int
	byClient  map[string]int
	idle      time.Duration
	now       func() time.Time
	swept     time.Time
}

func newSessions(max, perClient int, idle time.Duration, now func() time.Time) *sessions {
	return &sessions{byID: make(map[string]*session), max: max, perClient: perClient, byClient: make(map[string]int), idle: idle, now: now}
}

// newSessionID is 128 random bits: a session id is a bearer secret in
// plain MCP, so it must not be guessable.
func newSessionID() string {
	var b [16]byte
	rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// add records a new session and returns it, with the sessions that idled
// out to be closed upstream by the caller.
func (t *sessions) add(upstream string, conv *enforce.Session, owner principal, client string) (*session, []*session, error) {
	s := &session{id: newSessionID(), upstream: upstream, conv: conv, owner: owner, client: client}
	now := t.now()
	s.lastUsed.Store(now.UnixNano())
	t.mu.Lock()
	defer t.mu.Unlock()
	var expired []*session
	if len(t.byID) >= t.max || now.Sub(t.swept) > time.Minute {
		expired = t.sweepLocked(now)
	}
	if len(t.byID) >= t.max {
		return nil, expired, errTooManySessions
	}
	if t.byClient[client] >= t.perClient {
		return nil, expired, errTooManySessionsForClient
	}
	t.byID[s.id] = s
	t.byClient[client]++
	return s, expired, nil
}

func (t *sessions) sweepLocked(now time.Time) []*session {
	t.swept = now
	var out []*session
	for id, s := range t.byID {
		if s.streams.Load() == 0 && now.Sub(time.Unix(0, s.lastUsed.Load())) > t.idle {
			t.forgetLocked(id, s)
			out = append(out, s)
		}
	}
	return out
}

// get returns the session with id when p owns it; nil otherwise, so that a
// session of another identity is indistinguishable from none.
func (t *sessions) get(id string, p principal) *session {
	t.mu.Lock()
	s := t.byID[id]
	t.mu.Unlock()
	if s == nil || !s.owner.owns(p) {
		return nil
	}
	s.lastUsed.Store(t.now().UnixNano())
	return s
}

func (t *sessions) remove(s *session) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.byID[s.id] != s {
		return false
	}
	t.forgetLocked(s.id, s)
	return true
}

func (t *sessions) forgetLocked(id string, s *session) {
	delete(t.byID, id)
	if t.byClient[s.client]--; t.byClient[s.client] <= 0 {
		delete(t.byClient, s.client)
	}
}

// all returns every session, to close them.
func (t *sessions) all() []*session {
	t.mu.Lock()
	defer t.mu.Unlock()
	out := make([]*session, 0, len(t.byID))
	for _, s := range t.byID {
		out = append(out, s)
	}
	return out
}

func (t *sessions) count() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return len(t.byID)
}
