package cardtest

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/spiffe/go-spiffe/v2/svid/x509svid"

	"github.com/agentid/agentid/agentcard"
	"github.com/agentid/agentid/internal/testenv"
)

// SPIREServer is a real spire-server (scripts/ensure-spire.sh) for one
// trust domain, on loopback and a private unix socket, that mints
// X509-SVIDs and prints its trust bundle as a workload would receive them.
type SPIREServer struct {
	TrustDomain string
	bin         string
	dir         string
	socket      string
}

// StartSPIREServer starts a spire-server for trust domain td; it stops when
// the test ends. A missing SPIRE follows testenv.RequireComponent's rule.
func StartSPIREServer(t testing.TB, td string) *SPIREServer {
	t.Helper()
	bin := filepath.Join(testenv.SPIREBinDir(t), "spire-server")
	// Unix socket paths must stay short: not under t.TempDir().
	dir, err := os.MkdirTemp("", "opspire")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	port, err := freePort()
	if err != nil {
		t.Fatal(err)
	}
	s := &SPIREServer{TrustDomain: td, bin: bin, dir: dir, socket: filepath.Join(dir, "api.sock")}
	conf := fmt.Sprintf(`server {
  bind_address = "127.0.0.1"
  bind_port = "%d"
  socket_path = %q
  trust_domain = %q
  data_dir = %q
  log_level = "WARN"
  default_x509_svid_ttl = "1h"
}
plugins {
  DataStore "sql" {
    plugin_data {
      database_type = "sqlite3"
      connection_string = %q
    }
  }
  NodeAttestor "join_token" {
    plugin_data {}
  }
  KeyManager "memory" {
    plugin_data {}
  }
}
`, port, s.socket, td, filepath.Join(dir, "data"), filepath.Join(dir, "datastore.sqlite3"))
	confPath := filepath.Join(dir, "server.conf")
	if err := os.WriteFile(confPath, []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}
	logPath := filepath.Join(dir, "server.log")
	logf, err := os.Create(logPath)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "run", "-config", confPath)
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { cmd.Wait(); close(done) }()
	t.Cleanup(func() {
		cmd.Process.Signal(os.Interrupt)
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			cmd.Process.Kill()
			<-done
		}
		logf.Close()
		if t.Failed() {
			if out, err := os.ReadFile(logPath); err == nil {
				t.Logf("--- spire-server log:\n%s", out)
			}
		}
	})
	deadline := time.Now().Add(30 * time.Second)
	for {
		if _, err := s.run("healthcheck"); err == nil {
			break
		} else if time.Now().After(deadline) {
			t.Fatalf("spire-server did not become healthy within 30s: %v", err)
		}
		time.Sleep(200 * time.Millisecond)
	}
	return s
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// run runs a spire-server subcommand (one or two words) against the
// server's socket within 30 s.
func (s *SPIREServer) run(sub ...string) ([]byte, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	n := 1
	if len(sub) > 1 && sub[1] != "" && sub[1][0] != '-' {
		n = 2
	}
	args := append(append(append([]string{}, sub[:n]...), "-socketPath", s.socket), sub[n:]...)
	var stdout, stderr bytes.Buffer
	cmd := exec.CommandContext(ctx, s.bin, args...)
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return nil, fmt.Errorf("spire-server %v: %v: %s%s", args, err, stdout.Bytes(), stderr.Bytes())
	}
	return stdout.Bytes(), nil
}

// Mint issues an X509-SVID for id with `spire-server x509 mint`, valid for
// ttl.
func (s *SPIREServer) Mint(t testing.TB, id string, ttl time.Duration) *x509svid.SVID {
	t.Helper()
	dir, err := os.MkdirTemp(s.dir, "mint")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.run("x509", "mint", "-spiffeID", id, "-ttl", strconv.Itoa(int(ttl.Seconds()))+"s", "-write", dir); err != nil {
		t.Fatal(err)
	}
	svid, err := agentcard.LoadSVID(filepath.Join(dir, "svid.pem"), filepath.Join(dir, "key.pem"))
	if err != nil {
		t.Fatal(err)
	}
	return svid
}

// Bundle returns the trust bundle as `spire-server bundle show -format
// spiffe` prints it: what SPIRE's bundle notifier puts in the ConfigMap.
func (s *SPIREServer) Bundle(t testing.TB) []byte {
	t.Helper()
	out, err := s.run("bundle", "show", "-format", "spiffe")
	if err != nil {
		t.Fatal(err)
	}
	return out
}
