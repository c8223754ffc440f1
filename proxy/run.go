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
//
// The server runs in its own process group, and every signal goes to the
// whole group, so that what it started (npx starts node) stops with it. The
// shutdown sequence is the MCP stdio transport's: when the client's input
// ends, the server's stdin is closed and it has ShutdownGrace to finish
// (an answer it writes meanwhile is still delivered); then the group gets
// SIGTERM, and after as long again SIGKILL. When the server itself exits,
// whatever of its group still holds its output gets ShutdownGrace to finish
// writing, then is killed, so that the proxy never outlives its server.
func (p *Proxy) Run(ctx context.Context, c Command, stdin io.Reader, stdout io.Writer, sig <-chan os.Signal) (int, error) {
	grace := c.ShutdownGrace
	if grace <= 0 {
		grace = 2 * time.Second
	}
	// Our own pipes, not cmd's: cmd.Wait would close the server's output
	// while a grandchild may still be writing it, and waiting must not
	// depend on every holder of the pipe exiting.
	serverIn, toServer, err := os.Pipe()
	if err != nil {
		return 1, fmt.Errorf("proxy: %w", err)
	}
	fromServer, serverOut, err := os.Pipe()
	if err != nil {
		serverIn.Close()
		toServer.Close()
		return 1, fmt.Errorf("proxy: %w", err)
	}
	cmd := exec.Command(c.Path, c.Args...)
	cmd.Env = c.Env
	cmd.Dir = c.Dir
	cmd.Stdin, cmd.Stdout, cmd.Stderr = serverIn, serverOut, c.Stderr
	// Its own group, so that signals reach everything it starts; and it
	// must not outlive the proxy, even if the proxy is killed.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	// Stderr that is not a file is copied by cmd; a process of the group
	// holding it must not delay noticing that the server exited.
	cmd.WaitDelay = grace
	err = cmd.Start()
	serverIn.Close()
	serverOut.Close()
	if err != nil {
		toServer.Close()
		fromServer.Close()
		return 127, fmt.Errorf("proxy: starting MCP server: %w", err)
	}
	pgid := cmd.Process.Pid
	signalGroup := func(s os.Signal) {
		if n, ok := s.(syscall.Signal); ok {
			_ = syscall.Kill(-pgid, n)
			return
		}
		_ = cmd.Process.Signal(s)
	}

	// cmd.Wait also reaps the goroutine that copies stderr when it is not
	// a file; it returns once the server exited and its stderr is done.
	exited := make(chan struct{})
	var waitErr error
	go func() { waitErr = cmd.Wait(); close(exited) }()

	relayCtx, cancelRelay := context.WithCancel(ctx)
	defer cancelRelay()
	relayDone := make(chan error, 1)
	clientDone := make(chan struct{})
	in := &eofNotifier{r: stdin, done: clientDone}
	go func() { relayDone <- p.Relay(relayCtx, in, stdout, toServer, fromServer) }()

	var term, kill, drained <-chan time.Time
	startShutdown := func() {
		if term == nil && kill == nil {
			term = time.After(grace)
		}
	}
	var relayErr error
	relayEnded := false
	for !relayEnded || exited != nil {
		select {
		case s := <-sig:
			signalGroup(s)
			if term == nil && kill == nil {
				kill = time.After(grace) // the signal was the request to stop
			}
		case <-clientDone:
			clientDone = nil
			startShutdown()
		case <-ctx.Done():
			_ = toServer.Close()
			startShutdown()
		case <-term:
			term = nil
			signalGroup(syscall.SIGTERM)
			kill = time.After(grace)
		case <-kill:
			kill = nil
			signalGroup(syscall.SIGKILL)
			_ = fromServer.Close() // nothing more will be read
		case <-exited:
			exited = nil
			term, kill = nil, nil
			if !relayEnded {
				// What the server wrote before exiting is still read; a
				// process of its group still holding the pipe is not waited
				// for beyond grace.
				drained = time.After(grace)
			}
		case <-drained:
			drained = nil
			signalGroup(syscall.SIGKILL)
			_ = fromServer.Close()
		case relayErr = <-relayDone:
			relayEnded = true
			// The server's output ended: it has exited or is about to; one
			// that closed its output but keeps running is stopped.
			if exited != nil && term == nil && kill == nil {
				kill = time.After(grace)
			}
		}
	}
	// Whatever is left of the group goes with the server.
	signalGroup(syscall.SIGKILL)
	toServer.Close()
	fromServer.Close()

	code := 0
	if errors.Is(waitErr, exec.ErrWaitDelay) {
		waitErr = nil // the server exited 0; a process of its group kept stderr open
	}
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
	if relayErr != nil && !errors.Is(relayErr, context.Canceled) && !errors.Is(relayErr, os.ErrClosed) {
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
