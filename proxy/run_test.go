package proxy

import (
	"bytes"
	"context"
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
