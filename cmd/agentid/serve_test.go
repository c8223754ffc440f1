package main

import (
	"bufio"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/agentid/agentid/internal/testenv"
)

// serveProcess is a running `agentid serve`.
type serveProcess struct {
	cmd    *exec.Cmd
	url    string
	stderr *strings.Builder
	exited chan error
}

// startServe runs `agentid serve` on a free loopback port with args.
func startServe(t *testing.T, args ...string) *serveProcess {
	t.Helper()
	return startListener(t, "serve", args...)
}

// startListener runs `agentid SUB` (serve or gateway) on a free loopback
// port with args, and waits until it listens.
func startListener(t *testing.T, sub string, args ...string) *serveProcess {
	t.Helper()
	bin := testenv.AgentidBinary(t)
	args = append([]string{sub, "--listen", "127.0.0.1:0", "--drain-delay", "0", "--log-format", "json",
		"--audit", filepath.Join(t.TempDir(), sub+"-audit.jsonl")}, args...)
	cmd := exec.Command(bin, args...)
	errPipe, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	sp := &serveProcess{cmd: cmd, stderr: &strings.Builder{}, exited: make(chan error, 1)}
	addr := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(errPipe)
		for sc.Scan() {
			line := sc.Text()
			sp.stderr.WriteString(line + "\n")
			var rec map[string]any
			if json.Unmarshal([]byte(line), &rec) == nil {
				if a, ok := rec["listen"].(string); ok && rec["msg"] == "serving" {
					addr <- a
				}
			}
		}
	}()
	go func() { sp.exited <- cmd.Wait() }()
	select {
	case a := <-addr:
		sp.url = "http://" + a
	case err := <-sp.exited:
		t.Fatalf("agentid %s exited: %v\n%s", sub, err, sp.stderr)
	case <-time.After(20 * time.Second):
		cmd.Process.Kill()
		t.Fatalf("agentid %s did not start\n%s", sub, sp.stderr)
	}
	t.Cleanup(func() {
		cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-sp.exited:
		case <-time.After(10 * time.Second):
			cmd.Process.Kill()
		}
		if t.Failed() {
			t.Logf("agentid %s stderr:\n%s", sub, sp.stderr)
		}
	})
	return sp
}

func (sp *serveProcess) health(t *testing.T) (int, map[string]any) {
	t.Helper()
	resp, err := http.Get(sp.url + "/health")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var m map[string]any
	b, _ := io.ReadAll(resp.Body)
	json.Unmarshal(b, &m)
	return resp.StatusCode, m
}

const servedPolicy = `apiVersion: aip.io/v1alpha2
kind: AgentPolicy
metadata: {name: fleet}
spec:
  allowed_tools: [echo]
  identity:
    enabled: true
    require_token: true
`

func TestAProxyDecidesThroughARealValidationServer(t *testing.T) {
	dir := t.TempDir()
	policyPath := writeFile(t, "served.yaml", servedPolicy)
	adminFile := filepath.Join(dir, "admin-token")
	if err := os.WriteFile(adminFile, []byte("an-admin-token-of-some-length\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	sp := startServe(t, "--policy", policyPath, "--admin-token-file", adminFile)
	if status, h := sp.health(t); status != 200 || h["status"] != "healthy" {
		t.Fatalf("health: %d %v", status, h)
	}

	// The proxy's own policy allows echo and reverse; the server's allows
	// only echo, and only with a token.
	local := writeFile(t, "local.yaml", "apiVersion: aip.io/v1alpha2\nkind: AgentPolicy\nmetadata: {name: local}\nspec:\n  allowed_tools: [echo, reverse]\n")
	px := startProxy(t, "--policy", local, "--server", sp.url, "--server-credential-file", adminFile)
	if c := code(px.roundTrip(call(1))); c != -32008 {
		t.Fatalf("a call without a token: code %d, want -32008", c)
	}
	tokResp := px.roundTrip(`{"jsonrpc":"2.0","id":"t","method":"aip.io/token"}`)
	res, _ := tokResp["result"].(map[string]any)
	tok, _ := res["token"].(string)
	if tok == "" {
		t.Fatalf("no token from the server: %v", tokResp)
	}
	withToken := `{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"echo","arguments":{"text":"hi"},"_meta":{"aip.io/token":"` + tok + `"}}}`
	if m := px.roundTrip(withToken); code(m) != 0 || m["result"] == nil {
		t.Fatalf("the server allowed echo, the example server should answer: %v", m)
	}
	if c := code(px.roundTrip(strings.Replace(withToken, `"id":2`, `"id":3`, 1))); c != -32009 {
		t.Fatalf("a replayed token: code %d, want -32009", c)
	}

	// A broken policy file keeps the old policy, and health says so.
	if err := os.WriteFile(policyPath, []byte("not: a policy\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	sp.cmd.Process.Signal(syscall.SIGHUP)
	waitFor(t, func() bool { _, h := sp.health(t); return h["status"] == "degraded" })

	// SIGTERM drains and exits cleanly.
	sp.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case err := <-sp.exited:
		if err != nil {
			t.Fatalf("agentid serve after SIGTERM: %v", err)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("agentid serve did not exit after SIGTERM")
	}
}

func TestServeRefusesToListenOnTheNetworkWithoutTLS(t *testing.T) {
	policyPath := writeFile(t, "p.yaml", servedPolicy)
	out, code := run(t, "serve", "--policy", policyPath, "--listen", "0.0.0.0:0", "--audit", filepath.Join(t.TempDir(), "a.jsonl"))
	if code == 0 || !strings.Contains(out, "TLS is required") {
		t.Fatalf("exit %d: %s", code, out)
	}
}

func TestServeRefusesATokenCredentialThatIsTheAdminToken(t *testing.T) {
	policyPath := writeFile(t, "p.yaml", servedPolicy)
	secret := writeFile(t, "admin", "0123456789abcdef-admin") // mode 0600
	out, code := run(t, "serve", "--policy", policyPath, "--listen", "127.0.0.1:0", "--audit", filepath.Join(t.TempDir(), "a.jsonl"),
		"--admin-token-file", secret, "--token-credential-file", secret)
	if code == 0 || !strings.Contains(out, "holds the admin token") {
		t.Fatalf("exit %d: %s", code, out)
	}
}
