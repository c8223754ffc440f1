// Command serverbench measures `agentid serve`'s POST /v1/validate under
// load against a floor measured in the same run, on loopback:
//
//	go run ./tools/serverbench [-conns 1,16,64] [-requests 20000] [-rounds 3] [-store memory|redis://…|postgres://…[?unlogged=true]]
//
// The floor is a bare net/http handler (this program re-executed with
// -floor) that does the least a validation server must: verify the
// request's ES256 JWT with the standard library and record its jti once in
// the same kind of store: a map for memory, SET NX PX on Redis, INSERT …
// ON CONFLICT DO NOTHING on PostgreSQL (into an UNLOGGED table when the URL
// says unlogged=true, as agentid's store does). agentid serve does everything
// the spec asks on top: strict request decoding, the full token validation
// order (§5.4.3), the policy decision, audit records and metrics.
//
// Tokens are minted before each timed phase and each is sent once, so every
// request is a valid, fresh token (the expensive path). Each measurement is
// closed-loop: -conns connections, each sending its next request when the
// previous answer arrives. The two servers alternate within each round, so
// they see the same machine; the table reports medians over rounds of
// throughput and of p50 and p99 latency, and agentid's ratios to the floor.
//
// A replay check runs on each: one token sent 1,000 times at once must be
// accepted exactly once.
package main

import (
	"context"
	"crypto/ecdsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	goredis "github.com/redis/go-redis/v9"

	"github.com/agentid/agentid/identity"
	"github.com/agentid/agentid/policy"
	"github.com/agentid/agentid/tools/internal/benchkit"
)

func main() {
	floor := flag.String("floor", "", "act as the floor server with this ES256 public key file (internal)")
	floorStore := flag.String("floor-store", "memory", "the floor's store (internal)")
	conns := flag.String("conns", "1,16,64", "concurrent connections, comma-separated")
	requests := flag.Int("requests", 20000, "requests per measurement")
	rounds := flag.Int("rounds", 3, "rounds; the servers alternate within a round")
	store := flag.String("store", "memory", "store for both servers: memory, redis://… or postgres://…")
	agentid := flag.String("agentid", "", "agentid binary (default: go build ./cmd/agentid)")
	flag.Parse()
	if *floor != "" {
		if err := serveFloor(*floor, *floorStore); err != nil {
			fmt.Fprintln(os.Stderr, "serverbench floor:", err)
			os.Exit(1)
		}
		return
	}
	if err := run(*conns, *requests, *rounds, *store, *agentid); err != nil {
		fmt.Fprintln(os.Stderr, "serverbench:", err)
		os.Exit(1)
	}
}

const benchPolicy = `apiVersion: aip.io/v1alpha2
kind: AgentPolicy
metadata: {name: bench}
spec:
  allowed_tools: [read_file]
  identity:
    enabled: true
    require_token: true
    token_ttl: 1h
    rotation_interval: 0s
    keys:
      key_source: file
      key_path: KEY
`

// target is one server under test.
type target struct {
	name string
	url  string
	cmd  *exec.Cmd
}

func run(connList string, requests, rounds int, store, agentidBin string) error {
	var counts []int
	for _, s := range strings.Split(connList, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(s))
		if err != nil || n <= 0 {
			return fmt.Errorf("-conns: %q", s)
		}
		counts = append(counts, n)
	}
	dir, err := os.MkdirTemp("", "serverbench-*")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	if agentidBin == "" {
		agentidBin = filepath.Join(dir, "agentid")
		if out, err := exec.Command("go", "build", "-o", agentidBin, "./cmd/agentid").CombinedOutput(); err != nil {
			return fmt.Errorf("go build ./cmd/agentid: %v\n%s", err, out)
		}
	}
	keys, err := identity.GenerateKeyFiles(identity.AlgES256)
	if err != nil {
		return err
	}
	keyPath, pubPath := filepath.Join(dir, "key.pem"), filepath.Join(dir, "pub.pem")
	os.WriteFile(keyPath, keys.PrivatePEM, 0o600)
	os.WriteFile(pubPath, keys.PublicPEM, 0o600)
	policyPath := filepath.Join(dir, "policy.yaml")
	os.WriteFile(policyPath, []byte(strings.Replace(benchPolicy, "KEY", keyPath, 1)), 0o600)
	minter, err := newMinter(policyPath, keyPath)
	if err != nil {
		return err
	}
	self, _ := os.Executable()
	floorT, err := start("floor", exec.Command(self, "-floor", pubPath, "-floor-store", store))
	if err != nil {
		return err
	}
	defer stop(floorT)
	agentT, err := start("agentid", exec.Command(agentidBin, "serve", "--policy", policyPath, "--listen", "127.0.0.1:0", "--store", store,
		"--audit", filepath.Join(dir, "audit.jsonl"), "--drain-delay", "0", "--log-format", "json"))
	if err != nil {
		return err
	}
	defer stop(agentT)
	targets := []*target{floorT, agentT}

	for _, t := range targets {
		accepted, err := replayCheck(t, minter)
		if err != nil {
			return err
		}
		fmt.Printf("replay check %-8s one token sent 1000 times at once: %d accepted\n", t.name, accepted)
	}

	type key struct {
		target string
		conns  int
	}
	results := map[key][]stats{}
	for r := 0; r < rounds; r++ {
		for _, c := range counts {
			order := targets
			if r%2 == 1 {
				order = []*target{agentT, floorT}
			}
			for _, t := range order {
				toks, err := minter.Mint(requests)
				if err != nil {
					return err
				}
				st, err := load(t, c, toks)
				if err != nil {
					return err
				}
				results[key{t.name, c}] = append(results[key{t.name, c}], st)
			}
		}
	}
	fmt.Printf("\nstore %s, %d requests per measurement, %d rounds (medians)\n", store, requests, rounds)
	fmt.Printf("%-6s | %-28s | %-28s | %s\n", "conns", "floor: req/s  p50  p99", "agentid: req/s  p50  p99", "agentid÷floor: throughput  p50  p99")
	for _, c := range counts {
		f, a := median(results[key{"floor", c}]), median(results[key{"agentid", c}])
		fmt.Printf("%-6d | %8.0f %8s %8s | %8.0f %8s %8s | %5.2f× %5.2f× %5.2f×\n", c,
			f.rps, f.p50.Round(time.Microsecond), f.p99.Round(time.Microsecond),
			a.rps, a.p50.Round(time.Microsecond), a.p99.Round(time.Microsecond),
			a.rps/f.rps, float64(a.p50)/float64(f.p50), float64(a.p99)/float64(f.p99))
	}
	return nil
}

// start runs a server that prints its address on its first stdout line
// (the floor) or logs it as "listen" (agentid serve, JSON logs on stderr).
func start(name string, cmd *exec.Cmd) (*target, error) {
	var out io.ReadCloser
	var err error
	if name == "floor" {
		out, err = cmd.StdoutPipe()
	} else {
		out, err = cmd.StderrPipe()
	}
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	addr := make(chan string, 1)
	go func() {
		dec := json.NewDecoder(out)
		for {
			if name == "floor" {
				var line struct{ Addr string }
				if dec.Decode(&line) != nil {
					close(addr)
					return
				}
				addr <- line.Addr
				io.Copy(io.Discard, out)
				return
			}
			var rec map[string]any
			if dec.Decode(&rec) != nil {
				close(addr)
				return
			}
			if a, ok := rec["listen"].(string); ok {
				addr <- a
				io.Copy(io.Discard, out)
				return
			}
		}
	}()
	select {
	case a, ok := <-addr:
		if !ok {
			cmd.Process.Kill()
			return nil, fmt.Errorf("%s did not start", name)
		}
		return &target{name: name, url: "http://" + a, cmd: cmd}, nil
	case <-time.After(30 * time.Second):
		cmd.Process.Kill()
		return nil, fmt.Errorf("%s did not start in time", name)
	}
}

func stop(t *target) { benchkit.Stop(t.cmd) }

func newMinter(policyPath, keyPath string) (*benchkit.Minter, error) {
	p, _, err := policy.Load(policyPath)
	if err != nil {
		return nil, err
	}
	ks, err := identity.LoadKeySet(keyPath, "", identity.KeySetOptions{})
	if err != nil {
		return nil, err
	}
	return benchkit.NewMinter(p, ks)
}

const validateBody = `{"tool":"read_file","arguments":{"path":"/tmp/bench.txt"}}`

func newClient(conns int) *http.Client {
	return &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: conns, MaxConnsPerHost: conns, DisableCompression: true}}
}

// validate sends one request and reports whether it was allowed.
func validate(c *http.Client, url, token string) (bool, error) {
	req, _ := http.NewRequest("POST", url+"/v1/validate", strings.NewReader(validateBody))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := c.Do(req)
	if err != nil {
		return false, err
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	return resp.StatusCode == 200 && strings.Contains(string(body), `"allow"`), nil
}

func replayCheck(t *target, mi *benchkit.Minter) (int, error) {
	toks, err := mi.Mint(1)
	if err != nil {
		return 0, err
	}
	c := newClient(64)
	var accepted atomic.Int64
	var wg sync.WaitGroup
	var firstErr atomic.Value
	for i := 0; i < 1000; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ok, err := validate(c, t.url, toks[0])
			if err != nil {
				firstErr.CompareAndSwap(nil, err)
			}
			if ok {
				accepted.Add(1)
			}
		}()
	}
	wg.Wait()
	if e := firstErr.Load(); e != nil {
		return 0, e.(error)
	}
	return int(accepted.Load()), nil
}

type stats struct {
	rps      float64
	p50, p99 time.Duration
}

// load sends every token once over conns connections, closed-loop.
func load(t *target, conns int, tokens []string) (stats, error) {
	c := newClient(conns)
	defer c.CloseIdleConnections()
	lat := make([]time.Duration, len(tokens))
	var next atomic.Int64
	var failed atomic.Int64
	var wg sync.WaitGroup
	start := time.Now()
	for w := 0; w < conns; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1)) - 1
				if i >= len(tokens) {
					return
				}
				t0 := time.Now()
				ok, err := validate(c, t.url, tokens[i])
				lat[i] = time.Since(t0)
				if err != nil || !ok {
					failed.Add(1)
				}
			}
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)
	if n := failed.Load(); n > 0 {
		return stats{}, fmt.Errorf("%s at %d connections: %d of %d requests were not allowed", t.name, conns, n, len(tokens))
	}
	sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
	return stats{rps: float64(len(tokens)) / elapsed.Seconds(), p50: lat[len(lat)/2], p99: lat[len(lat)*99/100]}, nil
}

func median(s []stats) stats {
	pick := func(f func(stats) float64) float64 {
		v := make([]float64, len(s))
		for i := range s {
			v[i] = f(s[i])
		}
		sort.Float64s(v)
		return v[len(v)/2]
	}
	return stats{
		rps: pick(func(x stats) float64 { return x.rps }),
		p50: time.Duration(pick(func(x stats) float64 { return float64(x.p50) })),
		p99: time.Duration(pick(func(x stats) float64 { return float64(x.p99) })),
	}
}

// serveFloor is the floor: verify the ES256 JWT with the standard library,
// record its jti once, answer allow.
func serveFloor(pubPath, storeURL string) error {
	pemBytes, err := os.ReadFile(pubPath)
	if err != nil {
		return err
	}
	pub, err := identity.ParsePublicKeyPEM(pemBytes)
	if err != nil {
		return err
	}
	ec, ok := pub.(*ecdsa.PublicKey)
	if !ok {
		return fmt.Errorf("not an ECDSA key")
	}
	record, err := floorRecorder(storeURL)
	if err != nil {
		return err
	}
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		tok := strings.TrimPrefix(r.Header.Get("Authorization"), "Bearer ")
		jti, ok := verifyES256(ec, tok)
		if !ok {
			http.Error(w, `{"error":"token_invalid"}`, http.StatusUnauthorized)
			return
		}
		fresh, err := record(r.Context(), jti)
		if err != nil {
			http.Error(w, `{"error":"validation_unavailable"}`, http.StatusServiceUnavailable)
			return
		}
		if !fresh {
			http.Error(w, `{"error":"token_invalid"}`, http.StatusUnauthorized)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, `{"decision":"allow"}`)
	})
	ln, err := netListen()
	if err != nil {
		return err
	}
	json.NewEncoder(os.Stdout).Encode(struct{ Addr string }{ln.Addr().String()})
	return (&http.Server{Handler: h}).Serve(ln)
}

// floorRecorder records a jti once, in the store storeURL names: the
// least each kind of store must do.
func floorRecorder(storeURL string) (func(context.Context, string) (bool, error), error) {
	const ttl = time.Hour
	switch {
	case storeURL == "memory":
		var seen sync.Map
		return func(_ context.Context, jti string) (bool, error) {
			_, dup := seen.LoadOrStore(jti, struct{}{})
			return !dup, nil
		}, nil
	case strings.HasPrefix(storeURL, "redis://"):
		u, _, _ := strings.Cut(storeURL, "?")
		opt, err := goredis.ParseURL(u)
		if err != nil {
			return nil, err
		}
		opt.PoolSize = 128
		c := goredis.NewClient(opt)
		return func(ctx context.Context, jti string) (bool, error) {
			return c.SetNX(ctx, "floor:"+jti, 1, ttl).Result()
		}, nil
	case strings.HasPrefix(storeURL, "postgres://"):
		u, err := url.Parse(storeURL)
		if err != nil {
			return nil, err
		}
		q := u.Query()
		unlogged := q.Get("unlogged") == "true"
		q.Del("unlogged")
		u.RawQuery = q.Encode()
		pool, err := pgxpool.New(context.Background(), u.String())
		if err != nil {
			return nil, err
		}
		kind := "TABLE"
		if unlogged {
			kind = "UNLOGGED TABLE"
		}
		table := fmt.Sprintf("floor_nonces_%d", os.Getpid())
		if _, err := pool.Exec(context.Background(), "CREATE "+kind+" "+table+" (jti text PRIMARY KEY, expires timestamptz NOT NULL)"); err != nil {
			return nil, err
		}
		insert := "INSERT INTO " + table + " (jti, expires) VALUES ($1, $2) ON CONFLICT DO NOTHING"
		return func(ctx context.Context, jti string) (bool, error) {
			tag, err := pool.Exec(ctx, insert, jti, time.Now().Add(ttl))
			return tag.RowsAffected() == 1, err
		}, nil
	}
	return nil, fmt.Errorf("floor store %q: want memory, redis:// or postgres://", storeURL)
}

func verifyES256(pub *ecdsa.PublicKey, tok string) (jti string, ok bool) {
	parts := strings.Split(tok, ".")
	if len(parts) != 3 {
		return "", false
	}
	sig, err := base64.RawURLEncoding.DecodeString(parts[2])
	if err != nil || len(sig) != 64 {
		return "", false
	}
	digest := sha256.Sum256([]byte(parts[0] + "." + parts[1]))
	if !ecdsa.Verify(pub, digest[:], new(big.Int).SetBytes(sig[:32]), new(big.Int).SetBytes(sig[32:])) {
		return "", false
	}
	payload, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		return "", false
	}
	var c struct {
		Jti string `json:"jti"`
		Exp int64  `json:"exp"`
	}
	if json.Unmarshal(payload, &c) != nil || c.Jti == "" || c.Exp < time.Now().Unix() {
		return "", false
	}
	return c.Jti, true
}

func netListen() (net.Listener, error) { return net.Listen("tcp", "127.0.0.1:0") }
