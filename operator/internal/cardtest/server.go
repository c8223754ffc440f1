package cardtest

import (
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/agentid/agentid/agentcard"
)

// Server serves one AgentCard at agentcard.WellKnownPath, as an agent pod
// does after its signer init-container ran, and counts the fetches.
type Server struct {
	URL string

	mu      sync.Mutex
	card    []byte
	clients []string // the URI SANs of the client certificates seen, in order
	fetches atomic.Int64
}

// NewServer starts a Server for card on a loopback port; it stops when the
// test ends.
func NewServer(t testing.TB, card []byte) *Server {
	t.Helper()
	s := &Server{card: card}
	ts := httptest.NewServer(s.handler())
	t.Cleanup(ts.Close)
	s.URL = ts.URL
	return s
}

func (s *Server) handler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != agentcard.WellKnownPath {
			http.NotFound(w, r)
			return
		}
		s.fetches.Add(1)
		s.mu.Lock()
		body := s.card
		if r.TLS != nil && len(r.TLS.PeerCertificates) > 0 {
			for _, u := range r.TLS.PeerCertificates[0].URIs {
				s.clients = append(s.clients, u.String())
			}
		}
		s.mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		w.Write(body)
	})
}

// SetCard replaces the card that the server serves.
func (s *Server) SetCard(card []byte) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.card = card
}

// Fetches reports how many times the card was fetched.
func (s *Server) Fetches() int64 { return s.fetches.Load() }

// ClientIDs are the URI SANs (SPIFFE IDs) of the client certificates that
// fetched the card over mTLS, in order.
func (s *Server) ClientIDs() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.clients...)
}
