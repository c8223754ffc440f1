package gateway

import (
	"encoding/json"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"

	"github.com/agentid/agentid/enforce"
	"github.com/agentid/agentid/jsonrpc"
)

// Requests outside any session to a stdio server. A 2026-07-28 client
// keeps no session: each request stands alone, with its protocol version
// and capabilities in its _meta. In front of a stdio server the gateway
// gives each client (its identity, or its address without one) one server
// process, which its requests share, as they would share a remote server.
// The server is counted and idles out like a session's, but the client
// never learns its session id. Each request is decided in its own
// conversation (enforce.NewRequestSession), as in front of a remote
// server, and reaches the server under an id of the gateway's: the ids of
// two requests of one client may be equal, since each is alone.

// sharedServers are the servers of the clients outside sessions.
type sharedServers struct {
	mu       sync.Mutex
	byClient map[string]*session
	next     atomic.Uint64
}

// sharedSession returns the client's server, started on its first request.
func (g *Gateway) sharedSession(r *http.Request, who principal) (*session, error) {
	key := clientKey(who, r)
	t := &g.shared
	t.mu.Lock()
	defer t.mu.Unlock()
	if s := t.byClient[key]; s != nil && g.sessions.get(s.id, who) != nil {
		return s, nil
	}
	conv := enforce.NewSession()
	ch, err := g.spawn(conv, who)
	if err != nil {
		return nil, err
	}
	s, expired, err := g.sessions.add("", conv, who, key)
	g.closeUpstream(r.Context(), expired)
	if err != nil {
		go ch.close()
		return nil, err
	}
	s.child = ch
	ch.shared.Store(true)
	ch.session.Store(s)
	if t.byClient == nil {
		t.byClient = make(map[string]*session)
	}
	t.byClient[key] = s
	go func() {
		// A server that exits or idles out is started anew by the
		// client's next request.
		<-ch.done
		g.sessions.remove(s)
		ch.close()
		t.mu.Lock()
		if t.byClient[key] == s {
			delete(t.byClient, key)
		}
		t.mu.Unlock()
	}()
	return s, nil
}

// postShared carries out a message outside any session on the client's
// shared server.
func (g *Gateway) postShared(w http.ResponseWriter, r *http.Request, x *exchange, v *enforce.Verdict) {
	id, _, isRequest := v.Request()
	s, err := g.sharedSession(r, x.who)
	if err != nil {
		status, why := http.StatusBadGateway, "MCP server could not be started"
		if err == errTooManySessions || err == errTooManySessionsForClient {
			status, why = sessionRefusal(err)
		} else {
			g.cfg.Log.Error("starting the MCP server failed", "error", err)
		}
		g.failed(w, r, x, id, isRequest, status, why)
		return
	}
	ch := s.child
	if !isRequest {
		if err := ch.write(v.ToServer); err != nil {
			httpError(w, http.StatusBadGateway, "MCP server unavailable")
			return
		}
		w.WriteHeader(http.StatusAccepted)
		return
	}
	own := []byte(strconv.Quote("agentid-" + strconv.FormatUint(g.shared.next.Add(1), 10)))
	line := withID(v.ToServer, own)
	wt, cancel := ch.expectAs(own, line, x.who, x.conv, id)
	defer cancel()
	if err := ch.write(line); err != nil {
		g.failed(w, r, x, id, isRequest, http.StatusBadGateway, "MCP server unavailable")
		return
	}
	g.streamStdio(w, r, x, ch, wt, id)
}

// sharedWaiter returns the request outside any session that the server's
// message line answers, with the key the server knows it by; nil for any
// other message, and for every message of a session's server.
func (ch *child) sharedWaiter(line []byte) (*waiter, string) {
	if !ch.shared.Load() {
		return nil, ""
	}
	id, ok := jsonrpc.IDFromHead(line)
	if !ok || len(id) == 0 {
		return nil, ""
	}
	key := enforce.IDKey(id)
	ch.mu.Lock()
	defer ch.mu.Unlock()
	w := ch.waiters[key]
	if w == nil || w.conv == nil {
		return nil, ""
	}
	return w, key
}

// deliver hands the answer to the request waiting under key. A response
// the core withheld leaves it waiting, as in a session.
func (ch *child) deliver(key string, w *waiter, msg []byte) {
	if msg == nil {
		return
	}
	ch.mu.Lock()
	defer ch.mu.Unlock()
	if ch.waiters[key] != w {
		return // the client went away
	}
	ch.forgetLocked(key, w)
	w.reply <- append([]byte(nil), msg...)
}

// withID is the message line with its id replaced by id, its other members
// as they were. A line that does not decode strictly stays as it is, for the
// core to refuse.
func withID(line, id []byte) []byte {
	msg, err := jsonrpc.Decode(line)
	if err != nil {
		return line
	}
	out := append([]byte(`{"jsonrpc":"2.0","id":`), id...)
	switch {
	case msg.Kind != jsonrpc.KindResponse:
		method, _ := json.Marshal(msg.Method)
		out = append(append(out, `,"method":`...), method...)
		if msg.Params != nil {
			out = append(append(out, `,"params":`...), msg.Params...)
		}
	case msg.Result != nil:
		out = append(append(out, `,"result":`...), msg.Result...)
	default:
		out = append(append(out, `,"error":`...), msg.Error...)
	}
	return append(out, '}')
}
