package testenv

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"
)

// CI reports whether the CI environment variable asks for strict runs.
// Any value strconv.ParseBool accepts as true counts ("true", "1", ...), so
// that the conventions of different CI systems all work.
func CI() bool {
	v, err := strconv.ParseBool(os.Getenv("CI"))
	return err == nil && v
}

// RequireComponent applies the project's rule for missing components: when
// err is non-nil the test fails under CI=true and is skipped otherwise. what
// names the component in the message, and the message says how to install it.
func RequireComponent(t testing.TB, what string, err error) {
	t.Helper()
	if err == nil {
		return
	}
	if CI() {
		t.Fatalf("%s is required when CI=true but unavailable: %v (run scripts/test.sh to install the test components)", what, err)
	}
	t.Skipf("%s unavailable, skipping (set CI=true to make this a failure): %v", what, err)
}

// Root returns the module root, the nearest directory at or above the test's
// working directory that contains go.mod. go test runs each package's tests
// in the package's directory, so this works from any package.
func Root(t testing.TB) string {
	t.Helper()
	wd, err := os.Getwd()
	if err != nil {
		t.Fatalf("testenv: working directory: %v", err)
	}
	root, err := findRoot(wd)
	if err != nil {
		t.Fatalf("testenv: %v", err)
	}
	return root
}

func findRoot(dir string) (string, error) {
	for d := dir; ; {
		if fi, err := os.Stat(filepath.Join(d, "go.mod")); err == nil && !fi.IsDir() {
			return d, nil
		}
		parent := filepath.Dir(d)
		if parent == d {
			return "", fmt.Errorf("no go.mod at or above %s", dir)
		}
		d = parent
	}
}

// SharedDir returns the shared directory that sits beside the module root
// (it holds DESIGN.md, spec/ and reference/). It is not part of the
// repository, so its absence follows RequireComponent's rule.
func SharedDir(t testing.TB) string {
	t.Helper()
	dir := filepath.Join(filepath.Dir(Root(t)), "shared")
	RequireComponent(t, "shared directory "+dir, requireDir(filepath.Join(dir, "spec")))
	return dir
}

// ConformanceDir returns the directory of the AIP conformance vectors,
// SharedDir/spec/aip/conformance.
func ConformanceDir(t testing.TB) string {
	t.Helper()
	dir := filepath.Join(SharedDir(t), "spec", "aip", "conformance")
	RequireComponent(t, "AIP conformance suite "+dir, requireDir(dir))
	return dir
}

func requireDir(dir string) error {
	fi, err := os.Stat(dir)
	if err != nil {
		return err
	}
	if !fi.IsDir() {
		return fmt.Errorf("%s is not a directory", dir)
	}
	return nil
}

// npmPackages maps the short names tests use to the packages pinned in
// test/mcp-servers/package.json.
var npmPackages = map[string]string{
	"filesystem": "@modelcontextprotocol/server-filesystem",
	"everything": "@modelcontextprotocol/server-everything",
}

// NPMServer returns the argv that starts the pinned npm MCP server name
// ("filesystem" or "everything") on stdio: the node executable followed by
// the package's bin script. Callers append the server's own arguments (the
// filesystem server needs at least one allowed directory).
//
// The servers are run with node directly rather than through npx so that a
// test never reaches the network and always runs the locked version.
func NPMServer(t testing.TB, name string) []string {
	t.Helper()
	pkg, ok := npmPackages[name]
	if !ok {
		t.Fatalf("testenv: unknown npm MCP server %q (want filesystem or everything)", name)
	}
	node, err := exec.LookPath("node")
	RequireComponent(t, "node", err)
	script, err := npmBin(filepath.Join(Root(t), "test", "mcp-servers"), pkg)
	RequireComponent(t, "npm package "+pkg, err)
	return []string{node, script}
}

// npmBin returns the absolute path of the script that package pkg, installed
// under dir/node_modules, declares as its bin. Reading the bin field instead
// of assuming dist/index.js keeps the helper right across version bumps.
func npmBin(dir, pkg string) (string, error) {
	pkgDir := filepath.Join(dir, "node_modules", filepath.FromSlash(pkg))
	data, err := os.ReadFile(filepath.Join(pkgDir, "package.json"))
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return "", fmt.Errorf("%s is not installed in %s (npm ci there, or run scripts/test.sh)", pkg, dir)
		}
		return "", err
	}
	var manifest struct {
		Bin json.RawMessage `json:"bin"`
	}
	if err := json.Unmarshal(data, &manifest); err != nil {
		return "", fmt.Errorf("%s/package.json: %v", pkg, err)
	}
	rel, err := binEntry(manifest.Bin)
	if err != nil {
		return "", fmt.Errorf("%s/package.json: %v", pkg, err)
	}
	script := filepath.Join(pkgDir, filepath.FromSlash(rel))
	if _, err := os.Stat(script); err != nil {
		return "", err
	}
	return script, nil
}

// binEntry picks the script from a package.json bin field, which npm allows
// to be either a single path or a map from command name to path.
func binEntry(raw json.RawMessage) (string, error) {
	if len(raw) == 0 {
		return "", errors.New("no bin entry")
	}
	var s string
	if err := json.Unmarshal(raw, &s); err == nil {
		if s == "" {
			return "", errors.New("empty bin entry")
		}
		return s, nil
	}
	var m map[string]string
	if err := json.Unmarshal(raw, &m); err != nil {
		return "", fmt.Errorf("bin: %v", err)
	}
	if len(m) != 1 {
		// Several commands would make the choice a guess; none of the
		// pinned servers has more than one.
		return "", fmt.Errorf("bin has %d entries, want exactly 1", len(m))
	}
	for _, s := range m {
		if s == "" {
			return "", errors.New("empty bin entry")
		}
		return s, nil
	}
	panic("unreachable")
}
