package pemkey_test

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/agentid/agentid/internal/pemkey"
)

type keys struct {
	ec  *ecdsa.PrivateKey
	rsa *rsa.PrivateKey
	ed  ed25519.PrivateKey
}

var testKeys = func() keys {
	ec, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	r, _ := rsa.GenerateKey(rand.Reader, 2048)
	_, ed, _ := ed25519.GenerateKey(rand.Reader)
	return keys{ec, r, ed}
}()

func block(typ string, der []byte) []byte {
	return pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der})
}

func pkcs8(k any) []byte {
	der, err := x509.MarshalPKCS8PrivateKey(k)
	if err != nil {
		panic(err)
	}
	return block("PRIVATE KEY", der)
}

func pkix(k any) []byte {
	der, err := x509.MarshalPKIXPublicKey(k)
	if err != nil {
		panic(err)
	}
	return block("PUBLIC KEY", der)
}

func sec1(k *ecdsa.PrivateKey) []byte {
	der, _ := x509.MarshalECPrivateKey(k)
	return block("EC PRIVATE KEY", der)
}

func pkcs1(k *rsa.PrivateKey) []byte {
	return block("RSA PRIVATE KEY", x509.MarshalPKCS1PrivateKey(k))
}

func TestParsePrivateKeyReadsEveryUnencryptedFormat(t *testing.T) {
	for _, tt := range []struct {
		name string
		pem  []byte
		want crypto.PublicKey
	}{
		{"PKCS#8 ECDSA", pkcs8(testKeys.ec), testKeys.ec.Public()},
		{"PKCS#8 RSA", pkcs8(testKeys.rsa), testKeys.rsa.Public()},
		{"PKCS#8 Ed25519", pkcs8(testKeys.ed), testKeys.ed.Public()},
		{"SEC 1 ECDSA", sec1(testKeys.ec), testKeys.ec.Public()},
		{"PKCS#1 RSA", pkcs1(testKeys.rsa), testKeys.rsa.Public()},
		{"first block of several", append(pkcs8(testKeys.ec), pkix(testKeys.rsa.Public())...), testKeys.ec.Public()},
		{"text around the block", append(append([]byte("my key:\n"), pkcs8(testKeys.ed)...), "bye\n"...), testKeys.ed.Public()},
	} {
		t.Run(tt.name, func(t *testing.T) {
			s, err := pemkey.ParsePrivateKey(tt.pem)
			if err != nil {
				t.Fatal(err)
			}
			if !s.Public().(interface{ Equal(crypto.PublicKey) bool }).Equal(tt.want) {
				t.Fatal("wrong key")
			}
		})
	}
}

func TestParsePrivateKeyRefusesWhatIsNotAnUnencryptedPrivateKey(t *testing.T) {
	der, _ := x509.MarshalPKCS8PrivateKey(testKeys.ec)
	secret := base64.StdEncoding.EncodeToString(der[len(der)-32:])
	legacyEncrypted := pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY",
		Headers: map[string]string{"Proc-Type": "4,ENCRYPTED", "DEK-Info": "AES-128-CBC,00"}, Bytes: der})
	truncated := block("PRIVATE KEY", der[:len(der)-1])
	for _, tt := range []struct {
		name, want string
		pem        []byte
	}{
		{"no PEM at all", "no PEM block found", []byte("not a key")},
		{"empty", "no PEM block found", nil},
		{"a public key", `PEM block "PUBLIC KEY" is not a private key`, pkix(testKeys.ec.Public())},
		{"a certificate", `PEM block "CERTIFICATE" is not a private key`, block("CERTIFICATE", []byte{1})},
		{"PKCS#8 encrypted", "encrypted private keys are not supported", block("ENCRYPTED PRIVATE KEY", der)},
		{"legacy OpenSSL encryption", "encrypted private keys are not supported", legacyEncrypted},
		{"truncated DER", `malformed private key in PEM block "PRIVATE KEY"`, truncated},
		{"SEC 1 bytes in a PKCS#8 block", `malformed private key in PEM block "PRIVATE KEY"`, block("PRIVATE KEY", sec1Der(testKeys.ec))},
		{"very long block type is cut", "is not a private key", block(strings.Repeat("X", 200), []byte{1})},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, err := pemkey.ParsePrivateKey(tt.pem)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err = %v, want %q", err, tt.want)
			}
			if strings.Contains(err.Error(), secret) || len(err.Error()) > 120 {
				t.Fatalf("the error quotes the input: %v", err)
			}
		})
	}
}

func sec1Der(k *ecdsa.PrivateKey) []byte {
	der, _ := x509.MarshalECPrivateKey(k)
	return der
}

func TestParseSinglePrivateKeyRefusesASecondBlock(t *testing.T) {
	one := pkcs8(testKeys.ec)
	if _, err := pemkey.ParseSinglePrivateKey(one); err != nil {
		t.Fatalf("one block: %v", err)
	}
	for name, data := range map[string][]byte{
		"a second key":      append(pkcs8(testKeys.ec), pkcs8(testKeys.ed)...),
		"a certificate too": append(pkcs8(testKeys.ec), block("CERTIFICATE", []byte{1})...),
	} {
		if _, err := pemkey.ParseSinglePrivateKey(data); err == nil || !strings.Contains(err.Error(), "more than one PEM block") {
			t.Errorf("%s: err = %v", name, err)
		}
	}
	if _, err := pemkey.ParseSinglePrivateKey([]byte("junk")); err == nil || !strings.Contains(err.Error(), "no PEM block") {
		t.Errorf("no block: err = %v", err)
	}
}

func TestParsePublicKeyReadsPublicKeysAndThePublicHalfOfPrivateKeys(t *testing.T) {
	for _, tt := range []struct {
		name string
		pem  []byte
		want crypto.PublicKey
	}{
		{"PKIX ECDSA", pkix(testKeys.ec.Public()), testKeys.ec.Public()},
		{"PKIX RSA", pkix(testKeys.rsa.Public()), testKeys.rsa.Public()},
		{"PKIX Ed25519", pkix(testKeys.ed.Public()), testKeys.ed.Public()},
		{"PKCS#8 private key", pkcs8(testKeys.ed), testKeys.ed.Public()},
		{"SEC 1 private key", sec1(testKeys.ec), testKeys.ec.Public()},
		{"PKCS#1 private key", pkcs1(testKeys.rsa), testKeys.rsa.Public()},
	} {
		t.Run(tt.name, func(t *testing.T) {
			p, err := pemkey.ParsePublicKey(tt.pem)
			if err != nil {
				t.Fatal(err)
			}
			if !p.(interface{ Equal(crypto.PublicKey) bool }).Equal(tt.want) {
				t.Fatal("wrong key")
			}
		})
	}
	for name, tt := range map[string]struct {
		pem  []byte
		want string
	}{
		"junk":              {[]byte("junk"), "no PEM block found"},
		"a certificate":     {block("CERTIFICATE", []byte{1}), `PEM block "CERTIFICATE" is not a public or private key`},
		"malformed PKIX":    {block("PUBLIC KEY", []byte{1, 2}), "malformed public key"},
		"encrypted private": {block("ENCRYPTED PRIVATE KEY", []byte{1}), "encrypted private keys are not supported"},
	} {
		if _, err := pemkey.ParsePublicKey(tt.pem); err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s: err = %v, want %q", name, err, tt.want)
		}
	}
}

func TestEd25519ParsersAcceptOnlyEd25519Keys(t *testing.T) {
	if k, err := pemkey.ParseEd25519PrivateKey(pkcs8(testKeys.ed)); err != nil || !k.Equal(testKeys.ed) {
		t.Fatalf("private: %v", err)
	}
	for name, in := range map[string][]byte{"PKIX": pkix(testKeys.ed.Public()), "PKCS#8": pkcs8(testKeys.ed)} {
		if p, err := pemkey.ParseEd25519PublicKey(in); err != nil || !p.Equal(testKeys.ed.Public()) {
			t.Fatalf("public from %s: %v", name, err)
		}
	}
	if _, err := pemkey.ParseEd25519PrivateKey(pkcs8(testKeys.ec)); err == nil || !strings.Contains(err.Error(), "private key is *ecdsa.PrivateKey, want Ed25519") {
		t.Fatalf("ECDSA private key: %v", err)
	}
	if _, err := pemkey.ParseEd25519PublicKey(pkix(testKeys.rsa.Public())); err == nil || !strings.Contains(err.Error(), "public key is *rsa.PublicKey, want Ed25519") {
		t.Fatalf("RSA public key: %v", err)
	}
	if _, err := pemkey.ParseEd25519PublicKey([]byte("junk")); err == nil {
		t.Fatal("junk accepted")
	}
}

func TestLoadReadsAFileAndNamesItInParseErrors(t *testing.T) {
	dir := t.TempDir()
	write := func(name string, data []byte) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, data, 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	ed := write("ed.pem", pkcs8(testKeys.ed))
	edPub := write("ed.pub", pkix(testKeys.ed.Public()))
	ec := write("ec.pem", pkcs8(testKeys.ec))
	huge := write("huge.pem", make([]byte, pemkey.MaxFileSize+1))

	if k, err := pemkey.LoadEd25519PrivateKey(ed); err != nil || !k.Equal(testKeys.ed) {
		t.Fatalf("LoadEd25519PrivateKey: %v", err)
	}
	if k, err := pemkey.LoadEd25519PublicKey(edPub); err != nil || !k.Equal(testKeys.ed.Public()) {
		t.Fatalf("LoadEd25519PublicKey: %v", err)
	}
	if k, err := pemkey.LoadPrivateKey(ec); err != nil || !k.Public().(*ecdsa.PublicKey).Equal(testKeys.ec.Public()) {
		t.Fatalf("LoadPrivateKey: %v", err)
	}
	if k, err := pemkey.LoadPublicKey(ed); err != nil || !k.(ed25519.PublicKey).Equal(testKeys.ed.Public()) {
		t.Fatalf("LoadPublicKey: %v", err)
	}
	if _, err := pemkey.LoadEd25519PublicKey(ec); err == nil || !strings.HasPrefix(err.Error(), ec+": ") {
		t.Fatalf("a parse error must name the file: %v", err)
	}
	if _, err := pemkey.LoadPrivateKey(filepath.Join(dir, "missing.pem")); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("missing file: %v", err)
	}
	if _, err := pemkey.LoadPublicKey(huge); err == nil || !strings.Contains(err.Error(), "more than") {
		t.Fatalf("oversized file: %v", err)
	}
}
