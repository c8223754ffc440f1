package agentcard

import (
	"context"
	"crypto/x509"
	"encoding/pem"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/spiffe/go-spiffe/v2/bundle/spiffebundle"
	"github.com/spiffe/go-spiffe/v2/spiffeid"
)

func spiffeBundleJSON(t testing.TB, cas ...*testCA) []byte {
	t.Helper()
	b := spiffebundle.New(cas[0].td)
	for _, ca := range cas {
		b.AddX509Authority(ca.cert)
	}
	data, err := b.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	return data
}

func pemBundle(cas ...*testCA) []byte {
	var out []byte
	for _, ca := range cas {
		out = append(out, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: ca.cert.Raw})...)
	}
	return out
}

func TestParseBundle(t *testing.T) {
	ca := newCA(t, "example.org")
	ca2 := newCA(t, "example.org")
	td := ca.td
	t.Run("SPIFFE bundle JSON", func(t *testing.T) {
		b, err := ParseBundle(td, spiffeBundleJSON(t, ca, ca2))
		if err != nil || len(b.X509Authorities()) != 2 {
			t.Fatalf("%v", err)
		}
	})
	t.Run("SPIFFE bundle JSON ignores jwt-svid keys", func(t *testing.T) {
		doc := strings.Replace(string(spiffeBundleJSON(t, ca)), `"keys":[`,
			`"keys":[{"use":"jwt-svid","kty":"EC","kid":"k","crv":"P-256","x":"MKBCTNIcKUSDii11ySs3526iDZ8AiTo7Tu6KPAqv7D4","y":"4Etl6SRW2YiLUrN5vfvVHuhp7x8PxltmWWlbbM4IFyM"},`, 1)
		b, err := ParseBundle(td, []byte(doc))
		if err != nil || len(b.X509Authorities()) != 1 {
			t.Fatalf("%v", err)
		}
	})
	t.Run("PEM bundle", func(t *testing.T) {
		b, err := ParseBundle(td, pemBundle(ca, ca2))
		if err != nil || len(b.X509Authorities()) != 2 {
			t.Fatalf("%v", err)
		}
	})
	for _, tc := range []struct {
		name string
		data []byte
	}{
		{"invalid JSON", []byte(`{"keys":[`)},
		{"JSON with duplicate keys", []byte(`{"keys":[],"keys":[]}`)},
		{"no keys member", []byte(`{"spiffe_sequence":1}`)},
		{"no X.509 authority (empty bundle)", []byte(`{"keys":[]}`)},
		{"empty document", []byte(``)},
		{"PEM with a non-certificate block", append(pemBundle(ca), []byte("-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n")...)},
		{"PEM with trailing junk", append(pemBundle(ca), []byte("junk")...)},
		{"PEM certificate that does not parse", []byte("-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n")},
		{"authority that is not a CA", pemFromCert(newCA(t, "example.org").issue(t, testID, p256).leaf())},
	} {
		t.Run("rejects "+tc.name, func(t *testing.T) {
			if _, err := ParseBundle(td, tc.data); err == nil {
				t.Fatal("accepted")
			}
		})
	}
	t.Run("rejects a zero trust domain", func(t *testing.T) {
		if _, err := ParseBundle(spiffeid.TrustDomain{}, pemBundle(ca)); err == nil {
			t.Fatal("accepted")
		}
	})
}

func pemFromCert(c *x509.Certificate) []byte {
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.Raw})
}

func TestReloadingBundleFromFile(t *testing.T) {
	f := newFixture(t)
	path := filepath.Join(t.TempDir(), "bundle.spiffe")
	if err := os.WriteFile(path, spiffeBundleJSON(t, f.ca), 0o644); err != nil {
		t.Fatal(err)
	}
	rb, err := NewReloadingBundle(context.Background(), f.ca.td, FileBundleLoader(path), time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	clock := testNow
	rb.now = func() time.Time { return clock }
	v := f.verifier(t)
	v.bundles = rb
	signed := f.sign(t, baseCard)
	if _, err := v.Verify(signed); err != nil {
		t.Fatal(err)
	}
	digest := rb.Digest()

	// A CA rotation that removes the old CA: after the refresh interval
	// the new file is read and the old SVID's card no longer verifies.
	rotated := newCA(t, "example.org")
	if err := os.WriteFile(path, pemBundle(rotated), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := v.Verify(signed); err != nil {
		t.Fatal("reloaded before the refresh interval")
	}
	clock = clock.Add(2 * time.Hour)
	res, err := v.Verify(signed)
	if err == nil || res.Signatures[0].Reason != ReasonChain {
		t.Fatalf("old CA still trusted after rotation: %v", err)
	}
	if rb.Digest() == digest {
		t.Fatal("digest did not change")
	}

	// A broken bundle keeps the last good one and reports the failure.
	if err := os.WriteFile(path, []byte(`{"keys":`), 0o644); err != nil {
		t.Fatal(err)
	}
	clock = clock.Add(2 * time.Hour)
	fresh := rotated.issue(t, testID, p256)
	card, _, err := Sign(baseCard, fresh.chain, fresh.key, WithSigningTime(testNow))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := v.Verify(card); err != nil {
		t.Fatalf("last good bundle dropped on a failed refresh: %v", err)
	}
	if rb.LastError() == nil || !strings.Contains(rb.LastError().Error(), "trust bundle unavailable") {
		t.Fatalf("LastError = %v", rb.LastError())
	}
	// Lookups for other trust domains fail.
	if _, err := rb.GetX509BundleForTrustDomain(spiffeid.RequireTrustDomainFromString("other.org")); err == nil {
		t.Fatal("served another trust domain")
	}
}

func TestReloadingBundleFirstLoadMustSucceed(t *testing.T) {
	td := spiffeid.RequireTrustDomainFromString("example.org")
	_, err := NewReloadingBundle(context.Background(), td, FileBundleLoader(filepath.Join(t.TempDir(), "missing")), 0)
	if err == nil || !strings.Contains(err.Error(), "trust bundle unavailable") {
		t.Fatalf("%v", err)
	}
}

func TestURLBundleLoader(t *testing.T) {
	ca := newCA(t, "example.org")
	var hits atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		switch r.URL.Path {
		case "/bundle":
			w.Write(spiffeBundleJSON(t, ca))
		case "/redirect":
			http.Redirect(w, r, "/bundle", http.StatusFound)
		default:
			http.Error(w, "secret internal detail", http.StatusInternalServerError)
		}
	}))
	defer srv.Close()
	ctx := context.Background()
	rb, err := NewReloadingBundle(ctx, ca.td, URLBundleLoader(srv.URL+"/bundle", nil), 0)
	if err != nil {
		t.Fatal(err)
	}
	if b, err := rb.GetX509BundleForTrustDomain(ca.td); err != nil || len(b.X509Authorities()) != 1 {
		t.Fatal(err)
	}
	if _, err := URLBundleLoader(srv.URL+"/redirect", nil)(ctx); err == nil {
		t.Fatal("followed a redirect")
	}
	_, err = URLBundleLoader(srv.URL+"/error", nil)(ctx)
	if err == nil || strings.Contains(err.Error(), "secret") {
		t.Fatalf("error %v must report the status, not the body", err)
	}
}

func TestBundlesKeepsTrustDomainsApart(t *testing.T) {
	a := newCA(t, "a.example")
	b := newCA(t, "b.example")
	set := NewBundles()
	set.Add(a.td, a.bundle())
	set.Add(b.td, b.bundle())
	// b's CA issues an SVID claiming trust domain a: it must be checked
	// against a's bundle only, where b's CA is not.
	forged := b.issue(t, "spiffe://a.example/agent", p256)
	card := handSignCard(t, forged)
	v, err := NewVerifier(set, WithTime(testNow))
	if err != nil {
		t.Fatal(err)
	}
	res, err := v.Verify(card)
	if err == nil || res.Signatures[0].Reason != ReasonChain {
		t.Fatalf("%v %+v", err, res)
	}
	good := handSignCard(t, b.issue(t, "spiffe://b.example/agent", p256))
	if _, err := v.Verify(good); err != nil {
		t.Fatal(err)
	}
	if _, err := set.GetX509BundleForTrustDomain(spiffeid.RequireTrustDomainFromString("c.example")); err == nil {
		t.Fatal("unknown trust domain served")
	}
}

func handSignCard(t *testing.T, s svid) []byte {
	p, sig := handSign(t, baseCard, jwsSpec{header: stdHeader(s, ES256), key: s.key, alg: ES256})
	return withSigs(t, baseCard, [2]string{p, sig})
}

// A trust bundle is the root of trust: it is never fetched in the clear
// from a host that could be impersonated.
func TestOpenBundlesRefusesATrustBundleOverPlainHTTPFromAHostName(t *testing.T) {
	td := spiffeid.RequireTrustDomainFromString("example.org")
	for _, loc := range []string{"http://bundles.example.org/b.json", "http://localhost:8080/b.json", "ftp://127.0.0.1/b.json"} {
		if _, _, err := OpenBundles(context.Background(), loc, td, time.Minute); err == nil || !strings.Contains(err.Error(), "trust bundle URL") {
			t.Errorf("OpenBundles(%q): %v, want a refusal", loc, err)
		}
	}
}
