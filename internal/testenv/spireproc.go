package testenv

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/spiffe/go-spiffe/v2/svid/x509svid"
)

// SPIREServer is a real spire-server (scripts/ensure-spire.sh) for one trust
// domain, on loopback and a private unix socket: it mints X509-SVIDs, prints
// its trust bundle as a workload receives it, and attests agents.
type SPIREServer struct {
	TrustDomain string
	bin         string // the directory of spire-server and spire-agent
	dir         string
	socket      string
	port        int
}

// StartSPIREServer starts a spire-server for trust domain td; it stops when
// the test ends. A missing SPIRE follows RequireComponent's rule.
func StartSPIREServer(t testing.TB, td string) *SPIREServer {
	t.Helper()
	s := &SPIREServer{TrustDomain: td, bin: SPIREBinDir(t), dir: shortTempDir(t, "spsrv")}
	s.socket, s.port = filepath.Join(s.dir, "api.sock"), freeTCPPort(t)
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
`, s.port, s.socket, td, filepath.Join(s.dir, "data"), filepath.Join(s.dir, "datastore.sqlite3"))
	confPath := filepath.Join(s.dir, "server.conf")
	if err := os.WriteFile(confPath, []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}
	startSPIREProcess(t, filepath.Join(s.dir, "server.log"), filepath.Join(s.bin, "spire-server"), "run", "-config", confPath)
	waitHealthy(t, func() error { _, err := s.run("healthcheck"); return err })
	return s
}

// CLI runs a spire-server subcommand (one or two words, then its flags)
// against the server and returns its output; a failure fails the test.
func (s *SPIREServer) CLI(t testing.TB, sub ...string) []byte {
	t.Helper()
	out, err := s.run(sub...)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// run runs a spire-server subcommand within 30 s.
func (s *SPIREServer) run(sub ...string) ([]byte, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	// Every subcommand takes -socketPath after its name(s).
	n := 1
	if len(sub) > 1 && sub[1] != "" && sub[1][0] != '-' {
		n = 2
	}
	args := append(append(append([]string{}, sub[:n]...), "-socketPath", s.socket), sub[n:]...)
	var stdout, stderr bytes.Buffer
	cmd := exec.CommandContext(ctx, filepath.Join(s.bin, "spire-server"), args...)
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return nil, fmt.Errorf("spire-server %s: %v: %s%s", strings.Join(args, " "), err, stdout.Bytes(), stderr.Bytes())
	}
	return stdout.Bytes(), nil
}

// Mint issues an X509-SVID for id with `spire-server x509 mint`, valid for
// ttl.
func (s *SPIREServer) Mint(t testing.TB, id string, ttl time.Duration) *x509svid.SVID {
	t.Helper()
	dir := s.MintFiles(t, id, ttl)
	svid, err := x509svid.Load(filepath.Join(dir, "svid.pem"), filepath.Join(dir, "key.pem"))
	if err != nil {
		t.Fatal(err)
	}
	return svid
}

// MintFiles is Mint that leaves the SVID as files (svid.pem, key.pem,
// bundle.pem) in the directory it returns.
func (s *SPIREServer) MintFiles(t testing.TB, id string, ttl time.Duration) string {
	t.Helper()
	dir, err := os.MkdirTemp(s.dir, "mint")
	if err != nil {
		t.Fatal(err)
	}
	s.CLI(t, "x509", "mint", "-spiffeID", id, "-ttl", strconv.Itoa(int(ttl.Seconds()))+"s", "-write", dir)
	return dir
}

// Bundle returns the trust bundle as `spire-server bundle show -format
// spiffe` prints it: what SPIRE's bundle notifier puts in a ConfigMap.
func (s *SPIREServer) Bundle(t testing.TB) []byte {
	t.Helper()
	return s.CLI(t, "bundle", "show", "-format", "spiffe")
}

// NodeID is the SPIFFE ID of the agents StartAgent attests, the parent of
// the entries a test creates for its workloads.
func (s *SPIREServer) NodeID() string { return "spiffe://" + s.TrustDomain + "/node" }

// StartAgent attests a spire-agent to s with a join token and returns its
// Workload API address (unix://…); it stops when the test ends. Its unix
// workload attestor identifies this test process by its uid: register
// entries with CreateEntry.
func (s *SPIREServer) StartAgent(t testing.TB) string {
	t.Helper()
	out := s.CLI(t, "token", "generate", "-spiffeID", s.NodeID())
	token := strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(string(out)), "Token:"))
	if token == "" || strings.ContainsAny(token, " \n") {
		t.Fatalf("unexpected token output %q", out)
	}
	dir := shortTempDir(t, "spagt")
	socket := filepath.Join(dir, "agent.sock")
	conf := fmt.Sprintf(`agent {
  data_dir = %q
  log_level = "WARN"
  server_address = "127.0.0.1"
  server_port = "%d"
  socket_path = %q
  trust_domain = %q
  insecure_bootstrap = true
  join_token = %q
}
plugins {
  NodeAttestor "join_token" {
    plugin_data {}
  }
  KeyManager "memory" {
    plugin_data {}
  }
  WorkloadAttestor "unix" {
    plugin_data {}
  }
}
`, filepath.Join(dir, "data"), s.port, socket, s.TrustDomain, token)
	confPath := filepath.Join(dir, "agent.conf")
	if err := os.WriteFile(confPath, []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}
	agent := filepath.Join(s.bin, "spire-agent")
	startSPIREProcess(t, filepath.Join(dir, "agent.log"), agent, "run", "-config", confPath)
	waitHealthy(t, func() error {
		return exec.Command(agent, "healthcheck", "-socketPath", socket).Run()
	})
	return "unix://" + socket
}

// CreateEntry registers id for this test process (its uid) under the
// agents StartAgent attests. The agent picks it up on its next sync, a few
// seconds later.
func (s *SPIREServer) CreateEntry(t testing.TB, id string) {
	t.Helper()
	s.CLI(t, "entry", "create", "-parentID", s.NodeID(), "-spiffeID", id, "-selector", "unix:uid:"+strconv.Itoa(os.Getuid()))
}

// startSPIREProcess runs a SPIRE command in the background with its output
// in a log file (shown when the test fails), and stops it (SIGINT, then
// SIGKILL after 10 s) when the test ends.
func startSPIREProcess(t testing.TB, logPath, name string, args ...string) {
	t.Helper()
	logf, err := os.Create(logPath)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(name, args...)
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
				t.Logf("--- %s:\n%s", filepath.Base(logPath), out)
			}
		}
	})
}

// waitHealthy polls check until it succeeds, for at most 30 s.
func waitHealthy(t testing.TB, check func() error) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		err := check()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("SPIRE did not become healthy within 30s: %v", err)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// shortTempDir is a temporary directory with a short path (unix socket
// paths must stay under about 100 bytes, which t.TempDir() can exceed),
// removed when the test ends.
func shortTempDir(t testing.TB, prefix string) string {
	t.Helper()
	dir, err := os.MkdirTemp("", prefix)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	return dir
}

func freeTCPPort(t testing.TB) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}
