package gateway

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/agentid/agentid/enforce"
	"github.com/agentid/agentid/jsonrpc"
)

// Command is a stdio MCP server the gateway spawns, one process per
// session, in place of a remote upstream.
type Command struct {
	Path string
	Args []string
	// Env is the server's environment; nil is the gateway's without its
	// own telemetry settings (OTEL_*: OTLP endpoints and the credential
	// headers of its exporter are not the server's).
	Env []string
	Dir string
	// Stderr receives the servers' stderr; nil discards it.
	Stderr io.Writer
	// ShutdownGrace bounds each step of ending a server: its stdin is
	// closed, then it gets SIGTERM, then SIGKILL (its process group each
	// time); 2s when 0.
	ShutdownGrace time.Duration
}

// queueSize bounds the server messages of a session waiting for a stream
// to carry them (notifications, server requests), per stream and before
// any stream is open.
const queueSize = 256

// maxQueuedBytes bounds the bytes of one session's server messages waiting
// for a stream, whatever their number: a server writing notifications
// while no stream reads them must not grow the gateway's memory.
const maxQueuedBytes = 16 << 20

// waiter is a POST waiting for the response to its request, and the
// stream that carries the server's other messages meanwhile.
type waiter struct {
	reply    chan []byte
	events   chan []byte
	progress string    // the request's progress token, "" for none
	who      principal // who sent the request, for the records of its response
	// For a request outside any session to a shared server (shared.go):
	// its own conversation, and the id the client gave it (the server
	// knows it by one of the gateway's).
	conv     *enforce.Session
	clientID []byte
}

// child is the stdio MCP server of one session. A reader goroutine decides
// each line it writes and routes what the core lets through, keeping the
// server's order on every stream: a response to the POST waiting for it, a
// progress notification to the POST whose request named its token, and
// anything else to the session's GET stream, else to the oldest waiting
// POST, else into a bounded queue for the next stream that opens.
type child struct {
	g     *Gateway
	cmd   *exec.Cmd
	pgid  int
	grace time.Duration
	stdin *os.File

	writeMu sync.Mutex
	// mu guards the destinations of the server's messages (see route).
	mu       sync.Mutex
	waiters  map[string]*waiter // by the id key of the request
	order    []*waiter          // the requests waiting, oldest first
	progress map[string]*waiter // by progress token
	listener chan []byte        // the session's GET stream, nil when none
	pending  [][]byte           // messages no stream has taken yet
	done     chan struct{}      // closed when the server's output ended
	exited   chan struct{}
	session  atomic.Pointer[session] // set once the session exists
	// shared: the server of a client's requests outside any session
	// (shared.go).
	shared atomic.Bool
	queued atomic.Int64 // bytes waiting in pending and the streams' channels
	stop   sync.Once
}

// spawn starts the server for a new session; conv is the session's
// conversation state, owner who opened it.
func (g *Gateway) spawn(conv *enforce.Session, owner principal) (*child, error) {
	c := g.cfg.Command
	serverIn, toServer, err := os.Pipe()
	if err != nil {
		return nil, fmt.Errorf("gateway: %w", err)
	}
	fromServer, serverOut, err := os.Pipe()
	if err != nil {
		serverIn.Close()
		toServer.Close()
		return nil, fmt.Errorf("gateway: %w", err)
	}
	cmd := exec.Command(c.Path, c.Args...)
	cmd.Env, cmd.Dir = c.Env, c.Dir
	if cmd.Env == nil {
		cmd.Env = withoutPrefix(os.Environ(), "OTEL_")
	}
	cmd.Stdin, cmd.Stdout, cmd.Stderr = serverIn, serverOut, c.Stderr
	// Its own group, so that a stop reaches everything it starts; and it
	// must not outlive the gateway.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	grace := c.ShutdownGrace
	if grace <= 0 {
		grace = 2 * time.Second
	}
	cmd.WaitDelay = grace
	err = cmd.Start()
	serverIn.Close()
	serverOut.Close()
	if err != nil {
		toServer.Close()
		fromServer.Close()
		return nil, fmt.Errorf("gateway: starting the MCP server: %w", err)
	}
	ch := &child{g: g, cmd: cmd, pgid: cmd.Process.Pid, grace: grace, stdin: toServer,
		waiters: make(map[string]*waiter), progress: make(map[string]*waiter),
		done: make(chan struct{}), exited: make(chan struct{})}
	go func() { cmd.Wait(); close(ch.exited) }()
	go ch.read(fromServer, conv, owner)
	return ch, nil
}

// read decides every message the server writes until its output ends.
func (ch *child) read(out *os.File, conv *enforce.Session, owner principal) {
	defer close(ch.done)
	defer out.Close()
	g := ch.g
	rd := jsonrpc.NewReader(out, g.cfg.MaxBodyBytes)
	ctx := context.Background()
	for {
		line, err := rd.ReadLine()
		var v enforce.Verdict
		switch {
		case errors.Is(err, jsonrpc.ErrLineTooLong):
			v = g.core.ServerOversized(conv, rd.Head())
		case err != nil:
			return
		default:
			if w, own := ch.sharedWaiter(line); w != nil {
				// The answer to a request outside any session: decided in
				// that request's conversation, under the client's id.
				v = g.core.FromServer(ctx, w.conv, withID(line, w.clientID))
				if _, ok := v.Answers(); ok {
					g.carryOut(ctx, &v, w.who, nil)
					ch.deliver(own, w, v.ToClient)
					continue
				}
				break
			}
			v = g.core.FromServer(ctx, conv, line)
		}
		// The records of a response name who sent its request, not who
		// opened the session.
		who := owner
		if id, ok := v.Answers(); ok {
			ch.mu.Lock()
			if w := ch.waiters[enforce.IDKey(id)]; w != nil {
				who = w.who
			}
			ch.mu.Unlock()
		}
		g.carryOut(ctx, &v, who, ch.session.Load())
		if v.ToServer != nil {
			ch.write(v.ToServer)
		}
		if v.ToClient == nil {
			continue
		}
		msg := append([]byte(nil), v.ToClient...)
		id, isResponse := v.Answers()
		ch.route(msg, id, isResponse)
	}
}

// route delivers one message the core let through (see child).
func (ch *child) route(msg, id []byte, isResponse bool) {
	ch.mu.Lock()
	defer ch.mu.Unlock()
	if isResponse {
		key := enforce.IDKey(id)
		if w := ch.waiters[key]; w != nil {
			ch.forgetLocked(key, w)
			w.reply <- msg
		}
		return // nobody waits any more (the client went away)
	}
	var dest chan []byte
	if tok := progressToken(msg); tok != "" && ch.progress[tok] != nil {
		dest = ch.progress[tok].events
	} else if ch.listener != nil {
		dest = ch.listener
	} else if len(ch.order) > 0 {
		dest = ch.order[0].events
	}
	if ch.queued.Load()+int64(len(msg)) > maxQueuedBytes {
		ch.g.cfg.Log.Warn("the server's messages wait for a stream beyond the limit; one dropped", "limit_bytes", maxQueuedBytes)
		return
	}
	if dest == nil {
		if len(ch.pending) >= queueSize {
			ch.g.cfg.Log.Warn("no stream takes the server's messages; one dropped", "queued", queueSize)
			return
		}
		ch.pending = append(ch.pending, msg)
		ch.queued.Add(int64(len(msg)))
		return
	}
	select {
	case dest <- msg:
		ch.queued.Add(int64(len(msg)))
	default:
		ch.g.cfg.Log.Warn("a stream does not keep up with the server's messages; one dropped", "queued", queueSize)
	}
}

// taken accounts for a queued message a stream took.
func (ch *child) taken(msg []byte) { ch.queued.Add(-int64(len(msg))) }

// discard drops what is left in a stream's channel when it ends.
func (ch *child) discard(events chan []byte) {
	for {
		select {
		case m := <-events:
			ch.taken(m)
		default:
			return
		}
	}
}

// progressToken is the token of a notifications/progress message, "" for
// any other message.
func progressToken(msg []byte) string {
	if !bytes.Contains(msg, []byte("notifications/progress")) {
		return ""
	}
	var m struct {
		Method string `json:"method"`
		Params struct {
			Token json.RawMessage `json:"progressToken"`
		} `json:"params"`
	}
	if json.Unmarshal(msg, &m) != nil || m.Method != "notifications/progress" {
		return ""
	}
	return enforce.IDKey(m.Params.Token)
}

// requestProgressToken is the progress token a request names in
// params._meta, "" for none.
func requestProgressToken(body []byte) string {
	if !bytes.Contains(body, []byte("progressToken")) {
		return ""
	}
	var m struct {
		Params struct {
			Meta struct {
				Token json.RawMessage `json:"progressToken"`
			} `json:"_meta"`
		} `json:"params"`
	}
	if json.Unmarshal(body, &m) != nil || len(m.Params.Meta.Token) == 0 {
		return ""
	}
	return enforce.IDKey(m.Params.Meta.Token)
}

func (ch *child) forgetLocked(key string, w *waiter) {
	if ch.waiters[key] == w {
		delete(ch.waiters, key)
	}
	if w.progress != "" && ch.progress[w.progress] == w {
		delete(ch.progress, w.progress)
	}
	for i, o := range ch.order {
		if o == w {
			ch.order = append(ch.order[:i], ch.order[i+1:]...)
			break
		}
	}
}

// expect registers the POST waiting for the response to id, whose request
// is body; cancel ends the wait. Messages queued before any stream was open
// go to it first.
func (ch *child) expect(id, body []byte, who principal) (w *waiter, cancel func()) {
	return ch.expectAs(id, body, who, nil, nil)
}

// expectAs is expect for a request outside any session (shared.go): conv
// is its conversation, clientID the id its client gave it.
func (ch *child) expectAs(id, body []byte, who principal, conv *enforce.Session, clientID []byte) (w *waiter, cancel func()) {
	key := enforce.IDKey(id)
	w = &waiter{reply: make(chan []byte, 1), events: make(chan []byte, queueSize), progress: requestProgressToken(body), who: who,
		conv: conv, clientID: clientID}
	ch.mu.Lock()
	ch.waiters[key] = w
	ch.order = append(ch.order, w)
	if w.progress != "" {
		ch.progress[w.progress] = w
	}
	if ch.listener == nil {
		for _, m := range ch.pending {
			w.events <- m
		}
		ch.pending = nil
	}
	ch.mu.Unlock()
	return w, func() {
		ch.mu.Lock()
		ch.forgetLocked(key, w)
		ch.mu.Unlock()
		ch.discard(w.events)
	}
}

// listen makes events the session's GET stream; stop ends it.
func (ch *child) listen() (events chan []byte, stop func()) {
	events = make(chan []byte, queueSize)
	ch.mu.Lock()
	if ch.listener != nil {
		ch.mu.Unlock()
		return nil, func() {}
	}
	ch.listener = events
	for _, m := range ch.pending {
		events <- m
	}
	ch.pending = nil
	ch.mu.Unlock()
	return events, func() {
		ch.mu.Lock()
		if ch.listener == events {
			ch.listener = nil
		}
		ch.mu.Unlock()
		ch.discard(events)
	}
}

// write sends one message to the server.
// A server that does not take a message within writeTimeout is not
// reading: the request is answered with an error rather than left holding
// the session's pipe.
const writeTimeout = 30 * time.Second

func (ch *child) write(msg []byte) error {
	ch.writeMu.Lock()
	defer ch.writeMu.Unlock()
	b := make([]byte, 0, len(msg)+1)
	b = append(append(b, msg...), '\n')
	ch.stdin.SetWriteDeadline(time.Now().Add(writeTimeout))
	_, err := ch.stdin.Write(b)
	return err
}

// close ends the server as the MCP stdio transport prescribes: stdin
// closed, then SIGTERM and SIGKILL to its group, each after the grace
// period; it returns once the server exited.
func (ch *child) close() {
	ch.stop.Do(func() {
		// Not under writeMu: a write blocked on a server that stopped
		// reading must not keep it from being stopped (Close wakes it).
		ch.stdin.Close()
		for _, sig := range []syscall.Signal{syscall.SIGTERM, syscall.SIGKILL} {
			select {
			case <-ch.exited:
				syscall.Kill(-ch.pgid, syscall.SIGKILL) // what it left behind
				return
			case <-time.After(ch.grace):
				syscall.Kill(-ch.pgid, sig)
			}
		}
		<-ch.exited
	})
}

// postStdio carries out an allowed client message in a stdio session.
func (g *Gateway) postStdio(w http.ResponseWriter, r *http.Request, x *exchange, v *enforce.Verdict) {
	id, method, isRequest := v.Request()
	fresh := x.sess == nil
	if x.sess == nil {
		if !isRequest || method != "initialize" {
			// Outside any session (MCP 2026-07-28): the client's server,
			// shared by its requests.
			g.postShared(w, r, x, v)
			return
		}
		ch, err := g.spawn(x.conv, x.who)
		if err != nil {
			g.cfg.Log.Error("starting the MCP server failed", "error", err)
			g.failed(w, r, x, id, isRequest, http.StatusBadGateway, "MCP server could not be started")
			return
		}
		s, expired, err := g.sessions.add("", x.conv, x.who, clientKey(x.who, r))
		g.closeUpstream(r.Context(), expired)
		if err != nil {
			go ch.close()
			status, why := sessionRefusal(err)
			g.failed(w, r, x, id, isRequest, status, why)
			return
		}
		s.child = ch
		ch.session.Store(s)
		x.sess = s
		go func() {
			// A server that exits ends its session.
			<-ch.done
			g.sessions.remove(s)
			ch.close()
		}()
	}
	ch := x.sess.child
	w.Header().Set(sessionHeader, x.sess.id)
	if !isRequest {
		if err := ch.write(v.ToServer); err != nil {
			httpError(w, http.StatusBadGateway, "MCP server unavailable")
			return
		}
		w.WriteHeader(http.StatusAccepted)
		return
	}
	wt, cancel := ch.expect(id, v.ToServer, x.who)
	defer cancel()
	if err := ch.write(v.ToServer); err != nil {
		g.failed(w, r, x, id, isRequest, http.StatusBadGateway, "MCP server unavailable")
		return
	}
	if method == "initialize" && fresh {
		// Answered as one JSON message: the session starts with it. A
		// session whose id the client never received is ended at once,
		// server and all: nobody could ever DELETE it.
		select {
		case msg := <-wt.reply:
			writeMessage(w, http.StatusOK, msg)
			return
		case <-ch.done:
			g.failed(w, r, x, id, isRequest, http.StatusBadGateway, "MCP server exited")
		case <-r.Context().Done():
			g.failedQuietly(r, x, id, isRequest, "client went away")
		}
		g.sessions.remove(x.sess)
		go ch.close()
		return
	}
	g.streamStdio(w, r, x, x.sess.child, wt, id)
}

// streamStdio answers a request with an event stream: the server's other
// messages while it runs (progress, its own requests), then the response
// to id. wt nil is a GET stream, which carries only the other messages.
func (g *Gateway) streamStdio(w http.ResponseWriter, r *http.Request, x *exchange, ch *child, wt *waiter, id []byte) {
	var reply, events <-chan []byte
	if wt != nil {
		reply, events = wt.reply, wt.events
	} else {
		ev, stop := ch.listen()
		if ev == nil {
			httpError(w, http.StatusTooManyRequests, "a stream is open for this session")
			return
		}
		defer stop()
		events = ev
	}
	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-cache")
	rc := http.NewResponseController(w)
	w.WriteHeader(http.StatusOK)
	if wt == nil && g.flush(rc) != nil {
		return // a GET stream opens at once; a POST's with its first event
	}
	var out []byte
	send := func(msg []byte, last bool) error {
		out = appendEvent(out[:0], event{}, msg)
		return g.write(w, rc, out, last)
	}
	for {
		select {
		case msg := <-reply:
			// What the server wrote before its response goes first.
			for drained := false; !drained; {
				select {
				case m := <-events:
					ch.taken(m)
					if send(m, false) != nil {
						return
					}
				default:
					drained = true
				}
			}
			send(msg, true) // the handler returns: the response ends with it
			return
		case msg := <-events:
			ch.taken(msg)
			if send(msg, false) != nil {
				return
			}
		case <-ch.done:
			if reply != nil {
				// The server exited without answering: the client is told
				// rather than left to its own timeout.
				fv := g.core.ServerFailed(x.conv, id, "MCP server exited")
				g.carryOut(r.Context(), &fv, x.who, x.sess)
				if fv.ToClient != nil {
					send(fv.ToClient, true)
				}
			}
			return
		case <-r.Context().Done():
			return
		}
	}
}

// withoutPrefix is env without the variables whose names start with prefix.
func withoutPrefix(env []string, prefix string) []string {
	out := env[:0:0]
	for _, kv := range env {
		if !strings.HasPrefix(kv, prefix) {
			out = append(out, kv)
		}
	}
	return out
}
