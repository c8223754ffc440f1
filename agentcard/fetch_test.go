package agentcard

import (
	"context"
	"crypto/tls"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/spiffe/go-spiffe/v2/spiffeid"
	"github.com/spiffe/go-spiffe/v2/spiffetls/tlsconfig"
	"github.com/spiffe/go-spiffe/v2/svid/x509svid"
)

func TestFetchCard(t *testing.T) {
	card := []byte(`{"name":"a"}`)
	other := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.Write(card) }))
	defer other.Close()
	mux := http.NewServeMux()
	mux.HandleFunc("/card.json", func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Accept") != "application/json" {
			http.Error(w, "accept", http.StatusBadRequest)
			return
		}
		w.Write(card)
	})
	mux.HandleFunc("/huge.json", func(w http.ResponseWriter, r *http.Request) {
		w.Write([]byte(`{"x":"` + strings.Repeat("a", MaxCardSize) + `"}`))
	})
	mux.HandleFunc("/error.json", func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "stack trace with secrets", http.StatusInternalServerError)
	})
	mux.HandleFunc("/offsite.json", func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, other.URL+"/card.json", http.StatusFound)
	})
	mux.HandleFunc("/onsite.json", func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, "/card.json", http.StatusFound)
	})
	mux.HandleFunc("/slow.json", func(w http.ResponseWriter, r *http.Request) {
		<-r.Context().Done()
	})
	legacy := http.NewServeMux()
	legacy.HandleFunc("/.well-known/agent.json", func(w http.ResponseWriter, r *http.Request) { w.Write(card) })
	srv := httptest.NewServer(mux)
	defer srv.Close()
	legacySrv := httptest.NewServer(legacy)
	defer legacySrv.Close()
	emptySrv := httptest.NewServer(http.NotFoundHandler())
	defer emptySrv.Close()
	ctx := context.Background()

	t.Run("reads a card URL as is", func(t *testing.T) {
		f, err := FetchCard(ctx, srv.URL+"/card.json", FetchOptions{})
		if err != nil || string(f.Card) != string(card) || !f.PeerID.IsZero() {
			t.Fatalf("%v %+v", err, f)
		}
	})
	t.Run("base URL reads /.well-known/agent-card.json first", func(t *testing.T) {
		both := http.NewServeMux()
		both.HandleFunc(WellKnownPath, func(w http.ResponseWriter, r *http.Request) { w.Write([]byte(`{"v":"new"}`)) })
		both.HandleFunc(LegacyWellKnownPath, func(w http.ResponseWriter, r *http.Request) { w.Write([]byte(`{"v":"old"}`)) })
		bothSrv := httptest.NewServer(both)
		defer bothSrv.Close()
		for _, base := range []string{bothSrv.URL, bothSrv.URL + "/"} {
			f, err := FetchCard(ctx, base, FetchOptions{})
			if err != nil || string(f.Card) != `{"v":"new"}` || !strings.HasSuffix(f.URL, WellKnownPath) {
				t.Fatalf("%s: %v %+v", base, err, f)
			}
		}
	})
	t.Run("falls back to /.well-known/agent.json only on 404", func(t *testing.T) {
		f, err := FetchCard(ctx, legacySrv.URL, FetchOptions{})
		if err != nil || string(f.Card) != string(card) {
			t.Fatalf("%v", err)
		}
	})
	t.Run("both paths 404", func(t *testing.T) {
		if _, err := FetchCard(ctx, emptySrv.URL, FetchOptions{}); err == nil {
			t.Fatal("no error")
		}
	})
	t.Run("refuses a card over 1 MiB", func(t *testing.T) {
		_, err := FetchCard(ctx, srv.URL+"/huge.json", FetchOptions{})
		if err == nil || !strings.Contains(err.Error(), "more than") {
			t.Fatalf("%v", err)
		}
	})
	t.Run("non-200 error does not carry the body", func(t *testing.T) {
		_, err := FetchCard(ctx, srv.URL+"/error.json", FetchOptions{})
		if err == nil || !strings.Contains(err.Error(), "status 500") || strings.Contains(err.Error(), "secrets") {
			t.Fatalf("%v", err)
		}
	})
	t.Run("refuses a redirect to another host", func(t *testing.T) {
		_, err := FetchCard(ctx, srv.URL+"/offsite.json", FetchOptions{})
		if err == nil || !strings.Contains(err.Error(), "another origin") {
			t.Fatalf("%v", err)
		}
	})
	t.Run("follows a redirect on the same origin", func(t *testing.T) {
		if _, err := FetchCard(ctx, srv.URL+"/onsite.json", FetchOptions{}); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("the timeout ends a fetch from a server that never answers", func(t *testing.T) {
		// /slow.json answers only once the client has gone, so the fetch
		// can end only by its own deadline: without one it would hang
		// until go test's -timeout.
		_, err := FetchCard(ctx, srv.URL+"/slow.json", FetchOptions{Timeout: 200 * time.Millisecond})
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("want context.DeadlineExceeded, got %v", err)
		}
	})
	t.Run("refuses other schemes and credentials", func(t *testing.T) {
		for _, u := range []string{"file:///etc/passwd", "ftp://x/card.json", "http://user:pw@127.0.0.1/card.json"} {
			if _, err := FetchCard(ctx, u, FetchOptions{}); err == nil {
				t.Errorf("%s accepted", u)
			}
		}
	})
	t.Run("SPIFFE mTLS needs https and both sources", func(t *testing.T) {
		fx := newFixture(t)
		s := &x509svid.SVID{Certificates: fx.svid.chain, PrivateKey: fx.svid.key}
		if _, err := FetchCard(ctx, srv.URL+"/card.json", FetchOptions{SVIDs: s, Bundles: fx.bundles}); err == nil {
			t.Fatal("mTLS over http accepted")
		}
		if _, err := FetchCard(ctx, "https://127.0.0.1/card.json", FetchOptions{SVIDs: s}); err == nil {
			t.Fatal("mTLS without bundles accepted")
		}
	})
}

func TestFetchCardOverSPIFFEmTLSBindsServerToSigner(t *testing.T) {
	fx := newFixture(t)
	serverSVID := func(s svid) *x509svid.SVID {
		id, _ := x509svid.IDFromCert(s.leaf())
		return &x509svid.SVID{ID: id, Certificates: s.chain, PrivateKey: s.key}
	}
	// Client and server SVIDs must allow TLS use (SPIRE's carry
	// serverAuth and clientAuth; so do the test PKI's).
	signer := serverSVID(fx.svid)
	impostor := serverSVID(fx.ca.issue(t, "spiffe://example.org/ns/agents/sa/impostor", p256))
	client := serverSVID(fx.ca.issue(t, "spiffe://example.org/ns/system/sa/operator", p256))
	// Certificates must be valid at the real current time for TLS.
	signedCard := fx.sign(t, baseCard)

	// httptest's StartTLS would put its own certificate first, so serve
	// over a plain TLS listener with the SPIFFE server config.
	serve := func(s *x509svid.SVID) (url string, stop func()) {
		ln, err := tls.Listen("tcp", "127.0.0.1:0",
			tlsconfig.MTLSServerConfig(s, fx.bundles, tlsconfig.AuthorizeMemberOf(spiffeid.RequireTrustDomainFromString("example.org"))))
		if err != nil {
			t.Fatal(err)
		}
		srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.Write(signedCard)
		}), ReadHeaderTimeout: 5 * time.Second}
		go srv.Serve(ln)
		return "https://" + ln.Addr().String(), func() { srv.Close() }
	}
	v := fx.verifier(t)
	for _, tc := range []struct {
		name   string
		server *x509svid.SVID
		ok     bool
	}{
		{"served by the signer", signer, true},
		{"served by another workload (Service hijack)", impostor, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			base, stop := serve(tc.server)
			defer stop()
			f, err := FetchCard(context.Background(), base+WellKnownPath, FetchOptions{SVIDs: client, Bundles: fx.bundles})
			if err != nil {
				t.Fatal(err)
			}
			if f.PeerID != tc.server.ID {
				t.Fatalf("peer %s, want %s", f.PeerID, tc.server.ID)
			}
			res, err := v.Verify(f.Card)
			if err != nil {
				t.Fatal(err)
			}
			err = f.CheckSigner(res)
			if (err == nil) != tc.ok {
				t.Fatalf("CheckSigner = %v", err)
			}
		})
	}
	t.Run("server outside the bundles is refused at the handshake", func(t *testing.T) {
		rogue := newCA(t, "example.org")
		base, stop := serve(serverSVID(rogue.issue(t, testID, p256)))
		defer stop()
		if _, err := FetchCard(context.Background(), base+WellKnownPath, FetchOptions{SVIDs: client, Bundles: fx.bundles}); err == nil {
			t.Fatal("handshake with an untrusted server succeeded")
		}
	})
}
