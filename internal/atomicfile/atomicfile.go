// Package atomicfile writes files so that a reader, or the next run after a
// crash, sees either the old content or the whole new content, never a part
// of it: the data goes to a temporary file in the target's directory, is
// synced, and is then renamed over (or linked to) the target, and the
// directory is synced.
//
// It is the one file writer of the project: signed policies, signed
// AgentCards, generated keys and JWKS documents are all written with Write.
package atomicfile

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
)

// Options adjusts Write. The zero value replaces an existing file and gives
// the file the permission bits perm.
type Options struct {
	// NoReplace makes Write fail, with an error that wraps fs.ErrExist,
	// when path already exists (a dangling symbolic link included) instead
	// of replacing it. The existence check and the creation are one step
	// (a hard link from the temporary file), so a file that appears
	// meanwhile is never overwritten either.
	NoReplace bool
	// KeepMode gives the new content the permission bits of the file it
	// replaces; perm then applies only when there is no file yet.
	KeepMode bool
	// DirPerm, when not zero, creates missing parent directories with this
	// mode. Without it a missing directory is an error.
	DirPerm fs.FileMode
}

// Write writes data to path atomically, with the permission bits perm
// exactly (the umask does not apply).
//
// A symbolic link to a file stays a link: the file it points to is
// replaced. (A dangling link is replaced by the new file.)
// A path that names something other than a regular file or a directory (a
// FIFO, a terminal, /dev/stdout) has no content to keep and is written in
// place, without changing its mode. A directory is an error.
//
// A failed Write leaves the old file as it was and removes its temporary
// file. Once the new content is in place, a failure to sync the directory
// is not reported: the write itself has happened.
func Write(path string, data []byte, perm fs.FileMode, o Options) error {
	if o.DirPerm != 0 {
		if err := os.MkdirAll(filepath.Dir(path), o.DirPerm); err != nil {
			return err
		}
	}
	target, mode := path, perm
	fi, err := os.Stat(path) // follows links, /dev/stdout's included
	switch {
	case err == nil && o.NoReplace:
		return &fs.PathError{Op: "create", Path: path, Err: fs.ErrExist}
	case err == nil && fi.IsDir():
		return &fs.PathError{Op: "write", Path: path, Err: errors.New("is a directory")}
	case err == nil && !fi.Mode().IsRegular():
		return writeInPlace(path, data)
	case err == nil:
		if o.KeepMode {
			mode = fi.Mode().Perm()
		}
		if target, err = filepath.EvalSymlinks(path); err != nil {
			return err
		}
	case !errors.Is(err, fs.ErrNotExist):
		return err
	}
	return replace(target, data, mode, o.NoReplace)
}

// link is os.Link; tests replace it to exercise the fallback for file
// systems without hard links.
var link = os.Link

// rename is os.Rename; tests replace it to make the last step fail.
var rename = os.Rename

func replace(path string, data []byte, mode fs.FileMode, noReplace bool) (err error) {
	dir := filepath.Dir(path)
	tmp, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return err
	}
	defer func() {
		tmp.Close()
		os.Remove(tmp.Name()) // after a link or a rename: the temporary name only
	}()
	if err := tmp.Chmod(mode); err != nil {
		return err
	}
	if _, err := tmp.Write(data); err != nil {
		return err
	}
	if err := tmp.Sync(); err != nil {
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	if noReplace {
		err = link(tmp.Name(), path)
		if err != nil && !errors.Is(err, fs.ErrExist) {
			// No hard links here (some FUSE and FAT file systems):
			// exclusive creation still never overwrites, but a crash can
			// leave a partial file.
			err = createExclusive(path, data, mode)
		}
		if errors.Is(err, fs.ErrExist) {
			return &fs.PathError{Op: "create", Path: path, Err: fs.ErrExist}
		}
	} else {
		err = rename(tmp.Name(), path)
	}
	if err != nil {
		return err
	}
	syncDir(dir)
	return nil
}

// createExclusive creates path, which must not exist, with data. A file it
// created but could not fill is removed again.
func createExclusive(path string, data []byte, mode fs.FileMode) (err error) {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, mode)
	if err != nil {
		return err
	}
	defer func() {
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			os.Remove(path)
		}
	}()
	if err := f.Chmod(mode); err != nil {
		return err
	}
	if _, err := f.Write(data); err != nil {
		return err
	}
	return f.Sync()
}

func writeInPlace(path string, data []byte) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_TRUNC, 0)
	if err != nil {
		return err
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// syncDir persists a rename or link in dir. Some file systems refuse to
// sync a directory; the entry is then as durable as they make it.
func syncDir(dir string) {
	if d, err := os.Open(dir); err == nil {
		_ = d.Sync()
		d.Close()
	}
}
