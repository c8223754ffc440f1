package identity_test

import (
	"crypto"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/agentid/agentid/identity"
)

// keyFile writes a fresh alg private key to dir and returns its path and kid.
func keyFile(t *testing.T, dir, alg string) (string, string) {
	t.Helper()
	priv, err := identity.GenerateKey(alg)
	if err != nil {
		t.Fatal(err)
	}
	pemBytes, err := identity.MarshalPrivateKeyPEM(priv)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, alg+".pem")
	if err := os.WriteFile(path, pemBytes, 0o600); err != nil {
		t.Fatal(err)
	}
	ks, err := identity.LoadKeySet(path, "", identity.KeySetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return path, ks.ActiveKID()
}

func TestLoadSigningKeysChoosesTheKeySource(t *testing.T) {
	dir := t.TempDir()
	es256, es256Kid := keyFile(t, dir, identity.AlgES256)
	ed, edKid := keyFile(t, dir, identity.AlgEdDSA)
	for _, tt := range []struct {
		name, identity, keyFile string
		wantKid, wantAlg        string // wantKid "": generated
		wantErr                 string
	}{
		{name: "generated ES256 by default", wantAlg: identity.AlgES256},
		{name: "generated for signing_algorithm", identity: "keys: {signing_algorithm: EdDSA}", wantAlg: identity.AlgEdDSA},
		{name: "generated HS256 when asked for", identity: "keys: {signing_algorithm: HS256}", wantAlg: identity.AlgHS256},
		{name: "key_source file reads key_path", identity: "keys: {key_source: file, key_path: " + es256 + "}",
			wantKid: es256Kid, wantAlg: identity.AlgES256},
		{name: "a file key chooses the algorithm when signing_algorithm is unset", identity: "keys: {key_source: file, key_path: " + ed + "}",
			wantKid: edKid, wantAlg: identity.AlgEdDSA},
		{name: "--key overrides a generated key", keyFile: ed, wantKid: edKid, wantAlg: identity.AlgEdDSA},
		{name: "--key overrides key_path", identity: "keys: {key_source: file, key_path: " + es256 + "}", keyFile: ed,
			wantKid: edKid, wantAlg: identity.AlgEdDSA},
		{name: "a file key must fit signing_algorithm", identity: "keys: {signing_algorithm: ES384}", keyFile: es256,
			wantErr: "does not fit the key"},
		{name: "HS256 is never read from a file", identity: "keys: {signing_algorithm: HS256, key_source: file, key_path: " + es256 + "}",
			wantErr: "in memory only"},
		{name: "a missing key file is an error", keyFile: filepath.Join(dir, "missing.pem"), wantErr: "no such file"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			p := writePolicy(t, t.TempDir(), "agent", tt.identity)
			ks, err := identity.LoadSigningKeys(p, tt.keyFile, identity.KeySetOptions{})
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if ks.Alg() != tt.wantAlg {
				t.Errorf("alg %s, want %s", ks.Alg(), tt.wantAlg)
			}
			if tt.wantKid == "" {
				if !ks.Generated() {
					t.Error("Generated() = false for a generated key")
				}
			} else if ks.Generated() || ks.ActiveKID() != tt.wantKid {
				t.Errorf("kid %s (generated %v), want the file's %s", ks.ActiveKID(), ks.Generated(), tt.wantKid)
			}
		})
	}
}

func TestJWKSFromKeyFilesPublishesOnlyPublicHalves(t *testing.T) {
	dir := t.TempDir()
	ec, ecKid := keyFile(t, dir, identity.AlgES256)
	ed, edKid := keyFile(t, dir, identity.AlgEdDSA)
	edKS, _ := identity.LoadKeySet(ed, "", identity.KeySetOptions{})
	pubPEM, _ := identity.MarshalPublicKeyPEM(edKS.ActivePublicKey())
	edPub := filepath.Join(dir, "ed.pub")
	os.WriteFile(edPub, pubPEM, 0o600)

	j, err := identity.JWKSFromKeyFiles(ec, edPub)
	if err != nil {
		t.Fatal(err)
	}
	for _, kid := range []string{ecKid, edKid} {
		if _, ok := j.VerificationKey(kid); !ok {
			t.Errorf("kid %s missing from %s", kid, j.Document())
		}
	}
	if strings.Contains(string(j.Document()), `"d"`) {
		t.Fatalf("private key material published: %s", j.Document())
	}

	junk := filepath.Join(dir, "junk.pem")
	os.WriteFile(junk, []byte("junk"), 0o600)
	if _, err := identity.JWKSFromKeyFiles(ec, junk); err == nil || !strings.HasPrefix(err.Error(), junk+": ") {
		t.Fatalf("err = %v, want one naming %s", err, junk)
	}
}

func TestGenerateKeyFilesWritesAsymmetricKeysOnly(t *testing.T) {
	for _, alg := range identity.AsymmetricAlgs {
		t.Run(alg, func(t *testing.T) {
			kf, err := identity.GenerateKeyFiles(alg)
			if err != nil {
				t.Fatal(err)
			}
			if !strings.HasPrefix(string(kf.PrivatePEM), "-----BEGIN PRIVATE KEY-----") || !strings.HasPrefix(string(kf.PublicPEM), "-----BEGIN PUBLIC KEY-----") {
				t.Fatalf("not PKCS#8 and PKIX PEM:\n%s%s", kf.PrivatePEM, kf.PublicPEM)
			}
			priv, err := identity.ParsePrivateKeyPEM(kf.PrivatePEM)
			if err != nil {
				t.Fatal(err)
			}
			pub, err := identity.ParsePublicKeyPEM(kf.PublicPEM)
			if err != nil || !priv.Public().(interface{ Equal(crypto.PublicKey) bool }).Equal(pub) {
				t.Fatalf("the public key is not the private key's: %v", err)
			}
			if kid, _ := identity.Thumbprint(pub); kf.KID != kid {
				t.Fatalf("kid %s, want the thumbprint %s", kf.KID, kid)
			}
		})
	}
	for _, alg := range []string{identity.AlgHS256, "none", ""} {
		if _, err := identity.GenerateKeyFiles(alg); err == nil {
			t.Errorf("%q: a key file was generated", alg)
		}
	}
}
