package server

import (
	"cmp"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Listener is how Serve listens: the address, TLS, limits and timeouts.
type Listener struct {
	// Addr is host:port or :port. A listener that is not loopback
	// (127.0.0.0/8, ::1, localhost) must have TLS (spec §3.8.5), and
	// requires every validation request to be authenticated.
	Addr string
	// CertFile and KeyFile are the PEM certificate chain and key. They are
	// read again when either file changes, so a renewed certificate is
	// served without a restart.
	CertFile, KeyFile string
	// ClientCAFile, when set, verifies client certificates (mTLS) against
	// these CAs; RequireClientCert refuses connections without one.
	ClientCAFile      string
	RequireClientCert bool
	// MaxConns bounds open connections; DefaultMaxConns when 0.
	MaxConns int
	// MaxConnsPerIP bounds the open connections of one client address, so
	// that one client cannot hold every slot of MaxConns; a quarter of
	// MaxConns when 0 (a load balancer in front pools its connections
	// well within that).
	MaxConnsPerIP int
	// DrainDelay is how long /health reports unhealthy before the
	// listener closes, so that load balancers stop sending first.
	DrainDelay time.Duration
	// ShutdownTimeout bounds the wait for requests in flight; 30s when 0.
	ShutdownTimeout time.Duration
	// ReadHeaderTimeout is how long a client has to send its headers;
	// the ReadHeaderTimeout constant when 0.
	ReadHeaderTimeout time.Duration
	// Ready, when set, is called with the bound address once listening.
	Ready func(net.Addr)
	// Handler, when set, is served in place of the Server's own handler:
	// the gateway's, which mounts the Server's endpoints beside MCP. No
	// write timeout applies to it, since an event stream outlives any
	// fixed one; it bounds each write itself.
	Handler http.Handler
}

// DefaultMaxConns bounds open connections per listener.
const DefaultMaxConns = 4096

// Timeouts against slow clients (slowloris): a client has this long for its
// headers, for the whole request, and a connection idles this long.
const (
	ReadHeaderTimeout = 5 * time.Second
	ReadTimeout       = 15 * time.Second
	WriteTimeout      = 30 * time.Second
	IdleTimeout       = 90 * time.Second
	MaxHeaderBytes    = 32 << 10
)

// IsLoopback reports whether addr listens on loopback only.
func IsLoopback(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return false
	}
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// Serve serves s on l until ctx is done, then drains: /health turns
// unhealthy, the listener closes after DrainDelay, and requests in flight
// finish within ShutdownTimeout.
func Serve(ctx context.Context, s *Server, l Listener) error {
	tlsOn := l.CertFile != "" || l.KeyFile != ""
	if !IsLoopback(l.Addr) && !tlsOn {
		return fmt.Errorf("server: %s is not a loopback address: TLS is required (tls.cert and tls.key, or --tls-cert and --tls-key)", l.Addr)
	}
	if l.ClientCAFile != "" && !tlsOn {
		return errors.New("server: a client CA needs TLS")
	}
	if l.RequireClientCert && l.ClientCAFile == "" {
		return errors.New("server: require_client_cert needs a client CA")
	}
	if !IsLoopback(l.Addr) {
		s.requireAuth.Store(true)
	}
	handler, writeTimeout := s.Handler(), WriteTimeout
	if l.Handler != nil {
		handler, writeTimeout = l.Handler, 0
	}
	hs := &http.Server{
		Handler:           handler,
		ReadHeaderTimeout: cmp.Or(l.ReadHeaderTimeout, ReadHeaderTimeout),
		ReadTimeout:       ReadTimeout,
		WriteTimeout:      writeTimeout,
		IdleTimeout:       IdleTimeout,
		MaxHeaderBytes:    MaxHeaderBytes,
		// Hostile clients make handshake and protocol errors routine:
		// they are debug output, not errors of the server.
		ErrorLog: slog.NewLogLogger(s.cfg.Log.Handler(), slog.LevelDebug),
	}
	if tlsOn {
		cfg, err := tlsConfig(l)
		if err != nil {
			return err
		}
		hs.TLSConfig = cfg
	}
	ln, loopback, err := listen(l.Addr, tlsOn)
	if err != nil {
		return err
	}
	if !loopback {
		s.requireAuth.Store(true)
	}
	maxConns := l.MaxConns
	if maxConns <= 0 {
		maxConns = DefaultMaxConns
	}
	perIP := l.MaxConnsPerIP
	if perIP <= 0 {
		perIP = max(1, maxConns/4)
	}
	ln = &limitListener{Listener: ln, slots: make(chan struct{}, maxConns), perIP: perIP, byIP: make(map[string]int), refused: s.metrics.refusedConns}
	if hs.TLSConfig != nil {
		ln = tls.NewListener(ln, hs.TLSConfig)
	}
	if l.Ready != nil {
		l.Ready(ln.Addr())
	}
	served := make(chan error, 1)
	go func() { served <- hs.Serve(ln) }()
	select {
	case err := <-served:
		return fmt.Errorf("server: %w", err)
	case <-ctx.Done():
	}
	s.Drain()
	if l.DrainDelay > 0 {
		time.Sleep(l.DrainDelay)
	}
	timeout := l.ShutdownTimeout
	if timeout <= 0 {
		timeout = 30 * time.Second
	}
	sctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	if err := hs.Shutdown(sctx); err != nil {
		hs.Close()
		return fmt.Errorf("server: shutdown: %w", err)
	}
	if err := <-served; err != nil && !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("server: %w", err)
	}
	return nil
}

// listen binds addr and reports whether the listener is bound to loopback
// only. Serve checked the address by name already (IsLoopback); what counts
// is where it is bound, since "localhost" is whatever the resolver makes of
// it. Without TLS a listener bound anywhere else is closed and refused.
func listen(addr string, tlsOn bool) (net.Listener, bool, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, false, fmt.Errorf("server: %w", err)
	}
	ta, ok := ln.Addr().(*net.TCPAddr)
	loopback := ok && ta.IP.IsLoopback()
	if !loopback && !tlsOn {
		ln.Close()
		return nil, false, fmt.Errorf("server: %s is bound to %s, not loopback: TLS is required", addr, ln.Addr())
	}
	return ln, loopback, nil
}

// tlsConfig is TLS 1.2 or later, with the certificate (and client CAs)
// read again when their files change.
func tlsConfig(l Listener) (*tls.Config, error) {
	if l.CertFile == "" || l.KeyFile == "" {
		return nil, errors.New("server: TLS needs both a certificate and a key")
	}
	files := &certFiles{cert: l.CertFile, key: l.KeyFile, ca: l.ClientCAFile}
	if err := files.load(); err != nil {
		return nil, err
	}
	base := &tls.Config{MinVersion: tls.VersionTLS12}
	return &tls.Config{
		MinVersion: tls.VersionTLS12,
		GetConfigForClient: func(*tls.ClientHelloInfo) (*tls.Config, error) {
			cert, pool := files.current()
			c := base.Clone()
			c.Certificates = []tls.Certificate{*cert}
			if pool != nil {
				c.ClientCAs = pool
				c.ClientAuth = tls.VerifyClientCertIfGiven
				if l.RequireClientCert {
					c.ClientAuth = tls.RequireAndVerifyClientCert
				}
			}
			return c, nil
		},
	}, nil
}

// certFiles holds a listener's certificate and client CAs, read again when
// a file's modification time changes (checked at most once a second). A
// file that fails to load keeps the last good one in service.
type certFiles struct {
	cert, key, ca string

	mu      sync.Mutex
	checked time.Time
	stamp   string
	pair    *tls.Certificate
	pool    *x509.CertPool
}

func (f *certFiles) current() (*tls.Certificate, *x509.CertPool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if time.Since(f.checked) >= time.Second {
		f.checked = time.Now()
		if f.stampNow() != f.stamp {
			_ = f.loadLocked() // on failure the last good files stay
		}
	}
	return f.pair, f.pool
}

func (f *certFiles) load() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.loadLocked()
}

func (f *certFiles) stampNow() string {
	var s string
	for _, p := range []string{f.cert, f.key, f.ca} {
		if p == "" {
			continue
		}
		if fi, err := os.Stat(p); err == nil {
			s += fmt.Sprintf("%d/%d;", fi.ModTime().UnixNano(), fi.Size())
		}
	}
	return s
}

func (f *certFiles) loadLocked() error {
	stamp := f.stampNow()
	pair, err := tls.LoadX509KeyPair(f.cert, f.key)
	if err != nil {
		return fmt.Errorf("server: TLS certificate: %w", err)
	}
	var pool *x509.CertPool
	if f.ca != "" {
		pem, err := os.ReadFile(f.ca)
		if err != nil {
			return fmt.Errorf("server: client CA: %w", err)
		}
		pool = x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return fmt.Errorf("server: client CA %s holds no PEM certificate", f.ca)
		}
	}
	f.pair, f.pool, f.stamp = &pair, pool, stamp
	return nil
}

// limitListener holds at most cap(slots) connections open; further ones
// wait in the kernel's backlog. A client address past perIP open
// connections has its new ones closed at once: waiting would stall the
// accept loop for every other client.
type limitListener struct {
	net.Listener
	slots   chan struct{}
	perIP   int
	refused prometheus.Counter

	mu   sync.Mutex
	byIP map[string]int
}

func (l *limitListener) Accept() (net.Conn, error) {
	for {
		l.slots <- struct{}{}
		c, err := l.Listener.Accept()
		if err != nil {
			<-l.slots
			return nil, err
		}
		ip := remoteIP(c)
		if !l.take(ip) {
			c.Close()
			<-l.slots
			l.refused.Inc()
			continue
		}
		return &limitConn{Conn: c, release: func() { l.give(ip); <-l.slots }}, nil
	}
}

func (l *limitListener) take(ip string) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.byIP[ip] >= l.perIP {
		return false
	}
	l.byIP[ip]++
	return true
}

func (l *limitListener) give(ip string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.byIP[ip] <= 1 {
		delete(l.byIP, ip)
		return
	}
	l.byIP[ip]--
}

// remoteIP is the connection's peer address without its port: the unit a
// client cannot multiply by opening connections from new ports.
func remoteIP(c net.Conn) string {
	addr := c.RemoteAddr().String()
	if host, _, err := net.SplitHostPort(addr); err == nil {
		return host
	}
	return addr
}

type limitConn struct {
	net.Conn
	once    sync.Once
	release func()
}

func (c *limitConn) Close() error {
	err := c.Conn.Close()
	c.once.Do(c.release)
	return err
}
