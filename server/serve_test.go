package server_test

import (
	"bufio"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/agentid/agentid/enforce"
	"github.com/agentid/agentid/server"
)

// pki is a CA with a server certificate for 127.0.0.1 and client
// certificates, written as PEM files.
type pki struct {
	dir    string
	ca     *x509.Certificate
	caKey  *ecdsa.PrivateKey
	caFile string
	pool   *x509.CertPool
}

func newPKI(t *testing.T) *pki {
	t.Helper()
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "test CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	ca, _ := x509.ParseCertificate(der)
	p := &pki{dir: t.TempDir(), ca: ca, caKey: key, pool: x509.NewCertPool()}
	p.pool.AddCert(ca)
	p.caFile = filepath.Join(p.dir, "ca.pem")
	writePEM(t, p.caFile, "CERTIFICATE", der)
	return p
}

func writePEM(t *testing.T, path, typ string, der []byte) {
	t.Helper()
	if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
}

// issue writes a leaf certificate and key; server leaves are for
// 127.0.0.1, client leaves carry uri as their URI SAN.
func (p *pki) issue(t *testing.T, name string, serial int64, client bool, uri string) (certFile, keyFile string, pair tls.Certificate) {
	t.Helper()
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(serial), Subject: pkix.Name{CommonName: name},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour), KeyUsage: x509.KeyUsageDigitalSignature}
	if client {
		tmpl.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}
		if uri != "" {
			u, _ := url.Parse(uri)
			tmpl.URIs = []*url.URL{u}
		}
	} else {
		tmpl.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}
		tmpl.IPAddresses = []net.IP{net.ParseIP("127.0.0.1")}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, p.ca, &key.PublicKey, p.caKey)
	if err != nil {
		t.Fatal(err)
	}
	kder, _ := x509.MarshalPKCS8PrivateKey(key)
	certFile, keyFile = filepath.Join(p.dir, name+".pem"), filepath.Join(p.dir, name+"-key.pem")
	writePEM(t, certFile, "CERTIFICATE", der)
	writePEM(t, keyFile, "PRIVATE KEY", kder)
	pair, err = tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		t.Fatal(err)
	}
	return certFile, keyFile, pair
}

// serve runs Serve on a free loopback port and returns its address and a
// stop function that waits for Serve to return (its error).
func serve(t *testing.T, cfg server.Config, l server.Listener, policies ...string) (addr string, stop func() error) {
	t.Helper()
	dir := t.TempDir()
	for i, y := range policies {
		path := filepath.Join(dir, "p"+string(rune('a'+i))+".yaml")
		os.WriteFile(path, []byte(y), 0o600)
		p, err := enforce.Load(path, enforce.LoadOptions{})
		if err != nil {
			t.Fatal(err)
		}
		cfg.Policies = append(cfg.Policies, p)
	}
	s, err := server.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if l.Addr == "" {
		l.Addr = "127.0.0.1:0"
	}
	ready := make(chan net.Addr, 1)
	l.Ready = func(a net.Addr) { ready <- a }
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- server.Serve(ctx, s, l) }()
	select {
	case a := <-ready:
		addr = a.String()
	case err := <-done:
		cancel()
		s.Close()
		t.Fatalf("Serve: %v", err)
	}
	var stopped bool
	var serr error
	stop = func() error {
		if !stopped {
			stopped = true
			cancel()
			serr = <-done
			s.Close()
		}
		return serr
	}
	t.Cleanup(func() { stop() })
	return addr, stop
}

func TestServeRefusesANetworkListenerWithoutTLS(t *testing.T) {
	for _, addr := range []string{":0", "0.0.0.0:0", "[::]:0"} {
		s := mustServer(t)
		err := server.Serve(context.Background(), s, server.Listener{Addr: addr})
		if err == nil || !strings.Contains(err.Error(), "TLS is required") {
			t.Errorf("Serve on %s without TLS: %v", addr, err)
		}
	}
	for addr, want := range map[string]bool{"127.0.0.1:9443": true, "[::1]:1": true, "localhost:1": true, ":9443": false, "10.0.0.1:1": false} {
		if got := server.IsLoopback(addr); got != want {
			t.Errorf("IsLoopback(%s) = %v", addr, got)
		}
	}
}

func mustServer(t *testing.T) *server.Server {
	t.Helper()
	path := filepath.Join(t.TempDir(), "p.yaml")
	os.WriteFile(path, []byte(basePolicy), 0o600)
	p, err := enforce.Load(path, enforce.LoadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	s, err := server.New(server.Config{Policies: []*enforce.Policy{p}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func TestTLSIsAtLeast12AndACertificateIsReloadedWithoutARestart(t *testing.T) {
	ca := newPKI(t)
	certFile, keyFile, _ := ca.issue(t, "server", 2, false, "")
	addr, _ := serve(t, server.Config{}, server.Listener{CertFile: certFile, KeyFile: keyFile}, basePolicy)

	serial := func() int64 {
		t.Helper()
		c, err := tls.Dial("tcp", addr, &tls.Config{RootCAs: ca.pool})
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		return c.ConnectionState().PeerCertificates[0].SerialNumber.Int64()
	}
	if got := serial(); got != 2 {
		t.Fatalf("serial %d", got)
	}
	if c, err := tls.Dial("tcp", addr, &tls.Config{RootCAs: ca.pool, MaxVersion: tls.VersionTLS11}); err == nil {
		c.Close()
		t.Fatal("a TLS 1.1 handshake succeeded")
	}
	// Renew: same files, new certificate.
	ca.issue(t, "server", 3, false, "")
	deadline := time.Now().Add(10 * time.Second)
	for serial() != 3 {
		if time.Now().After(deadline) {
			t.Fatal("the renewed certificate is never served")
		}
		time.Sleep(200 * time.Millisecond)
	}
}

func TestAClientCertificateAuthenticatesAndNamedOnesAreAdmins(t *testing.T) {
	ca := newPKI(t)
	certFile, keyFile, _ := ca.issue(t, "server", 2, false, "")
	_, _, agent := ca.issue(t, "agent", 3, true, "spiffe://example.org/agent")
	_, _, admin := ca.issue(t, "admin", 4, true, "spiffe://example.org/admin")
	addr, _ := serve(t, server.Config{RequireAuthentication: true, AdminIdentities: []string{"spiffe://example.org/admin"}},
		server.Listener{CertFile: certFile, KeyFile: keyFile, ClientCAFile: ca.caFile}, tenantPolicy("team-a", "read_file"))

	client := func(certs ...tls.Certificate) *http.Client {
		return &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: ca.pool, Certificates: certs}}}
	}
	post := func(c *http.Client, path, body string, auth string) (int, string) {
		t.Helper()
		req, _ := http.NewRequest("POST", "https://"+addr+path, strings.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		if auth != "" {
			req.Header.Set("Authorization", auth)
		}
		resp, err := c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	// The agent's certificate may obtain a token, but is no admin.
	status, body := post(client(agent), "/v1/token", `{`+binding+`}`, "")
	var issued struct {
		TokenID string `json:"token_id"`
	}
	if status != 200 || json.Unmarshal([]byte(body), &issued) != nil || issued.TokenID == "" {
		t.Fatalf("token with a client certificate: %d %s", status, body)
	}
	revokeIt := `{"type":"token","token_nonce":"` + issued.TokenID + `"}`
	if status, body := post(client(), "/v1/token", `{`+binding+`}`, ""); status != 401 {
		t.Fatalf("token without a certificate: %d %s", status, body)
	}
	if status, body := post(client(agent), "/v1/revoke", revokeIt, ""); status != 401 {
		t.Fatalf("revoke as the agent: %d %s", status, body)
	}
	if status, body := post(client(admin), "/v1/revoke", revokeIt, ""); status != 200 {
		t.Fatalf("revoke as the admin: %d %s", status, body)
	}
}

func TestServeDrainsOnShutdown(t *testing.T) {
	addr, stop := serve(t, server.Config{}, server.Listener{}, basePolicy)
	resp, err := http.Get("http://" + addr + "/health")
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("health: %v %v", err, resp)
	}
	resp.Body.Close()
	if err := stop(); err != nil {
		t.Fatalf("Serve after shutdown: %v", err)
	}
	if _, err := http.Get("http://" + addr + "/health"); err == nil {
		t.Fatal("still serving after shutdown")
	}
}

func TestSlowAndAbandonedConnectionsDoNotStopTheServer(t *testing.T) {
	addr, _ := serve(t, server.Config{}, server.Listener{ReadHeaderTimeout: 300 * time.Millisecond, MaxConns: 64}, basePolicy)
	// A slowloris client: headers that never end are cut off.
	slow, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer slow.Close()
	io.WriteString(slow, "POST /v1/validate HTTP/1.1\r\nHost: x\r\n")
	slow.SetReadDeadline(time.Now().Add(10 * time.Second))
	if _, err := bufio.NewReader(slow).ReadByte(); err == nil {
		// Go answers 408 or closes; either way the connection ends.
		if _, err := io.ReadAll(slow); err != nil && !isTimeout(err) {
			t.Fatal(err)
		}
	} else if isTimeout(err) {
		t.Fatal("a connection with unfinished headers was kept open")
	}
	// Ten thousand connections opened and dropped, more than MaxConns at
	// once would hold; another client is served right after.
	for i := 0; i < 10000; i++ {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatalf("dial %d: %v", i, err)
		}
		c.Close()
	}
	resp, err := clientFrom("127.0.0.2").Post("http://"+addr+"/v1/validate", "application/json", strings.NewReader(`{"tool":"read_file","arguments":{}}`))
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || !strings.Contains(string(b), `"allow"`) {
		t.Fatalf("after the abuse: %d %s", resp.StatusCode, b)
	}
}

func isTimeout(err error) bool {
	ne, ok := err.(net.Error)
	return ok && ne.Timeout()
}

func TestHeaderInjectionIsRefusedByTheTransport(t *testing.T) {
	addr, _ := serve(t, server.Config{}, server.Listener{}, basePolicy)
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	io.WriteString(c, "POST /v1/validate HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer a\rX-Injected: 1\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n{}")
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	line, _ := bufio.NewReader(c).ReadString('\n')
	if !strings.Contains(line, " 400 ") {
		t.Fatalf("a header with a bare CR was accepted: %q", line)
	}
}

func TestOneClientAddressCannotHoldEveryConnection(t *testing.T) {
	addr, _ := serve(t, server.Config{}, server.Listener{MaxConns: 64, MaxConnsPerIP: 4}, basePolicy)
	// keepAlive opens a connection from local and completes one request on
	// it, so that the server holds it open as an idle keep-alive.
	keepAlive := func(local string) (net.Conn, error) {
		d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(local)}}
		c, err := d.Dial("tcp", addr)
		if err != nil {
			return nil, err
		}
		io.WriteString(c, "GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
		c.SetReadDeadline(time.Now().Add(10 * time.Second))
		resp, err := http.ReadResponse(bufio.NewReader(c), nil)
		if err != nil {
			c.Close()
			return nil, err
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return c, nil
	}
	var held []net.Conn
	defer func() {
		for _, c := range held {
			c.Close()
		}
	}()
	for i := 0; i < 4; i++ {
		c, err := keepAlive("127.0.0.1")
		if err != nil {
			t.Fatalf("connection %d within the share: %v", i, err)
		}
		held = append(held, c)
	}
	if c, err := keepAlive("127.0.0.1"); err == nil {
		c.Close()
		t.Fatal("a fifth connection from the same address was served")
	}
	other, err := keepAlive("127.0.0.2")
	if err != nil {
		t.Fatalf("another client address was refused: %v", err)
	}
	other.Close()

	// A slot given back is usable again.
	held[0].Close()
	held = held[1:]
	var again net.Conn
	refused := 1
	for i := 0; again == nil; i++ {
		// The server notices the close asynchronously.
		if again, err = keepAlive("127.0.0.1"); err != nil {
			if i > 100 {
				t.Fatalf("a released share was not given back: %v", err)
			}
			refused++
			time.Sleep(20 * time.Millisecond)
		}
	}
	held = append(held, again)

	resp, err := clientFrom("127.0.0.3").Get("http://" + addr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if !strings.Contains(string(b), fmt.Sprintf("aip_connections_refused_total %d\n", refused)) {
		t.Fatalf("the refusal is not counted:\n%s", grepLines(string(b), "aip_connections_refused"))
	}
}

func grepLines(s, sub string) string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if strings.Contains(l, sub) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}

// clientFrom is an HTTP client whose connections come from the loopback
// address local, another client address than the 127.0.0.1 of the rest.
func clientFrom(local string) *http.Client {
	d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(local)}}
	return &http.Client{Transport: &http.Transport{DialContext: d.DialContext}}
}
