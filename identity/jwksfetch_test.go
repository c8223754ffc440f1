package identity_test

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/agentid/agentid/identity"
)

// jwksDoc returns a one-key JWKS document and its kid.
func jwksDoc(t testing.TB) ([]byte, string) {
	t.Helper()
	ks, err := identity.GenerateKeySet(identity.AlgES256, identity.KeySetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	doc, err := ks.JWKS()
	if err != nil {
		t.Fatal(err)
	}
	return doc, ks.ActiveKID()
}

// jwksServer serves h on plain http on 127.0.0.1 and counts requests.
func jwksServer(t *testing.T, h http.HandlerFunc) (*httptest.Server, *atomic.Int32) {
	t.Helper()
	var hits atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		h(w, r)
	}))
	t.Cleanup(srv.Close)
	return srv, &hits
}

func TestFetchJWKSOverHTTPS(t *testing.T) {
	doc, kid := jwksDoc(t)
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.Write(doc) }))
	defer srv.Close()
	j, err := identity.FetchJWKS(context.Background(), srv.URL+"/v1/jwks", identity.JWKSFetchOptions{Client: srv.Client()})
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := j.VerificationKey(kid); !ok {
		t.Fatalf("kid %s not in the fetched set %v", kid, j.KIDs())
	}
}

func TestFetchJWKSAcceptsPlainHTTPOnlyFromALoopbackIP(t *testing.T) {
	doc, _ := jwksDoc(t)
	srv, hits := jwksServer(t, func(w http.ResponseWriter, r *http.Request) { w.Write(doc) })
	port := srv.Listener.Addr().(*net.TCPAddr).Port
	for _, tt := range []struct {
		url string
		ok  bool
	}{
		{srv.URL, true}, // 127.0.0.1
		{fmt.Sprintf("http://127.0.0.1:%d/jwks", port), true},
		{fmt.Sprintf("http://localhost:%d/jwks", port), false}, // a name, which DNS or /etc/hosts could point elsewhere
		{"http://192.0.2.1/jwks", false},
		{"http://example.com/jwks", false},
		{"http://[::ffff:192.0.2.1]/jwks", false},
		{"ftp://127.0.0.1/jwks", false},
	} {
		t.Run(tt.url, func(t *testing.T) {
			before := hits.Load()
			_, err := identity.FetchJWKS(context.Background(), tt.url, identity.JWKSFetchOptions{Timeout: 2 * time.Second})
			if tt.ok && err != nil {
				t.Fatal(err)
			}
			if !tt.ok {
				if err == nil {
					t.Fatal("accepted")
				}
				if hits.Load() != before {
					t.Fatal("a refused URL was requested")
				}
			}
		})
	}
	if ln, err := net.Listen("tcp6", "[::1]:0"); err == nil {
		v6 := &httptest.Server{Listener: ln, Config: &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.Write(doc) })}}
		v6.Start()
		defer v6.Close()
		if _, err := identity.FetchJWKS(context.Background(), v6.URL, identity.JWKSFetchOptions{}); err != nil {
			t.Fatalf("http on [::1]: %v", err)
		}
	}
}

func TestFetchJWKSDoesNotFollowRedirects(t *testing.T) {
	doc, _ := jwksDoc(t)
	var servedElsewhere atomic.Bool
	srv, _ := jwksServer(t, func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/elsewhere" {
			servedElsewhere.Store(true)
			w.Write(doc)
			return
		}
		http.Redirect(w, r, "/elsewhere", http.StatusFound)
	})
	_, err := identity.FetchJWKS(context.Background(), srv.URL+"/jwks", identity.JWKSFetchOptions{})
	if err == nil || !strings.Contains(err.Error(), "302") || !strings.Contains(err.Error(), "redirects are not followed") {
		t.Fatalf("err = %v, want a 302 error", err)
	}
	if servedElsewhere.Load() {
		t.Fatal("the redirect was followed")
	}
}

func TestFetchJWKSRefusesAnythingButA200(t *testing.T) {
	for _, status := range []int{http.StatusNoContent, http.StatusNotFound, http.StatusInternalServerError} {
		srv, _ := jwksServer(t, func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(status) })
		_, err := identity.FetchJWKS(context.Background(), srv.URL, identity.JWKSFetchOptions{})
		if err == nil || !strings.Contains(err.Error(), fmt.Sprint(status)) {
			t.Errorf("status %d: err = %v", status, err)
		}
	}
}

func TestFetchJWKSRefusesABodyOver1MiB(t *testing.T) {
	doc, _ := jwksDoc(t)
	// A valid set padded with white space: still refused, not cut to a
	// prefix that parses.
	padded := append(append([]byte{}, doc...), strings.Repeat(" ", 1<<20)...)
	srv, _ := jwksServer(t, func(w http.ResponseWriter, r *http.Request) { w.Write(padded) })
	if _, err := identity.FetchJWKS(context.Background(), srv.URL, identity.JWKSFetchOptions{}); err == nil || !strings.Contains(err.Error(), "more than 1048576 bytes") {
		t.Fatalf("err = %v, want more than 1048576 bytes", err)
	}
}

func TestFetchJWKSGivesUpAfterTheTimeout(t *testing.T) {
	release := make(chan struct{})
	defer close(release)
	srv, _ := jwksServer(t, func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-release:
		case <-r.Context().Done():
		}
	})
	// The server answers only when the test ends: without the timeout the
	// fetch would never return (no clock is read here).
	_, err := identity.FetchJWKS(context.Background(), srv.URL, identity.JWKSFetchOptions{Timeout: 100 * time.Millisecond})
	if err == nil {
		t.Fatal("a server that never answers was accepted")
	}
}

func TestFetchJWKSAsksForJSONButAcceptsAnyContentType(t *testing.T) {
	doc, _ := jwksDoc(t)
	var accept atomic.Value
	srv, _ := jwksServer(t, func(w http.ResponseWriter, r *http.Request) {
		accept.Store(r.Header.Get("Accept"))
		w.Header().Set("Content-Type", "text/plain")
		w.Write(doc)
	})
	if _, err := identity.FetchJWKS(context.Background(), srv.URL, identity.JWKSFetchOptions{}); err != nil {
		t.Fatal(err)
	}
	if accept.Load() != "application/json" {
		t.Fatalf("Accept: %v", accept.Load())
	}
}

func TestFetchJWKSRefusesADocumentThatIsNotAJWKS(t *testing.T) {
	srv, _ := jwksServer(t, func(w http.ResponseWriter, r *http.Request) { w.Write([]byte(`{"keys":[],"keys":[]}`)) })
	if _, err := identity.FetchJWKS(context.Background(), srv.URL, identity.JWKSFetchOptions{}); err == nil {
		t.Fatal("a document with duplicate keys was accepted")
	}
}

func TestLoadJWKSReadsAFileOrFetchesAURLOnce(t *testing.T) {
	doc, kid := jwksDoc(t)
	file := filepath.Join(t.TempDir(), "jwks.json")
	os.WriteFile(file, doc, 0o600)
	srv, hits := jwksServer(t, func(w http.ResponseWriter, r *http.Request) { w.Write(doc) })
	for _, src := range []string{file, srv.URL} {
		j, err := identity.LoadJWKS(context.Background(), src, identity.JWKSFetchOptions{})
		if err != nil {
			t.Fatalf("%s: %v", src, err)
		}
		if _, ok := j.VerificationKey(kid); !ok {
			t.Fatalf("%s: kid missing", src)
		}
		// An unknown kid is not a reason to fetch again.
		if _, ok := j.VerificationKey("unknown"); ok {
			t.Fatal("unknown kid resolved")
		}
	}
	if hits.Load() != 1 {
		t.Fatalf("%d requests, want 1", hits.Load())
	}
	// Only http:// and https:// are URLs; anything else names a file.
	if _, err := identity.LoadJWKS(context.Background(), "ftp://127.0.0.1/jwks", identity.JWKSFetchOptions{}); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("ftp:// source: %v, want a missing file", err)
	}
	big := filepath.Join(t.TempDir(), "big.json")
	os.WriteFile(big, append(doc, strings.Repeat(" ", 1<<20)...), 0o600)
	if _, err := identity.LoadJWKS(context.Background(), big, identity.JWKSFetchOptions{}); err == nil {
		t.Fatal("a file over 1 MiB was accepted")
	}
}
