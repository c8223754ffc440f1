// Command gatewaybench measures what `agentid gateway` adds to an MCP
// Streamable HTTP tools/call round trip, against the floor of any Go
// gateway measured in the same run, on loopback:
//
//	go run ./tools/gatewaybench [-clients 1,32] [-requests 5000] [-rounds 5] [-profile DIR] [-baseline BIN]
//
// These variants answer the same POST, each in every cell:
//
//   - direct: the upstream reached directly;
//   - floor: a bare Go reverse proxy in front of it (httputil.ReverseProxy,
//     FlushInterval -1, full duplex, idle upstream connections for every
//     client): the least any Go gateway does;
//   - gateway: package gateway in front of it (gateway.New served by
//     server.Serve, as `agentid gateway --upstream` builds it, with the
//     audit log in a file), under a policy that requires an AIP token
//     (require_token), allows read_file with an argument pattern and has 10
//     DLP patterns that never match, so that every byte of every message is
//     scanned and nothing is redacted. Every request carries a fresh
//     single-use ES256 token minted before the timed phase and sent once;
//   - floor+es256 (unless -es256-floor=false): the floor verifying each
//     request's token with crypto/ecdsa and recording its jti once before
//     forwarding, as tools/serverbench's floor does: the least a gateway
//     with per-request identity adds, reported in a table of its own.
//
// The cells are -clients concurrent closed-loop clients (each sends its
// next request when the previous answer has arrived) × the size of the
// result's text (64 B and 4 KB, the 4,000-byte text of internal/benchdata) ×
// the upstream answering application/json or one text/event-stream event.
// Requests are stateless 2026-07-28 tools/call messages (no Mcp-Session-Id;
// Mcp-Method and Mcp-Name headers, which the gateway checks against the
// body), so that every request is decided in a conversation of its own.
//
// The upstream, the floor and the gateway are this program re-executed
// (-upstream, -floor, -gateway), each a process of its own; the upstream
// answers from bytes prepared in advance, so that the measurement is the
// hops', not the server's. Every variant gets its own connections, warmed
// up before each measurement. Rounds are interleaved: each round measures
// every variant of every cell back to back (in reverse order every other
// round), so that they see the same machine.
//
// How to read the table (see DESIGN.md, "Measuring speed on these
// machines"): p50 and p99 are medians over rounds; "added" is a variant's
// latency minus direct's, per round, median over rounds; "gw÷floor" is the
// gateway's added p50 divided by the floor's, per round, median and range
// over rounds (target ≤ 1.10); at 32 clients, throughput is requests per
// second, and the gateway's ÷ the floor's per round (target ≥ 0.95). CPU
// per call is the proxy process's user+system time over the measurement
// divided by its calls (10 ms ticks), less sensitive to a busy machine than
// elapsed time. At one client a hop costs mostly process wake-ups, which
// swing from day to day on these VMs; the 32-client cells measure the
// proxies' own cost.
//
// With -baseline BIN (this program built from other code, e.g. before a
// change to package gateway), BIN's gateway runs as one more variant in the
// same rounds, and a table of its own compares the two: before/after
// figures that saw the same machine.
//
// With -profile DIR, the gateway and the floor are then profiled (CPU,
// runtime/pprof, in their own processes) under the 32-client 4 KB JSON cell;
// read them with `go tool pprof -top DIR/gateway.pprof`.
package main

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime/debug"
	"runtime/pprof"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/agentid/agentid/audit"
	"github.com/agentid/agentid/enforce"
	"github.com/agentid/agentid/gateway"
	"github.com/agentid/agentid/identity"
	"github.com/agentid/agentid/internal/benchdata"
	"github.com/agentid/agentid/server"
	"github.com/agentid/agentid/tools/internal/benchkit"
)

func main() {
	upstream := flag.Bool("upstream", false, "act as the upstream MCP server (internal)")
	floor := flag.String("floor", "", "act as the floor, a bare reverse proxy in front of this upstream URL (internal)")
	floorKey := flag.String("floor-pubkey", "", "the floor verifies each request's ES256 token with this public key first (internal)")
	es256Floor := flag.Bool("es256-floor", true, "also measure the floor verifying each request's ES256 token (floor+es256)")
	gw := flag.String("gateway", "", "act as the gateway in front of this upstream URL (internal)")
	policyPath := flag.String("policy", "", "the gateway's policy (internal)")
	auditPath := flag.String("audit", "", "the gateway's audit log (internal)")
	cpuProfile := flag.String("cpuprofile", "", "write a CPU profile of this process until it is interrupted (internal)")
	clients := flag.String("clients", "1,32", "concurrent clients, comma-separated")
	requests := flag.Int("requests", 5000, "requests per measurement")
	rounds := flag.Int("rounds", 5, "rounds; the variants of every cell alternate within a round")
	profile := flag.String("profile", "", "directory: then profile the gateway and the floor under the 32-client 4 KB JSON cell")
	profileRequests := flag.Int("profile-requests", 40000, "requests of each profile")
	baseline := flag.String("baseline", "", "another gatewaybench binary, built from other code, whose gateway runs as a fourth variant (before/after)")
	flag.Parse()
	var err error
	switch {
	case *upstream:
		err = serveUpstream()
	case *floor != "":
		err = child(*cpuProfile, func() (http.Handler, error) { return floorHandler(*floor, *floorKey) })
	case *gw != "":
		err = serveGateway(*gw, *policyPath, *auditPath, *cpuProfile)
	default:
		err = run(*clients, *requests, *rounds, *profile, *profileRequests, *baseline, *es256Floor)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "gatewaybench:", err)
		os.Exit(1)
	}
}

// benchPolicy is the workload of every proxy benchmark (internal/benchdata),
// with identity required.
const benchPolicy = benchdata.Policy + `  identity:
    enabled: true
    require_token: true
    token_ttl: 1h
    rotation_interval: 0s
    keys:
      key_source: file
      key_path: KEY
` + benchdata.DLP

// cell is one combination of load and response.
type cell struct {
	clients int
	size    int  // bytes of the result's text
	sse     bool // the upstream answers with an event stream
}

func (c cell) String() string {
	return fmt.Sprintf("%d×%s×%s", c.clients, sizeName(c.size), c.kind())
}

func (c cell) kind() string {
	if c.sse {
		return "sse"
	}
	return "json"
}

func sizeName(n int) string {
	if n >= 1000 {
		return fmt.Sprintf("%dKB", (n+500)/1000)
	}
	return fmt.Sprintf("%dB", n)
}

// sizes are the result texts' sizes: 64 B and the 4,000-byte benchdata.Text.
var sizes = []int{64, len(benchdata.Text)}

// key names the measurements of a variant in a cell, one per round.
type key struct {
	variant string
	cell    cell
}

// compare prints a table of the gateway against variant base: their
// latencies, the gateway's added p50 over base's (both over direct), and
// throughput and CPU per call.
func compare(results map[key][]stats, cells []cell, base string) {
	fmt.Printf("| clients | size | upstream | %[1]s p50 / p99 | gateway p50 / p99 | %[1]s added p50 | gateway added p50 | gateway÷%[1]s added p50 | req/s %[1]s / gateway | gateway÷%[1]s req/s | cpu/call %[1]s / gateway |\n", base)
	fmt.Println("|---|---|---|---|---|---|---|---|---|---|---|")
	for _, c := range cells {
		d, b, g := results[key{"direct", c}], results[key{base, c}], results[key{"gateway", c}]
		var ba, ga, ratio, rps []float64
		for i := range d {
			ba = append(ba, float64(b[i].p50-d[i].p50))
			ga = append(ga, float64(g[i].p50-d[i].p50))
			if ba[i] > 0 {
				ratio = append(ratio, ga[i]/ba[i])
			}
			rps = append(rps, g[i].rps/b[i].rps)
		}
		mb, mg := median(b), median(g)
		fmt.Printf("| %d | %s | %s | %s / %s | %s / %s | %s | %s | %s | %.0f / %.0f | %s | %s / %s |\n", c.clients, sizeName(c.size), c.kind(),
			us(mb.p50), us(mb.p99), us(mg.p50), us(mg.p99), us(time.Duration(med(ba))), us(time.Duration(med(ga))),
			benchkit.RatioSummary(ratio), mb.rps, mg.rps, benchkit.RatioSummary(rps), us(mb.cpu), us(mg.cpu))
	}
}

// variant is one way of reaching the upstream.
type variant struct {
	name  string
	url   string // the MCP endpoint
	cmd   *exec.Cmd
	token bool // needs a fresh token per request
}

// stats is one measurement.
type stats struct {
	rps      float64
	p50, p99 time.Duration
	cpu      time.Duration // per call, of the variant's own process
}

func run(clientList string, requests, rounds int, profileDir string, profileRequests int, baseline string, es256Floor bool) error {
	var counts []int
	for _, s := range strings.Split(clientList, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(s))
		if err != nil || n <= 0 {
			return fmt.Errorf("-clients: %q", s)
		}
		counts = append(counts, n)
	}
	if requests < 100 || rounds < 1 {
		return errors.New("-requests must be at least 100 and -rounds at least 1")
	}
	dir, err := os.MkdirTemp("", "gatewaybench-*")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	keys, err := identity.GenerateKeyFiles(identity.AlgES256)
	if err != nil {
		return err
	}
	keyPath, pubPath := filepath.Join(dir, "key.pem"), filepath.Join(dir, "pub.pem")
	policyPath := filepath.Join(dir, "policy.yaml")
	if err := os.WriteFile(keyPath, keys.PrivatePEM, 0o600); err != nil {
		return err
	}
	if err := os.WriteFile(pubPath, keys.PublicPEM, 0o600); err != nil {
		return err
	}
	if err := os.WriteFile(policyPath, []byte(strings.Replace(benchPolicy, "KEY", keyPath, 1)), 0o600); err != nil {
		return err
	}
	minter, err := newMinter(policyPath)
	if err != nil {
		return err
	}
	self, err := os.Executable()
	if err != nil {
		return err
	}

	up, err := start("direct", exec.Command(self, "-upstream"))
	if err != nil {
		return err
	}
	defer stop(up)
	fl, err := start("floor", exec.Command(self, "-floor", up.url))
	if err != nil {
		return err
	}
	defer stop(fl)
	gw, err := start("gateway", exec.Command(self, "-gateway", up.url, "-policy", policyPath, "-audit", filepath.Join(dir, "audit.jsonl")))
	if err != nil {
		return err
	}
	defer stop(gw)
	gw.token = true
	variants := []*variant{up, fl, gw}
	if es256Floor {
		fe, err := start("floor+es256", exec.Command(self, "-floor", up.url, "-floor-pubkey", pubPath))
		if err != nil {
			return err
		}
		defer stop(fe)
		fe.token = true
		variants = append(variants, fe)
	}
	if baseline != "" {
		old, err := start("baseline", exec.Command(baseline, "-gateway", up.url, "-policy", policyPath, "-audit", filepath.Join(dir, "baseline-audit.jsonl")))
		if err != nil {
			return err
		}
		defer stop(old)
		old.token = true
		variants = append(variants, old)
	}

	var cells []cell
	for _, c := range counts {
		for _, size := range sizes {
			for _, sse := range []bool{false, true} {
				cells = append(cells, cell{c, size, sse})
			}
		}
	}
	// A request sent to direct and the floor carries a token too, spent or
	// not, so that every variant reads the same bytes.
	spare, err := minter.Mint(1)
	if err != nil {
		return err
	}
	results := map[key][]stats{}
	for r := 0; r < rounds; r++ {
		fmt.Fprintf(os.Stderr, "round %d/%d\n", r+1, rounds)
		for _, c := range cells {
			order := variants
			if r%2 == 1 {
				order = make([]*variant, len(variants))
				for i, v := range variants {
					order[len(variants)-1-i] = v
				}
			}
			for _, v := range order {
				warm, toks := 2*c.clients, make([]string, requests+2*c.clients)
				if v.token {
					if toks, err = minter.Mint(len(toks)); err != nil {
						return err
					}
				} else {
					for i := range toks {
						toks[i] = spare[0]
					}
				}
				st, err := load(v, c, toks[:warm], toks[warm:])
				if err != nil {
					return err
				}
				results[key{v.name, c}] = append(results[key{v.name, c}], st)
			}
		}
	}

	fmt.Printf("\nMCP tools/call through each variant, %d requests per measurement, %d rounds; p50/p99 medians over rounds, in µs\n", requests, rounds)
	fmt.Printf("added = variant − direct, per round (median); gw÷floor = gateway's added p50 ÷ floor's, per round (median [min–max] of the rounds where the floor added > 0); cpu = µs of the proxy process per call\n\n")
	fmt.Println("| clients | size | upstream | direct p50 / p99 | floor p50 / p99 | gateway p50 / p99 | floor added p50 / p99 | gateway added p50 / p99 | gw÷floor added p50 | gw÷floor added p99 | req/s floor / gateway | gw÷floor req/s | cpu/call floor / gateway |")
	fmt.Println("|---|---|---|---|---|---|---|---|---|---|---|---|---|")
	for _, c := range cells {
		d, f, g := results[key{"direct", c}], results[key{"floor", c}], results[key{"gateway", c}]
		added := func(s []stats, p func(stats) time.Duration) []float64 {
			out := make([]float64, len(s))
			for i := range s {
				out[i] = float64(p(s[i]) - p(d[i]))
			}
			return out
		}
		p50 := func(s stats) time.Duration { return s.p50 }
		p99 := func(s stats) time.Duration { return s.p99 }
		fa50, fa99, ga50, ga99 := added(f, p50), added(f, p99), added(g, p50), added(g, p99)
		var r50, r99, rps []float64
		for i := 0; i < rounds; i++ {
			// A round where the floor added nothing (noise) has no ratio.
			if fa50[i] > 0 {
				r50 = append(r50, ga50[i]/fa50[i])
			}
			if fa99[i] > 0 {
				r99 = append(r99, ga99[i]/fa99[i])
			}
			rps = append(rps, g[i].rps/f[i].rps)
		}
		md, mf, mg := median(d), median(f), median(g)
		tput, tputRatio := "", ""
		if c.clients > 1 {
			tput = fmt.Sprintf("%.0f / %.0f", mf.rps, mg.rps)
			tputRatio = benchkit.RatioSummary(rps)
		}
		fmt.Printf("| %d | %s | %s | %s / %s | %s / %s | %s / %s | %s / %s | %s / %s | %s | %s | %s | %s | %s / %s |\n",
			c.clients, sizeName(c.size), c.kind(),
			us(md.p50), us(md.p99), us(mf.p50), us(mf.p99), us(mg.p50), us(mg.p99),
			us(time.Duration(med(fa50))), us(time.Duration(med(fa99))), us(time.Duration(med(ga50))), us(time.Duration(med(ga99))),
			benchkit.RatioSummary(r50), benchkit.RatioSummary(r99), tput, tputRatio, us(mf.cpu), us(mg.cpu))
	}

	if es256Floor {
		fmt.Printf("\nthe gateway against floor+es256, the floor that also verifies each request's ES256 token and records its jti (per round, median [min–max])\n\n")
		compare(results, cells, "floor+es256")
	}
	if baseline != "" {
		fmt.Printf("\nthe gateway (this build) against the baseline build's gateway, same rounds (per round, median [min–max])\n\n")
		compare(results, cells, "baseline")
	}
	if profileDir != "" {
		return profileCell(self, up.url, policyPath, filepath.Join(dir, "profile-audit.jsonl"), profileDir, profileRequests, minter, spare[0])
	}
	return nil
}

// profileCell profiles a fresh floor and a fresh gateway, each in turn,
// under the 32-client 4 KB JSON cell.
func profileCell(self, upURL, policyPath, auditPath, profileDir string, requests int, minter *benchkit.Minter, spare string) error {
	if err := os.MkdirAll(profileDir, 0o755); err != nil {
		return err
	}
	c := cell{clients: 32, size: len(benchdata.Text)}
	fmt.Printf("\nprofiles under the %d-client %s %s cell, %d requests each:\n", c.clients, sizeName(c.size), "json", requests)
	for _, name := range []string{"floor", "gateway"} {
		out, err := filepath.Abs(filepath.Join(profileDir, name+".pprof"))
		if err != nil {
			return err
		}
		args := []string{"-floor", upURL}
		if name == "gateway" {
			args = []string{"-gateway", upURL, "-policy", policyPath, "-audit", auditPath}
		}
		v, err := start(name, exec.Command(self, append(args, "-cpuprofile", out)...))
		if err != nil {
			return err
		}
		toks := make([]string, requests+2*c.clients)
		if name == "gateway" {
			v.token = true
			if toks, err = minter.Mint(len(toks)); err != nil {
				stop(v)
				return err
			}
		} else {
			for i := range toks {
				toks[i] = spare
			}
		}
		st, err := load(v, c, toks[:2*c.clients], toks[2*c.clients:])
		stop(v)
		if err != nil {
			return err
		}
		fmt.Printf("  %-8s %6.0f req/s, p50 %s µs, cpu %s µs/call: %s\n", name, st.rps, us(st.p50), us(st.cpu), out)
	}
	return nil
}

func us(d time.Duration) string { return fmt.Sprintf("%.0f", float64(d)/float64(time.Microsecond)) }

func med(v []float64) float64 {
	s := append([]float64(nil), v...)
	sort.Float64s(s)
	return s[len(s)/2]
}

func median(s []stats) stats {
	pick := func(f func(stats) float64) float64 {
		v := make([]float64, len(s))
		for i := range s {
			v[i] = f(s[i])
		}
		return med(v)
	}
	return stats{
		rps: pick(func(x stats) float64 { return x.rps }),
		p50: time.Duration(pick(func(x stats) float64 { return float64(x.p50) })),
		p99: time.Duration(pick(func(x stats) float64 { return float64(x.p99) })),
		cpu: time.Duration(pick(func(x stats) float64 { return float64(x.cpu) })),
	}
}

// start runs a child that prints its address as its first line of JSON on
// stdout.
func start(name string, cmd *exec.Cmd) (*variant, error) {
	cmd.Stderr = os.Stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	addr := make(chan string, 1)
	go func() {
		var line struct{ Addr string }
		if json.NewDecoder(out).Decode(&line) != nil {
			close(addr)
			return
		}
		addr <- line.Addr
		io.Copy(io.Discard, out)
	}()
	select {
	case a, ok := <-addr:
		if !ok {
			cmd.Process.Kill()
			cmd.Wait()
			return nil, fmt.Errorf("%s did not start", name)
		}
		return &variant{name: name, url: "http://" + a + gateway.DefaultPath, cmd: cmd}, nil
	case <-time.After(30 * time.Second):
		cmd.Process.Kill()
		cmd.Wait()
		return nil, fmt.Errorf("%s did not start in time", name)
	}
}

func stop(v *variant) { benchkit.Stop(v.cmd) }

func newMinter(policyPath string) (*benchkit.Minter, error) {
	p, err := enforce.Load(policyPath, enforce.LoadOptions{})
	if err != nil {
		return nil, err
	}
	ks, err := identity.LoadSigningKeys(p.Policy, "", identity.KeySetOptions{})
	if err != nil {
		return nil, err
	}
	return benchkit.NewMinter(p.Policy, ks)
}

// callBody is request i of a cell: a stateless (2026-07-28) tools/call
// whose path names the response the upstream is to give.
func callBody(i int, c cell) []byte {
	return fmt.Appendf(nil, `{"jsonrpc":"2.0","id":%d,"method":"tools/call","params":{"name":"read_file","arguments":{"path":"/data/%s/%d/report-%d.txt"},`+
		`"_meta":{"io.modelcontextprotocol/protocolVersion":"2026-07-28","io.modelcontextprotocol/clientCapabilities":{},"io.modelcontextprotocol/clientInfo":{"name":"gatewaybench","version":"1"}}}}`,
		i, c.kind(), c.size, i%100)
}

func newClient(clients int) *http.Client {
	return &http.Client{Transport: &http.Transport{Proxy: nil, MaxIdleConnsPerHost: clients, MaxConnsPerHost: clients, DisableCompression: true}}
}

// call sends one request and checks its answer: 200, the content type the
// upstream gave, and the whole result text.
func call(hc *http.Client, url string, i int, c cell, token string) error {
	req, err := http.NewRequest(http.MethodPost, url, bytes.NewReader(callBody(i, c)))
	if err != nil {
		return err
	}
	h := req.Header
	h["Content-Type"] = []string{"application/json"}
	h["Accept"] = []string{"application/json, text/event-stream"}
	h["Mcp-Protocol-Version"] = []string{gateway.Era2026}
	h["Mcp-Method"] = []string{"tools/call"}
	h["Mcp-Name"] = []string{"read_file"}
	h["Authorization"] = []string{"Bearer " + token}
	resp, err := hc.Do(req)
	if err != nil {
		return err
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		return err
	}
	want := "application/json"
	if c.sse {
		want = "text/event-stream"
	}
	if resp.StatusCode != http.StatusOK || !strings.HasPrefix(resp.Header.Get("Content-Type"), want) ||
		!bytes.Contains(body, []byte(benchdata.Text[:c.size]+`"`)) || !bytes.Contains(body, []byte(`"result"`)) {
		return fmt.Errorf("HTTP %d %s: %.300s", resp.StatusCode, resp.Header.Get("Content-Type"), body)
	}
	return nil
}

// load sends warm (untimed), then every token of toks once, over c.clients
// connections, closed-loop.
func load(v *variant, c cell, warm, toks []string) (stats, error) {
	hc := newClient(c.clients)
	defer hc.CloseIdleConnections()
	var wg sync.WaitGroup
	var firstErr atomic.Pointer[error]
	fail := func(err error) {
		err = fmt.Errorf("%s, cell %s: %w", v.name, c, err)
		firstErr.CompareAndSwap(nil, &err)
	}
	phase := func(toks []string, lat []time.Duration) {
		var next atomic.Int64
		for w := 0; w < c.clients; w++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for {
					i := int(next.Add(1)) - 1
					if i >= len(toks) || firstErr.Load() != nil {
						return
					}
					t0 := time.Now()
					err := call(hc, v.url, i, c, toks[i])
					if lat != nil {
						lat[i] = time.Since(t0)
					}
					if err != nil {
						fail(err)
					}
				}
			}()
		}
		wg.Wait()
	}
	phase(warm, nil)
	lat := make([]time.Duration, len(toks))
	cpu0, err := benchkit.ProcessCPU(v.cmd.Process.Pid)
	if err != nil {
		return stats{}, err
	}
	t0 := time.Now()
	phase(toks, lat)
	elapsed := time.Since(t0)
	cpu1, err := benchkit.ProcessCPU(v.cmd.Process.Pid)
	if err != nil {
		return stats{}, err
	}
	if e := firstErr.Load(); e != nil {
		return stats{}, *e
	}
	sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
	return stats{
		rps: float64(len(toks)) / elapsed.Seconds(),
		p50: lat[len(lat)/2], p99: lat[len(lat)*99/100],
		cpu: (cpu1 - cpu0) / time.Duration(len(toks)),
	}, nil
}

// listen listens on a loopback port and prints its address for start.
func listen() (net.Listener, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	return ln, json.NewEncoder(os.Stdout).Encode(struct{ Addr string }{ln.Addr().String()})
}

// serveUpstream is the upstream: it answers a POSTed tools/call with a
// result whose text has the size its path names, as JSON or as one event,
// from bytes prepared in advance.
func serveUpstream() error {
	type answer struct{ head, tail []byte }
	answers := map[string]answer{}
	for _, size := range sizes {
		for _, kind := range []string{"json", "sse"} {
			head, tail := `{"jsonrpc":"2.0","id":`, `,"result":{"content":[{"type":"text","text":"`+benchdata.Text[:size]+`"}]}}`
			if kind == "sse" {
				head, tail = "event: message\ndata: "+head, tail+"\n\n"
			}
			answers[fmt.Sprintf("/data/%s/%d/", kind, size)] = answer{[]byte(head), []byte(tail)}
		}
	}
	pathKey := []byte(`"path":"`)
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(io.LimitReader(r.Body, 1<<20))
		if err != nil || r.Method != http.MethodPost {
			http.Error(w, "POST a tools/call", http.StatusBadRequest)
			return
		}
		id, ok := jsonID(body)
		i := bytes.Index(body, pathKey)
		if !ok || i < 0 {
			http.Error(w, "no id or no path", http.StatusBadRequest)
			return
		}
		a, ok := answers[string(responseKey(body[i+len(pathKey):]))]
		if !ok {
			http.Error(w, "unknown path", http.StatusNotFound)
			return
		}
		ct := "application/json"
		if bytes.HasPrefix(a.head, []byte("event:")) {
			ct = "text/event-stream"
		}
		out := make([]byte, 0, len(a.head)+len(id)+len(a.tail))
		out = append(append(append(out, a.head...), id...), a.tail...)
		w.Header()["Content-Type"] = []string{ct}
		w.Header()["Content-Length"] = []string{strconv.Itoa(len(out))}
		w.Write(out)
	})
	ln, err := listen()
	if err != nil {
		return err
	}
	return serveUntilInterrupt(&http.Server{Handler: h}, ln)
}

// responseKey is the head of a path, "/data/KIND/SIZE/": up to its fourth
// slash.
func responseKey(p []byte) []byte {
	n := 0
	for k, b := range p {
		if b == '/' {
			if n++; n == 4 {
				return p[:k+1]
			}
		}
	}
	return nil
}

// jsonID is the raw id of the message in body, when it comes before the
// params (as every request of this program has it).
func jsonID(body []byte) ([]byte, bool) {
	i := bytes.Index(body, []byte(`"id":`))
	if i < 0 {
		return nil, false
	}
	rest := body[i+5:]
	j := bytes.IndexAny(rest, ",}")
	if j <= 0 {
		return nil, false
	}
	return rest[:j], true
}

// floorHandler is the floor: Go's reverse proxy, streaming both ways. With
// a public key it first verifies the request's ES256 token with the
// standard library and records its jti once, as tools/serverbench's floor
// does: the least a gateway with per-request identity must add.
func floorHandler(upstreamURL, pubPath string) (http.Handler, error) {
	u, err := url.Parse(upstreamURL)
	if err != nil {
		return nil, err
	}
	var verify func(*http.Request) bool
	if pubPath != "" {
		if verify, err = tokenVerifier(pubPath); err != nil {
			return nil, err
		}
	}
	rp := &httputil.ReverseProxy{
		Rewrite:       func(pr *httputil.ProxyRequest) { pr.SetURL(u); pr.Out.URL.Path = u.Path },
		FlushInterval: -1,
		Transport: &http.Transport{Proxy: nil, MaxIdleConns: 1024, MaxIdleConnsPerHost: 1024,
			IdleConnTimeout: 90 * time.Second, DisableCompression: true},
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if verify != nil && !verify(r) {
			http.Error(w, "invalid token", http.StatusUnauthorized)
			return
		}
		http.NewResponseController(w).EnableFullDuplex()
		rp.ServeHTTP(w, r)
	}), nil
}

// tokenVerifier accepts a request whose Bearer token is an ES256 JWT
// signed with the key in pubPath, unexpired, whose jti it has not seen.
func tokenVerifier(pubPath string) (func(*http.Request) bool, error) {
	pemBytes, err := os.ReadFile(pubPath)
	if err != nil {
		return nil, err
	}
	pub, err := identity.ParsePublicKeyPEM(pemBytes)
	if err != nil {
		return nil, err
	}
	ec, ok := pub.(*ecdsa.PublicKey)
	if !ok {
		return nil, errors.New("not an ECDSA key")
	}
	var seen sync.Map
	return func(r *http.Request) bool {
		tok, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
		parts := strings.Split(tok, ".")
		if !ok || len(parts) != 3 {
			return false
		}
		sig, err := base64.RawURLEncoding.DecodeString(parts[2])
		if err != nil || len(sig) != 64 {
			return false
		}
		digest := sha256.Sum256([]byte(parts[0] + "." + parts[1]))
		if !ecdsa.Verify(ec, digest[:], new(big.Int).SetBytes(sig[:32]), new(big.Int).SetBytes(sig[32:])) {
			return false
		}
		payload, err := base64.RawURLEncoding.DecodeString(parts[1])
		if err != nil {
			return false
		}
		var c struct {
			Jti string `json:"jti"`
			Exp int64  `json:"exp"`
		}
		if json.Unmarshal(payload, &c) != nil || c.Jti == "" || c.Exp < time.Now().Unix() {
			return false
		}
		_, dup := seen.LoadOrStore(c.Jti, struct{}{})
		return !dup
	}, nil
}

// child serves the handler mk makes until interrupted, with the GC setting
// of `agentid gateway` (GOGC 400 unless set), profiling the CPU into
// cpuProfile when it is not "".
func child(cpuProfile string, mk func() (http.Handler, error)) error {
	if os.Getenv("GOGC") == "" {
		debug.SetGCPercent(400)
	}
	stopProfile, err := startProfile(cpuProfile)
	if err != nil {
		return err
	}
	defer stopProfile()
	h, err := mk()
	if err != nil {
		return err
	}
	ln, err := listen()
	if err != nil {
		return err
	}
	return serveUntilInterrupt(&http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}, ln)
}

func startProfile(path string) (func(), error) {
	if path == "" {
		return func() {}, nil
	}
	f, err := os.Create(path)
	if err != nil {
		return nil, err
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		f.Close()
		return nil, err
	}
	return func() { pprof.StopCPUProfile(); f.Close() }, nil
}

func serveUntilInterrupt(hs *http.Server, ln net.Listener) error {
	ctx, cancel := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer cancel()
	go func() { <-ctx.Done(); hs.Close() }()
	if err := hs.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

// serveGateway is the gateway as `agentid gateway --upstream URL` builds it:
// the policy, its signing key, an in-memory store, the audit log in a file,
// served by server.Serve on loopback.
func serveGateway(upstreamURL, policyPath, auditPath, cpuProfile string) error {
	if os.Getenv("GOGC") == "" {
		debug.SetGCPercent(400) // as `agentid gateway` does
	}
	stopProfile, err := startProfile(cpuProfile)
	if err != nil {
		return err
	}
	defer stopProfile()
	p, err := enforce.Load(policyPath, enforce.LoadOptions{})
	if err != nil {
		return err
	}
	keys, err := identity.LoadSigningKeys(p.Policy, "", identity.KeySetOptions{})
	if err != nil {
		return err
	}
	auditLog, err := audit.Open(auditPath)
	if err != nil {
		return err
	}
	defer auditLog.Close()
	srv, err := server.New(server.Config{Policies: []*enforce.Policy{p}, Keys: keys, Audit: auditLog})
	if err != nil {
		return err
	}
	defer srv.Close()
	gw, err := gateway.New(gateway.Config{Server: srv, Upstream: upstreamURL, Audit: auditLog})
	if err != nil {
		return err
	}
	defer gw.Close()
	ctx, cancel := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer cancel()
	var ready error
	err = server.Serve(ctx, srv, server.Listener{Addr: "127.0.0.1:0", Handler: gw.Handler(),
		Ready: func(a net.Addr) {
			ready = json.NewEncoder(os.Stdout).Encode(struct{ Addr string }{a.String()})
		}})
	if err == nil {
		err = ready
	}
	return err
}
