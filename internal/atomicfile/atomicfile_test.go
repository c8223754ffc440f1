package atomicfile

import (
	"errors"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"syscall"
	"testing"
)

// only reports the names in dir; a test that expects one file there sees
// any temporary file left behind.
func only(t *testing.T, dir string, want ...string) {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, e := range entries {
		got = append(got, e.Name())
	}
	if len(got) != len(want) {
		t.Fatalf("directory holds %q, want %q (temporary files left behind?)", got, want)
	}
	for i := range got {
		if got[i] != want[i] {
			t.Fatalf("directory holds %q, want %q", got, want)
		}
	}
}

func content(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func perm(t *testing.T, path string) fs.FileMode {
	t.Helper()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	return fi.Mode().Perm()
}

func TestWriteGivesTheFileExactlyPermWhateverTheUmask(t *testing.T) {
	old := syscall.Umask(0o077)
	defer syscall.Umask(old)
	for _, tt := range []struct {
		name     string
		existing fs.FileMode // 0: no file yet
		perm     fs.FileMode
	}{
		{"new secret", 0, 0o600},
		{"new public file", 0, 0o644},
		{"new group-readable file", 0, 0o640},
		{"replaced file gets perm, not its old mode", 0o600, 0o644},
		{"replaced file loses group and other bits", 0o666, 0o600},
	} {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "f")
			if tt.existing != 0 {
				os.WriteFile(path, []byte("old"), tt.existing)
				os.Chmod(path, tt.existing)
			}
			if err := Write(path, []byte("new"), tt.perm, Options{}); err != nil {
				t.Fatal(err)
			}
			if got := perm(t, path); got != tt.perm {
				t.Fatalf("mode %#o, want %#o", got, tt.perm)
			}
			if content(t, path) != "new" {
				t.Fatal("content not written")
			}
		})
	}
}

func TestWriteReplacesTheWholeFileAndLeavesNoTemporaryFile(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "card.json")
	for _, c := range []string{"first version, longer", "second"} {
		if err := Write(path, []byte(c), 0o644, Options{}); err != nil {
			t.Fatal(err)
		}
		if got := content(t, path); got != c {
			t.Fatalf("got %q, want %q", got, c)
		}
	}
	only(t, dir, "card.json")
}

func TestKeepModeKeepsTheReplacedFilesModeAndAppliesPermToANewFile(t *testing.T) {
	dir := t.TempDir()
	existing := filepath.Join(dir, "policy.yaml")
	os.WriteFile(existing, []byte("old"), 0o600)
	os.Chmod(existing, 0o640)
	if err := Write(existing, []byte("signed"), 0o644, Options{KeepMode: true}); err != nil {
		t.Fatal(err)
	}
	if got := perm(t, existing); got != 0o640 {
		t.Fatalf("replaced file has mode %#o, want its old 0640", got)
	}
	fresh := filepath.Join(dir, "new.yaml")
	if err := Write(fresh, []byte("signed"), 0o644, Options{KeepMode: true}); err != nil {
		t.Fatal(err)
	}
	if got := perm(t, fresh); got != 0o644 {
		t.Fatalf("new file has mode %#o, want 0644", got)
	}
}

func TestNoReplaceRefusesEveryExistingPathAndLeavesItAlone(t *testing.T) {
	for _, tt := range []struct {
		name  string
		setup func(t *testing.T, dir, path string)
	}{
		{"regular file", func(t *testing.T, dir, path string) { os.WriteFile(path, []byte("old"), 0o600) }},
		{"symlink to a file", func(t *testing.T, dir, path string) {
			os.WriteFile(filepath.Join(dir, "target"), []byte("old"), 0o600)
			os.Symlink("target", path)
		}},
		{"dangling symlink", func(t *testing.T, dir, path string) { os.Symlink("nowhere", path) }},
		{"directory", func(t *testing.T, dir, path string) { os.Mkdir(path, 0o700) }},
	} {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			path := filepath.Join(dir, "key.pem")
			tt.setup(t, dir, path)
			before, _ := os.Lstat(path)
			err := Write(path, []byte("secret"), 0o600, Options{NoReplace: true})
			if !errors.Is(err, fs.ErrExist) {
				t.Fatalf("err = %v, want one wrapping fs.ErrExist", err)
			}
			after, _ := os.Lstat(path)
			if !os.SameFile(before, after) || before.Mode() != after.Mode() {
				t.Fatal("the existing path was replaced")
			}
			if b, err := os.ReadFile(path); err == nil && string(b) != "old" {
				t.Fatalf("existing content changed to %q", b)
			}
		})
	}
}

func TestNoReplaceCreatesANewFile(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "key.pem")
	if err := Write(path, []byte("secret"), 0o600, Options{NoReplace: true}); err != nil {
		t.Fatal(err)
	}
	if content(t, path) != "secret" || perm(t, path) != 0o600 {
		t.Fatal("not written with mode 0600")
	}
	only(t, dir, "key.pem")
}

func TestNoReplaceWorksWithoutHardLinks(t *testing.T) {
	link = func(string, string) error { return &os.LinkError{Op: "link", Err: syscall.EPERM} }
	defer func() { link = os.Link }()
	dir := t.TempDir()
	path := filepath.Join(dir, "key.pem")
	if err := Write(path, []byte("secret"), 0o600, Options{NoReplace: true}); err != nil {
		t.Fatal(err)
	}
	if content(t, path) != "secret" || perm(t, path) != 0o600 {
		t.Fatal("the fallback did not write the file with mode 0600")
	}
	only(t, dir, "key.pem")
	// The fallback is exclusive too (a file that appeared after the check).
	if err := replace(path, []byte("other"), 0o600, true); !errors.Is(err, fs.ErrExist) {
		t.Fatalf("fallback overwrote an existing file: %v", err)
	}
	if content(t, path) != "secret" {
		t.Fatal("existing content changed")
	}
}

func TestAFailedWriteLeavesTheOldFileIntact(t *testing.T) {
	rename = func(string, string) error { return &os.LinkError{Op: "rename", Err: syscall.EIO} }
	defer func() { rename = os.Rename }()
	dir := t.TempDir()
	path := filepath.Join(dir, "policy.yaml")
	os.WriteFile(path, []byte("old"), 0o600)
	os.Chmod(path, 0o640)
	if err := Write(path, []byte("new"), 0o644, Options{}); !errors.Is(err, syscall.EIO) {
		t.Fatalf("err = %v, want the rename's EIO", err)
	}
	if content(t, path) != "old" || perm(t, path) != 0o640 {
		t.Fatal("the old file changed")
	}
	only(t, dir, "policy.yaml")
}

func TestAMissingDirectoryIsAnErrorUnlessDirPermIsSet(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "a", "b", "card.json")
	if err := Write(path, []byte("x"), 0o644, Options{}); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("err = %v, want fs.ErrNotExist", err)
	}
	if err := Write(path, []byte("x"), 0o644, Options{DirPerm: 0o750}); err != nil {
		t.Fatal(err)
	}
	if got := perm(t, filepath.Join(dir, "a")); got != 0o750&^currentUmask() {
		t.Fatalf("directory mode %#o", got)
	}
}

func currentUmask() fs.FileMode {
	m := syscall.Umask(0)
	syscall.Umask(m)
	return fs.FileMode(m)
}

func TestASymlinkStaysALinkAndItsTargetIsReplaced(t *testing.T) {
	dir := t.TempDir()
	target := filepath.Join(dir, "real.yaml")
	os.WriteFile(target, []byte("old"), 0o600)
	os.Chmod(target, 0o640)
	path := filepath.Join(dir, "agent.yaml")
	os.Symlink("real.yaml", path)
	if err := Write(path, []byte("new"), 0o644, Options{KeepMode: true}); err != nil {
		t.Fatal(err)
	}
	if fi, _ := os.Lstat(path); fi.Mode()&fs.ModeSymlink == 0 {
		t.Fatal("the link was replaced by a file")
	}
	if content(t, target) != "new" || perm(t, target) != 0o640 {
		t.Fatal("the link's target was not replaced with its mode kept")
	}
	only(t, dir, "agent.yaml", "real.yaml")
}

func TestAFIFOIsWrittenInPlaceWithoutChangingItsMode(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "pipe")
	if err := syscall.Mkfifo(path, 0o620); err != nil {
		t.Skip("no FIFOs here:", err)
	}
	modeBefore := perm(t, path)
	got := make(chan string)
	go func() {
		f, err := os.Open(path)
		if err != nil {
			got <- err.Error()
			return
		}
		defer f.Close()
		b, _ := io.ReadAll(f)
		got <- string(b)
	}()
	if err := Write(path, []byte("jwks"), 0o644, Options{}); err != nil {
		t.Fatal(err)
	}
	if s := <-got; s != "jwks" {
		t.Fatalf("reader got %q", s)
	}
	if perm(t, path) != modeBefore {
		t.Fatal("the FIFO's mode changed")
	}
	only(t, dir, "pipe")
}

func TestADirectoryIsNotReplaced(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "out")
	os.Mkdir(path, 0o700)
	if err := Write(path, []byte("x"), 0o644, Options{}); err == nil {
		t.Fatal("a directory was written")
	}
	if fi, _ := os.Stat(path); !fi.IsDir() {
		t.Fatal("the directory was replaced")
	}
}
