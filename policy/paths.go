package policy

import (
	"bytes"
	"fmt"
	"net/url"
	"path/filepath"
	"strings"

	"github.com/agentid/agentid/internal/strictjson"
)

// protectedSet is the compiled form of spec.protected_paths plus the paths
// the engine protects on its own (the policy file, the audit log).
//
// AIP §3.4.5 only says an argument "containing" a protected path is blocked.
// A tool argument is not always a clean path: it may be relative, use "~",
// traverse with "..", go through a symlink, or be a shell command that
// mentions the path. The matcher therefore looks at each string in the
// arguments several ways (DESIGN decision 5) and blocks when any of them hits:
//
//  1. substring: the expanded absolute protected path occurs anywhere in the
//     "~"/$HOME-expanded value ("cat ~/.ssh/id_rsa");
//  2. lexical: the value, and each shell-like token of it, cleaned and made
//     absolute against WorkDir, equals the protected path or lies under it
//     ("/tmp/../home/u/.ssh/x", "../.ssh/id_rsa");
//  3. symlink: for tokens that look like paths, the same test on the
//     symlink-resolved path when some prefix of it exists, so a link pointing
//     into ~/.ssh is caught;
//  4. component: entries without a slash (".env") match any path component
//     equal to them, wherever the file is.
//
// Matching is case-sensitive, as Linux paths are. It over-blocks rather than
// under-blocks: "/home/u/.sshkeys" contains "/home/u/.ssh" and is blocked.
type protectedSet struct {
	home    string // "" when unknown
	workDir string
	// paths resolves symlinks for check 3; nil skips it (lexical only).
	paths   PathResolver
	entries []protectedEntry
	// forms is every absolute form of every path entry, with the index of its
	// entry, flattened for the hot loop.
	forms []protectedForm
}

type protectedEntry struct {
	src       string // as written, reported in Decision.FailedRule
	component string // for slash-less entries: the path component to match
}

type protectedForm struct {
	path  string // clean absolute path
	entry int
}

// protectedSymlinkBudget bounds how many file-system lookups one decision may
// make, so a multi-megabyte argument full of path-like tokens cannot turn a
// policy check into a disk scan. A call that needs more is refused, like a
// path that cannot be resolved: a check that was not made must not pass.
const protectedSymlinkBudget = 256

// protectedUnchecked is the entry index reported for a path-like value that
// could not be checked (lookup budget spent, or resolution failed).
const protectedUnchecked = -1

func protectedCompile(entries []string, home, workDir string, paths PathResolver) (protectedSet, error) {
	ps := protectedSet{home: home, workDir: workDir, paths: paths}
	for _, src := range entries {
		if err := ps.add(src); err != nil {
			return protectedSet{}, err
		}
	}
	return ps, nil
}

func (ps *protectedSet) add(src string) error {
	p := strings.TrimSpace(src)
	switch p {
	case "", ".", "..":
		return fmt.Errorf("protected path %q names no file", src)
	}
	idx := len(ps.entries)
	if !strings.ContainsRune(p, '/') && !strings.HasPrefix(p, "~") && !strings.HasPrefix(p, "$HOME") && !strings.HasPrefix(p, "${HOME}") {
		ps.entries = append(ps.entries, protectedEntry{src: src, component: p})
		return nil
	}
	x, ok := ps.expandHome(p)
	if !ok {
		return fmt.Errorf("protected path %q: home directory unknown", src)
	}
	abs := ps.absolute(x)
	ps.entries = append(ps.entries, protectedEntry{src: src})
	ps.forms = append(ps.forms, protectedForm{path: abs, entry: idx})
	// A protected path reached through a symlink must be caught under its
	// real name too; resolve once now, when the file exists.
	if real, err := filepath.EvalSymlinks(abs); err == nil && real != abs {
		ps.forms = append(ps.forms, protectedForm{path: real, entry: idx})
	}
	return nil
}

func (ps *protectedSet) empty() bool { return len(ps.entries) == 0 }

// protectedIsSep reports the bytes that end a token in a command-like string.
// '/', '.', '~' and '$' are not separators: they are part of paths.
func protectedIsSep(c byte) bool {
	switch c {
	case ' ', '\t', '\n', '\r', '\v', '\f', '"', '\'', '`', ';', '|', '&', '<', '>', '(', ')', '=', ',', ':', '[', ']', '{', '}':
		return true
	}
	return false
}

// expandHome expands "~" and "~/" at the start of every token, and $HOME and
// ${HOME} anywhere; "~user" through the PathResolver's HomeDir when there
// is one (it is left alone otherwise). ok is false when s needs the home
// directory and it is unknown.
func (ps *protectedSet) expandHome(s string) (string, bool) {
	if !strings.ContainsAny(s, "~$") {
		return s, true
	}
	var b strings.Builder
	b.Grow(len(s) + 4*len(ps.home))
	ok := true
	for i := 0; i < len(s); {
		atTokenStart := i == 0 || protectedIsSep(s[i-1])
		switch {
		case s[i] == '~' && atTokenStart && (i+1 == len(s) || s[i+1] == '/' || protectedIsSep(s[i+1])):
			if ps.home == "" {
				ok = false
				b.WriteByte('~')
			} else {
				b.WriteString(ps.home)
			}
			i++
		case strings.HasPrefix(s[i:], "${HOME}"):
			if ps.home == "" {
				ok = false
				b.WriteString("${HOME}")
			} else {
				b.WriteString(ps.home)
			}
			i += len("${HOME}")
		case strings.HasPrefix(s[i:], "$HOME") && (i+5 == len(s) || !protectedIsNameByte(s[i+5])):
			if ps.home == "" {
				ok = false
				b.WriteString("$HOME")
			} else {
				b.WriteString(ps.home)
			}
			i += len("$HOME")
		case s[i] == '~' && atTokenStart && ps.paths != nil:
			end := i + 1
			for end < len(s) && s[end] != '/' && !protectedIsSep(s[end]) {
				end++
			}
			if home, found := ps.paths.HomeDir(s[i+1 : end]); found {
				b.WriteString(home)
			} else {
				b.WriteString(s[i:end])
			}
			i = end
		default:
			b.WriteByte(s[i])
			i++
		}
	}
	return b.String(), ok
}

// protectedFileURIs returns the paths of the file: URIs in s (RFC 8089:
// file:///p, file://localhost/p, file:/p, case-insensitive scheme),
// percent-decoded and joined with spaces, and whether there was any. A URI
// that does not decode is kept as written.
func protectedFileURIs(s string) (string, bool) {
	lower := strings.ToLower(s)
	if !strings.Contains(lower, "file:") {
		return "", false
	}
	var paths []string
	for i := 0; ; {
		j := strings.Index(lower[i:], "file:")
		if j < 0 {
			break
		}
		start := i + j + len("file:")
		end := start
		for end < len(s) && !protectedIsSep(s[end]) {
			end++
		}
		rest := s[start:end]
		switch {
		case strings.HasPrefix(rest, "//"):
			rest = rest[2:]
			if k := strings.IndexByte(rest, '/'); k >= 0 {
				rest = rest[k:] // the authority (localhost, or a host) goes
			} else {
				rest = ""
			}
		}
		if k := strings.IndexAny(rest, "?#"); k >= 0 {
			rest = rest[:k]
		}
		if p, err := url.PathUnescape(rest); err == nil {
			rest = p
		}
		if rest != "" {
			paths = append(paths, rest)
		}
		i = end
		if i >= len(s) {
			break
		}
	}
	return strings.Join(paths, " "), len(paths) > 0
}

func protectedIsNameByte(c byte) bool {
	return c == '_' || 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9'
}

// absolute cleans p and makes it absolute against the engine's WorkDir (not
// the process's current directory, which the engine must not depend on).
func (ps *protectedSet) absolute(p string) string {
	if filepath.IsAbs(p) {
		return filepath.Clean(p)
	}
	return filepath.Join(ps.workDir, p)
}

// protectedUnder reports whether p equals dir or lies inside it.
func protectedUnder(p, dir string) bool {
	if !strings.HasPrefix(p, dir) {
		return false
	}
	return len(p) == len(dir) || dir == "/" || p[len(dir)] == '/'
}

// matchForms checks a clean absolute path against the path entries.
func (ps *protectedSet) matchForms(p string) (int, bool) {
	for _, f := range ps.forms {
		if protectedUnder(p, f.path) {
			return f.entry, true
		}
	}
	return 0, false
}

func (ps *protectedSet) matchComponents(p string) (int, bool) {
	for i, e := range ps.entries {
		if e.component == "" {
			continue
		}
		for rest := p; rest != ""; {
			var part string
			part, rest, _ = strings.Cut(rest, "/")
			if part == e.component {
				return i, true
			}
		}
	}
	return 0, false
}

// match reports the entry a string value hits, if any. budget counts the
// remaining symlink lookups for the decision.
func (ps *protectedSet) match(v string, budget *int) (int, bool) {
	if v == "" {
		return 0, false
	}
	x, _ := ps.expandHome(v)
	// A file URI names the path it percent-encodes (RFC 8089): decoded, it
	// is checked like any other path, as the tool will open it.
	if p, ok := protectedFileURIs(x); ok {
		if i, hit := ps.match(p, budget); hit {
			return i, true
		}
	}
	// 1: substring.
	for _, f := range ps.forms {
		if strings.Contains(x, f.path) {
			return f.entry, true
		}
	}
	// 2-4 on the value as a whole (paths may contain spaces)...
	if i, ok := ps.matchToken(x, v, budget); ok {
		return i, true
	}
	// ... and on each token of it, for command strings.
	if strings.IndexFunc(x, func(r rune) bool { return r < 0x80 && protectedIsSep(byte(r)) }) < 0 {
		return 0, false
	}
	for start := 0; start < len(x); {
		for start < len(x) && protectedIsSep(x[start]) {
			start++
		}
		end := start
		for end < len(x) && !protectedIsSep(x[end]) {
			end++
		}
		if end > start {
			if i, ok := ps.matchToken(x[start:end], x[start:end], budget); ok {
				return i, true
			}
		}
		start = end
	}
	return 0, false
}

// matchToken runs the lexical, component and symlink checks on one token.
// orig is the token before home expansion, used to decide whether it looks
// like a path worth a file-system lookup.
//
// Component entries are matched against the path as the value names it
// (cleaned, but not prefixed with WorkDir), so that a working directory that
// happens to lie under a directory called like an entry does not make every
// word of every argument match.
func (ps *protectedSet) matchToken(tok, orig string, budget *int) (int, bool) {
	p := ps.absolute(tok)
	if i, ok := ps.matchForms(p); ok {
		return i, true
	}
	named := p
	if !filepath.IsAbs(tok) {
		named = filepath.Clean(tok)
	}
	if i, ok := ps.matchComponents(named); ok {
		return i, true
	}
	if ps.paths == nil || !protectedLooksLikePath(orig) {
		return 0, false
	}
	if *budget <= 0 {
		return protectedUnchecked, true
	}
	*budget--
	// The file system resolves the path as written, ".." after a symlink
	// included, not its lexically cleaned form.
	raw := tok
	if !filepath.IsAbs(raw) {
		raw = ps.workDir + "/" + raw
	}
	real, ok := ps.paths.ResolvePath(raw, p)
	if !ok {
		return protectedUnchecked, true
	}
	if real != p {
		// The link's target is where the file really is: all of its
		// components count.
		if i, ok := ps.matchForms(real); ok {
			return i, true
		}
		return ps.matchComponents(real)
	}
	return 0, false
}

// protectedLooksLikePath limits file-system lookups to strings a tool would
// plausibly open: absolute, home-relative, explicitly relative, or containing
// a slash but not a URL scheme.
func protectedLooksLikePath(s string) bool {
	if s == "" {
		return false
	}
	switch s[0] {
	case '/', '~', '.', '$':
		return true
	}
	return strings.ContainsRune(s, '/') && !strings.Contains(s, "://")
}

// rule names the entry a check hit, for Decision.FailedRule.
func (ps *protectedSet) rule(entry int) string {
	if entry == protectedUnchecked {
		return "path could not be checked"
	}
	return ps.entries[entry].src
}

// checkArgs walks every string (keys and values, at any depth) of every
// argument and returns the first hit in sorted key order. The values were
// validated with the whole arguments object, so they are not validated
// again: in valid JSON every quote outside a string opens one, and
// strictjson.ValueEnd finds where it closes.
func (ps *protectedSet) checkArgs(args []argMember) (arg string, entry int, hit bool) {
	if ps.empty() {
		return "", 0, false
	}
	budget := protectedSymlinkBudget
	var text []byte
	for _, m := range args {
		// A tool may take a path as a member name too ({"/etc/shadow": ...}).
		if e, ok := ps.match(m.key, &budget); ok {
			return m.key, e, true
		}
		val := m.val
		for i := 0; i < len(val); {
			q := bytes.IndexByte(val[i:], '"')
			if q < 0 {
				break
			}
			i += q
			end := strictjson.ValueEnd(val, i)
			// Decoded exactly as encoding/json decodes it; a string with
			// escapes in one buffer for the whole walk.
			var s string
			if lit := val[i:end]; argPlain(lit) {
				s = string(lit[1 : len(lit)-1])
			} else {
				if cap(text) < len(lit) {
					text = make([]byte, 0, len(lit)) // escapes only shorten; U+FFFD for invalid UTF-8 may grow it
				}
				text = strictjson.AppendUnquote(text[:0], lit)
				s = string(text)
			}
			if e, ok := ps.match(s, &budget); ok {
				return m.key, e, true
			}
			i = end
		}
	}
	return "", 0, false
}
