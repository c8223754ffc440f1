package testenv

import (
	"bufio"
	"fmt"
	"net"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"
	"time"
)

// Redis returns the Redis server this test process shares across its tests,
// started on first use: a private redis-server on a free loopback port,
// without persistence (--save "", --appendonly no), so that its state lasts
// exactly as long as the process runs. Tests that share it use keys no
// other test uses. A missing redis-server follows RequireComponent's rule.
// Call StopServers from TestMain to remove it when the tests end.
func Redis(t testing.TB) *Server {
	t.Helper()
	bin, err := exec.LookPath("redis-server")
	return requireServer(t, "redis-server", err, func() (*Server, error) {
		return sharedServerOf("redis", func() (*Server, error) { return startRedis(bin) })
	})
}

// NewRedis starts a Redis server of the test's own, for tests that stop and
// restart it; it is removed when the test ends.
func NewRedis(t testing.TB) *Server {
	t.Helper()
	bin, err := exec.LookPath("redis-server")
	s := requireServer(t, "redis-server", err, func() (*Server, error) { return startRedis(bin) })
	t.Cleanup(s.Close)
	return s
}

func startRedis(bin string) (*Server, error) {
	dir, err := newServerDir("redis")
	if err != nil {
		return nil, err
	}
	var lastErr error
	// A port that was free when chosen may be taken before the server
	// binds it; another port is tried then.
	for range 3 {
		port, err := freePort()
		if err != nil {
			return nil, err
		}
		s := &Server{
			URL:  fmt.Sprintf("redis://127.0.0.1:%d/0", port),
			Port: port,
			name: "redis-server",
			dir:  dir,
			log:  filepath.Join(dir, "redis.log"),
			argv: []string{bin,
				"--port", strconv.Itoa(port), "--bind", "127.0.0.1",
				"--dir", dir, "--save", "", "--appendonly", "no",
				"--daemonize", "no", "--logfile", "",
			},
			ready: redisReady,
		}
		s.mu.Lock()
		lastErr = s.startLocked()
		s.mu.Unlock()
		if lastErr == nil {
			return s, nil
		}
	}
	return nil, lastErr
}

// redisReady sends PING and expects PONG.
func redisReady(s *Server) error {
	c, err := net.DialTimeout("tcp", "127.0.0.1:"+strconv.Itoa(s.Port), time.Second)
	if err != nil {
		return err
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(time.Second))
	if _, err := c.Write([]byte("PING\r\n")); err != nil {
		return err
	}
	line, err := bufio.NewReader(c).ReadString('\n')
	if err != nil {
		return err
	}
	if line != "+PONG\r\n" {
		return fmt.Errorf("PING answered %q", line)
	}
	return nil
}
