package identity

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/agentid/agentid/internal/readlimit"
	"github.com/agentid/agentid/internal/trusturl"
)

// DefaultJWKSFetchTimeout bounds a JWKS fetch when JWKSFetchOptions.Timeout
// is zero.
const DefaultJWKSFetchTimeout = 10 * time.Second

// JWKSFetchOptions configures FetchJWKS and LoadJWKS.
type JWKSFetchOptions struct {
	// Timeout bounds the whole fetch (connection, TLS, headers, body);
	// DefaultJWKSFetchTimeout when zero.
	Timeout time.Duration
	// Client supplies the transport (proxies, TLS roots); its redirect
	// policy is replaced, since redirects are never followed. nil means
	// http.DefaultTransport.
	Client *http.Client
}

// FetchJWKS GETs a JWKS document from rawURL and parses it (ParseJWKS). The
// rules, because keys fetched in the clear or from elsewhere could be
// substituted:
//
//   - https anywhere; plain http only when the host is a loopback IP
//     literal (127.0.0.0/8, ::1), not a name such as localhost
//     (internal/trusturl, the rule for every fetch of trust material);
//   - redirects are not followed: a 3xx answer is an error, as is any
//     status other than 200;
//   - the body may hold at most 1 MiB (ParseJWKS's limit);
//   - the request says Accept: application/json, but the answer's
//     Content-Type is not checked (static file servers label JWKS files
//     variously);
//   - the whole fetch is bounded by o.Timeout.
//
// The set is fetched once: a token whose kid it lacks fails verification,
// and nothing is fetched again (no refresh on an unknown kid).
func FetchJWKS(ctx context.Context, rawURL string, o JWKSFetchOptions) (*JWKS, error) {
	if _, err := trusturl.Check(rawURL); err != nil {
		return nil, fmt.Errorf("identity: JWKS URL: %w", err)
	}
	if ctx == nil {
		ctx = context.Background()
	}
	timeout := o.Timeout
	if timeout <= 0 {
		timeout = DefaultJWKSFetchTimeout
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, rawURL, nil)
	if err != nil {
		return nil, fmt.Errorf("identity: JWKS URL: %w", err)
	}
	req.Header.Set("Accept", "application/json")
	client := http.Client{}
	if o.Client != nil {
		client = *o.Client
	}
	client.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	resp, err := client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("identity: fetching the JWKS: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		if resp.StatusCode >= 300 && resp.StatusCode < 400 {
			return nil, fmt.Errorf("identity: JWKS: %s answered %s (redirects are not followed)", rawURL, resp.Status)
		}
		return nil, fmt.Errorf("identity: JWKS: %s answered %s", rawURL, resp.Status)
	}
	doc, err := readlimit.ReadAll(resp.Body, maxJWKSSize)
	if err != nil {
		return nil, fmt.Errorf("identity: JWKS from %s: %w", rawURL, err)
	}
	return ParseJWKS(doc)
}

// LoadJWKS reads a JWKS document from src: an http:// or https:// URL is
// fetched with FetchJWKS, anything else is a file name.
func LoadJWKS(ctx context.Context, src string, o JWKSFetchOptions) (*JWKS, error) {
	if strings.HasPrefix(src, "http://") || strings.HasPrefix(src, "https://") {
		return FetchJWKS(ctx, src, o)
	}
	doc, err := readlimit.ReadFile(src, maxJWKSSize)
	if err != nil {
		return nil, fmt.Errorf("identity: JWKS: %w", err)
	}
	return ParseJWKS(doc)
}
