package testenv

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

// HelmVersion is the helm CLI that scripts/ensure-helm.sh builds.
const HelmVersion = "v4.3.2"

var helmBin struct {
	once sync.Once
	path string
	err  error
}

// HelmBinary returns the path of the helm CLI: the one in $HELM_BIN_DIR
// when set, else the one in the cache that scripts/ensure-helm.sh fills. It
// must run and report the pinned version. A missing or wrong one follows
// RequireComponent's rule.
func HelmBinary(t testing.TB) string {
	t.Helper()
	helmBin.once.Do(func() {
		helmBin.path, helmBin.err = findHelm(os.Getenv("HELM_BIN_DIR"), cacheDir())
	})
	RequireComponent(t, "helm "+HelmVersion, helmBin.err)
	return helmBin.path
}

// findHelm checks the helm in the directory that env names, or when env is
// empty the one under cache.
func findHelm(env, cache string) (string, error) {
	dir := env
	if dir == "" {
		if cache == "" {
			return "", errors.New("HELM_BIN_DIR is not set and there is no cache directory: run scripts/ensure-helm.sh")
		}
		dir = filepath.Join(cache, "helm-"+HelmVersion, "bin")
	}
	bin := filepath.Join(dir, "helm")
	out, err := exec.Command(bin, "version", "--template", "{{.Version}}").CombinedOutput()
	if err != nil {
		return "", fmt.Errorf("%s: %v (build it with scripts/ensure-helm.sh and set HELM_BIN_DIR)", bin, err)
	}
	if got := strings.TrimSpace(string(out)); got != HelmVersion {
		return "", fmt.Errorf("%s version printed %q, want %q (rebuild with scripts/ensure-helm.sh)", bin, firstLine(out), HelmVersion)
	}
	return bin, nil
}
