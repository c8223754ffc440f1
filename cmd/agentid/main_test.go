package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/agentid/agentid/internal/testenv"
)

// run executes the built agentid binary and returns its combined output and
// exit code.
func run(t *testing.T, args ...string) (string, int) {
	t.Helper()
	cmd := exec.Command(testenv.AgentidBinary(t), args...)
	out, err := cmd.CombinedOutput()
	if ee, ok := err.(*exec.ExitError); ok {
		return string(out), ee.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	return string(out), 0
}

func writeFile(t *testing.T, name, content string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestEveryCommandHasHelp(t *testing.T) {
	for _, c := range [][]string{{}, {"proxy"}, {"policy"}, {"policy", "check"}, {"conformance"}, {"demo"}, {"schema-hash"}, {"version"}} {
		out, code := run(t, append(c, "--help")...)
		if code != 0 || !strings.Contains(out, "Usage:") {
			t.Errorf("agentid %s --help: exit %d\n%s", strings.Join(c, " "), code, out)
		}
	}
}

func TestPolicyCheckReportsErrorsWithFieldPathsAndExitsNonZero(t *testing.T) {
	bad := writeFile(t, "bad.yaml", `apiVersion: aip.io/v1alpha2
kind: AgentPolicy
metadata: {name: x}
spec:
  protectd_paths: [~/.ssh]
  tool_rules:
    - tool: run
      allow_args: {cmd: "(?!rm)"}
`)
	out, code := run(t, "policy", "check", bad)
	if code == 0 {
		t.Fatalf("exit 0 for an invalid policy:\n%s", out)
	}
	for _, want := range []string{"spec.protectd_paths", "spec.tool_rules[0].allow_args.cmd"} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
}

func TestPolicyCheckWarnsAboutMonitorModeAndUnanchoredPatterns(t *testing.T) {
	p := writeFile(t, "ok.yaml", `apiVersion: aip.io/v1alpha2
kind: AgentPolicy
metadata: {name: x}
spec:
  mode: monitor
  tool_rules:
    - tool: fetch
      allow_args: {url: "https://example\\.com/"}
`)
	out, code := run(t, "policy", "check", p)
	if code != 0 {
		t.Fatalf("exit %d:\n%s", code, out)
	}
	if strings.Count(out, "warning:") < 2 {
		t.Errorf("want warnings for monitor mode and the unanchored pattern:\n%s", out)
	}
}

func TestDemoShowsEveryKindOfDecision(t *testing.T) {
	out, code := run(t, "demo")
	if code != 0 {
		t.Fatalf("exit %d:\n%s", code, out)
	}
	for _, want := range []string{"ALLOWED, REDACTED", "-32007", "-32001", "-32004", "-32002", "-32006", "-32600", "decisions were written to the audit log"} {
		if !strings.Contains(out, want) {
			t.Errorf("demo output lacks %q", want)
		}
	}
	if strings.Contains(out, "AKIA") {
		t.Errorf("the demo printed an unredacted key")
	}
}

func TestProxyAcceptsTargetForCompatibility(t *testing.T) {
	p := writeFile(t, "p.yaml", "apiVersion: aip.io/v1alpha1\nkind: AgentPolicy\nmetadata: {name: x}\nspec:\n  allowed_tools: [echo]\n")
	bin := testenv.AgentidBinary(t)
	cmd := exec.Command(bin, "proxy", "--policy", p, "--audit", filepath.Join(t.TempDir(), "a.jsonl"), "--target", bin+" example-server")
	cmd.Stdin = strings.NewReader(`{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"echo","arguments":{"text":"it works"}}}` + "\n")
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	if !strings.Contains(string(out), "it works") {
		t.Fatalf("stdout %q", out)
	}
}

func TestProxyRefusesToStartWithAnInvalidPolicy(t *testing.T) {
	p := writeFile(t, "p.yaml", "apiVersion: foo/v9\nkind: AgentPolicy\nmetadata: {name: x}\nspec: {}\n")
	out, code := run(t, "proxy", "--policy", p, "--", "/bin/cat")
	if code == 0 || !strings.Contains(out, "apiVersion") {
		t.Fatalf("exit %d:\n%s", code, out)
	}
}

func TestConformanceCommandEndsWithTheSummaryLine(t *testing.T) {
	suite := testenv.ConformanceDir(t)
	out, code := run(t, "conformance", "--suite", suite, "--level", "basic")
	lines := strings.Split(strings.TrimSpace(out), "\n")
	last := lines[len(lines)-1]
	if code != 0 || !strings.HasSuffix(last, "0 failed, 0 skipped") {
		t.Fatalf("exit %d, last line %q", code, last)
	}
}

func TestSplitCommand(t *testing.T) {
	tests := []struct {
		in   string
		want []string
	}{
		{`npx -y server ~/work`, []string{"npx", "-y", "server", "~/work"}},
		{`python3 "my server.py" --name 'a b'`, []string{"python3", "my server.py", "--name", "a b"}},
		{`a\ b c`, []string{"a b", "c"}},
		{`x ""`, []string{"x", ""}},
	}
	for _, tt := range tests {
		got, err := splitCommand(tt.in)
		if err != nil || strings.Join(got, "|") != strings.Join(tt.want, "|") {
			t.Errorf("splitCommand(%q) = %q, %v; want %q", tt.in, got, err, tt.want)
		}
	}
	if _, err := splitCommand(`a "b`); err == nil {
		t.Error("an unterminated quote must be an error")
	}
}
