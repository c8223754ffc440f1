package proxy

import (
	"io"
	"os"
	"strconv"
	"syscall"
)

// pollable returns f reopened through /proc/self/fd when f is a pipe, so
// that the proxy's reads and writes on it wait in Go's network poller
// instead of blocking an operating-system thread.
//
// The standard input and output a process inherits are blocking
// descriptors, and Go leaves them so: O_NONBLOCK belongs to the open file
// description, which other processes may share (a shell's terminal), so
// setting it on descriptor 0 could break them. Opening /proc/self/fd/N for a
// pipe creates a new description of the same pipe, whose flags are this
// process's alone. A blocked read of a blocking descriptor holds a thread in
// the kernel, and the runtime's monitor then keeps waking every 20 µs to hand
// its processor to another thread, which under load costs about a tenth of
// the proxy's CPU.
//
// It returns nil when f is not a pipe or cannot be reopened (no /proc):
// the caller then keeps f, which works the same, only dearer.
func pollable(f *os.File, flag int) io.ReadWriteCloser {
	fi, err := f.Stat()
	if err != nil || fi.Mode()&os.ModeNamedPipe == 0 {
		return nil
	}
	p, err := os.OpenFile("/proc/self/fd/"+strconv.Itoa(int(f.Fd())), flag|syscall.O_CLOEXEC, 0)
	if err != nil {
		return nil
	}
	// The reopened file must be the same pipe (not, say, a /proc that
	// belongs to another process namespace).
	if pi, err := p.Stat(); err != nil || !os.SameFile(fi, pi) {
		p.Close()
		return nil
	}
	return p
}
