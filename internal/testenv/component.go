package testenv

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

// component is a binary directory that a script of scripts/ builds into
// the cache: SPIRE, the envtest assets, helm.
type component struct {
	env    string  // the variable naming its directory, e.g. SPIRE_BIN_DIR
	subdir string  // its directory under the cache, e.g. spire-v1.13.3/bin
	script string  // the script that builds it, e.g. ensure-spire.sh
	checks []check // what its binaries must print
}

// check runs one binary of a component with args; its output must contain
// want (equal it, trimmed, when exact). No args: the binary need only exist.
type check struct {
	bin   string
	args  []string
	want  string
	exact bool
}

// find returns the component's directory: env when set, else its place
// under cache; every check must pass.
func (c component) find(env, cache string) (string, error) {
	dir := env
	if dir == "" {
		if cache == "" {
			return "", fmt.Errorf("%s is not set and there is no cache directory: run scripts/%s", c.env, c.script)
		}
		dir = filepath.Join(cache, c.subdir)
	}
	for _, ck := range c.checks {
		bin := filepath.Join(dir, ck.bin)
		if len(ck.args) == 0 {
			if _, err := os.Stat(bin); err != nil {
				return "", fmt.Errorf("%v (build it with scripts/%s and set %s)", err, c.script, c.env)
			}
			continue
		}
		out, err := exec.Command(bin, ck.args...).CombinedOutput()
		if err != nil {
			return "", fmt.Errorf("%s: %v (build it with scripts/%s and set %s)", bin, err, c.script, c.env)
		}
		got := strings.TrimSpace(string(out))
		if ck.exact && got != ck.want || !ck.exact && !strings.Contains(got, ck.want) {
			return "", fmt.Errorf("%s %s printed %q, want %q (rebuild with scripts/%s)", bin, strings.Join(ck.args, " "), firstLine(out), ck.want, c.script)
		}
	}
	return dir, nil
}
