package server

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"

	"github.com/agentid/agentid/identity"
)

func TestReplicasLoadingOneKeyFileDeriveOneRoundKey(t *testing.T) {
	ks, err := identity.GenerateKeySet(identity.DefaultAlg, identity.KeySetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	pem, err := ks.PrivateKeyPEM()
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "key.pem")
	if err := os.WriteFile(path, pem, 0o600); err != nil {
		t.Fatal(err)
	}
	var keys [][]byte
	for range 2 {
		loaded, err := identity.LoadKeySet(path, identity.DefaultAlg, identity.KeySetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		k, err := roundKeyFrom(loaded)
		if err != nil {
			t.Fatal(err)
		}
		keys = append(keys, k)
	}
	if !bytes.Equal(keys[0], keys[1]) {
		t.Fatal("two replicas loading one key file derived different round keys")
	}
	if len(keys[0]) != 32 || bytes.Contains(pem, keys[0]) {
		t.Fatalf("the round key is not a 32-byte derivation: %x", keys[0])
	}
	other, _ := identity.GenerateKeySet(identity.DefaultAlg, identity.KeySetOptions{})
	if k, _ := roundKeyFrom(other); bytes.Equal(k, keys[0]) {
		t.Fatal("another signing key derived the same round key")
	}
}
