package policy_test

import (
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/agentid/agentid/policy"
)

func newEd25519(t *testing.T) (ed25519.PublicKey, ed25519.PrivateKey) {
	t.Helper()
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return pub, priv
}

func parse(t *testing.T, doc []byte) *policy.Policy {
	t.Helper()
	p, _, err := policy.Parse(doc)
	if err != nil {
		t.Fatalf("Parse: %v\n%s", err, doc)
	}
	return p
}

func TestSignVerifyRoundTrip(t *testing.T) {
	pub, priv := newEd25519(t)
	signed, err := policy.Sign([]byte(basePolicy), priv)
	if err != nil {
		t.Fatal(err)
	}
	// Only one line was added; everything else is byte for byte the same.
	added := strings.Replace(string(signed), "\n", "\n", -1)
	var extra []string
	for _, l := range strings.Split(added, "\n") {
		if !strings.Contains(basePolicy, l+"\n") {
			extra = append(extra, l)
		}
	}
	if len(extra) != 1 || !strings.HasPrefix(extra[0], `  signature: "ed25519:`) {
		t.Fatalf("Sign changed more than one line: %q\n%s", extra, signed)
	}
	p := parse(t, signed)
	if err := policy.VerifySignature(p, pub); err != nil {
		t.Fatalf("VerifySignature: %v", err)
	}
	// The signature does not change the hash.
	if h, _ := p.Hash(); h != mustHash(t, basePolicy) {
		t.Error("signing changed the policy hash")
	}
	// Re-signing replaces the line instead of adding a second one.
	_, priv2 := newEd25519(t)
	resigned, err := policy.Sign(signed, priv2)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Count(string(resigned), "signature:") != 1 {
		t.Fatalf("re-signing left %d signature lines", strings.Count(string(resigned), "signature:"))
	}
	if err := policy.VerifySignature(parse(t, resigned), pub); !errors.Is(err, policy.ErrSignatureInvalid) {
		t.Fatalf("old key on re-signed policy: %v, want ErrSignatureInvalid", err)
	}
	if err := policy.VerifySignature(parse(t, resigned), priv2.Public().(ed25519.PublicKey)); err != nil {
		t.Fatalf("new key on re-signed policy: %v", err)
	}
}

func TestSignKeepsCommentsAndCRLF(t *testing.T) {
	_, priv := newEd25519(t)
	doc := "# header comment\r\n" + strings.ReplaceAll(strings.Replace(basePolicy, "metadata:\n", "metadata:   # md\n    # indented comment\n", 1), "\n", "\r\n")
	doc = strings.ReplaceAll(doc, "\r\n  name: secure-agent", "\r\n  name: secure-agent") // keep
	signed, err := policy.Sign([]byte(doc), priv)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(signed), "# header comment\r\n") || !strings.Contains(string(signed), "metadata:   # md\r\n") {
		t.Fatalf("comments lost:\n%s", signed)
	}
	if strings.Count(string(signed), "\r\n") != strings.Count(doc, "\r\n")+1 {
		t.Fatalf("line endings changed")
	}
}

func TestSignJSONDocument(t *testing.T) {
	pub, priv := newEd25519(t)
	doc := `{"apiVersion":"aip.io/v1alpha2","kind":"AgentPolicy","metadata":{"name":"j"},"spec":{"allowed_tools":["a"]}}`
	signed, err := policy.Sign([]byte(doc), priv)
	if err != nil {
		t.Fatal(err)
	}
	if err := policy.VerifySignature(parse(t, signed), pub); err != nil {
		t.Fatalf("VerifySignature: %v\n%s", err, signed)
	}
}

func TestSignRefusesFlowMetadata(t *testing.T) {
	_, priv := newEd25519(t)
	doc := "apiVersion: aip.io/v1alpha2\nkind: AgentPolicy\nmetadata: {name: x}\nspec: {}\n"
	if _, err := policy.Sign([]byte(doc), priv); err == nil {
		t.Fatal("Sign of a flow-style metadata: want an error")
	}
}

func TestVerifySignatureFailures(t *testing.T) {
	pub, priv := newEd25519(t)
	signed, err := policy.Sign([]byte(basePolicy), priv)
	if err != nil {
		t.Fatal(err)
	}
	otherPub, _ := newEd25519(t)

	t.Run("missing", func(t *testing.T) {
		err := policy.VerifySignature(parse(t, []byte(basePolicy)), pub)
		if !errors.Is(err, policy.ErrSignatureMissing) {
			t.Fatalf("got %v, want ErrSignatureMissing", err)
		}
	})
	t.Run("wrong key", func(t *testing.T) {
		if err := policy.VerifySignature(parse(t, signed), otherPub); !errors.Is(err, policy.ErrSignatureInvalid) {
			t.Fatalf("got %v, want ErrSignatureInvalid", err)
		}
	})
	t.Run("tampered policy", func(t *testing.T) {
		tampered := strings.Replace(string(signed), "- read_file", "- write_file", 1)
		if err := policy.VerifySignature(parse(t, []byte(tampered)), pub); !errors.Is(err, policy.ErrSignatureInvalid) {
			t.Fatalf("got %v, want ErrSignatureInvalid", err)
		}
	})
	t.Run("tampered signature", func(t *testing.T) {
		i := strings.Index(string(signed), "ed25519:") + len("ed25519:") + 5
		b := []byte(string(signed))
		if b[i] == 'A' {
			b[i] = 'B'
		} else {
			b[i] = 'A'
		}
		if err := policy.VerifySignature(parse(t, b), pub); !errors.Is(err, policy.ErrSignatureInvalid) {
			t.Fatalf("got %v, want ErrSignatureInvalid", err)
		}
	})
	t.Run("comment added still verifies", func(t *testing.T) {
		commented := "# reviewed\n" + string(signed)
		if err := policy.VerifySignature(parse(t, []byte(commented)), pub); err != nil {
			t.Fatalf("got %v", err)
		}
	})
	for name, sig := range map[string]string{
		"other algorithm": "ecdsa-p256:AAAA",
		"no algorithm":    "AAAA",
		"bad base64":      "ed25519:!!!!",
		"short":           "ed25519:AAAA",
		"uppercase alg":   "ED25519:" + strings.Repeat("A", 86) + "==",
	} {
		t.Run("malformed "+name, func(t *testing.T) {
			p := parse(t, []byte(basePolicy))
			p.Metadata.Signature = sig
			if err := policy.VerifySignature(p, pub); !errors.Is(err, policy.ErrSignatureMalformed) {
				t.Fatalf("got %v, want ErrSignatureMalformed", err)
			}
			if err := policy.CheckSignatureFormat(p); !errors.Is(err, policy.ErrSignatureMalformed) {
				t.Fatalf("CheckSignatureFormat: got %v", err)
			}
		})
	}
}

func TestLoadVerifiedRefusesAPolicyWhoseSignatureCannotBeTrusted(t *testing.T) {
	pub, priv := newEd25519(t)
	otherPub, _ := newEd25519(t)
	signed, err := policy.Sign([]byte(basePolicy), priv)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	write := func(name, doc string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(doc), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	unsigned := write("unsigned.yaml", basePolicy)
	good := write("signed.yaml", string(signed))
	malformed := write("malformed.yaml", strings.Replace(basePolicy, "metadata:\n", "metadata:\n  signature: \"ed25519:AAAA\"\n", 1))
	tampered := write("tampered.yaml", strings.Replace(string(signed), "name:", "name: x", 1))
	for _, tt := range []struct {
		name, path string
		pub        ed25519.PublicKey
		want       error // nil: loads
	}{
		{"unsigned, no key", unsigned, nil, nil},
		{"signed, no key: loads, unverified", good, nil, nil},
		{"malformed signature, no key", malformed, nil, policy.ErrSignatureMalformed},
		{"signed, right key", good, pub, nil},
		{"unsigned, key", unsigned, pub, policy.ErrSignatureMissing},
		{"signed, other key", good, otherPub, policy.ErrSignatureInvalid},
		{"tampered, key", tampered, pub, policy.ErrSignatureInvalid},
		{"malformed signature, key", malformed, pub, policy.ErrSignatureMalformed},
	} {
		t.Run(tt.name, func(t *testing.T) {
			p, _, err := policy.LoadVerified(tt.path, tt.pub)
			if tt.want == nil {
				if err != nil || p == nil {
					t.Fatalf("LoadVerified: %v", err)
				}
				return
			}
			if !errors.Is(err, tt.want) || p != nil {
				t.Fatalf("LoadVerified = %v, %v; want %v", p, err, tt.want)
			}
			if !strings.Contains(err.Error(), tt.path) {
				t.Errorf("the error does not name the file: %v", err)
			}
		})
	}
}
