package testenv

import (
	"net"
	"os"
	"strconv"
	"testing"
	"time"
)

func TestMain(m *testing.M) {
	code := m.Run()
	StopServers()
	os.Exit(code)
}

// TestServersStopAndStartOnTheSamePort checks what the fault tests of the
// stores rely on: a private server, never on a standard port, that refuses
// connections after Stop and accepts them again after Start on the same
// port, and whose data directory is gone after Close.
func TestServersStopAndStartOnTheSamePort(t *testing.T) {
	for _, tc := range []struct {
		name  string
		start func(testing.TB) *Server
	}{
		{"redis", NewRedis},
		{"postgres", NewPostgres},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := tc.start(t)
			if s.Port == 5432 || s.Port == 6379 {
				t.Fatalf("private server on the standard port %d", s.Port)
			}
			if err := s.ready(s); err != nil {
				t.Fatalf("not ready after start: %v", err)
			}
			if err := s.Stop(); err != nil {
				t.Fatal(err)
			}
			if c, err := net.DialTimeout("tcp", "127.0.0.1:"+strconv.Itoa(s.Port), time.Second); err == nil {
				c.Close()
				t.Fatal("stopped server still accepts connections")
			}
			if err := s.Start(); err != nil {
				t.Fatalf("Start after Stop: %v", err)
			}
			if err := s.Start(); err == nil {
				t.Error("Start of a running server: want an error")
			}
			if err := s.ready(s); err != nil {
				t.Fatalf("not ready after restart: %v", err)
			}
			s.Close()
			if _, err := os.Stat(s.dir); !os.IsNotExist(err) {
				t.Errorf("data directory %s after Close: %v", s.dir, err)
			}
		})
	}
}

func TestSharedServersAreStartedOnce(t *testing.T) {
	a, b := Redis(t), Redis(t)
	if a != b {
		t.Fatal("Redis started two servers in one process")
	}
	if a.URL != "redis://127.0.0.1:"+strconv.Itoa(a.Port)+"/0" {
		t.Errorf("URL %q does not name port %d", a.URL, a.Port)
	}
}
