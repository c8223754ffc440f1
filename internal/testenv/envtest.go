package testenv

import (
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

// The envtest assets that scripts/ensure-envtest.sh builds; keep the three
// in step with it.
const (
	KubernetesVersion = "v1.37.2"
	EtcdVersion       = "v3.6.16"
	envtestDirName    = "envtest-kube-" + KubernetesVersion + "-etcd-" + EtcdVersion
)

var envtestAssets struct {
	once sync.Once
	dir  string
	err  error
}

// EnvtestAssets returns the directory holding the etcd and kube-apiserver
// binaries that controller-runtime's envtest runs (its
// BinaryAssetsDirectory): $KUBEBUILDER_ASSETS when set, else the cache that
// scripts/ensure-envtest.sh fills. Both binaries must run and report the
// pinned versions, so that a stale cache is not mistaken for the real
// parts. A missing or wrong one follows RequireComponent's rule.
func EnvtestAssets(t testing.TB) string {
	t.Helper()
	envtestAssets.once.Do(func() {
		envtestAssets.dir, envtestAssets.err = findEnvtestAssets(os.Getenv("KUBEBUILDER_ASSETS"), cacheDir())
	})
	RequireComponent(t, "envtest assets (etcd "+EtcdVersion+", kube-apiserver "+KubernetesVersion+")", envtestAssets.err)
	return envtestAssets.dir
}

// cacheDir is the per-machine cache of the scripts: $AGENTID_CACHE, else
// $XDG_CACHE_HOME/agentid, else ~/.cache/agentid; "" when none is known.
func cacheDir() string {
	if d := os.Getenv("AGENTID_CACHE"); d != "" {
		return d
	}
	if d := os.Getenv("XDG_CACHE_HOME"); d != "" {
		return filepath.Join(d, "agentid")
	}
	if home, err := os.UserHomeDir(); err == nil {
		return filepath.Join(home, ".cache", "agentid")
	}
	return ""
}

var envtestAssetsComponent = component{env: "KUBEBUILDER_ASSETS", subdir: filepath.Join(envtestDirName, "bin"), script: "ensure-envtest.sh",
	checks: []check{
		{bin: "etcd", args: []string{"--version"}, want: "etcd Version: " + strings.TrimPrefix(EtcdVersion, "v")},
		{bin: "kube-apiserver", args: []string{"--version"}, want: "Kubernetes " + KubernetesVersion},
	}}

// findEnvtestAssets checks the directory that env names, or when env is
// empty the one under cache.
func findEnvtestAssets(env, cache string) (string, error) {
	return envtestAssetsComponent.find(env, cache)
}

func firstLine(b []byte) string {
	s, _, _ := strings.Cut(string(b), "\n")
	if len(s) > 200 {
		s = s[:200]
	}
	return s
}
