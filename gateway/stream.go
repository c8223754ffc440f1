package gateway

import (
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"time"

	"github.com/agentid/agentid/dlp"
	"github.com/agentid/agentid/enforce"
)

// stream relays an upstream event stream to the client, each event's
// message through the core's response path. It ends when the upstream
// ends the stream, the client goes away, a write to the client does not
// finish within StreamWriteTimeout (a reader that stopped reading), or when the
// request's context ends (a GET stream's MaxStreamDuration).
//
// A GET stream's headers are sent at once (the client waits for the stream
// to open); a POST's go with its first event, saving a write and a client
// wake-up per request.
func (g *Gateway) stream(w http.ResponseWriter, r *http.Request, x *exchange, resp *http.Response, openNow bool) {
	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-cache")
	h.Set("X-Accel-Buffering", "no")
	rc := http.NewResponseController(w)
	w.WriteHeader(http.StatusOK)
	if openNow {
		if err := g.flush(rc); err != nil {
			return
		}
	}
	rd := newSSEReader(resp.Body, g.cfg.MaxBodyBytes)
	defer rd.release()
	var out []byte
	for {
		ev, err := rd.next()
		ev = g.passable(ev)
		if r.Context().Err() != nil {
			// The client is gone: what the upstream sent meanwhile stays
			// unread, for the stream the client resumes (Last-Event-ID).
			return
		}
		var v enforce.Verdict
		var tooLarge *errEventTooLarge
		switch {
		case errors.As(err, &tooLarge):
			v = g.core.ServerOversized(x.conv, tooLarge.head)
		case err != nil:
			if !errors.Is(err, io.EOF) && r.Context().Err() == nil {
				g.cfg.Log.Debug("upstream event stream ended", "error", err)
			}
			return
		case ev.HasID && x.sess != nil && x.sess.sent.has(ev.ID):
			// A replay of an event already decided and sent.
			msg, _ := x.sess.sent.lookup(ev.ID)
			if g.write(w, rc, appendEvent(out[:0], ev, msg), rd.drained(resp.ContentLength)) != nil {
				return
			}
			continue
		case len(ev.Data) == 0:
			// A priming event (an id to resume from) or a bare retry.
			out = appendEvent(out[:0], ev, nil)
			if g.write(w, rc, out, rd.drained(resp.ContentLength)) != nil {
				return
			}
			continue
		default:
			v = g.core.FromServer(r.Context(), x.conv, flatten(ev.Data))
		}
		g.carryOut(r.Context(), &v, x.who, x.sess)
		g.toUpstream(r.Context(), x, v.ToServer)
		if v.ToClient == nil && !ev.HasID {
			continue
		}
		// A withheld message still passes its event id on, so that the
		// client resumes after it rather than before.
		out = appendEvent(out[:0], ev, v.ToClient)
		if g.write(w, rc, out, rd.drained(resp.ContentLength)) != nil {
			// The client never got it: a resumed stream replays it, and
			// the core must take it then.
			v.Undelivered()
			return
		}
		if ev.HasID && x.sess != nil && v.ToClient != nil {
			x.sess.sent.remember(ev.ID, v.ToClient)
		}
	}
}

// maxEventIDSize bounds an event id passed on; a longer one is dropped.
const maxEventIDSize = 256

// passable is ev with only the fields that may reach the client: an
// event type other than "message" (the only one MCP sends) is dropped, and
// so is an id that is long or that the response DLP patterns match: the
// client keeps an id and sends it back as Last-Event-ID, and nothing the
// upstream writes reaches it unscanned.
func (g *Gateway) passable(ev event) event {
	if ev.Name != "message" {
		ev.Name = ""
	}
	if !ev.HasID || ev.ID == "" {
		return ev
	}
	keep := len(ev.ID) <= maxEventIDSize
	if sc := g.core.Policy().DLP; keep && sc != nil && sc.ScansResponses() {
		quoted, err := json.Marshal(ev.ID)
		res, rerr := sc.RedactJSON(dlp.Response, quoted)
		keep = err == nil && rerr == nil && !res.Changed
	}
	if !keep {
		ev.ID, ev.HasID = "", false
	}
	return ev
}

// write sends b and flushes it, the two within one StreamWriteTimeout: one
// deadline set per event, not one per call. The last event of a stream
// (last: the upstream's stream ends after it) is not flushed: the handler
// returns at once, and net/http sends the event with the end of the
// response, in one write that the client reads once, rather than in two.
func (g *Gateway) write(w http.ResponseWriter, rc *http.ResponseController, b []byte, last bool) error {
	rc.SetWriteDeadline(time.Now().Add(g.cfg.StreamWriteTimeout))
	if _, err := w.Write(b); err != nil {
		return errStreamClosed
	}
	if last {
		return nil
	}
	if err := rc.Flush(); err != nil {
		return errStreamClosed
	}
	return nil
}

func (g *Gateway) flush(rc *http.ResponseController) error {
	rc.SetWriteDeadline(time.Now().Add(g.cfg.StreamWriteTimeout))
	if err := rc.Flush(); err != nil {
		return errStreamClosed
	}
	return nil
}
