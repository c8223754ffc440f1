package policy

import (
	"errors"
	"os"
	"os/user"
	"path/filepath"
	"strings"
)

// PathResolver resolves the symbolic links of a path-like argument the way
// the MCP server's host will when the tool opens it, so that a link into a
// protected directory is caught (check 3 of protected paths). It is the only
// way the engine touches a file system.
type PathResolver interface {
	// ResolvePath returns the path the absolute path raw leads to once its
	// symlinks are resolved; clean is filepath.Clean(raw). ok is false when
	// that cannot be determined (a component cannot be examined, a symlink
	// loop): the engine then refuses the call.
	ResolvePath(raw, clean string) (resolved string, ok bool)
	// HomeDir returns the home directory of the named user, for "~user"
	// in arguments; found is false for an unknown user.
	HomeDir(user string) (home string, found bool)
}

// HostPaths resolves paths on this host's file system: right for a proxy
// that runs beside the MCP server it protects. A server deciding for agents
// on other hosts must not use it (it would examine its own disk); it leaves
// EngineOptions.Paths nil, which checks protected paths lexically only.
func HostPaths() PathResolver { return hostPaths{} }

type hostPaths struct{}

// HomeDir looks the user up in this host's user database.
func (hostPaths) HomeDir(name string) (string, bool) {
	if name == "" {
		return "", false
	}
	u, err := user.Lookup(name)
	if err != nil || u.HomeDir == "" {
		return "", false
	}
	return filepath.Clean(u.HomeDir), true
}

// ResolvePath: when a prefix of the path exists, its symlinks are resolved
// and the rest is appended, so a path that does not exist yet (a file about
// to be written) can still lead into a protected directory through a linked
// parent.
//
// The common case, a path without any symlink, is settled by one system call
// where the platform has one (protectedNoSymlinks, openat2 on Linux); the
// rest is walked one component at a time.
func (hostPaths) ResolvePath(raw, clean string) (string, bool) {
	if !protectedHasDotDot(raw) && protectedNoSymlinks(clean) {
		return clean, true
	}
	return protectedWalk(raw)
}

// protectedHasDotDot reports whether the slash-separated path p has a ".."
// component. Without one, p and its cleaned form name the same file.
func protectedHasDotDot(p string) bool {
	for i := 0; ; {
		j := strings.Index(p[i:], "..")
		if j < 0 {
			return false
		}
		j += i
		if (j == 0 || p[j-1] == '/') && (j+2 == len(p) || p[j+2] == '/') {
			return true
		}
		i = j + 1
	}
}

// protectedMaxLinks is the number of symlinks one resolution may follow, as
// Linux's MAXSYMLINKS; a loop fails the resolution.
const protectedMaxLinks = 40

// protectedWalk resolves the absolute path p one component at a time, the
// way the kernel does: a symlink's target replaces it (a relative target is
// read from the link's directory) and ".." goes to the parent of the
// resolved directory, not of the name as written. Two cases go beyond what
// the kernel would open, because a tool may create the file or clean the
// path itself first:
//
//   - a component that does not exist is kept as written, and the
//     components after it are taken lexically until a ".." comes back to an
//     existing directory ("/a/new/../link/x" still follows link);
//   - a dangling symlink is followed to where its target would be created.
//
// ok is false when a component cannot be examined (permissions, a file
// used as a directory, a symlink loop).
func protectedWalk(p string) (string, bool) {
	resolved := "/"
	missingFrom := -1 // len(resolved) before the first missing component, or -1
	links := 0
	for rest := p; rest != ""; {
		var part string
		part, rest, _ = strings.Cut(rest, "/")
		switch part {
		case "", ".":
			continue
		case "..":
			resolved = filepath.Dir(resolved)
			if missingFrom >= 0 && len(resolved) <= missingFrom {
				missingFrom = -1
			}
			continue
		}
		next := resolved + "/" + part
		if resolved == "/" {
			next = "/" + part
		}
		if missingFrom >= 0 {
			resolved = next
			continue
		}
		fi, err := os.Lstat(next)
		if err != nil {
			if !errors.Is(err, os.ErrNotExist) {
				return "", false
			}
			missingFrom = len(resolved)
			resolved = next
			continue
		}
		if fi.Mode()&os.ModeSymlink == 0 {
			resolved = next
			continue
		}
		if links++; links > protectedMaxLinks {
			return "", false
		}
		target, err := os.Readlink(next)
		if err != nil || target == "" {
			return "", false
		}
		if target[0] == '/' {
			resolved = "/"
		}
		if rest != "" {
			target += "/" + rest
		}
		rest = target
	}
	return resolved, true
}
