package approve

import (
	"os"
	"syscall"
	"unsafe"
)

// tcflsh is the Linux TCFLSH ioctl request on the common architectures;
// the syscall package does not define it for all of them.
const tcflsh = 0x540b

// flushInput discards input the terminal has received but nobody has read,
// including a partly typed line, so that keys pressed before a question was
// shown cannot answer it.
func flushInput(f *os.File) {
	if !flushSupported {
		return
	}
	rc, err := f.SyscallConn()
	if err != nil {
		return
	}
	rc.Control(func(fd uintptr) {
		syscall.Syscall(syscall.SYS_IOCTL, fd, tcflsh, uintptr(syscall.TCIFLUSH))
	})
}

// isForeground reports whether this process's group is the terminal's
// foreground group. Reading from a terminal in the background stops the
// process with SIGTTIN, which would freeze the proxy. Errors count as
// foreground: the prompt then fails on its own if it must.
func isForeground(f *os.File) bool {
	rc, err := f.SyscallConn()
	if err != nil {
		return true
	}
	var pgrp int32
	var errno syscall.Errno
	rc.Control(func(fd uintptr) {
		_, _, errno = syscall.Syscall(syscall.SYS_IOCTL, fd, syscall.TIOCGPGRP, uintptr(unsafe.Pointer(&pgrp)))
	})
	if errno != 0 {
		return true
	}
	return int(pgrp) == syscall.Getpgrp()
}
