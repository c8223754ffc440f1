// Command latencybench measures the latency the proxy adds to a tools/call
// round trip, against the same MCP server called directly, over real pipes
// and real processes:
//
//	go run ./tools/latencybench [-n 5000] [-pipelined 20000] [-rounds 5]
//
// Five configurations run interleaved within every round, so that they see
// the same machine: direct, a bare line relay (the floor of any stdio
// proxy), the same relay writing the lines that arrived together with one
// write (relay-batched: agentid does that, so it is the fair floor for it
// when calls are pipelined), agentid, and agentid with 10 DLP patterns. Two
// measurements are made in each round:
//
//   - sequential: one call at a time; p50 and p99 per configuration, and the
//     time added to the direct call;
//   - pipelined: 32 calls in flight, time per call over -pipelined calls,
//     which measures the proxy's own CPU cost rather than process wake-ups
//     (see DESIGN.md, "Measuring speed on these machines").
//
// For each round, sequentially, the ratio "added by agentid / added by the
// relay" is computed, and pipelined, agentid's time per call divided by the
// relay's and the batched relay's (a relay in the middle pipelines the two
// processes, so it can be faster than the direct call). The median and the
// spread (min–max) of those per-round ratios are what to compare with a
// target such as "≤ 1.4× the relay".
//
// The server is this program itself (re-executed with -serve): it answers
// every tools/call with a fixed 4 KB text result, so the measurement is the
// proxy's cost, not the server's. The DLP configuration uses 10 patterns.
package main

import (
	"bufio"
	"bytes"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/agentid/agentid/internal/benchdata"
	"github.com/agentid/agentid/tools/internal/benchkit"
)

func main() {
	serve := flag.Bool("serve", false, "act as the MCP server (internal)")
	relay := flag.Bool("relay", false, "act as a bare line relay in front of -serve (internal): the floor of any stdio proxy")
	batched := flag.Bool("relay-batched", false, "act as a bare line relay that writes the lines it has read together with one write (internal)")
	n := flag.Int("n", 5000, "measured calls per configuration and round")
	pipelined := flag.Int("pipelined", 20000, "calls per configuration and round with 32 in flight (0: skip)")
	rounds := flag.Int("rounds", 5, "rounds; configurations alternate within a round")
	agentid := flag.String("agentid", "", "agentid binary (default: go build ./cmd/agentid)")
	flag.Parse()
	if *serve {
		serveMCP(os.Stdin, os.Stdout)
		return
	}
	if *relay || *batched {
		if err := relayLines(*batched); err != nil {
			fmt.Fprintln(os.Stderr, "latencybench:", err)
			os.Exit(1)
		}
		return
	}
	if err := run(*n, *pipelined, *rounds, *agentid); err != nil {
		fmt.Fprintln(os.Stderr, "latencybench:", err)
		os.Exit(1)
	}
}

type config struct {
	name string
	argv []string
}

func run(n, pipelined, rounds int, agentid string) error {
	self, err := os.Executable()
	if err != nil {
		return err
	}
	dir, err := os.MkdirTemp("", "latencybench-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	if agentid == "" {
		agentid = filepath.Join(dir, "agentid")
		build := exec.Command("go", "build", "-o", agentid, "./cmd/agentid")
		build.Stderr = os.Stderr
		if err := build.Run(); err != nil {
			return fmt.Errorf("building agentid (run from the module root): %w", err)
		}
	}
	plain := filepath.Join(dir, "plain.yaml")
	withDLP := filepath.Join(dir, "dlp.yaml")
	if err := os.WriteFile(plain, []byte(benchdata.Policy), 0o600); err != nil {
		return err
	}
	if err := os.WriteFile(withDLP, []byte(benchdata.Policy+benchdata.DLP), 0o600); err != nil {
		return err
	}
	proxyArgs := func(policy string) []string {
		return []string{agentid, "proxy", "--policy", policy, "--audit", filepath.Join(dir, filepath.Base(policy)+".audit"), "--", self, "-serve"}
	}
	configs := []config{
		{"direct", []string{self, "-serve"}},
		{"relay", []string{self, "-relay"}},
		{"relay-batched", []string{self, "-relay-batched"}},
		{"proxy", proxyArgs(plain)},
		{"proxy+dlp", proxyArgs(withDLP)},
	}
	samples := make(map[string][]time.Duration)
	var seqRatios, pipeRatios, batchedRatios = map[string][]float64{}, map[string][]float64{}, map[string][]float64{}
	perCall := make(map[string][]time.Duration)
	cpuPerCall := make(map[string][]time.Duration)
	var cpuRatios, cpuBatchedRatios = map[string][]float64{}, map[string][]float64{}
	for r := 0; r < rounds; r++ {
		round50 := make(map[string]time.Duration)
		roundPipe := make(map[string]time.Duration)
		roundCPU := make(map[string]time.Duration)
		for _, c := range configs {
			d, err := measure(c.argv, n)
			if err != nil {
				return fmt.Errorf("%s: %w", c.name, err)
			}
			samples[c.name] = append(samples[c.name], d...)
			round50[c.name] = percentile(d, 50)
			if pipelined > 0 {
				pc, cpu, err := measurePipelined(c.argv, pipelined, 32)
				if err != nil {
					return fmt.Errorf("%s pipelined: %w", c.name, err)
				}
				perCall[c.name] = append(perCall[c.name], pc)
				roundPipe[c.name] = pc
				cpuPerCall[c.name] = append(cpuPerCall[c.name], cpu)
				roundCPU[c.name] = cpu
			}
		}
		for _, c := range configs[2:] {
			seqRatios[c.name] = append(seqRatios[c.name], addedRatio(round50, c.name))
			if pipelined > 0 {
				pipeRatios[c.name] = append(pipeRatios[c.name], float64(roundPipe[c.name])/float64(roundPipe["relay"]))
				cpuRatios[c.name] = append(cpuRatios[c.name], float64(roundCPU[c.name])/float64(max(roundCPU["relay"], 1)))
				if c.name != "relay-batched" {
					batchedRatios[c.name] = append(batchedRatios[c.name], float64(roundPipe[c.name])/float64(roundPipe["relay-batched"]))
					cpuBatchedRatios[c.name] = append(cpuBatchedRatios[c.name], float64(roundCPU[c.name])/float64(max(roundCPU["relay-batched"], 1)))
				}
			}
		}
	}
	fmt.Printf("tools/call round trip, 4 KB response, %d rounds; configurations interleaved within each round\n\n", rounds)
	fmt.Printf("sequential, %d calls per configuration and round\n", n)
	fmt.Printf("%-13s %10s %10s %12s %12s %22s\n", "config", "p50", "p99", "added p50", "added p99", "added/relay (med, range)")
	base50, base99 := percentile(samples["direct"], 50), percentile(samples["direct"], 99)
	for _, c := range configs {
		p50, p99 := percentile(samples[c.name], 50), percentile(samples[c.name], 99)
		added50, added99, ratio := "", "", ""
		if c.name != "direct" {
			added50, added99 = micro(p50-base50), micro(p99-base99)
		}
		if rs := seqRatios[c.name]; len(rs) > 0 {
			ratio = benchkit.RatioSummary(rs)
		}
		fmt.Printf("%-13s %10s %10s %12s %12s %22s\n", c.name, micro(p50), micro(p99), added50, added99, ratio)
	}
	if pipelined > 0 {
		fmt.Printf("\npipelined, 32 in flight, %d calls per configuration and round (time per call, median of rounds)\n", pipelined)
		fmt.Printf("%-13s %10s %12s %22s %30s\n", "config", "per call", "vs direct", "÷ relay (med, range)", "÷ relay-batched (med, range)")
		base := median(perCall["direct"])
		for _, c := range configs {
			pc := median(perCall[c.name])
			added, ratio, batchedRatio := "", "", ""
			if c.name != "direct" {
				added = micro(pc - base)
			}
			if rs := pipeRatios[c.name]; len(rs) > 0 {
				ratio = benchkit.RatioSummary(rs)
			}
			if rs := batchedRatios[c.name]; len(rs) > 0 {
				batchedRatio = benchkit.RatioSummary(rs)
			}
			fmt.Printf("%-13s %10s %12s %22s %30s\n", c.name, micro(pc), added, ratio, batchedRatio)
		}
		fmt.Printf("\nCPU time per call of the process started (direct: the server; otherwise the relay or proxy alone,\nwithout the server), pipelined, median of rounds: less sensitive than elapsed time to a busy machine\n")
		fmt.Printf("%-13s %10s %22s %30s\n", "config", "cpu/call", "÷ relay (med, range)", "÷ relay-batched (med, range)")
		for _, c := range configs {
			ratio, batchedRatio := "", ""
			if rs := cpuRatios[c.name]; len(rs) > 0 {
				ratio = benchkit.RatioSummary(rs)
			}
			if rs := cpuBatchedRatios[c.name]; len(rs) > 0 {
				batchedRatio = benchkit.RatioSummary(rs)
			}
			fmt.Printf("%-13s %10s %22s %30s\n", c.name, micro(median(cpuPerCall[c.name])), ratio, batchedRatio)
		}
	}
	return nil
}

// addedRatio is what config adds to the direct call, as a multiple of what
// the bare relay adds, within one round.
func addedRatio(m map[string]time.Duration, config string) float64 {
	floor := m["relay"] - m["direct"]
	if floor <= 0 {
		floor = 1
	}
	return float64(m[config]-m["direct"]) / float64(floor)
}

func median(ds []time.Duration) time.Duration { return percentile(ds, 50) }

func micro(d time.Duration) string { return fmt.Sprintf("%.1fµs", float64(d.Nanoseconds())/1000) }

func percentile(ds []time.Duration, p int) time.Duration {
	s := append([]time.Duration(nil), ds...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	if len(s) == 0 {
		return 0
	}
	return s[(len(s)-1)*p/100]
}

// measure starts argv, initializes, warms up, and times n sequential calls.
func measure(argv []string, n int) ([]time.Duration, error) {
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Stderr = os.Stderr
	in, err := cmd.StdinPipe()
	if err != nil {
		return nil, err
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	defer func() {
		in.Close()
		_ = cmd.Wait()
	}()
	rd := bufio.NewReaderSize(out, 1<<16)
	roundTrip := func(line string) error {
		if _, err := io.WriteString(in, line); err != nil {
			return err
		}
		resp, err := rd.ReadString('\n')
		if err != nil {
			return err
		}
		if strings.Contains(resp, `"error"`) {
			return fmt.Errorf("call failed: %s", resp)
		}
		return nil
	}
	if err := roundTrip(`{"jsonrpc":"2.0","id":0,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"bench","version":"1"}}}` + "\n"); err != nil {
		return nil, err
	}
	call := func(i int) string {
		return fmt.Sprintf(`{"jsonrpc":"2.0","id":%d,"method":"tools/call","params":{"name":"read_file","arguments":{"path":"/data/report-%d.txt"}}}`+"\n", i, i%100)
	}
	for i := 1; i <= n/5; i++ { // warm up
		if err := roundTrip(call(i)); err != nil {
			return nil, err
		}
	}
	out2 := make([]time.Duration, 0, n)
	for i := 0; i < n; i++ {
		line := call(1_000_000 + i)
		start := time.Now()
		if err := roundTrip(line); err != nil {
			return nil, err
		}
		out2 = append(out2, time.Since(start))
	}
	return out2, nil
}

// measurePipelined starts argv and returns the time per call of n calls
// sent with up to inflight outstanding, and the CPU time per call of the
// process it started (not of that process's children).
func measurePipelined(argv []string, n, inflight int) (perCall, cpu time.Duration, err error) {
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Stderr = os.Stderr
	in, err := cmd.StdinPipe()
	if err != nil {
		return 0, 0, err
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		return 0, 0, err
	}
	if err := cmd.Start(); err != nil {
		return 0, 0, err
	}
	defer func() {
		in.Close()
		_ = cmd.Wait()
	}()
	rd := bufio.NewReaderSize(out, 1<<16)
	if _, err := io.WriteString(in, `{"jsonrpc":"2.0","id":0,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"bench","version":"1"}}}`+"\n"); err != nil {
		return 0, 0, err
	}
	if _, err := rd.ReadString('\n'); err != nil {
		return 0, 0, err
	}
	slots := make(chan struct{}, inflight)
	werr := make(chan error, 1)
	cpu0, err := benchkit.ProcessCPU(cmd.Process.Pid)
	if err != nil {
		return 0, 0, err
	}
	start := time.Now()
	go func() {
		w := bufio.NewWriter(in)
		for i := 1; i <= n; i++ {
			slots <- struct{}{}
			fmt.Fprintf(w, `{"jsonrpc":"2.0","id":%d,"method":"tools/call","params":{"name":"read_file","arguments":{"path":"/data/report-%d.txt"}}}`+"\n", i, i%100)
			if len(slots) == cap(slots) || i == n {
				if err := w.Flush(); err != nil {
					werr <- err
					return
				}
			}
		}
		werr <- nil
	}()
	for i := 0; i < n; i++ {
		resp, err := rd.ReadSlice('\n')
		if err != nil && err != bufio.ErrBufferFull {
			return 0, 0, err
		}
		for err == bufio.ErrBufferFull {
			_, err = rd.ReadSlice('\n')
		}
		if strings.Contains(string(resp), `"error"`) {
			return 0, 0, fmt.Errorf("call failed: %s", resp)
		}
		<-slots
	}
	if err := <-werr; err != nil {
		return 0, 0, err
	}
	elapsed := time.Since(start)
	cpu1, err := benchkit.ProcessCPU(cmd.Process.Pid)
	if err != nil {
		return 0, 0, err
	}
	return elapsed / time.Duration(n), (cpu1 - cpu0) / time.Duration(n), nil
}

// serveMCP answers requests with a fixed result; notifications are ignored.
func serveMCP(in io.Reader, out io.Writer) {
	result, _ := jsonString(benchdata.Text)
	sc := bufio.NewScanner(in)
	sc.Buffer(make([]byte, 1<<16), 16<<20)
	w := bufio.NewWriter(out)
	for sc.Scan() {
		line := sc.Bytes()
		i := strings.Index(string(line), `"id":`)
		if i < 0 {
			continue
		}
		j := i + 5
		k := j
		for k < len(line) && line[k] != ',' && line[k] != '}' {
			k++
		}
		id := string(line[j:k])
		var body string
		if strings.Contains(string(line), `"tools/call"`) {
			body = `{"content":[{"type":"text","text":` + result + `}]}`
		} else {
			body = `{"protocolVersion":"2025-06-18","capabilities":{"tools":{}},"serverInfo":{"name":"bench","version":"1"}}`
		}
		fmt.Fprintf(w, `{"jsonrpc":"2.0","id":%s,"result":%s}`+"\n", id, body)
		w.Flush()
	}
}

func jsonString(s string) (string, error) {
	var b strings.Builder
	b.WriteByte('"')
	for _, r := range s {
		switch r {
		case '"', '\\':
			b.WriteByte('\\')
			b.WriteRune(r)
		default:
			b.WriteRune(r)
		}
	}
	b.WriteByte('"')
	return b.String(), nil
}

// relayLines starts -serve and copies lines between it and this process's
// stdin/stdout, with the same kind of I/O the proxy uses (a goroutine per
// direction, one write per line), and nothing else. Batched, it copies the
// lines it has read together (at most 64, or 1 MiB) with one write, as
// agentid does.
func relayLines(batched bool) error {
	self, err := os.Executable()
	if err != nil {
		return err
	}
	cmd := exec.Command(self, "-serve")
	cmd.Stderr = os.Stderr
	toServer, err := cmd.StdinPipe()
	if err != nil {
		return err
	}
	fromServer, err := cmd.StdoutPipe()
	if err != nil {
		return err
	}
	if err := cmd.Start(); err != nil {
		return err
	}
	copyLines := func(dst io.Writer, src io.Reader) {
		rd := bufio.NewReaderSize(src, 1<<16)
		var out []byte
		for n := 1; ; n++ {
			line, err := rd.ReadSlice('\n')
			if err != nil {
				return
			}
			if !batched {
				if _, err := dst.Write(line); err != nil {
					return
				}
				continue
			}
			out = append(out, line...)
			if n < 64 && len(out) < 1<<20 && lineBuffered(rd) {
				continue
			}
			if _, err := dst.Write(out); err != nil {
				return
			}
			out, n = out[:0], 0
		}
	}
	go func() {
		copyLines(toServer, os.Stdin)
		toServer.Close()
	}()
	copyLines(os.Stdout, fromServer)
	return cmd.Wait()
}

// lineBuffered reports whether rd holds a whole line, which it can return
// without reading.
func lineBuffered(rd *bufio.Reader) bool {
	p, _ := rd.Peek(rd.Buffered())
	return bytes.IndexByte(p, '\n') >= 0
}
