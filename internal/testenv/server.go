package testenv

import (
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// Server is a private database server (Redis or PostgreSQL) that a test
// process started on a free loopback port with its own data directory. It
// is never one of the servers a machine may already run on the standard
// ports: tests can stop, restart and wipe it freely.
type Server struct {
	// URL is how a client reaches the server, e.g. redis://127.0.0.1:N/0.
	URL string
	// Port is the loopback TCP port the server listens on, the same across
	// Stop and Start.
	Port int

	name  string   // "redis-server" or "postgres", for messages
	dir   string   // removed by Close
	log   string   // the server's stdout and stderr
	argv  []string // how to start it again
	cred  *syscall.Credential
	ready func(s *Server) error // nil once the server accepts clients

	mu     sync.Mutex
	proc   *os.Process
	exited chan struct{} // closed when proc has been reaped
	closed bool
}

// startTimeout bounds how long a server may take to accept clients.
const startTimeout = 30 * time.Second

// Start starts the server again after Stop, on the same port and data
// directory, and waits until it accepts clients. Starting a running server
// is an error.
func (s *Server) Start() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return fmt.Errorf("testenv: %s: closed", s.name)
	}
	if s.proc != nil {
		return fmt.Errorf("testenv: %s on port %d is already running", s.name, s.Port)
	}
	return s.startLocked()
}

func (s *Server) startLocked() error {
	logf, err := os.OpenFile(s.log, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	defer logf.Close()
	cmd := exec.Command(s.argv[0], s.argv[1:]...)
	cmd.Dir = s.dir
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{
		Credential: s.cred,
		// The server dies with the test process even when the process is
		// killed before its cleanup runs.
		Pdeathsig: syscall.SIGKILL,
	}
	// Pdeathsig fires when the thread that started the child exits, not the
	// process: the goroutine that starts the child keeps its thread locked
	// and alive until the child has been reaped.
	started := make(chan error, 1)
	exited := make(chan struct{})
	go func() {
		runtime.LockOSThread()
		defer runtime.UnlockOSThread()
		if err := cmd.Start(); err != nil {
			started <- err
			return
		}
		started <- nil
		_ = cmd.Wait()
		close(exited)
	}()
	if err := <-started; err != nil {
		return fmt.Errorf("testenv: starting %s: %v", s.name, err)
	}
	s.proc, s.exited = cmd.Process, exited
	deadline := time.Now().Add(startTimeout)
	for {
		select {
		case <-exited:
			s.proc = nil
			return fmt.Errorf("testenv: %s exited during start-up:\n%s", s.name, s.logTail())
		default:
		}
		err := s.ready(s)
		if err == nil {
			return nil
		}
		if time.Now().After(deadline) {
			s.stopLocked()
			return fmt.Errorf("testenv: %s on port %d not ready after %v: %v\n%s", s.name, s.Port, startTimeout, err, s.logTail())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Stop shuts the server down gracefully (SIGINT: PostgreSQL's fast
// shutdown, Redis's normal one) and waits until it has exited; its data
// directory stays for Start. Stopping a stopped server does nothing.
func (s *Server) Stop() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.stopLocked()
}

func (s *Server) stopLocked() error {
	if s.proc == nil {
		return nil
	}
	_ = s.proc.Signal(syscall.SIGINT)
	select {
	case <-s.exited:
	case <-time.After(30 * time.Second):
		_ = s.proc.Kill()
		<-s.exited
	}
	s.proc = nil
	return nil
}

// Close stops the server and removes its data directory.
func (s *Server) Close() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.stopLocked()
	s.closed = true
	os.RemoveAll(s.dir)
}

// Log returns the server's output so far, for a failing test's message.
func (s *Server) Log() string {
	b, _ := os.ReadFile(s.log)
	return string(b)
}

func (s *Server) logTail() string {
	l := s.Log()
	if len(l) > 4000 {
		l = "…" + l[len(l)-4000:]
	}
	return l
}

// freePort returns a loopback TCP port that was free a moment ago. The
// standard ports of the machine's own servers are never returned.
func freePort() (int, error) {
	for range 10 {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return 0, err
		}
		port := l.Addr().(*net.TCPAddr).Port
		l.Close()
		if port != 5432 && port != 6379 {
			return port, nil
		}
	}
	return 0, errors.New("no free loopback port")
}

// serverDirPrefix names the data directories of private servers; the
// process id in the name lets a later process remove the directories of
// test processes that were killed before their cleanup ran.
const serverDirPrefix = "agentid-testdb-"

func newServerDir(kind string) (string, error) {
	tmp := os.TempDir()
	sweepServerDirs(tmp)
	dir, err := os.MkdirTemp(tmp, serverDirPrefix+strconv.Itoa(os.Getpid())+"-"+kind+"-")
	if err != nil {
		return "", err
	}
	// Readable by a server that runs as another user (postgres).
	if err := os.Chmod(dir, 0o755); err != nil {
		os.RemoveAll(dir)
		return "", err
	}
	return dir, nil
}

func sweepServerDirs(tmp string) {
	entries, err := os.ReadDir(tmp)
	if err != nil {
		return
	}
	for _, e := range entries {
		rest, ok := strings.CutPrefix(e.Name(), serverDirPrefix)
		if !ok || !e.IsDir() {
			continue
		}
		digits, _, _ := strings.Cut(rest, "-")
		pid, err := strconv.Atoi(digits)
		if err != nil || pid <= 0 || pid == os.Getpid() || processAlive(pid) {
			continue
		}
		os.RemoveAll(filepath.Join(tmp, e.Name()))
	}
}

// shared holds the servers one test process reuses across its tests.
var shared struct {
	mu      sync.Mutex
	servers map[string]*sharedServer
}

type sharedServer struct {
	once sync.Once
	srv  *Server
	err  error
}

// sharedServerOf starts the named server once per test process.
func sharedServerOf(kind string, start func() (*Server, error)) (*Server, error) {
	shared.mu.Lock()
	if shared.servers == nil {
		shared.servers = make(map[string]*sharedServer)
	}
	ss := shared.servers[kind]
	if ss == nil {
		ss = &sharedServer{}
		shared.servers[kind] = ss
	}
	shared.mu.Unlock()
	ss.once.Do(func() { ss.srv, ss.err = start() })
	return ss.srv, ss.err
}

// StopServers stops and removes the servers shared by this test process
// (Redis, Postgres). Call it from TestMain after m.Run:
//
//	func TestMain(m *testing.M) {
//		code := m.Run()
//		testenv.StopServers()
//		os.Exit(code)
//	}
//
// Without it the servers still die with the process, but their data
// directories stay until the next test process that starts one.
func StopServers() {
	shared.mu.Lock()
	defer shared.mu.Unlock()
	for _, ss := range shared.servers {
		if ss.srv != nil {
			ss.srv.Close()
		}
	}
	shared.servers = nil
}

// requireServer applies RequireComponent to a missing binary and fails the
// test when an installed server does not start.
func requireServer(t testing.TB, what string, lookErr error, start func() (*Server, error)) *Server {
	t.Helper()
	RequireComponent(t, what, lookErr)
	s, err := start()
	if err != nil {
		t.Fatalf("testenv: %v", err)
	}
	return s
}
