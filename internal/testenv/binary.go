package testenv

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
)

// binDirPrefix names the temporary directories that hold built binaries.
// The process id in the name lets a later process tell which directories
// belong to test processes that have exited.
const binDirPrefix = "agentid-testbin-"

var agentid struct {
	once sync.Once
	path string
	err  error
}

// AgentidBinary builds ./cmd/agentid once per test process and returns the
// path of the binary, for end-to-end tests that run it as a user would. A
// failed build fails every test that asks for the binary.
//
// The binary lives in a temporary directory that outlives individual tests
// (t.TempDir would vanish with the first test that asked). A test process
// cannot remove it on exit without a TestMain in every caller, so instead each
// build sweeps away the directories left by test processes that have ended.
func AgentidBinary(t testing.TB) string {
	t.Helper()
	root := Root(t)
	agentid.once.Do(func() {
		agentid.path, agentid.err = buildBinary(root, "./cmd/agentid", "agentid")
	})
	if agentid.err != nil {
		t.Fatalf("testenv: building agentid: %v", agentid.err)
	}
	return agentid.path
}

func buildBinary(root, pkg, name string) (string, error) {
	sweepBinDirs(os.TempDir())
	gobin, err := exec.LookPath("go")
	if err != nil {
		return "", err
	}
	dir, err := os.MkdirTemp("", binDirPrefix+strconv.Itoa(os.Getpid())+"-")
	if err != nil {
		return "", err
	}
	out := filepath.Join(dir, name)
	cmd := exec.Command(gobin, "build", "-o", out, pkg)
	cmd.Dir = root
	if output, err := cmd.CombinedOutput(); err != nil {
		os.RemoveAll(dir)
		return "", fmt.Errorf("go build %s: %v\n%s", pkg, err, output)
	}
	return out, nil
}

// sweepBinDirs removes binary directories under tmp whose owning process no
// longer exists. Directories of live processes, including test processes of
// other packages running in parallel, are left alone.
func sweepBinDirs(tmp string) {
	entries, err := os.ReadDir(tmp)
	if err != nil {
		return
	}
	for _, e := range entries {
		pid, ok := binDirPID(e.Name())
		if !ok || !e.IsDir() || pid == os.Getpid() || processAlive(pid) {
			continue
		}
		os.RemoveAll(filepath.Join(tmp, e.Name()))
	}
}

// binDirPID extracts the process id from a name made by buildBinary.
func binDirPID(name string) (int, bool) {
	rest, ok := strings.CutPrefix(name, binDirPrefix)
	if !ok {
		return 0, false
	}
	digits, _, ok := strings.Cut(rest, "-")
	if !ok {
		return 0, false
	}
	pid, err := strconv.Atoi(digits)
	if err != nil || pid <= 0 {
		return 0, false
	}
	return pid, true
}

// processAlive reports whether a process with the given id exists. Signal 0
// checks existence without delivering anything; EPERM means the process
// exists but belongs to someone else, which also counts as alive.
func processAlive(pid int) bool {
	err := syscall.Kill(pid, 0)
	return err == nil || err == syscall.EPERM
}
