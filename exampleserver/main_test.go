package exampleserver

import (
	"os"
	"os/exec"
	"strings"
	"testing"
)

// TestMainProcess runs Main in a child process on real stdio: the test
// binary re-executes itself with an environment variable that makes this
// test call Main instead.
func TestMainProcess(t *testing.T) {
	if os.Getenv("EXAMPLESERVER_RUN_MAIN") == "1" {
		os.Exit(Main())
	}
	cmd := exec.Command(os.Args[0], "-test.run=^TestMainProcess$")
	cmd.Env = append(os.Environ(), "EXAMPLESERVER_RUN_MAIN=1")
	cmd.Stdin = strings.NewReader(`{"jsonrpc":"2.0","id":1,"method":"ping"}` + "\n")
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("Main exited with %v", err)
	}
	if got, want := string(out), `{"jsonrpc":"2.0","id":1,"result":{}}`+"\n"; got != want {
		t.Errorf("stdout %q, want %q", got, want)
	}
}
