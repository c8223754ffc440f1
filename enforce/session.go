package enforce

import (
	"bytes"
	"encoding/json"
	"strconv"
	"strings"
	"sync"

	"github.com/agentid/agentid/policy"
)

// Session is the state of one conversation between a client and a server:
// the ids in flight in both directions and the tools the server advertised.
// It is safe for concurrent use.
type Session struct {
	mu sync.Mutex
	// pendingClient maps the id of every forwarded client request to its
	// normalized method, so that the server's response can be matched (and
	// tools/list results filtered).
	pendingClient map[string]string
	// pendingServer holds ids of server→client requests awaiting the
	// client's response; a client response with any other id is dropped.
	pendingServer map[string]struct{}
	tools         toolCatalog
	// exactNames: see NewRequestSession.
	exactNames bool
	// asking holds the calls waiting for a human's answer, by id key, so
	// that a client's notifications/cancelled can end them.
	asking map[string]*Approval
	// rounds binds the rounds of multi-round-trip calls (rounds.go).
	rounds rounds
}

// NewRequestSession returns the state of a conversation of one request
// (an HTTP request outside any MCP session, as every 2026-07-28 request
// is). Its server's tools/list is never seen, so the check that a call's
// raw name is exactly one the server advertised cannot apply; instead a
// tools/call is forwarded only under a raw name the policy spells exactly
// (an "ECHO" is not the "echo" the policy allowed, and may be another tool
// of the server).
func NewRequestSession() *Session {
	s := NewSession()
	s.exactNames = true
	return s
}

// NewSession returns the state of a new conversation. Its maps are made
// on first use: a conversation of one request (NewRequestSession, every
// 2026-07-28 request) needs one of them at most.
func NewSession() *Session {
	return &Session{}
}

// reserve records a client request's id as in flight for method, unless a
// request with the same id already is.
func (s *Session) reserve(key, method string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, dup := s.pendingClient[key]; dup {
		return false
	}
	if s.pendingClient == nil {
		s.pendingClient = make(map[string]string)
	}
	s.pendingClient[key] = method
	return true
}

func (s *Session) inFlight(key string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	_, ok := s.pendingClient[key]
	return ok
}

func (s *Session) release(key string) {
	s.mu.Lock()
	delete(s.pendingClient, key)
	delete(s.rounds.inflight, key)
	s.mu.Unlock()
}

// answered takes the client request a server response answers.
func (s *Session) answered(key string) (method string, ok bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	method, ok = s.pendingClient[key]
	delete(s.pendingClient, key)
	delete(s.rounds.inflight, key)
	return method, ok
}

func (s *Session) serverAsked(key string) {
	s.mu.Lock()
	if s.pendingServer == nil {
		s.pendingServer = make(map[string]struct{})
	}
	s.pendingServer[key] = struct{}{}
	s.mu.Unlock()
}

// clientAnswered takes the server request a client response answers.
func (s *Session) clientAnswered(key string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	_, ok := s.pendingServer[key]
	delete(s.pendingServer, key)
	return ok
}

// idKey canonicalizes a JSON-RPC id the way peers compare ids, so that two
// ids a server could take for one are one key: a string by its decoded
// value ("\u0061" is "a"), a number by its value as an IEEE 754 double, as
// JavaScript and most JSON libraries read it (-0 is 0, and integers beyond
// 2^53 that round to the same double collide). jsonrpc.Decode admits only
// strings and integers.
func idKey(raw json.RawMessage) string {
	raw = bytes.TrimSpace(raw)
	if len(raw) > 0 && raw[0] == '"' {
		var s string
		if json.Unmarshal(raw, &s) == nil {
			return "s" + s
		}
	}
	digits := raw
	if len(digits) > 0 && digits[0] == '-' {
		digits = digits[1:]
	}
	if len(digits) <= 15 && isDigits(digits) {
		// An integer of at most 15 digits is exact as a double: its
		// literal is its value, but for the sign of zero.
		if raw[0] == '-' && allZeros(digits) {
			return "n0"
		}
		return "n" + string(raw)
	}
	if f, err := strconv.ParseFloat(string(raw), 64); err == nil {
		if f == 0 {
			f = 0 // -0
		}
		return "n" + strconv.FormatFloat(f, 'g', -1, 64)
	}
	return "r" + string(raw)
}

// toolCatalog remembers the tools the server advertised, so that a tools/call
// reaches exactly a tool the policy decided on (DESIGN.md decision 2) and
// pinned schema hashes can be checked.
type toolCatalog struct {
	seen   bool
	byRaw  map[string]json.RawMessage // raw name → definition
	byNorm map[string]int             // normalized name → number of raw names
	hashes map[string]string          // raw name + "\x00" + alg → hash
	dup    map[string]bool            // raw names listed twice in one response
}

func (c *toolCatalog) reset() { *c = toolCatalog{} }

func (c *toolCatalog) add(name string, def json.RawMessage) {
	if c.byRaw == nil {
		c.byRaw = make(map[string]json.RawMessage)
		c.byNorm = make(map[string]int)
		c.hashes = make(map[string]string)
	}
	if _, ok := c.byRaw[name]; !ok {
		c.byNorm[policy.NormalizeName(name)]++
	}
	c.byRaw[name] = def
	for k := range c.hashes {
		if strings.HasPrefix(k, name+"\x00") {
			delete(c.hashes, k)
		}
	}
	c.seen = true
}

// twice records that one tools/list response advertised name more than once.
func (c *toolCatalog) twice(name string) {
	if c.dup == nil {
		c.dup = make(map[string]bool)
	}
	c.dup[name] = true
}

// ambiguous reports whether a call to name could reach more than one tool
// definition: the name was listed twice, or another advertised name
// normalizes to the same one.
func (c *toolCatalog) ambiguous(name string) bool {
	return c.dup[name] || c.byNorm[policy.NormalizeName(name)] > 1
}

// hash returns the schema hash of an advertised tool, "" when unknown.
func (c *toolCatalog) hash(name, alg string) string {
	def, ok := c.byRaw[name]
	if !ok {
		return ""
	}
	key := name + "\x00" + alg
	if h, ok := c.hashes[key]; ok {
		return h
	}
	h, err := policy.ToolSchemaHash(def, alg)
	if err != nil {
		return ""
	}
	c.hashes[key] = h
	return h
}

// toolDefinition is the server's definition of the tool with this raw
// name, nil before its tools/list or for a tool it did not advertise.
func (s *Session) toolDefinition(name string) json.RawMessage {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.tools.byRaw[name]
}

// schemaHash is the observed hash for a tool whose rule pins one.
func (s *Session) schemaHash(e *policy.Engine, name string) string {
	alg := e.SchemaHashAlg(name)
	if alg == "" {
		return ""
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.tools.hash(name, alg)
}

// advertised reports what the session knows of a tool name: whether the
// server's tools/list has been seen, whether it named this exact raw name,
// and whether two advertised names normalize to the same one.
func (s *Session) advertised(name string) (seen, advertised, ambiguous bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	_, advertised = s.tools.byRaw[name]
	return s.tools.seen, advertised, s.tools.ambiguous(name)
}

func isDigits(b []byte) bool {
	for _, c := range b {
		if c < '0' || c > '9' {
			return false
		}
	}
	return len(b) > 0
}

func allZeros(b []byte) bool {
	for _, c := range b {
		if c != '0' {
			return false
		}
	}
	return true
}

// waitFor registers a call waiting for approval.
func (s *Session) waitFor(key string, a *Approval) {
	s.mu.Lock()
	if s.asking == nil {
		s.asking = make(map[string]*Approval)
	}
	s.asking[key] = a
	s.mu.Unlock()
}

// cancelApproval ends the approval pending under key, if any: its Obtain
// returns at once and Resolve carries nothing out.
func (s *Session) cancelApproval(key string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	a, ok := s.asking[key]
	if !ok {
		return false
	}
	delete(s.asking, key)
	a.cancelled = true
	if a.stop != nil {
		a.stop()
	}
	return true
}

// answered ends the wait of an approval and reports whether it was
// cancelled meanwhile.
func (s *Session) approvalDone(key string, a *Approval) (cancelled bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.asking[key] == a {
		delete(s.asking, key)
	}
	return a.cancelled
}
