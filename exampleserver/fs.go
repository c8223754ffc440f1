package exampleserver

import (
	"errors"
	"path"
	"sort"
	"strings"
)

// home is the demo user's home directory; "~" in a path means it, and
// relative paths are taken from the demo project inside it.
const (
	home       = "/home/demo"
	projectDir = home + "/project"
)

// maxFSBytes bounds the total size of file contents, so that a client
// writing in a loop exhausts the demo's disk rather than the process.
const maxFSBytes = 64 << 20

// seed is the content every session starts with. The secrets are the
// well-known documentation examples, present so that agentid's data loss
// prevention and protected paths have something to catch.
var seed = map[string]string{
	projectDir + "/README.md": "# Demo project\n\n" +
		"This project lives only in the memory of agentid's example MCP server.\n" +
		"Ask for config.env to see secrets redacted, or for ~/.ssh/id_rsa to see a protected path blocked.\n",
	projectDir + "/config.env": "APP_ENV=development\n" +
		"AWS_ACCESS_KEY_ID=AKIAIOSFODNN7EXAMPLE\n" +
		"password=hunter2\n",
	home + "/.ssh/id_rsa": "-----BEGIN OPENSSH PRIVATE KEY-----\n" +
		"ZmFrZSBrZXkgZm9yIHRoZSBhZ2VudGlkIGRlbW87IG5vdCBhIHJlYWwga2V5\n" +
		"-----END OPENSSH PRIVATE KEY-----\n",
}

var (
	errNotExist = errors.New("no such file or directory")
	errIsDir    = errors.New("is a directory")
	errNotDir   = errors.New("not a directory")
	errNoSpace  = errors.New("no space left on device")
	errRoot     = errors.New("cannot change the root directory")
)

// memFS is a tree of files in memory, keyed by clean absolute slash paths.
// Directories are recorded explicitly so that empty ones can be listed.
type memFS struct {
	files map[string]string
	dirs  map[string]bool
	size  int
}

func newFS() *memFS {
	fs := &memFS{files: map[string]string{}, dirs: map[string]bool{"/": true}}
	for p, content := range seed {
		if err := fs.write(p, content); err != nil {
			panic("exampleserver: bad seed " + p + ": " + err.Error())
		}
	}
	return fs
}

// resolve turns a client's path into a clean absolute path. path.Clean
// removes every ".." that would climb above "/", so no path escapes the tree.
func resolve(p string) string {
	switch {
	case p == "~":
		p = home
	case strings.HasPrefix(p, "~/"):
		p = home + p[1:]
	case !strings.HasPrefix(p, "/"):
		p = projectDir + "/" + p
	}
	return path.Clean(p)
}

func (fs *memFS) read(p string) (string, error) {
	p = resolve(p)
	if fs.dirs[p] {
		return "", errIsDir
	}
	content, ok := fs.files[p]
	if !ok {
		return "", errNotExist
	}
	return content, nil
}

// entry is one name in a directory listing.
type entry struct {
	name  string
	isDir bool
}

func (fs *memFS) list(p string) ([]entry, error) {
	p = resolve(p)
	if _, ok := fs.files[p]; ok {
		return nil, errNotDir
	}
	if !fs.dirs[p] {
		return nil, errNotExist
	}
	var entries []entry
	for f := range fs.files {
		if path.Dir(f) == p {
			entries = append(entries, entry{name: path.Base(f)})
		}
	}
	for d := range fs.dirs {
		if d != "/" && path.Dir(d) == p {
			entries = append(entries, entry{name: path.Base(d), isDir: true})
		}
	}
	sort.Slice(entries, func(i, j int) bool { return entries[i].name < entries[j].name })
	return entries, nil
}

// write creates or replaces a file, creating missing parent directories as
// `mkdir -p` would.
func (fs *memFS) write(p, content string) error {
	p = resolve(p)
	if p == "/" {
		return errRoot
	}
	if fs.dirs[p] {
		return errIsDir
	}
	old, exists := fs.files[p]
	if fs.size-len(old)+len(content) > maxFSBytes {
		return errNoSpace
	}
	var parents []string
	for d := path.Dir(p); !fs.dirs[d]; d = path.Dir(d) {
		if _, ok := fs.files[d]; ok {
			return errNotDir
		}
		parents = append(parents, d)
	}
	for _, d := range parents {
		fs.dirs[d] = true
	}
	if exists {
		fs.size -= len(old)
	}
	fs.files[p] = content
	fs.size += len(content)
	return nil
}

// remove deletes a file. Directories are refused: the tool is delete_file.
func (fs *memFS) remove(p string) error {
	p = resolve(p)
	if fs.dirs[p] {
		return errIsDir
	}
	content, ok := fs.files[p]
	if !ok {
		return errNotExist
	}
	delete(fs.files, p)
	fs.size -= len(content)
	return nil
}
