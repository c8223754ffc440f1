package testenv

import (
	"bytes"
	"encoding/hex"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// RFC8785Vector is one RFC 8785 (JCS) test vector: an input document and
// its canonical form.
type RFC8785Vector struct {
	Name  string // file name, e.g. "structures.json"
	Input []byte
	Want  []byte
}

// RFC8785Vectors reads the RFC 8785 test vectors (cyberphone's, shipped in
// the gowebpki/jcs module) from the module cache, so that they come from
// their source rather than a copy in this repository. Where an outhex file
// pins the exact expected bytes, it is checked against the output file.
func RFC8785Vectors(t testing.TB) []RFC8785Vector {
	t.Helper()
	out, err := exec.Command("go", "list", "-m", "-f", "{{.Dir}}", "github.com/gowebpki/jcs").Output()
	if err != nil {
		t.Fatalf("testenv: locating the gowebpki/jcs module: %v", err)
	}
	dir := filepath.Join(strings.TrimSpace(string(out)), "testdata")
	inputs, err := filepath.Glob(filepath.Join(dir, "input", "*.json"))
	if err != nil || len(inputs) < 8 {
		t.Fatalf("testenv: expected the RFC 8785 vectors in %s, found %d (%v)", dir, len(inputs), err)
	}
	var vectors []RFC8785Vector
	for _, in := range inputs {
		name := filepath.Base(in)
		input, err := os.ReadFile(in)
		if err != nil {
			t.Fatal(err)
		}
		want, err := os.ReadFile(filepath.Join(dir, "output", name))
		if err != nil {
			t.Fatal(err)
		}
		if h, err := os.ReadFile(filepath.Join(dir, "outhex", strings.TrimSuffix(name, ".json")+".txt")); err == nil {
			b, err := hex.DecodeString(strings.Join(strings.Fields(string(h)), ""))
			if err != nil || !bytes.Equal(b, want) {
				t.Fatalf("testenv: %s: output and outhex disagree (%v)", name, err)
			}
		}
		vectors = append(vectors, RFC8785Vector{Name: name, Input: input, Want: want})
	}
	return vectors
}
