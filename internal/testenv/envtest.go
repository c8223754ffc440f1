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

// findEnvtestAssets checks the directory that env names, or when env is
// empty the one under cache.
func findEnvtestAssets(env, cache string) (string, error) {
	dir := env
	if dir == "" {
		if cache == "" {
			return "", errors.New("KUBEBUILDER_ASSETS is not set and there is no cache directory: run scripts/ensure-envtest.sh")
		}
		dir = filepath.Join(cache, envtestDirName, "bin")
	}
	checks := []struct {
		name, flag, want string
	}{
		{"etcd", "--version", "etcd Version: " + strings.TrimPrefix(EtcdVersion, "v")},
		{"kube-apiserver", "--version", "Kubernetes " + KubernetesVersion},
	}
	for _, c := range checks {
		bin := filepath.Join(dir, c.name)
		out, err := exec.Command(bin, c.flag).CombinedOutput()
		if err != nil {
			return "", fmt.Errorf("%s: %v (build it with scripts/ensure-envtest.sh and set KUBEBUILDER_ASSETS)", bin, err)
		}
		if !strings.Contains(string(out), c.want) {
			return "", fmt.Errorf("%s %s printed %q, want %q (rebuild with scripts/ensure-envtest.sh)", bin, c.flag, firstLine(out), c.want)
		}
	}
	return dir, nil
}

func firstLine(b []byte) string {
	s, _, _ := strings.Cut(string(b), "\n")
	if len(s) > 200 {
		s = s[:200]
	}
	return s
}
