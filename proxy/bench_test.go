package proxy

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/agentid/agentid/audit"
	"github.com/agentid/agentid/internal/benchdata"
)

// BenchmarkRelayToolCall measures one tools/call round trip through the
// relay (decode, decide, audit, forward; decode, DLP, return) with a 4 KB
// text result, in process over pipes. Compare with BenchmarkPipeRoundTrip,
// the same exchange without the relay.
func BenchmarkRelayToolCall(b *testing.B) {
	b.Run("no-dlp", func(b *testing.B) { benchRelay(b, benchdata.Policy) })
	b.Run("dlp-10-patterns", func(b *testing.B) { benchRelay(b, benchdata.Policy+benchdata.DLP) })
	// Request scanning on, with 4 KB of arguments (a file to write): the
	// arguments are redacted once, for both the audit log and the request.
	b.Run("dlp-scan-requests-4KB-args", func(b *testing.B) {
		content := strconv.Quote(strings.Repeat("Meeting notes: revenue, costs and outlook per region; follow up next week. ", 55)[:4000])
		benchRelayArgs(b, benchdata.Policy+benchdata.DLP+"    scan_requests: true\n", func(i int) string {
			return `{"path":"/data/notes-` + strconv.Itoa(i%100) + `.txt","content":` + content + `}`
		})
	})
}

func benchResult() string { return benchdata.Result() }

// echoServer answers every request line with result, reusing the id.
func echoServer(in io.Reader, out io.WriteCloser, result string) {
	defer out.Close()
	sc := bufio.NewScanner(in)
	sc.Buffer(make([]byte, 1<<16), 1<<24)
	w := bufio.NewWriter(out)
	for sc.Scan() {
		line := sc.Text()
		i := strings.Index(line, `"id":`)
		j := strings.IndexAny(line[i+5:], ",}")
		fmt.Fprintf(w, `{"jsonrpc":"2.0","id":%s,"result":%s}`+"\n", line[i+5:i+5+j], result)
		w.Flush()
	}
}

func benchRelay(b *testing.B, policyYAML string) { benchRelayArgs(b, policyYAML, nil) }

// benchRelayArgs is benchRelay with the arguments of call i given by args
// (nil: {"path":"/data/report-<i%100>.txt"}).
func benchRelayArgs(b *testing.B, policyYAML string, args func(i int) string) {
	px := New(Config{Core: mustCore(b, policyYAML), Audit: audit.New(io.Discard)})
	clientR, clientW := io.Pipe()
	outR, outW := io.Pipe()
	srvInR, srvInW := io.Pipe()
	srvOutR, srvOutW := io.Pipe()
	go echoServer(srvInR, srvOutW, benchResult())
	go px.Relay(context.Background(), clientR, outW, srvInW, srvOutR)
	rd := bufio.NewReaderSize(outR, 1<<16)
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if args == nil {
			fmt.Fprintf(clientW, `{"jsonrpc":"2.0","id":%d,"method":"tools/call","params":{"name":"read_file","arguments":{"path":"/data/report-%d.txt"}}}`+"\n", i, i%100)
		} else {
			fmt.Fprintf(clientW, `{"jsonrpc":"2.0","id":%d,"method":"tools/call","params":{"name":"read_file","arguments":%s}}`+"\n", i, args(i))
		}
		line, err := rd.ReadSlice('\n')
		if err != nil {
			b.Fatal(err)
		}
		if i == 0 && !strings.Contains(string(line), `"result"`) {
			b.Fatalf("call refused: %s", line)
		}
	}
	b.StopTimer()
	clientW.Close()
}

// BenchmarkPipeRoundTrip is the floor: the same exchange straight to the
// server over one pair of pipes.
func BenchmarkPipeRoundTrip(b *testing.B) {
	srvInR, srvInW := io.Pipe()
	srvOutR, srvOutW := io.Pipe()
	go echoServer(srvInR, srvOutW, benchResult())
	rd := bufio.NewReaderSize(srvOutR, 1<<16)
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		fmt.Fprintf(srvInW, `{"jsonrpc":"2.0","id":%d,"method":"tools/call","params":{"name":"read_file","arguments":{"path":"/data/report-%d.txt"}}}`+"\n", i, i%100)
		if _, err := rd.ReadSlice('\n'); err != nil {
			b.Fatal(err)
		}
	}
	srvInW.Close()
}

// BenchmarkRelayPipelined is BenchmarkRelayToolCall with 32 calls in flight
// over operating-system pipes, as tools/latencybench measures the proxy
// process: it is the proxy's CPU cost per call, syscalls included, rather
// than the cost of waking goroutines one message at a time. The audit log is
// a real file.
func BenchmarkRelayPipelined(b *testing.B) {
	b.Run("no-dlp", func(b *testing.B) { benchPipelined(b, benchdata.Policy) })
	b.Run("dlp-10-patterns", func(b *testing.B) { benchPipelined(b, benchdata.Policy+benchdata.DLP) })
}

func benchPipelined(b *testing.B, policyYAML string) {
	log, err := audit.Open(filepath.Join(b.TempDir(), "audit.log"))
	if err != nil {
		b.Fatal(err)
	}
	defer log.Close()
	px := New(Config{Core: mustCore(b, policyYAML), Audit: log})
	pipe := func() (*os.File, *os.File) {
		r, w, err := os.Pipe()
		if err != nil {
			b.Fatal(err)
		}
		return r, w
	}
	clientR, clientW := pipe()
	outR, outW := pipe()
	srvInR, srvInW := pipe()
	srvOutR, srvOutW := pipe()
	go echoServer(srvInR, srvOutW, benchResult())
	done := make(chan error, 1)
	go func() { done <- px.Relay(context.Background(), clientR, outW, srvInW, srvOutR) }()
	const inflight = 32
	slots := make(chan struct{}, inflight)
	werr := make(chan error, 1)
	rd := bufio.NewReaderSize(outR, 1<<16)
	b.ReportAllocs()
	b.ResetTimer()
	cpu0 := cpuTime(b)
	go func() {
		w := bufio.NewWriter(clientW)
		for i := 0; i < b.N; i++ {
			slots <- struct{}{}
			fmt.Fprintf(w, `{"jsonrpc":"2.0","id":%d,"method":"tools/call","params":{"name":"read_file","arguments":{"path":"/data/report-%d.txt"}}}`+"\n", i, i%100)
			if len(slots) == cap(slots) || i == b.N-1 {
				if err := w.Flush(); err != nil {
					werr <- err
					return
				}
			}
		}
		werr <- nil
	}()
	for i := 0; i < b.N; i++ {
		line, err := rd.ReadSlice('\n')
		for err == bufio.ErrBufferFull {
			_, err = rd.ReadSlice('\n')
		}
		if err != nil {
			b.Fatal(err)
		}
		if i == 0 && !strings.Contains(string(line), `"result"`) {
			b.Fatalf("call refused: %s", line)
		}
		<-slots
	}
	b.StopTimer()
	// The process's CPU time (client, relay and server together) is less
	// sensitive to other load on the machine than the elapsed time.
	b.ReportMetric(float64(cpuTime(b)-cpu0)/float64(b.N), "cpu-ns/op")
	if err := <-werr; err != nil {
		b.Fatal(err)
	}
	clientW.Close()
	<-done
	for _, f := range []*os.File{clientR, outR, outW, srvInR, srvInW, srvOutR} {
		f.Close()
	}
}

// cpuTime is the CPU time the process used so far, user and system.
func cpuTime(b *testing.B) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
