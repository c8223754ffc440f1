package testenv

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestFindHelm(t *testing.T) {
	tests := []struct {
		name    string
		version string // what helm version prints; "" = no binary
		wantErr string
	}{
		{"a helm of the pinned version is found", HelmVersion, ""},
		{"a missing helm is an error naming the script", "", "ensure-helm.sh"},
		{"a helm of another version is an error", "v3.18.4", `want "` + HelmVersion + `"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			if tt.version != "" {
				fakeAsset(t, dir, "helm", tt.version)
			}
			got, err := findHelm(dir, "")
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("findHelm = %q, %v; want an error containing %q", got, err, tt.wantErr)
				}
				return
			}
			if want := filepath.Join(dir, "helm"); err != nil || got != want {
				t.Fatalf("findHelm = %q, %v; want %q", got, err, want)
			}
		})
	}
}

func TestFindHelmInTheCache(t *testing.T) {
	cache := t.TempDir()
	d := filepath.Join(cache, "helm-"+HelmVersion, "bin")
	fakeAsset(t, d, "helm", HelmVersion)
	if got, err := findHelm("", cache); err != nil || got != filepath.Join(d, "helm") {
		t.Errorf("without HELM_BIN_DIR: findHelm = %q, %v; want the cache's %q", got, err, d)
	}
	if _, err := findHelm("", ""); err == nil || !strings.Contains(err.Error(), "ensure-helm.sh") {
		t.Errorf("without any directory: err = %v, want one naming scripts/ensure-helm.sh", err)
	}
}

func TestHelmDirMatchesTheScript(t *testing.T) {
	// scripts/ensure-helm.sh and this package must agree on where helm
	// lives and which version it is.
	script, err := os.ReadFile(filepath.Join(Root(t), "scripts", "ensure-helm.sh"))
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		`HELM_VERSION="${HELM_VERSION:-` + HelmVersion + `}"`,
		`DEST="$CACHE_ROOT/helm-$HELM_VERSION"`,
		`BIN="$DEST/bin"`,
	} {
		if !strings.Contains(string(script), want) {
			t.Errorf("scripts/ensure-helm.sh does not contain %s", want)
		}
	}
}
