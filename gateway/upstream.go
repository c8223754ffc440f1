package gateway

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"

	"go.opentelemetry.io/otel/trace"
)

// upstream is the remote MCP server (Streamable HTTP) behind the gateway.
type upstream struct {
	url    string
	client *http.Client
	// rt, when set, sends requests in place of client: a client without
	// a timeout or cookie jar whose redirects are never followed adds to
	// its transport only a copy of every request's headers (kept for
	// redirects).
	rt http.RoundTripper
}

func newUpstream(rawURL string, client *http.Client) (*upstream, error) {
	u, err := url.Parse(rawURL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("gateway: upstream %q is not an http(s) URL", rawURL)
	}
	if u.User != nil {
		return nil, fmt.Errorf("gateway: upstream URL must not carry credentials")
	}
	if client == nil {
		client = &http.Client{Transport: defaultTransport()}
	}
	// A redirect would send the message somewhere the operator did not
	// name.
	c := *client
	c.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	up := &upstream{url: u.String(), client: &c}
	if c.Timeout == 0 && c.Jar == nil {
		up.rt = c.Transport
		if up.rt == nil {
			up.rt = http.DefaultTransport
		}
	}
	return up, nil
}

// defaultTransport keeps enough idle connections to the one upstream host
// for every concurrent client: a gateway that reconnects per request pays
// a TCP (and TLS) handshake on each. It asks for no compression: JSON-RPC
// messages are small, and the gateway reads every byte of each answer, so
// a gzipped one would cost a decompression per call (and the upstream a
// compression) to save bytes on what is usually a short hop.
func defaultTransport() *http.Transport {
	return &http.Transport{
		Proxy:                 nil,
		DialContext:           (&net.Dialer{Timeout: 10 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		MaxIdleConns:          1024,
		MaxIdleConnsPerHost:   1024,
		IdleConnTimeout:       90 * time.Second,
		TLSHandshakeTimeout:   10 * time.Second,
		ExpectContinueTimeout: time.Second,
		ForceAttemptHTTP2:     true,
		DisableCompression:    true,
	}
}

// forwardedHeaders are the client's request headers the upstream sees;
// nothing else is forwarded (no Authorization, no cookies).
var forwardedHeaders = []string{
	"Mcp-Protocol-Version", "Last-Event-Id",
	"Traceparent", "Tracestate", "Baggage",
	"Mcp-Method", "Mcp-Name",
}

// The values of the upstream requests' fixed headers, shared by all of
// them (a request's header values are only read, by the transport, as the
// client's forwarded ones are).
var (
	jsonType   = []string{"application/json"}
	acceptBoth = []string{"application/json, text/event-stream"}
	acceptSSE  = []string{"text/event-stream"}
)

// do sends one request upstream for the session known upstream as sid.
func (u *upstream) do(ctx context.Context, method, sid string, body []byte, from http.Header) (*http.Response, error) {
	var rd io.Reader // nil, not a nil *bytes.Reader, for GET and DELETE
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, u.url, rd)
	if err != nil {
		return nil, err
	}
	h := req.Header
	for _, k := range forwardedHeaders {
		if v := from.Values(k); len(v) > 0 {
			h[k] = v
		}
	}
	if method == http.MethodPost {
		// Mirrored tool parameters (paramHeaders has put them through
		// request DLP).
		for k, v := range from {
			if strings.HasPrefix(k, paramHeaderPrefix) {
				h[k] = v
			}
		}
	}
	switch method {
	case http.MethodPost:
		h["Content-Type"], h["Accept"] = jsonType, acceptBoth
	case http.MethodGet:
		h["Accept"] = acceptSSE
	}
	if sid != "" {
		h.Set("Mcp-Session-Id", sid)
	}
	if trace.SpanContextFromContext(ctx).IsValid() {
		injectTrace(ctx, h)
	}
	if u.rt == nil {
		return u.client.Do(req)
	}
	resp, err := u.rt.RoundTrip(req)
	if err == nil && resp.Body == nil {
		resp.Body = http.NoBody // as http.Client guarantees
	}
	return resp, err
}
