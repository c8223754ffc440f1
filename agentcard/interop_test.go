package agentcard

import (
	"bytes"
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/agentid/agentid/internal/testenv"
)

// The interop test signs and verifies cards with npm jose (pinned in
// test/interop/package.json with a lockfile), an implementation that shares
// no code with ours: its script canonicalizes with JavaScript's own
// JSON.stringify over sorted keys, which is what RFC 8785 was modelled on.

func interopDir(t *testing.T) string {
	t.Helper()
	dir, err := filepath.Abs(filepath.Join("..", "test", "interop"))
	if err != nil {
		t.Fatal(err)
	}
	missing := ""
	if _, err := exec.LookPath("node"); err != nil {
		missing = "node is not on PATH"
	} else if _, err := os.Stat(filepath.Join(dir, "node_modules", "jose", "package.json")); err != nil {
		missing = "npm jose is not installed: run npm ci in test/interop"
	}
	if missing != "" {
		testenv.RequireComponent(t, "the npm jose interop setup", errors.New(missing))
	}
	return dir
}

func runNode(t *testing.T, dir string, args ...string) ([]byte, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	var stdout, stderr bytes.Buffer
	cmd := exec.CommandContext(ctx, "node", append([]string{filepath.Join(dir, "card.mjs")}, args...)...)
	cmd.Dir = dir
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	if err != nil {
		t.Logf("node %s: %v\n%s", strings.Join(args, " "), err, stderr.Bytes())
	}
	return stdout.Bytes(), err
}

func TestInteropNpmJose(t *testing.T) {
	dir := interopDir(t)
	f := newFixture(t)
	work := t.TempDir()
	cardPath := filepath.Join(work, "agent.json")
	if err := os.WriteFile(cardPath, baseCard, 0o644); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		kind keyKind
		alg  Algorithm
	}{{p256, ES256}, {p384, ES384}, {p521, ES512}, {rsa2048, RS256}, {rsa2048, PS256}} {
		t.Run("a card signed by npm jose with x5c verifies: "+string(tc.alg), func(t *testing.T) {
			s := f.ca.issue(t, testID, tc.kind, withValidity(time.Now().Add(-time.Hour), time.Now().Add(time.Hour)))
			certFile, keyFile := writePEMFiles(t, t.TempDir(), s, "PRIVATE KEY")
			signed, err := runNode(t, dir, "sign", cardPath, certFile, keyFile, string(tc.alg))
			if err != nil {
				t.Fatal(err)
			}
			v, err := NewVerifier(f.bundles, WithExpectedID(mustID(t, testID)))
			if err != nil {
				t.Fatal(err)
			}
			res, err := v.Verify(signed)
			if err != nil {
				t.Fatalf("%v\n%+v", err, res)
			}
			if res.Algorithm != string(tc.alg) || res.SPIFFEID != testID {
				t.Fatalf("%+v", res)
			}
			// A change after signing breaks it, as with our own cards.
			tampered := bytes.Replace(signed, []byte("Weather Agent"), []byte("Weather Agent "), 1)
			if _, err := v.Verify(tampered); err == nil {
				t.Fatal("tampered card verified")
			}
		})
	}
	// Other signers name their keys as they like (A2A's examples use
	// "key-1"); with the key taken from the verified x5c, kid is a label.
	t.Run("a card signed by npm jose with its own kid verifies and reports it", func(t *testing.T) {
		s := f.ca.issue(t, testID, p256, withValidity(time.Now().Add(-time.Hour), time.Now().Add(time.Hour)))
		certFile, keyFile := writePEMFiles(t, t.TempDir(), s, "PRIVATE KEY")
		signed, err := runNode(t, dir, "sign", cardPath, certFile, keyFile, "ES256", "k1")
		if err != nil {
			t.Fatal(err)
		}
		v, err := NewVerifier(f.bundles, WithExpectedID(mustID(t, testID)))
		if err != nil {
			t.Fatal(err)
		}
		res, err := v.Verify(signed)
		if err != nil {
			t.Fatalf("%v\n%+v", err, res)
		}
		if res.Signatures[0].KeyID != "k1" {
			t.Fatalf("kid reported as %q, want k1", res.Signatures[0].KeyID)
		}
	})
	t.Run("a card signed by agentid verifies with npm jose", func(t *testing.T) {
		for _, kind := range []keyKind{p256, rsa2048} {
			s := f.ca.issue(t, testID, kind, withValidity(time.Now().Add(-time.Hour), time.Now().Add(time.Hour)))
			signed, _, err := Sign(baseCard, s.chain, s.key)
			if err != nil {
				t.Fatal(err)
			}
			path := filepath.Join(work, "signed.json")
			os.WriteFile(path, signed, 0o644)
			if out, err := runNode(t, dir, "verify", path); err != nil || string(out) != "ok\n" {
				t.Fatalf("npm jose rejected our card: %v %q", err, out)
			}
			os.WriteFile(path, bytes.Replace(signed, []byte("Forecasts"), []byte("Forecast"), 1), 0o644)
			if _, err := runNode(t, dir, "verify", path); err == nil {
				t.Fatal("npm jose accepted a tampered card: the interop check proves nothing")
			}
		}
	})
}
