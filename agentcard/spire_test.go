package agentcard

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/agentid/agentid/internal/testenv"

	"github.com/spiffe/go-spiffe/v2/spiffeid"
)

// The SPIRE integration test runs a real spire-server and spire-agent
// (v1.13.3, built by scripts/ensure-spire.sh) on loopback and unix sockets.
// The signer gets a real X509-SVID over the Workload API, and the verifier
// trusts the bundle that `spire-server bundle show -format spiffe` prints.

// spireBinDir finds the SPIRE binaries: $SPIRE_BIN_DIR, else the cache that
// scripts/ensure-spire.sh fills. Without them the test skips, except under
// CI=true, where a missing component is a failure.
func spireBinDir(t *testing.T) string {
	t.Helper()
	dirs := []string{os.Getenv("SPIRE_BIN_DIR")}
	cache := os.Getenv("AGENTID_CACHE")
	if cache == "" {
		if xdg := os.Getenv("XDG_CACHE_HOME"); xdg != "" {
			cache = filepath.Join(xdg, "agentid")
		} else if home, err := os.UserHomeDir(); err == nil {
			cache = filepath.Join(home, ".cache", "agentid")
		}
	}
	if cache != "" {
		dirs = append(dirs, filepath.Join(cache, "spire-v1.13.3", "bin"))
	}
	for _, d := range dirs {
		if d == "" {
			continue
		}
		if isExecutable(filepath.Join(d, "spire-server")) && isExecutable(filepath.Join(d, "spire-agent")) {
			return d
		}
	}
	testenv.RequireComponent(t, "SPIRE server and agent", errors.New("binaries not found: run scripts/ensure-spire.sh and set SPIRE_BIN_DIR"))
	return ""
}

func isExecutable(path string) bool {
	st, err := os.Stat(path)
	return err == nil && !st.IsDir() && st.Mode()&0o111 != 0
}

// spireServer is a running spire-server for one trust domain.
type spireServer struct {
	bin    string
	td     string
	dir    string
	socket string
	port   int
}

func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// shortTempDir returns a temporary directory with a short path: unix
// socket paths must stay under about 100 bytes.
func shortTempDir(t *testing.T, prefix string) string {
	t.Helper()
	dir, err := os.MkdirTemp("", prefix)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	return dir
}

// startProcess runs a SPIRE command in the background with its output in a
// log file, and stops it (SIGTERM, then SIGKILL) when the test ends.
func startProcess(t *testing.T, logPath string, name string, args ...string) {
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
				t.Logf("--- %s log:\n%s", filepath.Base(logPath), out)
			}
		}
	})
}

// run runs a SPIRE CLI command to completion within 30 s.
func run(t *testing.T, name string, args ...string) []byte {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var stdout, stderr bytes.Buffer
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("%s %s: %v\n%s%s", filepath.Base(name), strings.Join(args, " "), err, stdout.Bytes(), stderr.Bytes())
	}
	return stdout.Bytes()
}

// waitHealthy polls a healthcheck command until it succeeds or 30 s pass.
func waitHealthy(t *testing.T, name string, args ...string) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		err := exec.CommandContext(ctx, name, args...).Run()
		cancel()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s did not become healthy within 30s: %v", filepath.Base(name), err)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

func startSpireServer(t *testing.T, bin, td string) *spireServer {
	t.Helper()
	dir := shortTempDir(t, "spsrv")
	s := &spireServer{bin: bin, td: td, dir: dir, socket: filepath.Join(dir, "api.sock"), port: freePort(t)}
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
`, s.port, s.socket, td, filepath.Join(dir, "data"), filepath.Join(dir, "datastore.sqlite3"))
	confPath := filepath.Join(dir, "server.conf")
	if err := os.WriteFile(confPath, []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}
	startProcess(t, filepath.Join(dir, "server.log"), filepath.Join(bin, "spire-server"), "run", "-config", confPath)
	waitHealthy(t, filepath.Join(bin, "spire-server"), "healthcheck", "-socketPath", s.socket)
	return s
}

func (s *spireServer) cli(t *testing.T, args ...string) []byte {
	t.Helper()
	// Every spire-server subcommand takes -socketPath after its name(s).
	n := 1
	if len(args) > 1 && !strings.HasPrefix(args[1], "-") {
		n = 2
	}
	full := append(append(append([]string{}, args[:n]...), "-socketPath", s.socket), args[n:]...)
	return run(t, filepath.Join(s.bin, "spire-server"), full...)
}

// startSpireAgent attests a spire-agent to s with a join token and returns
// the Workload API address.
func startSpireAgent(t *testing.T, s *spireServer) string {
	t.Helper()
	out := s.cli(t, "token", "generate", "-spiffeID", "spiffe://"+s.td+"/node")
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
`, filepath.Join(dir, "data"), s.port, socket, s.td, token)
	confPath := filepath.Join(dir, "agent.conf")
	if err := os.WriteFile(confPath, []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}
	startProcess(t, filepath.Join(dir, "agent.log"), filepath.Join(s.bin, "spire-agent"), "run", "-config", confPath)
	waitHealthy(t, filepath.Join(s.bin, "spire-agent"), "healthcheck", "-socketPath", socket)
	return "unix://" + socket
}

func TestSPIRE(t *testing.T) {
	bin := spireBinDir(t)
	if testing.Short() {
		t.Skip("starts SPIRE; skipped with -short")
	}
	const td = "example.org"
	const workloadID = "spiffe://example.org/ns/agents/sa/weather"
	server := startSpireServer(t, bin, td)
	addr := startSpireAgent(t, server)
	server.cli(t, "entry", "create",
		"-parentID", "spiffe://"+td+"/node",
		"-spiffeID", workloadID,
		"-selector", "unix:uid:"+strconv.Itoa(os.Getuid()))

	// The agent picks the new entry up on its next sync (every few
	// seconds); until then the Workload API has no identity for us.
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	for {
		svid, err := FetchSVID(ctx, addr)
		if err == nil {
			ZeroKey(svid.PrivateKey)
			break
		}
		if ctx.Err() != nil {
			t.Fatalf("no SVID from the SPIRE agent within 60s: %v", err)
		}
		time.Sleep(500 * time.Millisecond)
	}

	dir := t.TempDir()
	unsigned := filepath.Join(dir, "agent.json")
	if err := os.WriteFile(unsigned, baseCard, 0o644); err != nil {
		t.Fatal(err)
	}
	bundlePath := filepath.Join(dir, "bundle.spiffe")
	if err := os.WriteFile(bundlePath, server.cli(t, "bundle", "show", "-format", "spiffe"), 0o644); err != nil {
		t.Fatal(err)
	}
	exampleTD := spiffeid.RequireTrustDomainFromString(td)
	bundles, closeBundles, err := OpenBundles(ctx, bundlePath, exampleTD, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer closeBundles()

	t.Run("a card signed with the Workload API SVID verifies against the SPIRE bundle", func(t *testing.T) {
		out := filepath.Join(dir, "signed", "agent-card.json")
		_, info, err := SignFile(ctx, SignConfig{In: unsigned, Out: out, WorkloadAPIAddr: addr, Timeout: 30 * time.Second})
		if err != nil {
			t.Fatal(err)
		}
		if info.SPIFFEID != workloadID || info.Algorithm != ES256 {
			t.Fatalf("%+v", info)
		}
		signed, err := os.ReadFile(out)
		if err != nil {
			t.Fatal(err)
		}
		expected, _ := KubernetesID(exampleTD, "agents", "weather")
		v, err := NewVerifier(bundles, WithExpectedID(expected))
		if err != nil {
			t.Fatal(err)
		}
		res, err := v.Verify(signed)
		if err != nil {
			t.Fatalf("%v\n%+v", err, res)
		}
		if res.SPIFFEID != workloadID || !res.Binding.Bound || res.LeafNotAfter.Before(time.Now()) {
			t.Fatalf("%+v", res)
		}
		// The SPIRE agent also serves the bundle; trusting that instead of
		// the file gives the same answer.
		apiBundles, closeAPI, err := OpenBundles(ctx, addr, spiffeid.TrustDomain{}, 0)
		if err != nil {
			t.Fatal(err)
		}
		defer closeAPI()
		v2, _ := NewVerifier(apiBundles, WithTrustDomain(exampleTD))
		if _, err := v2.Verify(signed); err != nil {
			t.Fatal(err)
		}
	})

	t.Run("an SVID minted for another trust domain is rejected", func(t *testing.T) {
		other := startSpireServer(t, bin, "other.org")
		mintDir := filepath.Join(dir, "minted")
		if err := os.MkdirAll(mintDir, 0o700); err != nil {
			t.Fatal(err)
		}
		other.cli(t, "x509", "mint", "-spiffeID", "spiffe://other.org/ns/agents/sa/weather", "-ttl", "1h", "-write", mintDir)
		_, info, err := SignFile(ctx, SignConfig{
			In: unsigned, Out: filepath.Join(dir, "other.json"),
			CertFile: filepath.Join(mintDir, "svid.pem"), KeyFile: filepath.Join(mintDir, "key.pem"),
		})
		if err != nil {
			t.Fatal(err)
		}
		if info.SPIFFEID != "spiffe://other.org/ns/agents/sa/weather" {
			t.Fatalf("%+v", info)
		}
		signed, _ := os.ReadFile(filepath.Join(dir, "other.json"))

		// Only example.org is trusted: no bundle for other.org.
		v, _ := NewVerifier(bundles, WithTrustDomain(exampleTD))
		res, err := v.Verify(signed)
		if !errors.Is(err, ErrNotVerified) || res.Signatures[0].Reason != ReasonUnknownTrustDomain {
			t.Fatalf("%v %+v", err, res)
		}

		// other.org's real bundle is trusted too (federation), but the
		// binding floor is example.org: verified, not bound.
		otherBundlePath := filepath.Join(dir, "other.spiffe")
		os.WriteFile(otherBundlePath, other.cli(t, "bundle", "show", "-format", "spiffe"), 0o644)
		otherTD := spiffeid.RequireTrustDomainFromString("other.org")
		otherBundle, closeOther, err := OpenBundles(ctx, otherBundlePath, otherTD, 0)
		if err != nil {
			t.Fatal(err)
		}
		defer closeOther()
		set := NewBundles()
		set.Add(exampleTD, bundles)
		set.Add(otherTD, otherBundle)
		v, _ = NewVerifier(set, WithTrustDomain(exampleTD))
		res, err = v.Verify(signed)
		if !errors.Is(err, ErrNotBound) || !res.Verified || res.Binding.Message !=
			"SPIFFE ID spiffe://other.org/ns/agents/sa/weather does not belong to trust domain example.org" {
			t.Fatalf("%v %+v", err, res.Binding)
		}

		// other.org's CA placed under example.org's name does not make its
		// SVIDs example.org's: the leaf's trust domain picks the bundle.
		misfiled := filepath.Join(dir, "misfiled.spiffe")
		os.WriteFile(misfiled, other.cli(t, "bundle", "show", "-format", "spiffe"), 0o644)
		wrong, closeWrong, err := OpenBundles(ctx, misfiled, exampleTD, 0)
		if err != nil {
			t.Fatal(err)
		}
		defer closeWrong()
		v, _ = NewVerifier(wrong, WithTrustDomain(exampleTD))
		if res, err := v.Verify(signed); err == nil || res.Signatures[0].Reason != ReasonUnknownTrustDomain {
			t.Fatalf("%v %+v", err, res)
		}
	})
}
