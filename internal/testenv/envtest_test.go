package testenv

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// fakeAsset writes an executable shell script named name into dir that
// prints out, standing in for etcd or kube-apiserver --version.
func fakeAsset(t *testing.T, dir, name, out string) {
	t.Helper()
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	script := "#!/bin/sh\nprintf '%s\\n' '" + out + "'\n"
	if err := os.WriteFile(filepath.Join(dir, name), []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
}

func TestFindEnvtestAssets(t *testing.T) {
	goodEtcd := "etcd Version: " + strings.TrimPrefix(EtcdVersion, "v") + "\nGit SHA: Not provided"
	goodKube := "Kubernetes " + KubernetesVersion
	tests := []struct {
		name string
		// setup fills the KUBEBUILDER_ASSETS directory env and the cache
		// directory cache, and returns the env value to pass ("" = unset).
		setup   func(t *testing.T, env, cache string) string
		wantDir func(env, cache string) string
		wantErr string
	}{{
		name: "KUBEBUILDER_ASSETS with both pinned binaries is used",
		setup: func(t *testing.T, env, _ string) string {
			fakeAsset(t, env, "etcd", goodEtcd)
			fakeAsset(t, env, "kube-apiserver", goodKube)
			return env
		},
		wantDir: func(env, _ string) string { return env },
	}, {
		name: "without KUBEBUILDER_ASSETS the cache of ensure-envtest.sh is used",
		setup: func(t *testing.T, _, cache string) string {
			d := filepath.Join(cache, envtestDirName, "bin")
			fakeAsset(t, d, "etcd", goodEtcd)
			fakeAsset(t, d, "kube-apiserver", goodKube)
			return ""
		},
		wantDir: func(_, cache string) string { return filepath.Join(cache, envtestDirName, "bin") },
	}, {
		name: "KUBEBUILDER_ASSETS wins over the cache, even when it lacks the binaries",
		setup: func(t *testing.T, env, cache string) string {
			d := filepath.Join(cache, envtestDirName, "bin")
			fakeAsset(t, d, "etcd", goodEtcd)
			fakeAsset(t, d, "kube-apiserver", goodKube)
			fakeAsset(t, env, "etcd", goodEtcd)
			return env
		},
		wantErr: "kube-apiserver",
	}, {
		name: "a missing etcd is an error naming the script",
		setup: func(t *testing.T, env, _ string) string {
			fakeAsset(t, env, "kube-apiserver", goodKube)
			return env
		},
		wantErr: "ensure-envtest.sh",
	}, {
		name: "a kube-apiserver of another version is an error",
		setup: func(t *testing.T, env, _ string) string {
			fakeAsset(t, env, "etcd", goodEtcd)
			fakeAsset(t, env, "kube-apiserver", "Kubernetes v0.0.0-master+$Format:%H$")
			return env
		},
		wantErr: "want \"Kubernetes " + KubernetesVersion + "\"",
	}, {
		name: "an etcd of another version is an error",
		setup: func(t *testing.T, env, _ string) string {
			fakeAsset(t, env, "etcd", "etcd Version: 3.5.0")
			fakeAsset(t, env, "kube-apiserver", goodKube)
			return env
		},
		wantErr: "etcd Version: " + strings.TrimPrefix(EtcdVersion, "v"),
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			env, cache := filepath.Join(t.TempDir(), "assets"), t.TempDir()
			envValue := tt.setup(t, env, cache)
			dir, err := findEnvtestAssets(envValue, cache)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("findEnvtestAssets = %q, %v; want an error containing %q", dir, err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if want := tt.wantDir(env, cache); dir != want {
				t.Errorf("dir = %q, want %q", dir, want)
			}
		})
	}
}

func TestFindEnvtestAssetsWithoutAnyDirectory(t *testing.T) {
	if _, err := findEnvtestAssets("", ""); err == nil || !strings.Contains(err.Error(), "ensure-envtest.sh") {
		t.Fatalf("err = %v, want one naming scripts/ensure-envtest.sh", err)
	}
}

func TestEnvtestDirMatchesTheScript(t *testing.T) {
	// scripts/ensure-envtest.sh and this package must agree on where the
	// assets live and which versions they are.
	script, err := os.ReadFile(filepath.Join(Root(t), "scripts", "ensure-envtest.sh"))
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		`ETCD_VERSION="${ETCD_VERSION:-` + EtcdVersion + `}"`,
		`KUBERNETES_VERSION="${KUBERNETES_VERSION:-` + KubernetesVersion + `}"`,
		`DEST="$CACHE_ROOT/envtest-kube-$KUBERNETES_VERSION-etcd-$ETCD_VERSION"`,
		`BIN="$DEST/bin"`,
	} {
		if !strings.Contains(string(script), want) {
			t.Errorf("scripts/ensure-envtest.sh does not contain %s", want)
		}
	}
}

func TestFindSPIRE(t *testing.T) {
	good := strings.TrimPrefix(SPIREVersion, "v") + "-dev-unk"
	tests := []struct {
		name    string
		server  string // spire-server --version output; "" = no binaries
		agent   bool
		wantErr string
	}{
		{"both binaries of the pinned version are found", good, true, ""},
		{"a missing spire-agent is an error naming the script", good, false, "ensure-spire.sh"},
		{"a spire-server of another version is an error", "1.9.0", true, `want "` + strings.TrimPrefix(SPIREVersion, "v") + `"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			fakeAsset(t, dir, "spire-server", tt.server)
			if tt.agent {
				fakeAsset(t, dir, "spire-agent", "")
			}
			got, err := findSPIRE(dir, "")
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("findSPIRE = %q, %v; want an error containing %q", got, err, tt.wantErr)
				}
				return
			}
			if err != nil || got != dir {
				t.Fatalf("findSPIRE = %q, %v; want %q", got, err, dir)
			}
		})
	}
	cache := t.TempDir()
	d := filepath.Join(cache, "spire-"+SPIREVersion, "bin")
	fakeAsset(t, d, "spire-server", good)
	fakeAsset(t, d, "spire-agent", "")
	if got, err := findSPIRE("", cache); err != nil || got != d {
		t.Errorf("without SPIRE_BIN_DIR: findSPIRE = %q, %v; want the cache %q", got, err, d)
	}
	script, err := os.ReadFile(filepath.Join(Root(t), "scripts", "ensure-spire.sh"))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(script), `SPIRE_VERSION="${SPIRE_VERSION:-`+SPIREVersion+`}"`) {
		t.Errorf("scripts/ensure-spire.sh does not pin %s", SPIREVersion)
	}
}
