package main

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"errors"
	"io"
	"math/big"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// cardPKI writes a root CA (bundle.pem) and an X509-SVID for id (svid.pem,
// key.pem) into dir.
func cardPKI(t *testing.T, dir, id string) {
	t.Helper()
	caKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	caTmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "root"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, caKey.Public(), caKey)
	if err != nil {
		t.Fatal(err)
	}
	ca, _ := x509.ParseCertificate(caDER)
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	u, _ := url.Parse(id)
	leafTmpl := &x509.Certificate{
		SerialNumber: big.NewInt(2), NotBefore: time.Now().Add(-time.Minute), NotAfter: time.Now().Add(time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, URIs: []*url.URL{u},
	}
	leafDER, err := x509.CreateCertificate(rand.Reader, leafTmpl, ca, key.Public(), caKey)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, _ := x509.MarshalPKCS8PrivateKey(key)
	write := func(name, typ string, der []byte) {
		if err := os.WriteFile(filepath.Join(dir, name), pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write("bundle.pem", "CERTIFICATE", caDER)
	write("svid.pem", "CERTIFICATE", leafDER)
	write("key.pem", "PRIVATE KEY", keyDER)
}

func runAgentid(t *testing.T, args ...string) (string, string, error) {
	t.Helper()
	var stdout, stderr bytes.Buffer
	root := newRootCmd(&stdout, &stderr)
	root.SetArgs(args)
	err := root.ExecuteContext(context.Background())
	return stdout.String(), stderr.String(), err
}

func TestCardSignAndVerify(t *testing.T) {
	dir := t.TempDir()
	const id = "spiffe://example.org/ns/agents/sa/weather"
	cardPKI(t, dir, id)
	in := filepath.Join(dir, "agent.json")
	os.WriteFile(in, []byte(`{"name":"Weather","description":"A & B","skills":[]}`), 0o644)
	out := filepath.Join(dir, "signed", "agent-card.json")

	_, stderr, err := runAgentid(t, "card", "sign", "--in", in, "--cert", filepath.Join(dir, "svid.pem"),
		"--key", filepath.Join(dir, "key.pem"), "--out", out)
	if err != nil {
		t.Fatalf("sign: %v\n%s", err, stderr)
	}
	if !strings.Contains(stderr, "spiffe_id="+id) || strings.Contains(stderr, "PRIVATE") {
		t.Fatalf("sign log %q", stderr)
	}

	verify := func(extra ...string) (map[string]any, error) {
		args := append([]string{"card", "verify", "--bundle", filepath.Join(dir, "bundle.pem"), "--trust-domain", "example.org"}, extra...)
		stdout, _, err := runAgentid(t, args...)
		var res map[string]any
		if jerr := json.Unmarshal([]byte(stdout), &res); jerr != nil {
			t.Fatalf("verify output is not JSON: %v\n%s", jerr, stdout)
		}
		return res, err
	}
	res, err := verify("--expect-id", id, out)
	if err != nil || res["verified"] != true || res["spiffe_id"] != id || res["binding"].(map[string]any)["bound"] != true {
		t.Fatalf("verify: %v %v", err, res)
	}

	// Another workload's ID: verified but not bound, exit status 1.
	res, err = verify("--expect-id", "spiffe://example.org/ns/agents/sa/billing", out)
	var ee exitError
	if !errors.As(err, &ee) || ee.code != 1 || res["verified"] != true || res["binding"].(map[string]any)["bound"] != false {
		t.Fatalf("unbound card: %v %v", err, res)
	}

	// A tampered card: not verified, exit status 1, a reason per signature.
	signed, _ := os.ReadFile(out)
	tampered := filepath.Join(dir, "tampered.json")
	os.WriteFile(tampered, bytes.Replace(signed, []byte("Weather"), []byte("Whether"), 1), 0o644)
	res, err = verify(tampered)
	if !errors.As(err, &ee) || res["verified"] != false {
		t.Fatalf("tampered card: %v %v", err, res)
	}
	if r := res["signatures"].([]any)[0].(map[string]any)["reason"]; r != "bad_signature" {
		t.Fatalf("reason %v", r)
	}

	// A file bundle needs a trust domain.
	if _, _, err := runAgentid(t, "card", "verify", "--bundle", filepath.Join(dir, "bundle.pem"), out); err == nil {
		t.Fatal("verify without --trust-domain accepted a file bundle")
	}
}

// TestCardSignInitContainerModeUsesKagentiEnv runs `card sign` configured
// only by the Kagenti signer's environment. The Workload API socket accepts
// connections but never answers, like an agent that has not attested the
// workload yet, so the run ends with the deadline SIGN_TIMEOUT sets (or
// hangs, until go test's -timeout, if nothing set one).
func TestCardSignInitContainerModeUsesKagentiEnv(t *testing.T) {
	dir := t.TempDir()
	in := filepath.Join(dir, "agent.json")
	os.WriteFile(in, []byte(`{"name":"a"}`), 0o644)
	sock := filepath.Join(dir, "silent-agent.sock")
	lis, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { lis.Close() })
	go func() {
		for {
			c, err := lis.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				io.Copy(io.Discard, c) // read, never answer
			}()
		}
	}()
	t.Setenv("UNSIGNED_CARD_PATH", in)
	t.Setenv("AGENT_CARD_PATH", filepath.Join(dir, "out.json"))
	t.Setenv("SPIFFE_ENDPOINT_SOCKET", "unix://"+sock)
	t.Setenv("SIGN_TIMEOUT", "300ms")
	_, _, err = runAgentid(t, "card", "sign")
	if err == nil || !strings.Contains(err.Error(), "silent-agent.sock") {
		t.Fatalf("want a Workload API error naming the env socket, got %v", err)
	}
	if status.Code(err) != codes.DeadlineExceeded && !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("want the SIGN_TIMEOUT deadline to end the run, got %v", err)
	}
	if _, err := os.Stat(filepath.Join(dir, "out.json")); err == nil {
		t.Fatal("a card was written although signing failed")
	}
}
