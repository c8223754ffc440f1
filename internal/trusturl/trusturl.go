// Package trusturl is the one rule for fetching trust material over a
// network — JWKS documents (identity) and SPIFFE trust bundles (agentcard):
// HTTPS anywhere, plain HTTP only from a loopback IP literal. Keys fetched
// in the clear from elsewhere could be substituted on the way, and a trust
// bundle is a stronger root of trust than a JWKS, so neither is.
package trusturl

import (
	"errors"
	"fmt"
	"net"
	"net/url"
)

// Check parses raw and accepts it as the location of trust material:
// https with a host, or http to a loopback IP literal (127.0.0.0/8, ::1) —
// not a name such as localhost, which a resolver could point elsewhere.
func Check(raw string) (*url.URL, error) {
	u, err := url.Parse(raw)
	if err != nil {
		return nil, err
	}
	if u.Host == "" {
		return nil, fmt.Errorf("%q has no host", raw)
	}
	switch u.Scheme {
	case "https":
		return u, nil
	case "http":
		if ip := net.ParseIP(u.Hostname()); ip != nil && ip.IsLoopback() {
			return u, nil
		}
		return nil, errors.New("plain http is accepted only from a loopback IP address; use https")
	}
	return nil, fmt.Errorf("URL scheme %q is not http or https", u.Scheme)
}
