//go:build linux

package policy

import (
	"os"
	"path/filepath"
	"testing"

	"golang.org/x/sys/unix"
)

// TestProtectedNoSymlinksOpenat2 checks on a real tree the kernel behaviour
// protectedNoSymlinks relies on: with RESOLVE_NO_SYMLINKS, openat2 fails
// with ELOOP on reaching any symlink (dangling, last component, or in the
// middle of a path whose tail does not exist) before it can fail with
// ENOENT, so success and ENOENT both mean "no symlink on the way".
func TestProtectedNoSymlinksOpenat2(t *testing.T) {
	if protectedNoSymlinks("/"); protectedOpenat2Off.Load() {
		t.Skip("openat2 is not available")
	}
	root := t.TempDir()
	if r, err := filepath.EvalSymlinks(root); err != nil || r != root {
		t.Skipf("temp dir %s is reached through a symlink", root)
	}
	if err := os.MkdirAll(filepath.Join(root, "d", "e"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(root, "d", "f"), nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := unix.Mkfifo(filepath.Join(root, "d", "fifo"), 0o600); err != nil {
		t.Fatal(err)
	}
	symlink(t, filepath.Join(root, "d"), filepath.Join(root, "ld"))
	symlink(t, filepath.Join(root, "nowhere", "x"), filepath.Join(root, "dangling"))
	symlink(t, "e", filepath.Join(root, "d", "le"))
	for rel, want := range map[string]bool{
		"":                  true,
		"d":                 true,
		"d/e":               true,
		"d/f":               true,
		"d/fifo":            true, // O_PATH does not open (or block on) a FIFO
		"d/new":             true, // ENOENT on the last component
		"d/new/deeper/file": true, // ENOENT in the middle
		"nowhere/x":         true,
		"ld":                false, // symlink as the last component
		"ld/e":              false, // symlink in the middle
		"ld/new/deeper":     false, // symlink in the middle, tail missing
		"dangling":          false, // dangling symlink
		"dangling/x":        false, // dangling symlink in the middle
		"d/le":              false, // relative symlink
		"d/le/new":          false,
		"d/f/x":             false, // ENOTDIR
	} {
		if got := protectedNoSymlinks(filepath.Join(root, rel)); got != want {
			t.Errorf("%s: no symlinks = %v, want %v", rel, got, want)
		}
	}
	for _, p := range []string{"/proc/self", "/proc/self/root", "/proc/self/fd/0", "/proc/1/root/etc"} {
		if protectedNoSymlinks(p) {
			t.Errorf("%s: a proc (magic) link passed as no symlink", p)
		}
	}
}
