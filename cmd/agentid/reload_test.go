package main

import (
	"bufio"
	"encoding/json"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/agentid/agentid/internal/testenv"
)

// proxyProcess is `agentid proxy` in front of the built-in example server,
// driven over its stdin and stdout.
type proxyProcess struct {
	t   *testing.T
	cmd *exec.Cmd
	in  io.WriteCloser
	out *bufio.Reader
}

func startProxy(t *testing.T, args ...string) *proxyProcess {
	t.Helper()
	bin := testenv.AgentidBinary(t)
	args = append(append([]string{"proxy", "--audit", filepath.Join(t.TempDir(), "audit.jsonl")}, args...), "--", bin, "example-server")
	cmd := exec.Command(bin, args...)
	in, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr strings.Builder
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		in.Close()
		done := make(chan struct{})
		go func() { cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			cmd.Process.Kill()
			t.Error("proxy did not exit after stdin closed")
		}
		if t.Failed() {
			t.Logf("proxy stderr:\n%s", stderr.String())
		}
	})
	return &proxyProcess{t: t, cmd: cmd, in: in, out: bufio.NewReader(out)}
}

func (p *proxyProcess) roundTrip(line string) map[string]any {
	p.t.Helper()
	if _, err := io.WriteString(p.in, line+"\n"); err != nil {
		p.t.Fatal(err)
	}
	ch := make(chan string, 1)
	go func() { l, _ := p.out.ReadString('\n'); ch <- l }()
	select {
	case l := <-ch:
		var m map[string]any
		if err := json.Unmarshal([]byte(l), &m); err != nil {
			p.t.Fatalf("answer %q: %v", l, err)
		}
		return m
	case <-time.After(10 * time.Second):
		p.t.Fatal("no answer within 10s")
		return nil
	}
}

func code(m map[string]any) int {
	e, ok := m["error"].(map[string]any)
	if !ok {
		return 0
	}
	return int(e["code"].(float64))
}

const echoCall = `{"jsonrpc":"2.0","id":%d,"method":"tools/call","params":{"name":"echo","arguments":{"text":"hi"}}}`

func call(id int) string { return strings.Replace(echoCall, "%d", itoa(id), 1) }

func itoa(i int) string { b, _ := json.Marshal(i); return string(b) }

func TestSignedPolicyReloadAndRejection(t *testing.T) {
	dir := t.TempDir()
	key, pub := filepath.Join(dir, "k.pem"), filepath.Join(dir, "k.pub")
	if out, code := run(t, "keys", "generate", "--alg", "EdDSA", "--out", key, "--pub-out", pub); code != 0 {
		t.Fatalf("keys generate: %s", out)
	}
	policyPath := filepath.Join(dir, "policy.yaml")
	write := func(tools string) {
		doc := "apiVersion: aip.io/v1alpha2\nkind: AgentPolicy\nmetadata:\n  name: signed\nspec:\n  allowed_tools: [" + tools + "]\n"
		if err := os.WriteFile(policyPath, []byte(doc), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	sign := func() {
		if out, code := run(t, "policy", "sign", "--key", key, policyPath); code != 0 {
			t.Fatalf("policy sign: %s", out)
		}
	}

	// An unsigned policy does not start when a key is given.
	write("echo")
	if out, code := run(t, "proxy", "--policy", policyPath, "--policy-pubkey", pub, "--", "/bin/cat"); code == 0 {
		t.Fatalf("started with an unsigned policy:\n%s", out)
	}

	write("echo")
	sign()
	p := startProxy(t, "--policy", policyPath, "--policy-pubkey", pub)
	if m := p.roundTrip(call(1)); code(m) != 0 {
		t.Fatalf("signed policy, allowed tool: %v", m)
	}

	// The policy is replaced by one that is not signed: the reload is
	// refused and tool calls answer -32010 until a good policy loads.
	write("echo, read_file")
	if err := p.cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	waitFor(t, func() bool { return code(p.roundTrip(call(2))) == -32010 })

	// A properly signed policy that no longer allows echo.
	write("read_file")
	sign()
	if err := p.cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	waitFor(t, func() bool { return code(p.roundTrip(call(3))) == -32001 })
}

func TestSIGUSR1EndsTheIdentitySession(t *testing.T) {
	dir := t.TempDir()
	policyPath := filepath.Join(dir, "policy.yaml")
	doc := "apiVersion: aip.io/v1alpha2\nkind: AgentPolicy\nmetadata:\n  name: sessions\nspec:\n  allowed_tools: [echo]\n  identity:\n    enabled: true\n    require_token: true\n"
	if err := os.WriteFile(policyPath, []byte(doc), 0o600); err != nil {
		t.Fatal(err)
	}
	p := startProxy(t, "--policy", policyPath)
	token := func() (string, string) {
		m := p.roundTrip(`{"jsonrpc":"2.0","id":"t","method":"aip.io/token"}`)
		r := m["result"].(map[string]any)
		return r["token"].(string), r["session_id"].(string)
	}
	withToken := func(id int, tok string) string {
		return strings.Replace(call(id), `"params":{`, `"params":{"_meta":{"aip.io/token":"`+tok+`"},`, 1)
	}
	old, session := token()
	if err := p.cmd.Process.Signal(syscall.SIGUSR1); err != nil {
		t.Fatal(err)
	}
	waitFor(t, func() bool { _, s := token(); return s != session })
	if m := p.roundTrip(withToken(1, old)); code(m) != -32011 {
		t.Fatalf("token of the ended session: %v, want -32011", m)
	}
	fresh, _ := token()
	if m := p.roundTrip(withToken(2, fresh)); code(m) != 0 {
		t.Fatalf("token of the new session: %v", m)
	}
}

// waitFor polls cond: signals are handled asynchronously.
func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not met within 10s")
		}
		time.Sleep(50 * time.Millisecond)
	}
}
