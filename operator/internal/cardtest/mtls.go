package cardtest

import (
	"errors"
	"net"
	"net/http"
	"testing"

	"github.com/spiffe/go-spiffe/v2/bundle/x509bundle"
	"github.com/spiffe/go-spiffe/v2/spiffetls/tlsconfig"
	"github.com/spiffe/go-spiffe/v2/svid/x509svid"
)

// NewMTLSServer starts a Server that serves card over SPIFFE mTLS on a
// loopback port: it presents svid and accepts any client SVID that
// verifies to bundles. It stops when the test ends.
func NewMTLSServer(t testing.TB, card []byte, svid *x509svid.SVID, bundles x509bundle.Source) *Server {
	t.Helper()
	s := &Server{card: card}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{
		Handler:   s.handler(),
		TLSConfig: tlsconfig.MTLSServerConfig(svid, bundles, tlsconfig.AuthorizeAny()),
	}
	done := make(chan error, 1)
	go func() { done <- srv.ServeTLS(l, "", "") }()
	t.Cleanup(func() {
		srv.Close()
		if err := <-done; err != nil && !errors.Is(err, http.ErrServerClosed) {
			t.Errorf("cardtest: mTLS server: %v", err)
		}
	})
	s.URL = "https://" + l.Addr().String()
	return s
}
