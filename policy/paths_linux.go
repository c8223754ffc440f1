//go:build linux

package policy

import (
	"sync/atomic"

	"golang.org/x/sys/unix"
)

// protectedOpenat2Off is set once openat2 turns out to be unavailable (a
// kernel older than 5.6, or a seccomp filter that denies it); every
// resolution then takes the component walk.
var protectedOpenat2Off atomic.Bool

// protectedNoSymlinks reports whether resolving the clean absolute path p
// provably meets no symlink, in which case p is its own resolution. It asks
// the kernel to open p with O_PATH (no access to the file is needed or
// gained, and no device or FIFO is opened) while refusing to follow any
// symlink:
//
//   - success: no component, the last included, is a symlink;
//   - ENOENT: every component before the missing one was traversed and is
//     not a symlink (a symlink, dangling or not, fails with ELOOP as soon as
//     the walk reaches it), and what follows the missing one does not exist;
//     the longest existing prefix therefore resolves to itself;
//   - anything else (ELOOP for a symlink, ENOTDIR, EACCES, ...): false, and
//     the caller resolves the path component by component.
//
// p must not contain "..": after a missing component, the kernel stops, but
// a tool that cleans the path first would not.
func protectedNoSymlinks(p string) bool {
	if protectedOpenat2Off.Load() {
		return false
	}
	how := unix.OpenHow{
		Flags:   unix.O_PATH | unix.O_CLOEXEC,
		Resolve: unix.RESOLVE_NO_SYMLINKS | unix.RESOLVE_NO_MAGICLINKS,
	}
	fd, err := unix.Openat2(unix.AT_FDCWD, p, &how)
	switch err {
	case nil:
		unix.Close(fd)
		return true
	case unix.ENOENT:
		return true
	case unix.ENOSYS, unix.EPERM:
		protectedOpenat2Off.Store(true)
	}
	return false
}
