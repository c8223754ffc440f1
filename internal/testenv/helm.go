package testenv

import (
	"os"
	"path/filepath"
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

var helm = component{env: "HELM_BIN_DIR", subdir: filepath.Join("helm-"+HelmVersion, "bin"), script: "ensure-helm.sh",
	checks: []check{{bin: "helm", args: []string{"version", "--template", "{{.Version}}"}, want: HelmVersion, exact: true}}}

// findHelm checks the helm in the directory that env names, or when env is
// empty the one under cache.
func findHelm(env, cache string) (string, error) {
	dir, err := helm.find(env, cache)
	if err != nil {
		return "", err
	}
	return filepath.Join(dir, "helm"), nil
}
