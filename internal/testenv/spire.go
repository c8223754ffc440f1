package testenv

import (
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

// SPIREVersion is the SPIRE that scripts/ensure-spire.sh builds.
const SPIREVersion = "v1.13.3"

var spireBin struct {
	once sync.Once
	dir  string
	err  error
}

// SPIREBinDir returns the directory holding spire-server and spire-agent:
// $SPIRE_BIN_DIR when set, else the cache that scripts/ensure-spire.sh
// fills. spire-server must run and report the pinned version. A missing or
// wrong one follows RequireComponent's rule.
func SPIREBinDir(t testing.TB) string {
	t.Helper()
	spireBin.once.Do(func() {
		spireBin.dir, spireBin.err = findSPIRE(os.Getenv("SPIRE_BIN_DIR"), cacheDir())
	})
	RequireComponent(t, "SPIRE "+SPIREVersion+" (spire-server, spire-agent)", spireBin.err)
	return spireBin.dir
}

var spire = component{env: "SPIRE_BIN_DIR", subdir: filepath.Join("spire-"+SPIREVersion, "bin"), script: "ensure-spire.sh",
	checks: []check{{bin: "spire-agent"}, {bin: "spire-server", args: []string{"--version"}, want: strings.TrimPrefix(SPIREVersion, "v")}}}

func findSPIRE(env, cache string) (string, error) { return spire.find(env, cache) }
