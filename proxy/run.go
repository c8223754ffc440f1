package proxy

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"sync"
	"syscall"
	"time"
)

// Command describes the MCP server to spawn.
type Command struct {
	Path string   // resolved with exec.LookPath when it contains no slash
	Args []string // arguments after Path
	Env  []string // nil inherits the proxy's environment
	Dir  string
	// Stderr receives the server's stderr (passed through); nil discards.
	Stderr io.Writer
	// ShutdownGrace bounds each step of the MCP stdio shutdown sequence:
	// after the client's input ends the server's stdin is closed and it has
	// this long to exit, then it gets SIGTERM, then after as long again
	// SIGKILL. A forwarded signal starts the same clock. 0 means 2s.
	ShutdownGrace time.Duration
}

// Run spawns the server and relays between the client (stdin, stdout) and
// it until the server exits or ctx is cancelled. Signals sent on sig are
// forwarded to the server. It returns the server's exit code: the proxy
// exits as its child did, after every pending line has been written.
func (p *Proxy) Run(ctx context.Context, c Command, stdin io.Reader, stdout io.Writer, sig <-chan os.Signal) (int, error) {
	grace := c.ShutdownGrace
	if grace <= 0 {
		grace = 2 * time.Second
	}
	cmd := exec.Command(c.Path, c.Args...)
	cmd.Env = c.Env
	cmd.Dir = c.Dir
	cmd.Stderr = c.Stderr
	// The server must not outlive the proxy, even if the proxy is killed.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	toServer, err := cmd.StdinPipe()
	if err != nil {
		return 1, fmt.Errorf("proxy: %w", err)
	}
	fromServer, err := cmd.StdoutPipe()
	if err != nil {
		return 1, fmt.Errorf("proxy: %w", err)
	}
	if err := cmd.Start(); err != nil {
		return 127, fmt.Errorf("proxy: starting MCP server: %w", err)
	}

	exited := make(chan struct{})
	relayCtx, cancelRelay := context.WithCancel(ctx)
	defer cancelRelay()
	relayDone := make(chan error, 1)
	clientDone := make(chan struct{})
	in := &eofNotifier{r: stdin, done: clientDone}
	go func() { relayDone <- p.Relay(relayCtx, in, stdout, toServer, fromServer) }()

	// The shutdown sequence: the client's EOF (the relay then closes the
	// server's stdin), a forwarded signal, or ctx ending each start a clock;
	// a server still running after grace gets SIGTERM, after twice grace
	// SIGKILL.
	go func() {
		var term, kill <-chan time.Time
		start := func() {
			if term == nil && kill == nil {
				term = time.After(grace)
			}
		}
		for {
			select {
			case s := <-sig:
				_ = cmd.Process.Signal(s)
				if term == nil && kill == nil {
					kill = time.After(grace) // the signal was the request to stop
				}
			case <-clientDone:
				clientDone = nil
				start()
			case <-ctx.Done():
				_ = toServer.Close()
				start()
			case <-term:
				term = nil
				_ = cmd.Process.Signal(syscall.SIGTERM)
				kill = time.After(grace)
			case <-kill:
				_ = cmd.Process.Kill()
				return
			case <-exited:
				return
			}
		}
	}()

	// Relay returns when the server's stdout ends (usually: it exited).
	relayErr := <-relayDone
	waitErr := waitBounded(cmd, grace)
	close(exited)

	code := 0
	if waitErr != nil {
		var ee *exec.ExitError
		if errors.As(waitErr, &ee) {
			code = ee.ExitCode()
			if code < 0 { // killed by a signal
				if ws, ok := ee.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
					code = 128 + int(ws.Signal())
				} else {
					code = 1
				}
			}
		} else {
			return 1, fmt.Errorf("proxy: waiting for MCP server: %w", waitErr)
		}
	}
	if relayErr != nil && !errors.Is(relayErr, context.Canceled) {
		return code, relayErr
	}
	return code, nil
}

// eofNotifier closes done when the client's input ends.
type eofNotifier struct {
	r    io.Reader
	done chan struct{}
	once sync.Once
}

func (e *eofNotifier) Read(p []byte) (int, error) {
	n, err := e.r.Read(p)
	if err != nil {
		e.once.Do(func() { close(e.done) })
	}
	return n, err
}

// waitBounded waits for the server; one that closed stdout but keeps
// running is killed after grace.
func waitBounded(cmd *exec.Cmd, grace time.Duration) error {
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		return err
	case <-time.After(grace):
		_ = cmd.Process.Kill()
		return <-done
	}
}
