package gateway

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/agentid/agentid/audit"
	"github.com/agentid/agentid/enforce"
	"github.com/agentid/agentid/identity"
	"github.com/agentid/agentid/internal/benchdata"
	"github.com/agentid/agentid/jsonrpc"
	"github.com/agentid/agentid/server"
)

// benchPolicy is tools/gatewaybench's workload: read_file with an argument
// pattern, a token required on every request, 10 DLP patterns.
// anonymousPolicy is the same without identity: the gateway's work besides
// the token, whose signature check (~95 µs of CPU) would hide it.
const (
	benchPolicy = benchdata.Policy + `  identity:
    enabled: true
    require_token: true
    token_ttl: 1h
    rotation_interval: 0s
` + benchdata.DLP
	anonymousPolicy = benchdata.Policy + benchdata.DLP
)

// benchUpstream answers every POST with a tools/call result of a 4 KB
// text, as JSON or as one event, from bytes prepared in advance and
// without a network: the benchmarks measure the gateway, not a hop.
type benchUpstream struct{ sse bool }

var benchAnswer = struct{ head, tail, sseHead, sseTail string }{
	`{"jsonrpc":"2.0","id":`, `,"result":` + benchdata.Result() + `}`,
	"event: message\ndata: {\"jsonrpc\":\"2.0\",\"id\":", `,"result":` + benchdata.Result() + "}\n\n",
}

func (u benchUpstream) RoundTrip(r *http.Request) (*http.Response, error) {
	body, err := io.ReadAll(r.Body)
	r.Body.Close()
	if err != nil {
		return nil, err
	}
	id := body[bytes.Index(body, []byte(`"id":`))+5:]
	id = id[:bytes.IndexByte(id, ',')]
	head, tail, ct := benchAnswer.head, benchAnswer.tail, "application/json"
	if u.sse {
		head, tail, ct = benchAnswer.sseHead, benchAnswer.sseTail, "text/event-stream"
	}
	msg := make([]byte, 0, len(head)+len(id)+len(tail))
	msg = append(append(append(msg, head...), id...), tail...)
	return &http.Response{StatusCode: http.StatusOK, Proto: "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1,
		Header: http.Header{"Content-Type": {ct}, "Content-Length": {strconv.Itoa(len(msg))}},
		Body:   io.NopCloser(bytes.NewReader(msg)), ContentLength: int64(len(msg)), Request: r}, nil
}

// benchGateway is a gateway as tools/gatewaybench runs it (audit log in a
// file), in front of u, and a function minting n fresh tokens for it.
func benchGateway(b *testing.B, u http.RoundTripper) (*Gateway, func(n int) []string) {
	return benchGatewayWith(b, benchPolicy, u)
}

func benchGatewayWith(b *testing.B, policyYAML string, u http.RoundTripper) (*Gateway, func(n int) []string) {
	b.Helper()
	dir := b.TempDir()
	path := filepath.Join(dir, "policy.yaml")
	if err := os.WriteFile(path, []byte(policyYAML), 0o600); err != nil {
		b.Fatal(err)
	}
	p, err := enforce.Load(path, enforce.LoadOptions{})
	if err != nil {
		b.Fatal(err)
	}
	keys, err := identity.GenerateKeySet(identity.AlgES256, identity.KeySetOptions{})
	if err != nil {
		b.Fatal(err)
	}
	log, err := audit.Open(filepath.Join(dir, "audit.jsonl"))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { log.Close() })
	srv, err := server.New(server.Config{Policies: []*enforce.Policy{p}, Keys: keys, Audit: log})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { srv.Close() })
	g, err := New(Config{Server: srv, Upstream: "http://upstream.test/mcp", UpstreamClient: &http.Client{Transport: u}, Audit: log})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(g.Close)
	if !p.Policy.IdentityConfig().Enabled {
		return g, func(n int) []string { return make([]string, n) }
	}
	mgr, err := identity.NewManager(identity.Config{Policy: p.Policy, Keys: keys, RemoteAgents: true, Binding: &identity.Binding{}})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { mgr.Close() })
	mint := func(n int) []string {
		bind := identity.Binding{ProcessID: 1, Hostname: "bench", PolicyPath: "/bench/policy.yaml"}
		out := make([]string, n)
		session := ""
		for i := range out {
			tok, c, err := mgr.IssueFor(context.Background(), session, bind)
			if err != nil {
				b.Fatal(err)
			}
			out[i], session = tok, c.SessionID
		}
		return out
	}
	return g, mint
}

// benchCall is tools/gatewaybench's request i: a stateless 2026-07-28
// tools/call with its Mcp-Method and Mcp-Name headers.
func benchCall(i int) []byte {
	return fmt.Appendf(nil, `{"jsonrpc":"2.0","id":%d,"method":"tools/call","params":{"name":"read_file","arguments":{"path":"/data/json/4000/report-%d.txt"},`+
		`"_meta":{"io.modelcontextprotocol/protocolVersion":"2026-07-28","io.modelcontextprotocol/clientCapabilities":{},"io.modelcontextprotocol/clientInfo":{"name":"gatewaybench","version":"1"}}}}`,
		i, i%100)
}

func benchRequest(body []byte, token string) *http.Request {
	req, _ := http.NewRequest(http.MethodPost, "http://127.0.0.1/mcp", bytes.NewReader(body))
	req.RemoteAddr, req.RequestURI = "127.0.0.1:40000", "/mcp"
	h := req.Header
	h["Content-Type"] = []string{"application/json"}
	h["Accept"] = []string{"application/json, text/event-stream"}
	h["Mcp-Protocol-Version"] = []string{Era2026}
	h["Mcp-Method"] = []string{"tools/call"}
	h["Mcp-Name"] = []string{"read_file"}
	if token != "" {
		h["Authorization"] = []string{"Bearer " + token}
	}
	return req
}

// discardWriter is a ResponseWriter that keeps only the status: the
// benchmarks measure the gateway, not a recorder's buffer.
type discardWriter struct {
	h      http.Header
	status int
	n      int
}

func (w *discardWriter) Header() http.Header         { return w.h }
func (w *discardWriter) WriteHeader(status int)      { w.status = status }
func (w *discardWriter) Write(b []byte) (int, error) { w.n += len(b); return len(b), nil }
func (w *discardWriter) Flush()                      {}

// BenchmarkToolCall is one POST tools/call through the gateway's Handler:
// the token verified and its nonce recorded, the header check, the core's
// decision with request DLP, the audit record written to a file, the
// upstream request, the 4 KB answer through the response path (DLP) and
// written to the client. The upstream is in process; tokens are minted
// outside the timer. The anonymous cases run without identity.
func BenchmarkToolCall(b *testing.B) {
	for _, bc := range []struct {
		name   string
		policy string
		sse    bool
	}{
		{"json", benchPolicy, false},
		{"sse", benchPolicy, true},
		{"json anonymous", anonymousPolicy, false},
		{"sse anonymous", anonymousPolicy, true},
	} {
		b.Run(bc.name, func(b *testing.B) {
			g, mint := benchGatewayWith(b, bc.policy, benchUpstream{sse: bc.sse})
			h := g.Handler()
			toks := mint(b.N)
			bodies := make([][]byte, 100)
			for i := range bodies {
				bodies[i] = benchCall(i)
			}
			b.ReportAllocs()
			b.ResetTimer()
			cpu := startCPU()
			for i := range b.N {
				w := &discardWriter{h: http.Header{}}
				h.ServeHTTP(w, benchRequest(bodies[i%100], toks[i]))
				if w.status != http.StatusOK || w.n < 4000 {
					b.Fatalf("HTTP %d, %d bytes", w.status, w.n)
				}
			}
			cpu.report(b)
		})
	}
}

// cpuClock reads the process's CPU time (user and system, all threads,
// the garbage collector's included): on a shared machine the time a call
// takes swings with the other load, the CPU it spends much less.
type cpuClock struct{ start time.Duration }

func processCPU() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func startCPU() cpuClock { return cpuClock{processCPU()} }

// report adds the CPU time per operation since start as "cpu-ns/op".
func (c cpuClock) report(b *testing.B) {
	b.ReportMetric(float64(processCPU()-c.start)/float64(b.N), "cpu-ns/op")
}

// BenchmarkStages breaks BenchmarkToolCall/json down: each stage of one
// POST as the gateway runs it, alone, on the same request and answer.
func BenchmarkStages(b *testing.B) {
	g, mint := benchGateway(b, benchUpstream{})
	body := benchCall(7)
	answer, err := benchUpstream{}.RoundTrip(httptest.NewRequest(http.MethodPost, "/", bytes.NewReader(body)))
	if err != nil {
		b.Fatal(err)
	}
	answerBody, _ := io.ReadAll(answer.Body)
	ctx := context.Background()

	b.Run("authenticate", func(b *testing.B) {
		toks := mint(b.N)
		b.ReportAllocs()
		b.ResetTimer()
		cpu := startCPU()
		for i := range b.N {
			if _, _, ok := g.authenticate(nil, benchRequest(body, toks[i]), nil); !ok {
				b.Fatal("refused")
			}
		}
		cpu.report(b)
	})
	b.Run("decode and header check", func(b *testing.B) {
		r := benchRequest(body, "")
		b.ReportAllocs()
		cpu := startCPU()
		for range b.N {
			msg, err := jsonrpc.Decode(body)
			if err != nil {
				b.Fatal(err)
			}
			if why := headerMismatch(r.Header, msg); why != "" {
				b.Fatal(why)
			}
		}
		cpu.report(b)
	})
	b.Run("decide request", func(b *testing.B) {
		msg, err := jsonrpc.Decode(body)
		if err != nil {
			b.Fatal(err)
		}
		b.ReportAllocs()
		cpu := startCPU()
		for range b.N {
			v := g.core.FromCallerMessage(ctx, enforce.NewRequestSession(), msg, enforce.Caller{Token: &identity.Claims{}})
			if v.ToServer == nil {
				b.Fatalf("refused: %s", v.ToClient)
			}
		}
		cpu.report(b)
	})
	b.Run("audit", func(b *testing.B) {
		v := g.core.FromCaller(ctx, enforce.NewRequestSession(), body, enforce.Caller{Token: &identity.Claims{}})
		records := v.Audit
		who := principal{Agent: "bench", Session: "00000000-0000-4000-8000-000000000000", TokenID: "0123456789abcdef0123456789abcdef"}
		b.ReportAllocs()
		b.ResetTimer()
		cpu := startCPU()
		for range b.N {
			v.Audit = append(v.Audit[:0], records...)
			v.Audit[0].Extra, v.Audit[0].Timestamp = nil, time.Time{}
			if !g.carryOut(ctx, &v, who, nil) {
				b.Fatal("audit failed")
			}
		}
		cpu.report(b)
	})
	b.Run("upstream request", func(b *testing.B) {
		from := benchRequest(body, "").Header
		b.ReportAllocs()
		cpu := startCPU()
		for range b.N {
			resp, err := g.up.do(ctx, http.MethodPost, "", body, from)
			if err != nil {
				b.Fatal(err)
			}
			resp.Body.Close()
		}
		cpu.report(b)
	})
	b.Run("decide response", func(b *testing.B) {
		b.ReportAllocs()
		cpu := startCPU()
		for range b.N {
			s := enforce.NewRequestSession()
			if v := g.core.FromCaller(ctx, s, body, enforce.Caller{Token: &identity.Claims{}}); v.ToServer == nil {
				b.Fatal("refused")
			}
			if v := g.core.FromServer(ctx, s, answerBody); v.ToClient == nil {
				b.Fatal("withheld")
			}
		}
		cpu.report(b)
	})
	b.Run("write response", func(b *testing.B) {
		b.ReportAllocs()
		cpu := startCPU()
		for range b.N {
			writeMessage(&discardWriter{h: http.Header{}}, http.StatusOK, answerBody)
		}
		cpu.report(b)
	})
}
