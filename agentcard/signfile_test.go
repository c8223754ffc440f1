package agentcard

import (
	"context"
	"crypto/ecdsa"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

func writePEMFiles(t *testing.T, dir string, s svid, keyType string) (certFile, keyFile string) {
	t.Helper()
	var certs []byte
	for _, c := range s.chain {
		certs = append(certs, pemFromCert(c)...)
	}
	var der []byte
	var err error
	switch keyType {
	case "PRIVATE KEY":
		der, err = x509.MarshalPKCS8PrivateKey(s.key)
	case "EC PRIVATE KEY":
		der, err = x509.MarshalECPrivateKey(s.key.(*ecdsa.PrivateKey))
	}
	if err != nil {
		t.Fatal(err)
	}
	certFile, keyFile = filepath.Join(dir, "svid.pem"), filepath.Join(dir, "key.pem")
	if err := os.WriteFile(certFile, certs, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: keyType, Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	return certFile, keyFile
}

func TestSignFileWithCertificateAndKeyFiles(t *testing.T) {
	f := newFixture(t)
	dir := t.TempDir()
	in := filepath.Join(dir, "agent.json")
	if err := os.WriteFile(in, baseCard, 0o644); err != nil {
		t.Fatal(err)
	}
	for _, keyType := range []string{"PRIVATE KEY", "EC PRIVATE KEY"} {
		t.Run(keyType, func(t *testing.T) {
			s := f.ca.issue(t, testID, p256)
			certFile, keyFile := writePEMFiles(t, t.TempDir(), s, keyType)
			out := filepath.Join(dir, "nested", "dir", "agent-card.json")
			signed, info, err := SignFile(context.Background(), SignConfig{In: in, Out: out, CertFile: certFile, KeyFile: keyFile})
			if err != nil {
				t.Fatal(err)
			}
			if info.SPIFFEID != testID {
				t.Fatalf("%+v", info)
			}
			written, err := os.ReadFile(out)
			if err != nil || string(written) != string(signed) {
				t.Fatalf("written file differs: %v", err)
			}
			st, _ := os.Stat(out)
			if st.Mode().Perm() != 0o644 {
				t.Fatalf("mode %v, want 0644 (Kagenti's)", st.Mode())
			}
			if _, err := f.verifier(t).Verify(written); err != nil {
				t.Fatal(err)
			}
		})
	}
}

func TestSignFileRejects(t *testing.T) {
	f := newFixture(t)
	dir := t.TempDir()
	in := filepath.Join(dir, "agent.json")
	os.WriteFile(in, baseCard, 0o644)
	dupIn := filepath.Join(dir, "dup.json")
	os.WriteFile(dupIn, []byte(`{"name":"a","name":"b"}`), 0o644)
	certFile, keyFile := writePEMFiles(t, t.TempDir(), f.svid, "PRIVATE KEY")
	otherCert, otherKey := writePEMFiles(t, t.TempDir(), f.ca.issue(t, testID, p256), "PRIVATE KEY")
	badKey := filepath.Join(dir, "bad.pem")
	os.WriteFile(badKey, []byte("-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n"), 0o600)
	encKey := filepath.Join(dir, "enc.pem")
	os.WriteFile(encKey, []byte("-----BEGIN ENCRYPTED PRIVATE KEY-----\nAAAA\n-----END ENCRYPTED PRIVATE KEY-----\n"), 0o600)
	notPEM := filepath.Join(dir, "notpem.pem")
	os.WriteFile(notPEM, []byte("not a key"), 0o600)
	rsaSmall := f.ca.issue(t, testID, rsa1024)
	smallCert, smallKey := writePEMFiles(t, t.TempDir(), rsaSmall, "PRIVATE KEY")

	for _, tc := range []struct {
		name string
		cfg  SignConfig
		want string
	}{
		{"no input card", SignConfig{CertFile: certFile, KeyFile: keyFile}, "no input card"},
		{"no SVID source", SignConfig{In: in}, "either a Workload API address or a certificate and key"},
		{"both SVID sources", SignConfig{In: in, WorkloadAPIAddr: "unix:///x", CertFile: certFile, KeyFile: keyFile}, "either"},
		{"certificate without key", SignConfig{In: in, CertFile: certFile}, "both a certificate and a key"},
		{"card with duplicate keys", SignConfig{In: dupIn, CertFile: certFile, KeyFile: keyFile}, "duplicate"},
		{"missing card file", SignConfig{In: filepath.Join(dir, "missing"), CertFile: certFile, KeyFile: keyFile}, "reading the card"},
		{"key of another certificate", SignConfig{In: in, CertFile: certFile, KeyFile: otherKey}, "does not belong to the leaf"},
		{"invalid PEM key", SignConfig{In: in, CertFile: certFile, KeyFile: badKey}, "malformed private key"},
		{"encrypted key", SignConfig{In: in, CertFile: certFile, KeyFile: encKey}, "encrypted"},
		{"key file not PEM", SignConfig{In: in, CertFile: certFile, KeyFile: notPEM}, "no PEM block found"},
		{"RSA key too small", SignConfig{In: in, CertFile: smallCert, KeyFile: smallKey}, "smaller than 2048"},
		{"certificate file holds a key", SignConfig{In: in, CertFile: keyFile, KeyFile: keyFile}, "unexpected PEM block"},
		{"bad workload API address", SignConfig{In: in, WorkloadAPIAddr: "http://x"}, "workload API address"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, _, err := SignFile(context.Background(), tc.cfg)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want it to mention %q", err, tc.want)
			}
			if !strings.HasPrefix(err.Error(), "agentcard: ") {
				t.Fatalf("error %q lacks the package prefix", err)
			}
			if strings.Contains(err.Error(), "AAAA") {
				t.Fatal("error quotes key material")
			}
		})
	}
	_ = otherCert
}

func TestSignRejects(t *testing.T) {
	f := newFixture(t)
	ca := f.ca
	for _, tc := range []struct {
		name string
		run  func() error
	}{
		{"nil card", func() error { _, _, err := Sign(nil, f.svid.chain, f.svid.key); return err }},
		{"no certificates", func() error { _, _, err := Sign(baseCard, nil, f.svid.key); return err }},
		{"no key", func() error { _, _, err := Sign(baseCard, f.svid.chain, nil); return err }},
		{"nil SVID", func() error { _, _, err := SignWithSVID(baseCard, nil); return err }},
		{"key of another certificate", func() error { _, _, err := Sign(baseCard, f.svid.chain, newKey(t, p256)); return err }},
		{"RSA key too small", func() error {
			s := ca.issue(t, testID, rsa1024)
			_, _, err := Sign(baseCard, s.chain, s.key)
			return err
		}},
		{"expired leaf", func() error {
			s := ca.issue(t, testID, p256, withValidity(testNow.Add(-2*time.Hour), testNow.Add(-time.Hour)))
			_, _, err := Sign(baseCard, s.chain, s.key)
			return err
		}},
		{"CA leaf", func() error {
			s := ca.issue(t, testID, p256, func(c *x509.Certificate) { c.IsCA = true })
			_, _, err := Sign(baseCard, s.chain, s.key)
			return err
		}},
		{"leaf without a SPIFFE ID", func() error {
			s := ca.issue(t, "", p256)
			_, _, err := Sign(baseCard, s.chain, s.key)
			return err
		}},
		{"non-positive validity", func() error { _, _, err := Sign(baseCard, f.svid.chain, f.svid.key, WithValidity(0)); return err }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if err := tc.run(); err == nil || !strings.HasPrefix(err.Error(), "agentcard: ") {
				t.Fatalf("error %v", err)
			}
		})
	}
}

func TestSignWithValiditySetsExp(t *testing.T) {
	f := newFixture(t)
	_, info, err := Sign(baseCard, f.svid.chain, f.svid.key, WithSigningTime(testNow), WithValidity(10*time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	if got := info.ExpiresAt.Sub(info.IssuedAt); got != 10*time.Minute {
		t.Fatalf("exp-iat = %v", got)
	}
	// Without it, exp is the leaf's expiry.
	_, info, _ = Sign(baseCard, f.svid.chain, f.svid.key, WithSigningTime(testNow))
	if !info.ExpiresAt.Equal(f.svid.leaf().NotAfter) {
		t.Fatalf("exp %v, want leaf NotAfter %v", info.ExpiresAt, f.svid.leaf().NotAfter)
	}
}

func TestZeroKey(t *testing.T) {
	ec := newKey(t, p256).(*ecdsa.PrivateKey)
	ZeroKey(ec)
	if ec.D.Sign() != 0 {
		t.Fatal("ECDSA scalar not zeroed")
	}
}

func TestSignFileOverTheWorkloadAPI(t *testing.T) {
	f := newFixture(t)
	api := startFakeWorkloadAPI(t, f.svid, f.ca)
	dir := t.TempDir()
	in, out := filepath.Join(dir, "agent.json"), filepath.Join(dir, "out", "agent-card.json")
	os.WriteFile(in, baseCard, 0o644)
	_, info, err := SignFile(context.Background(), SignConfig{In: in, Out: out, WorkloadAPIAddr: api.addr, Timeout: 10 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	if info.SPIFFEID != testID {
		t.Fatalf("%+v", info)
	}
	// The bundle comes from the same Workload API.
	ctx := context.Background()
	src, closeFn, err := OpenBundles(ctx, api.addr, f.ca.td, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer closeFn()
	v, err := NewVerifier(src, WithTime(testNow), WithTrustDomain(f.ca.td))
	if err != nil {
		t.Fatal(err)
	}
	signed, _ := os.ReadFile(out)
	if _, err := v.Verify(signed); err != nil {
		t.Fatal(err)
	}
}

func TestSignFileFailsWithoutAnSVID(t *testing.T) {
	f := newFixture(t)
	api := startFakeWorkloadAPI(t, f.svid, f.ca)
	api.noSVIDs = true
	dir := t.TempDir()
	in, out := filepath.Join(dir, "agent.json"), filepath.Join(dir, "signed.json")
	os.WriteFile(in, baseCard, 0o644)
	if _, _, err := SignFile(context.Background(), SignConfig{In: in, Out: out, WorkloadAPIAddr: api.addr, Timeout: time.Minute}); err == nil {
		t.Fatal("signed without an SVID")
	}
	if _, err := os.Stat(out); err == nil {
		t.Fatal("a card was written although signing failed")
	}
}

// TestSignFileTimeoutIsTheWorkloadAPIDeadline checks the mechanism rather
// than the clock: the Workload API call carries a deadline no later than
// Timeout, and an agent that never answers ends the run with
// DeadlineExceeded. An ignored Timeout shows as a later deadline (the 30 s
// default) or none, never as a slow run to be timed.
func TestSignFileTimeoutIsTheWorkloadAPIDeadline(t *testing.T) {
	f := newFixture(t)
	api := startFakeWorkloadAPI(t, f.svid, f.ca)
	api.silent = true
	api.remaining = make(chan time.Duration, 1)
	in := filepath.Join(t.TempDir(), "agent.json")
	os.WriteFile(in, baseCard, 0o644)
	const timeout = 500 * time.Millisecond
	_, _, err := SignFile(context.Background(), SignConfig{In: in, WorkloadAPIAddr: api.addr, Timeout: timeout})
	if err == nil {
		t.Fatal("signed without an SVID")
	}
	if status.Code(err) != codes.DeadlineExceeded && !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("want the deadline to end the call, got %v", err)
	}
	select {
	case left := <-api.remaining:
		if left < 0 || left > timeout {
			t.Fatalf("the Workload API call had %v left at the agent, want a deadline within %v", left, timeout)
		}
	default:
		t.Fatal("the Workload API was never asked for an SVID")
	}
}

func TestSignConfigFromEnv(t *testing.T) {
	env := func(m map[string]string) func(string) string { return func(k string) string { return m[k] } }
	cfg, err := SignConfigFromEnv(env(nil))
	if err != nil {
		t.Fatal(err)
	}
	want := SignConfig{In: DefaultUnsignedCard, Out: DefaultSignedCard, WorkloadAPIAddr: DefaultSocket, Timeout: 30 * time.Second}
	if cfg.In != want.In || cfg.Out != want.Out || cfg.WorkloadAPIAddr != want.WorkloadAPIAddr || cfg.Timeout != want.Timeout {
		t.Fatalf("defaults %+v", cfg)
	}
	cfg, err = SignConfigFromEnv(env(map[string]string{
		EnvSocket: "unix:///run/spire/agent-sockets/spire-agent.sock", EnvUnsignedCard: "/in.json",
		EnvSignedCard: "/out.json", EnvSignTimeout: "5s",
	}))
	if err != nil || cfg.WorkloadAPIAddr != "unix:///run/spire/agent-sockets/spire-agent.sock" ||
		cfg.In != "/in.json" || cfg.Out != "/out.json" || cfg.Timeout != 5*time.Second {
		t.Fatalf("%+v %v", cfg, err)
	}
	for _, bad := range []string{"soon", "-1s", "0"} {
		if _, err := SignConfigFromEnv(env(map[string]string{EnvSignTimeout: bad})); err == nil {
			t.Errorf("SIGN_TIMEOUT=%q accepted", bad)
		}
	}
}
