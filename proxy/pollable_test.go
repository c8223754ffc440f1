package proxy

import (
	"bufio"
	"context"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

func nonblocking(t *testing.T, f *os.File) bool {
	t.Helper()
	flags, _, errno := syscall.Syscall(syscall.SYS_FCNTL, f.Fd(), syscall.F_GETFL, 0)
	if errno != 0 {
		t.Fatal(errno)
	}
	return flags&syscall.O_NONBLOCK != 0
}

func TestPollableReopensOnlyPipes(t *testing.T) {
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	defer w.Close()
	// os.Pipe's descriptors are non-blocking; inherited standard input is
	// not. Make this one look inherited.
	if err := syscall.SetNonblock(int(r.Fd()), false); err != nil {
		t.Fatal(err)
	}
	p := pollable(r, os.O_RDONLY)
	if p == nil {
		t.Fatal("a pipe was not reopened")
	}
	defer p.Close()
	if nonblocking(t, r) {
		t.Error("reopening set O_NONBLOCK on the original descriptor, which other processes may share")
	}
	if _, err := w.Write([]byte("x\n")); err != nil {
		t.Fatal(err)
	}
	if line, err := bufio.NewReader(p).ReadString('\n'); err != nil || line != "x\n" {
		t.Errorf("read through the reopened pipe: %q, %v", line, err)
	}

	f, err := os.Create(filepath.Join(t.TempDir(), "file"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if p := pollable(f, os.O_RDONLY); p != nil {
		p.Close()
		t.Error("a regular file was reopened")
	}
}

// Run relays through its client's pipes as given, inherited (blocking)
// descriptors, and leaves their flags as they were.
func TestRunRelaysThroughInheritedPipes(t *testing.T) {
	inR, inW, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	outR, outW, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range []*os.File{inR, inW, outR, outW} {
		defer f.Close()
	}
	for _, f := range []*os.File{inR, outW} {
		if err := syscall.SetNonblock(int(f.Fd()), false); err != nil {
			t.Fatal(err)
		}
	}
	px := New(Config{Core: mustCore(t, allowAllPolicy)})
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	done := make(chan error, 1)
	go func() {
		_, err := px.Run(ctx, Command{Path: "/bin/sh", Args: []string{"-c", `read l; echo '{"jsonrpc":"2.0","id":1,"result":{}}'; read l`},
			ShutdownGrace: time.Second}, inR, outW, nil)
		done <- err
	}()
	if _, err := inW.Write([]byte(`{"jsonrpc":"2.0","id":1,"method":"ping"}` + "\n")); err != nil {
		t.Fatal(err)
	}
	line, err := bufio.NewReader(outR).ReadString('\n')
	if err != nil || !strings.Contains(line, `"result"`) {
		t.Fatalf("client received %q, %v", line, err)
	}
	inW.Close()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if nonblocking(t, inR) || nonblocking(t, outW) {
		t.Error("Run changed the flags of the descriptors it was given")
	}
}
