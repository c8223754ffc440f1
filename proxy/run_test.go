package proxy

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"
)

const allowAllPolicy = `apiVersion: aip.io/v1alpha2
kind: AgentPolicy
metadata: {name: run}
spec:
  allowed_tools: [echo]
`

func runShell(t *testing.T, script string, stdin io.Reader, sig <-chan os.Signal) (code int, stdout, stderr string, err error) {
	t.Helper()
	return runShellGrace(t, script, stdin, sig, 200*time.Millisecond, nil)
}

func runShellGrace(t *testing.T, script string, stdin io.Reader, sig <-chan os.Signal, grace time.Duration, stderrTo io.Writer) (code int, stdout, stderr string, err error) {
	t.Helper()
	px := New(Config{Core: mustCore(t, allowAllPolicy)})
	var out, errOut bytes.Buffer
	var errW io.Writer = &errOut
	if stderrTo != nil {
		errW = io.MultiWriter(&errOut, stderrTo)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	code, err = px.Run(ctx, Command{Path: "/bin/sh", Args: []string{"-c", script}, Stderr: errW, ShutdownGrace: grace}, stdin, &out, sig)
	return code, out.String(), errOut.String(), err
}

func TestRunExitsWithTheServersExitCode(t *testing.T) {
	code, _, _, err := runShell(t, "exit 7", strings.NewReader(""), nil)
	if err != nil || code != 7 {
		t.Fatalf("code %d, err %v; want 7", code, err)
	}
}

func TestRunPassesServerStderrThrough(t *testing.T) {
	_, _, stderr, _ := runShell(t, "echo diagnostics >&2", strings.NewReader(""), nil)
	if !strings.Contains(stderr, "diagnostics") {
		t.Fatalf("stderr %q", stderr)
	}
}

func TestRunFlushesTheServersLastWordsBeforeExiting(t *testing.T) {
	// The server answers and exits at once; the answer must still reach
	// the client.
	script := `read line; echo '{"jsonrpc":"2.0","id":1,"result":{}}'; exit 3`
	code, stdout, _, _ := runShell(t, script, strings.NewReader(`{"jsonrpc":"2.0","id":1,"method":"ping"}`+"\n"), nil)
	if code != 3 || !strings.Contains(stdout, `"id":1`) {
		t.Fatalf("code %d, stdout %q", code, stdout)
	}
}

func TestRunSurvivesAServerThatWritesGarbageAndDies(t *testing.T) {
	script := `echo 'not json'; printf '\x00\x01\x02'; echo '{"jsonrpc":"2.0","method":"x"'; kill -9 $$`
	code, stdout, _, err := runShell(t, script, strings.NewReader(""), nil)
	if err != nil {
		t.Fatal(err)
	}
	if code != 128+int(syscall.SIGKILL) {
		t.Fatalf("code %d, want %d", code, 128+int(syscall.SIGKILL))
	}
	if stdout != "" {
		t.Fatalf("garbage reached the client: %q", stdout)
	}
}

func TestRunForwardsSignalsToTheServer(t *testing.T) {
	sig := make(chan os.Signal, 1)
	pr, pw := io.Pipe() // the client keeps its input open
	defer pw.Close()
	script := `trap 'echo got-term >&2; exit 42' TERM; echo ready >&2; while :; do sleep 0.05; done`
	type result struct {
		code   int
		stderr string
	}
	done := make(chan result, 1)
	ready := make(chan struct{})
	go func() {
		code, _, stderr, _ := runShellGrace(t, script, pr, sig, 5*time.Second, readyWriter{ready: ready})
		done <- result{code, stderr}
	}()
	select {
	case <-ready: // the trap is installed
	case <-time.After(10 * time.Second):
		t.Fatal("the server did not start")
	}
	sig <- syscall.SIGTERM
	select {
	case r := <-done:
		if r.code != 42 || !strings.Contains(r.stderr, "got-term") {
			t.Fatalf("code %d, stderr %q", r.code, r.stderr)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the proxy did not stop after SIGTERM")
	}
}

func TestRunKillsAServerThatIgnoresShutdown(t *testing.T) {
	// After the client's EOF the server gets grace, then SIGTERM, then
	// SIGKILL: a server that ignores both cannot keep the proxy alive. The
	// exit code shows SIGKILL ended it; a proxy that waited for the server
	// would hang until go test's -timeout.
	script := `trap '' TERM; while :; do sleep 0.05; done`
	code, _, _, _ := runShell(t, script, strings.NewReader(""), nil)
	if code != 128+int(syscall.SIGKILL) {
		t.Fatalf("code %d, want SIGKILL's %d", code, 128+int(syscall.SIGKILL))
	}
}

func TestRunReportsAServerThatCannotStart(t *testing.T) {
	px := New(Config{Core: mustCore(t, allowAllPolicy)})
	code, err := px.Run(context.Background(), Command{Path: "/nonexistent/server"}, strings.NewReader(""), io.Discard, nil)
	if err == nil || code == 0 {
		t.Fatalf("code %d, err %v", code, err)
	}
}

// readyWriter closes ready on the first write.
type readyWriter struct{ ready chan struct{} }

func (w readyWriter) Write(p []byte) (int, error) {
	select {
	case <-w.ready:
	default:
		close(w.ready)
	}
	return len(p), nil
}

// pidAlive reports whether a process with pid exists (and is not a zombie
// of ours: Run reaps its child, and a grandchild is reparented).
func pidAlive(pid int) bool { return syscall.Kill(pid, 0) == nil }

// TestRunStopsWhatTheServerStarted: a server started through a launcher
// (npx starts node) leaves a process behind that holds its output. Neither
// the proxy nor that process may outlive the server.
func TestRunStopsWhatTheServerStarted(t *testing.T) {
	for _, tc := range []struct {
		name, script string
		clientStays  bool
	}{
		// The server exits while the client is still there; its child
		// keeps the output open.
		{"the server exits, its child holds the output", `sleep 300 & echo $! >&2; exit 0`, true},
		// The server waits on stdin; its child ignores everything.
		{"the client leaves, the server's child ignores stdin", `sleep 300 & echo $! >&2; cat >/dev/null; wait`, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var stderr lockedBuffer
			var client io.Reader = strings.NewReader("")
			if tc.clientStays {
				r, w := io.Pipe()
				defer w.Close()
				client = r
			}
			_, _, _, err := runShellGrace(t, tc.script, client, nil, 100*time.Millisecond, &stderr)
			if err != nil {
				t.Fatal(err)
			}
			var pid int
			if _, err := fmt.Sscan(stderr.String(), &pid); err != nil || pid <= 0 {
				t.Fatalf("no grandchild pid on stderr: %q", stderr.String())
			}
			// The group was sent SIGKILL before Run returned; the process
			// disappears once the kernel has delivered it.
			deadline := time.Now().Add(10 * time.Second)
			for pidAlive(pid) && time.Now().Before(deadline) {
				time.Sleep(10 * time.Millisecond)
			}
			if pidAlive(pid) {
				syscall.Kill(pid, syscall.SIGKILL)
				t.Fatalf("the server's child %d outlived the proxy", pid)
			}
		})
	}
}
