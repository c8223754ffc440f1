//go:build linux && (amd64 || arm64)

package approve

import (
	"context"
	"fmt"
	"io"
	"os"
	"syscall"
	"testing"
	"time"
	"unsafe"
)

// openPTY returns the master side of a new pseudo-terminal and the path of
// its slave, so the terminal approver can be tested on a real tty (line
// discipline, input flush, read deadlines) without a controlling terminal.
func openPTY(t *testing.T) (*os.File, string) {
	t.Helper()
	m, err := os.OpenFile("/dev/ptmx", os.O_RDWR, 0)
	if err != nil {
		t.Skipf("no pseudo-terminals here: %v", err)
	}
	t.Cleanup(func() { m.Close() })
	rc, err := m.SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	var unlock int32
	var n uint32
	var errno syscall.Errno
	rc.Control(func(fd uintptr) {
		if _, _, errno = syscall.Syscall(syscall.SYS_IOCTL, fd, syscall.TIOCSPTLCK, uintptr(unsafe.Pointer(&unlock))); errno != 0 {
			return
		}
		_, _, errno = syscall.Syscall(syscall.SYS_IOCTL, fd, syscall.TIOCGPTN, uintptr(unsafe.Pointer(&n)))
	})
	if errno != 0 {
		t.Fatalf("pty ioctl: %v", errno)
	}
	return m, fmt.Sprintf("/dev/pts/%d", n)
}

func newPTYTerminal(t *testing.T, timeout time.Duration) (Approver, *os.File, *screen) {
	t.Helper()
	master, slave := openPTY(t)
	a, err := Terminal(TerminalOptions{Path: slave, Timeout: timeout})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { a.(io.Closer).Close() })
	scr := newScreen()
	go io.Copy(scr, master)
	return a, master, scr
}

func TestTerminalOnARealTTYApproves(t *testing.T) {
	a, master, scr := newPTYTerminal(t, 5*time.Second)
	ch := approveAsync(a, context.Background(), sampleReq)
	scr.waitFor(t, "[y/N] ", 1)
	io.WriteString(master, "y\n")
	if r := await(t, ch); r.a != Approved || r.err != nil {
		t.Fatalf("got %v, %v", r.a, r.err)
	}
}

func TestTerminalOnARealTTYDiscardsTypeahead(t *testing.T) {
	a, master, scr := newPTYTerminal(t, 5*time.Second)
	// Keys pressed before the question exists, a full line and a partial
	// one, must not answer it.
	io.WriteString(master, "y\nye")
	time.Sleep(50 * time.Millisecond) // let the line discipline queue it
	ch := approveAsync(a, context.Background(), sampleReq)
	scr.waitFor(t, "[y/N] ", 1)
	io.WriteString(master, "n\n")
	if r := await(t, ch); r.a != Denied || r.err != nil {
		t.Fatalf("got %v, %v; type-ahead answered the prompt", r.a, r.err)
	}
}

func TestTerminalOnARealTTYRecoversAfterATimeout(t *testing.T) {
	a, master, scr := newPTYTerminal(t, 100*time.Millisecond)
	if r := await(t, approveAsync(a, context.Background(), sampleReq)); r.a != TimedOut {
		t.Fatalf("first prompt: %v, %v", r.a, r.err)
	}
	a.(*terminal).timeout = 5 * time.Second
	ch := approveAsync(a, context.Background(), sampleReq)
	scr.waitFor(t, "[y/N] ", 2)
	io.WriteString(master, "yes\n")
	if r := await(t, ch); r.a != Approved || r.err != nil {
		t.Fatalf("second prompt: %v, %v", r.a, r.err)
	}
}
