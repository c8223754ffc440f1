package gateway

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"mime"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"

	"go.opentelemetry.io/otel/trace"

	"github.com/agentid/agentid/approve"
	"github.com/agentid/agentid/audit"
	"github.com/agentid/agentid/enforce"
	"github.com/agentid/agentid/jsonrpc"
	"github.com/agentid/agentid/server"
)

// Defaults of Config's limits.
const (
	DefaultPath                 = "/mcp"
	DefaultMaxSessions          = 10000
	DefaultMaxSessionsPerClient = 64
	DefaultMaxStdioSessions     = 256
	DefaultSessionIdleTimeout   = 30 * time.Minute
	DefaultMaxStreamsPerSession = 4
	DefaultMaxStreamDuration    = time.Hour
	// DefaultStreamWriteTimeout bounds one write to a client: an event
	// stream whose reader stops reading is closed after it.
	DefaultStreamWriteTimeout = 30 * time.Second
)

// Config configures a Gateway.
type Config struct {
	// Server holds the policy (its one policy), the identity manager and
	// the shared stores, and answers the endpoints mounted beside MCP.
	// Required.
	Server *server.Server
	// Upstream is the URL of the MCP server (Streamable HTTP); Command,
	// instead, a stdio server spawned for each session. Exactly one is
	// required.
	Upstream string
	Command  *Command
	// UpstreamClient sends requests upstream; nil uses a transport with
	// enough idle connections for every client. Its redirects are never
	// followed.
	UpstreamClient *http.Client
	// Path is the MCP endpoint; DefaultPath when "".
	Path string
	// PublicURL is the gateway's base URL as clients reach it
	// ("https://mcp.example.com"), for the protected-resource metadata;
	// when "", it is taken from each request.
	PublicURL string
	// AllowedOrigins are the browser origins ("https://app.example.com")
	// that may send requests; a request with any other Origin header is
	// refused. Requests without one (not from a browser) are not affected.
	AllowedOrigins []string
	// Audit receives the records of every decision, with the identity of
	// the request; nil discards them.
	Audit *audit.Logger
	// AuditBestEffort carries out decisions whose records could not be
	// written; by default they are refused, as by the proxy.
	AuditBestEffort bool
	// Approver answers `action: ask`; nil denies (headless).
	Approver approve.Approver
	// MaxBodyBytes bounds one client message and one server message;
	// jsonrpc.DefaultMaxLineSize when 0.
	MaxBodyBytes int
	// MaxSessions bounds the sessions open at once, SessionIdleTimeout
	// forgets idle ones, MaxStreamsPerSession bounds a session's open GET
	// streams and MaxStreamDuration how long any stream stays open (the
	// client reconnects, resuming with Last-Event-ID).
	MaxSessions          int
	MaxSessionsPerClient int // per identity, or per address without one
	SessionIdleTimeout   time.Duration
	MaxStreamsPerSession int
	MaxStreamDuration    time.Duration
	// StreamWriteTimeout bounds each write to a client's event stream; a
	// client that stops reading is cut off after it, rather than holding
	// the upstream stream. DefaultStreamWriteTimeout when 0.
	StreamWriteTimeout time.Duration
	// Tracer records a span for every client message decided (allowed
	// and denied), with its method, tool, decision, AIP code and identity;
	// its trace context is propagated upstream. nil records none, and the
	// client's trace context is forwarded as it came.
	Tracer trace.Tracer
	// Log receives diagnostics; nil discards them.
	Log *slog.Logger
	// Now is the clock; time.Now when nil.
	Now func() time.Time
}

// Gateway is the MCP Streamable HTTP endpoint. It is safe for concurrent
// use.
type Gateway struct {
	cfg      Config
	core     *enforce.Core
	up       *upstream
	sessions *sessions
	shared   sharedServers
	mux      *http.ServeMux
	origins  map[string]bool
}

// New returns a gateway for cfg.
func New(cfg Config) (*Gateway, error) {
	if cfg.Server == nil {
		return nil, errors.New("gateway: a server (policy and stores) is required")
	}
	var up *upstream
	switch {
	case (cfg.Upstream == "") == (cfg.Command == nil):
		return nil, errors.New("gateway: exactly one of an upstream URL and a command is required")
	case cfg.Command != nil && cfg.Command.Path == "":
		return nil, errors.New("gateway: the command has no path")
	case cfg.Upstream != "":
		var err error
		if up, err = newUpstream(cfg.Upstream, cfg.UpstreamClient); err != nil {
			return nil, err
		}
	}
	if cfg.Path == "" {
		cfg.Path = DefaultPath
	}
	if !strings.HasPrefix(cfg.Path, "/") {
		return nil, fmt.Errorf("gateway: path %q must start with /", cfg.Path)
	}
	if cfg.Approver == nil {
		cfg.Approver = approve.Headless()
	}
	if cfg.MaxBodyBytes <= 0 {
		cfg.MaxBodyBytes = jsonrpc.DefaultMaxLineSize
	}
	if cfg.MaxSessions <= 0 {
		cfg.MaxSessions = DefaultMaxSessions
		if cfg.Command != nil {
			// Each stdio session is a process.
			cfg.MaxSessions = DefaultMaxStdioSessions
		}
	}
	if cfg.MaxSessionsPerClient <= 0 {
		cfg.MaxSessionsPerClient = DefaultMaxSessionsPerClient
	}
	if cfg.SessionIdleTimeout <= 0 {
		cfg.SessionIdleTimeout = DefaultSessionIdleTimeout
	}
	if cfg.MaxStreamsPerSession <= 0 {
		cfg.MaxStreamsPerSession = DefaultMaxStreamsPerSession
	}
	if cfg.MaxStreamDuration <= 0 {
		cfg.MaxStreamDuration = DefaultMaxStreamDuration
	}
	if cfg.StreamWriteTimeout <= 0 {
		cfg.StreamWriteTimeout = DefaultStreamWriteTimeout
	}
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	g := &Gateway{
		cfg:      cfg,
		core:     cfg.Server.Core(),
		up:       up,
		sessions: newSessions(cfg.MaxSessions, cfg.MaxSessionsPerClient, cfg.SessionIdleTimeout, cfg.Now),
		origins:  make(map[string]bool),
	}
	for _, o := range cfg.AllowedOrigins {
		g.origins[strings.ToLower(strings.TrimSuffix(o, "/"))] = true
	}
	g.mux = http.NewServeMux()
	g.mux.HandleFunc(cfg.Path, cfg.Server.Instrument("mcp", g.serveMCP))
	g.mux.HandleFunc(metadataPath, g.serveMetadata)
	g.mux.HandleFunc(metadataPath+cfg.Path, g.serveMetadata)
	g.mux.Handle("/", cfg.Server.Handler())
	return g, nil
}

// Handler returns the gateway's HTTP handler: the MCP endpoint, the
// protected-resource metadata and the server's endpoints.
func (g *Gateway) Handler() http.Handler { return g.mux }

// Close ends every session; the stdio servers are stopped.
func (g *Gateway) Close() {
	var wg sync.WaitGroup
	for _, s := range g.sessions.all() {
		g.sessions.remove(s)
		if s.child != nil {
			wg.Add(1)
			go func() { defer wg.Done(); s.child.close() }()
		}
	}
	wg.Wait()
}

// Sessions is the number of MCP sessions open.
func (g *Gateway) Sessions() int { return g.sessions.count() }

func (g *Gateway) serveMCP(w http.ResponseWriter, r *http.Request) {
	if !g.originAllowed(r) {
		httpError(w, http.StatusForbidden, "origin not allowed")
		return
	}
	if !hostAllowed(r) {
		httpError(w, http.StatusForbidden, "host not allowed")
		return
	}
	if r.URL.RawQuery != "" && strings.Contains(strings.ToLower(r.URL.RawQuery), "token") {
		// A token in the query string is never read (it would be logged
		// by every proxy on the way); say so rather than ignore it quietly.
		g.cfg.Log.Warn("a token in the query string is ignored", "remote", r.RemoteAddr)
	}
	switch r.Method {
	case http.MethodPost:
		g.post(w, r)
	case http.MethodGet:
		g.get(w, r)
	case http.MethodDelete:
		g.delete(w, r)
	default:
		w.Header().Set("Allow", "GET, POST, DELETE")
		httpError(w, http.StatusMethodNotAllowed, "method not allowed")
	}
}

// originAllowed applies the Origin allowlist: the MCP transport requires
// the check, since a browser page may otherwise reach a local gateway.
func (g *Gateway) originAllowed(r *http.Request) bool {
	o := r.Header.Values("Origin")
	if len(o) == 0 {
		return true
	}
	return len(o) == 1 && g.origins[strings.ToLower(strings.TrimSuffix(o[0], "/"))]
}

// hostAllowed refuses, on a loopback listener, a Host that names anything
// but loopback: that is what a DNS-rebinding page sends (its own name,
// resolved to 127.0.0.1), whatever its Origin.
func hostAllowed(r *http.Request) bool {
	local, ok := r.Context().Value(http.LocalAddrContextKey).(net.Addr)
	if !ok || !server.IsLoopback(local.String()) {
		return true
	}
	host := r.Host
	if h, _, err := net.SplitHostPort(host); err == nil {
		host = h
	}
	host = strings.TrimSuffix(strings.Trim(host, "[]"), ".")
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// mediaType is the media type of a Content-Type header, lower case.
func mediaType(v string) string {
	switch v {
	case "application/json", "text/event-stream":
		// What nearly every peer sends, and what ParseMediaType would
		// return for it (without making a map of its parameters).
		return v
	}
	t, _, err := mime.ParseMediaType(v)
	if err != nil {
		return ""
	}
	return t
}

// accepts reports whether the Accept header admits both media types a
// response to a POST may have (the transport requires clients to list
// both).
func accepts(r *http.Request) bool {
	var json, sse bool
	for _, v := range r.Header.Values("Accept") {
		for part := range strings.SplitSeq(v, ",") {
			switch mediaType(strings.TrimSpace(part)) {
			case "application/json":
				json = true
			case "text/event-stream":
				sse = true
			case "*/*":
				json, sse = true, true
			case "application/*":
				json = true
			case "text/*":
				sse = true
			}
		}
	}
	return json && sse
}

// readBody reads at most max bytes; over reports a body longer than that,
// with its head.
func readBody(r io.Reader, max int) (body []byte, over bool, err error) {
	b, err := io.ReadAll(io.LimitReader(r, int64(max)+1))
	if err != nil {
		return nil, false, err
	}
	if len(b) > max {
		return b[:min(len(b), headSize)], true, nil
	}
	return b, false, nil
}

// httpError answers with a status and a short plain reason: for what is
// refused before any JSON-RPC message was read.
func httpError(w http.ResponseWriter, status int, reason string) {
	h := w.Header()
	h.Set("Content-Type", "text/plain; charset=utf-8")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	io.WriteString(w, reason+"\n")
}

// writeMessage answers with one JSON-RPC message.
func writeMessage(w http.ResponseWriter, status int, msg []byte) {
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	w.Write(msg)
}

// context for work on behalf of a request that must finish even if the
// client hangs up (audit, an answer to the upstream).
func detached(ctx context.Context, d time.Duration) (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.WithoutCancel(ctx), d)
}
