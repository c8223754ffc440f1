//go:build !linux

package policy

// protectedNoSymlinks reports whether resolving p provably meets no symlink.
// Without openat2 there is no single call that says so: every path is
// resolved component by component.
func protectedNoSymlinks(p string) bool { return false }
