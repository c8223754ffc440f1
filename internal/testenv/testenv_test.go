package testenv

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// recorder is a testing.TB that records Fatal and Skip instead of ending the
// real test. Like the real ones, its Fatalf and Skipf do not return: they
// panic with a sentinel that call recovers.
type recorder struct {
	testing.TB
	failed, skipped bool
	msg             string
}

type stop struct{}

func (r *recorder) Helper() {}

func (r *recorder) Fatalf(format string, args ...any) {
	r.failed, r.msg = true, fmt.Sprintf(format, args...)
	panic(stop{})
}

func (r *recorder) Skipf(format string, args ...any) {
	r.skipped, r.msg = true, fmt.Sprintf(format, args...)
	panic(stop{})
}

// call runs f against a fresh recorder and reports what it recorded.
func call(t *testing.T, f func(tb testing.TB)) (r *recorder) {
	t.Helper()
	r = &recorder{TB: t}
	defer func() {
		if v := recover(); v != nil {
			if _, ok := v.(stop); !ok {
				panic(v)
			}
		}
	}()
	f(r)
	return r
}

func TestCI(t *testing.T) {
	for v, want := range map[string]bool{"true": true, "1": true, "TRUE": true, "false": false, "0": false, "": false, "yes": false} {
		t.Setenv("CI", v)
		if got := CI(); got != want {
			t.Errorf("CI=%q: CI() = %v, want %v", v, got, want)
		}
	}
}

func TestRequireComponent(t *testing.T) {
	missing := errors.New("not installed")
	tests := []struct {
		ci            string
		err           error
		failed, skips bool
	}{
		{"true", nil, false, false},
		{"false", nil, false, false},
		{"true", missing, true, false},
		{"false", missing, false, true},
		{"", missing, false, true},
	}
	for _, tt := range tests {
		t.Setenv("CI", tt.ci)
		r := call(t, func(tb testing.TB) { RequireComponent(tb, "widget", tt.err) })
		if r.failed != tt.failed || r.skipped != tt.skips {
			t.Errorf("CI=%q err=%v: failed=%v skipped=%v, want %v %v", tt.ci, tt.err, r.failed, r.skipped, tt.failed, tt.skips)
		}
		if tt.err != nil && !strings.Contains(r.msg, "widget") {
			t.Errorf("CI=%q: message %q does not name the component", tt.ci, r.msg)
		}
		if r.failed && !strings.Contains(r.msg, "scripts/test.sh") {
			t.Errorf("failure message %q does not say how to install", r.msg)
		}
	}
}

func TestRoot(t *testing.T) {
	root := Root(t)
	data, err := os.ReadFile(filepath.Join(root, "go.mod"))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(data), "module github.com/agentid/agentid") {
		t.Errorf("%s/go.mod is not agentid's", root)
	}
}

func TestFindRoot(t *testing.T) {
	dir := t.TempDir()
	deep := filepath.Join(dir, "a", "b", "c")
	if err := os.MkdirAll(deep, 0o755); err != nil {
		t.Fatal(err)
	}
	// A directory named go.mod must not count.
	if err := os.Mkdir(filepath.Join(dir, "a", "b", "go.mod"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "a", "go.mod"), []byte("module x\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	got, err := findRoot(deep)
	if err != nil || got != filepath.Join(dir, "a") {
		t.Errorf("findRoot = %q, %v; want %q", got, err, filepath.Join(dir, "a"))
	}
	if _, err := findRoot("/"); err == nil {
		if _, statErr := os.Stat("/go.mod"); statErr != nil {
			t.Error("findRoot(/) found a go.mod that is not there")
		}
	}
}

func TestSharedAndConformanceDir(t *testing.T) {
	shared := SharedDir(t)
	if _, err := os.Stat(filepath.Join(shared, "DESIGN.md")); err != nil {
		t.Errorf("SharedDir %s: %v", shared, err)
	}
	conf := ConformanceDir(t)
	if filepath.Base(conf) != "conformance" {
		t.Errorf("ConformanceDir = %s", conf)
	}
}

func TestBinEntry(t *testing.T) {
	tests := []struct {
		raw  string
		want string
		ok   bool
	}{
		{`"dist/index.js"`, "dist/index.js", true},
		{`{"mcp-server-x": "dist/index.js"}`, "dist/index.js", true},
		{``, "", false},
		{`""`, "", false},
		{`{}`, "", false},
		{`{"a": "a.js", "b": "b.js"}`, "", false},
		{`{"a": ""}`, "", false},
		{`42`, "", false},
	}
	for _, tt := range tests {
		got, err := binEntry(json.RawMessage(tt.raw))
		if (err == nil) != tt.ok || got != tt.want {
			t.Errorf("binEntry(%s) = %q, %v; want %q ok=%v", tt.raw, got, err, tt.want, tt.ok)
		}
	}
}

func TestNPMBinFake(t *testing.T) {
	dir := t.TempDir()
	pkgDir := filepath.Join(dir, "node_modules", "@scope", "pkg")
	if err := os.MkdirAll(filepath.Join(pkgDir, "bin"), 0o755); err != nil {
		t.Fatal(err)
	}
	manifest := `{"name": "@scope/pkg", "bin": {"pkg": "bin/run.js"}}`
	if err := os.WriteFile(filepath.Join(pkgDir, "package.json"), []byte(manifest), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := npmBin(dir, "@scope/pkg"); err == nil {
		t.Error("npmBin succeeded although the bin script does not exist")
	}
	if err := os.WriteFile(filepath.Join(pkgDir, "bin", "run.js"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	got, err := npmBin(dir, "@scope/pkg")
	if want := filepath.Join(pkgDir, "bin", "run.js"); err != nil || got != want {
		t.Errorf("npmBin = %q, %v; want %q", got, err, want)
	}
	if _, err := npmBin(dir, "@scope/absent"); err == nil || !strings.Contains(err.Error(), "not installed") {
		t.Errorf("npmBin of a missing package: %v", err)
	}
}

func TestNPMServerUnknown(t *testing.T) {
	r := call(t, func(tb testing.TB) { NPMServer(tb, "nonesuch") })
	if !r.failed {
		t.Error("NPMServer accepted an unknown server name")
	}
}

// TestNPMServersStart starts each pinned server and completes the MCP
// initialize handshake with it, so that a wrong pin or bin path is caught
// here rather than as a confusing failure in the proxy tests.
func TestNPMServersStart(t *testing.T) {
	for _, name := range []string{"filesystem", "everything"} {
		t.Run(name, func(t *testing.T) {
			argv := NPMServer(t, name)
			if name == "filesystem" {
				argv = append(argv, t.TempDir())
			}
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
			stdin, err := cmd.StdinPipe()
			if err != nil {
				t.Fatal(err)
			}
			stdout, err := cmd.StdoutPipe()
			if err != nil {
				t.Fatal(err)
			}
			var stderr strings.Builder
			cmd.Stderr = &stderr
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			defer func() {
				stdin.Close()
				cmd.Wait()
			}()
			init := `{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"testenv","version":"0"}}}` + "\n"
			if _, err := stdin.Write([]byte(init)); err != nil {
				t.Fatal(err)
			}
			// Servers may send notifications first; read until the response to id 1.
			sc := bufio.NewScanner(stdout)
			sc.Buffer(nil, 1<<20)
			for sc.Scan() {
				var msg struct {
					ID     json.RawMessage `json:"id"`
					Result struct {
						ProtocolVersion string `json:"protocolVersion"`
					} `json:"result"`
				}
				if err := json.Unmarshal(sc.Bytes(), &msg); err != nil {
					t.Fatalf("server wrote a non-JSON line %q: %v", sc.Text(), err)
				}
				if string(msg.ID) != "1" {
					continue
				}
				if msg.Result.ProtocolVersion == "" {
					t.Fatalf("initialize answered without a protocolVersion: %s", sc.Text())
				}
				return
			}
			t.Fatalf("no initialize response (scan error %v); stderr:\n%s", sc.Err(), stderr.String())
		})
	}
}

func TestBinDirPID(t *testing.T) {
	tests := []struct {
		name string
		pid  int
		ok   bool
	}{
		{binDirPrefix + "123-456789", 123, true},
		{binDirPrefix + "123", 0, false},
		{binDirPrefix + "x-1", 0, false},
		{binDirPrefix + "-1-2", 0, false},
		{"other-123-4", 0, false},
	}
	for _, tt := range tests {
		pid, ok := binDirPID(tt.name)
		if pid != tt.pid || ok != tt.ok {
			t.Errorf("binDirPID(%q) = %d, %v; want %d, %v", tt.name, pid, ok, tt.pid, tt.ok)
		}
	}
}

func TestSweepBinDirs(t *testing.T) {
	tmp := t.TempDir()
	// A child that has been waited for is a process id known to be dead
	// (until the kernel reuses it, which the sweep would then merely skip).
	dead := exec.Command("true")
	if err := dead.Run(); err != nil {
		t.Skipf("cannot run true: %v", err)
	}
	deadDir := filepath.Join(tmp, binDirPrefix+strconv.Itoa(dead.Process.Pid)+"-1")
	liveDir := filepath.Join(tmp, binDirPrefix+strconv.Itoa(os.Getpid())+"-1")
	otherDir := filepath.Join(tmp, "unrelated")
	for _, d := range []string{deadDir, liveDir, otherDir} {
		if err := os.Mkdir(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	sweepBinDirs(tmp)
	if _, err := os.Stat(deadDir); err == nil && !processAlive(dead.Process.Pid) {
		t.Errorf("%s of an ended process survived the sweep", deadDir)
	}
	for _, d := range []string{liveDir, otherDir} {
		if _, err := os.Stat(d); err != nil {
			t.Errorf("sweep removed %s: %v", d, err)
		}
	}
}

// TestAgentidBinary builds the real command and runs its help, which every
// agentid command has by design.
func TestAgentidBinary(t *testing.T) {
	if testing.Short() {
		t.Skip("builds cmd/agentid")
	}
	// The command is written in parallel with this helper; until its first
	// file lands there is nothing to build.
	if main, _ := filepath.Glob(filepath.Join(Root(t), "cmd", "agentid", "*.go")); len(main) == 0 {
		t.Skip("cmd/agentid has no Go files yet")
	}
	bin := AgentidBinary(t)
	if again := AgentidBinary(t); again != bin {
		t.Errorf("second call returned %s, want the cached %s", again, bin)
	}
	out, err := exec.Command(bin, "--help").CombinedOutput()
	if err != nil {
		t.Fatalf("agentid --help: %v\n%s", err, out)
	}
}
