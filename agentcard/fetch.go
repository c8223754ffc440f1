package agentcard

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"sync"
	"time"

	"github.com/spiffe/go-spiffe/v2/bundle/x509bundle"
	"github.com/spiffe/go-spiffe/v2/spiffeid"
	"github.com/spiffe/go-spiffe/v2/spiffetls/tlsconfig"
	"github.com/spiffe/go-spiffe/v2/svid/x509svid"

	"github.com/agentid/agentid/internal/readlimit"
)

// The well-known card paths: A2A's current one and the legacy one that
// Kagenti falls back to on 404.
const (
	WellKnownPath       = "/.well-known/agent-card.json"
	LegacyWellKnownPath = "/.well-known/agent.json"
)

// FetchOptions configures FetchCard.
type FetchOptions struct {
	// Timeout bounds the whole fetch, fallback included; 0 means 10 s.
	Timeout time.Duration
	// SVIDs and Bundles, when both set, make the fetch SPIFFE mTLS: the
	// client presents its own SVID, and the server must present an
	// X509-SVID that verifies to Bundles. The server's SPIFFE ID is
	// returned in Fetched.PeerID, to be compared with the card's signer
	// (Fetched.CheckSigner). The URL must then be https.
	SVIDs   x509svid.Source
	Bundles x509bundle.Source
}

// Fetched is a card fetched over HTTP.
type Fetched struct {
	Card []byte
	// URL is the URL the card was read from.
	URL string
	// PeerID is the server's SPIFFE ID when the fetch used SPIFFE mTLS.
	PeerID spiffeid.ID
}

// CheckSigner reports whether the card was served by the workload that
// signed it: with SPIFFE mTLS, the server's SPIFFE ID must equal the
// verified signer's, so that a verified card cannot be replayed by another
// workload (the Service-hijack attack on Kagenti's plain HTTP fetch).
// Without mTLS there is no peer identity and it returns nil.
func (f *Fetched) CheckSigner(res *Result) error {
	if f.PeerID.IsZero() {
		return nil
	}
	if res == nil || !res.Verified {
		return errors.New("agentcard: card not verified, cannot compare with the server's SPIFFE ID")
	}
	if res.SPIFFEID != f.PeerID.String() {
		return fmt.Errorf("agentcard: card signed by %s but served by %s", res.SPIFFEID, f.PeerID)
	}
	return nil
}

// FetchCard GETs an AgentCard. A URL without a path (or with path "/") is an
// agent's base URL: the card is read from WellKnownPath, falling back to
// LegacyWellKnownPath only on 404. Any other URL is read as is. Bodies over
// MaxCardSize, redirects to another scheme or host, and non-200 answers are
// errors; an error never includes the response body.
func FetchCard(ctx context.Context, rawURL string, opts FetchOptions) (*Fetched, error) {
	u, err := url.Parse(rawURL)
	if err != nil {
		return nil, fmt.Errorf("agentcard: fetch: %w", err)
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return nil, fmt.Errorf("agentcard: fetch: unsupported URL scheme %q", u.Scheme)
	}
	if u.User != nil {
		return nil, errors.New("agentcard: fetch: credentials in the URL are not allowed")
	}
	timeout := opts.Timeout
	if timeout <= 0 {
		timeout = 10 * time.Second
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()

	client, peer, err := fetchClient(u, opts)
	if err != nil {
		return nil, err
	}
	defer client.CloseIdleConnections()

	if u.Path != "" && u.Path != "/" {
		return fetchOne(ctx, client, u, peer)
	}
	primary := *u
	primary.Path = WellKnownPath
	f, err := fetchOne(ctx, client, &primary, peer)
	if !errors.Is(err, errNotFound) {
		return f, err
	}
	legacy := *u
	legacy.Path = LegacyWellKnownPath
	f, err2 := fetchOne(ctx, client, &legacy, peer)
	if err2 != nil {
		return nil, err // the original error, as Kagenti reports it
	}
	return f, nil
}

var errNotFound = errors.New("agentcard: fetch: 404 not found")

// peerRecorder keeps the SPIFFE ID that the TLS handshake authorized.
type peerRecorder struct {
	mu sync.Mutex
	id spiffeid.ID
}

func (p *peerRecorder) get() spiffeid.ID {
	if p == nil {
		return spiffeid.ID{}
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.id
}

func fetchClient(u *url.URL, opts FetchOptions) (*http.Client, *peerRecorder, error) {
	transport := &http.Transport{
		Proxy:                  nil, // a card fetch goes straight to the agent
		TLSHandshakeTimeout:    10 * time.Second,
		ResponseHeaderTimeout:  10 * time.Second,
		MaxResponseHeaderBytes: 64 << 10,
		DisableCompression:     true, // keeps the size cap about bytes on the wire
	}
	var peer *peerRecorder
	if opts.SVIDs != nil || opts.Bundles != nil {
		if opts.SVIDs == nil || opts.Bundles == nil {
			return nil, nil, errors.New("agentcard: fetch: SPIFFE mTLS needs both an SVID source and a bundle source")
		}
		if u.Scheme != "https" {
			return nil, nil, errors.New("agentcard: fetch: SPIFFE mTLS needs an https URL")
		}
		peer = &peerRecorder{}
		authorize := func(id spiffeid.ID, _ [][]*x509.Certificate) error {
			peer.mu.Lock()
			defer peer.mu.Unlock()
			peer.id = id
			return nil
		}
		transport.TLSClientConfig = tlsconfig.MTLSClientConfig(opts.SVIDs, opts.Bundles, authorize)
	}
	origin := *u
	client := &http.Client{
		Transport: transport,
		CheckRedirect: func(req *http.Request, via []*http.Request) error {
			if len(via) >= 3 {
				return errors.New("agentcard: fetch: too many redirects")
			}
			if req.URL.Scheme != origin.Scheme || req.URL.Host != origin.Host {
				return fmt.Errorf("agentcard: fetch: refusing redirect to another origin %s://%s", req.URL.Scheme, req.URL.Host)
			}
			return nil
		},
	}
	return client, peer, nil
}

func fetchOne(ctx context.Context, client *http.Client, u *url.URL, peer *peerRecorder) (*Fetched, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return nil, fmt.Errorf("agentcard: fetch: %w", err)
	}
	req.Header.Set("Accept", "application/json")
	resp, err := client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("agentcard: fetch %s: %w", u.Redacted(), err)
	}
	defer resp.Body.Close()
	switch {
	case resp.StatusCode == http.StatusNotFound:
		return nil, errNotFound
	case resp.StatusCode != http.StatusOK:
		return nil, fmt.Errorf("agentcard: fetch %s: status %d", u.Redacted(), resp.StatusCode)
	}
	body, err := readlimit.ReadAll(resp.Body, MaxCardSize)
	if err != nil {
		return nil, fmt.Errorf("agentcard: fetch %s: card: %w", u.Redacted(), err)
	}
	return &Fetched{Card: body, URL: resp.Request.URL.String(), PeerID: peer.get()}, nil
}
