package gateway

import (
	"errors"
	"fmt"
	"net/http"

	"github.com/agentid/agentid/server"
)

// TokenTransport is the client side of per-request identity: an
// http.RoundTripper that puts a fresh single-use AIP token in the
// Authorization header of every request, obtained from the token endpoint
// of the gateway (or of the `agentid serve` that shares its keys and
// stores) through Tokens. A Go MCP client uses it as its HTTP client's
// transport:
//
//	&mcp.StreamableClientTransport{Endpoint: url + "/mcp",
//		HTTPClient: &http.Client{Transport: &gateway.TokenTransport{Tokens: tokens}}}
type TokenTransport struct {
	// Tokens obtains the tokens, continuing one AIP session. Required.
	Tokens *server.Client
	// Base sends the requests; http.DefaultTransport when nil.
	Base http.RoundTripper
}

// RoundTrip implements http.RoundTripper.
func (t *TokenTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	if t.Tokens == nil {
		return nil, errors.New("gateway: TokenTransport without a token source")
	}
	if r.Response != nil {
		// A request a redirect made: a fresh token would go to whatever
		// host the redirect names, which could spend it first.
		if r.Body != nil {
			r.Body.Close()
		}
		return nil, errors.New("gateway: TokenTransport does not follow redirects")
	}
	tok, err := t.Tokens.Token(r.Context())
	if err != nil {
		if r.Body != nil {
			r.Body.Close()
		}
		return nil, fmt.Errorf("gateway: obtaining a token: %w", err)
	}
	r = r.Clone(r.Context())
	r.Header.Set("Authorization", "Bearer "+tok.Token)
	base := t.Base
	if base == nil {
		base = http.DefaultTransport
	}
	return base.RoundTrip(r)
}
