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

func findSPIRE(env, cache string) (string, error) {
	dir := env
	if dir == "" {
		if cache == "" {
			return "", errors.New("SPIRE_BIN_DIR is not set and there is no cache directory: run scripts/ensure-spire.sh")
		}
		dir = filepath.Join(cache, "spire-"+SPIREVersion, "bin")
	}
	if _, err := os.Stat(filepath.Join(dir, "spire-agent")); err != nil {
		return "", fmt.Errorf("%v (build it with scripts/ensure-spire.sh and set SPIRE_BIN_DIR)", err)
	}
	bin := filepath.Join(dir, "spire-server")
	out, err := exec.Command(bin, "--version").CombinedOutput()
	if err != nil {
		return "", fmt.Errorf("%s: %v (build it with scripts/ensure-spire.sh and set SPIRE_BIN_DIR)", bin, err)
	}
	if want := strings.TrimPrefix(SPIREVersion, "v"); !strings.HasPrefix(strings.TrimSpace(string(out)), want) {
		return "", fmt.Errorf("%s --version printed %q, want %s (rebuild with scripts/ensure-spire.sh)", bin, firstLine(out), want)
	}
	return dir, nil
}
