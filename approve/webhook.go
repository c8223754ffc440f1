package approve

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"time"
)

// WebhookOptions configures Webhook.
type WebhookOptions struct {
	// Timeout bounds each approval, including the human's think time on the
	// other side; default 60s. Request.Expires and the context can shorten it.
	Timeout time.Duration
	// Client sends the request; default a client that does not follow
	// redirects (a redirect is answered with Denied).
	Client *http.Client
	// Header is added to every request, e.g. Authorization.
	Header http.Header
}

// maxWebhookBody caps the answer; a verdict is a few dozen bytes.
const maxWebhookBody = 64 << 10

type webhook struct {
	url     string
	timeout time.Duration
	client  *http.Client
	header  http.Header
}

// Webhook returns an Approver that POSTs each request to url as
//
//	{"tool":"…","arguments":{…},"policy_hash":"…","session_id":"…",
//	 "expires_at":"2026-01-24T10:31:45.000Z","digest":"<hex>"}
//
// (empty policy_hash, session_id and expires_at are omitted) and expects
// 200 OK with
//
//	{"decision":"allow"|"deny","digest":"<the same digest>"}
//
// The digest must match: it proves that the answer is about this call. Any
// other status, a body over 64 KiB, malformed JSON, a duplicate key, a
// missing or unknown decision, a digest mismatch or a network error gives
// Denied with an error saying why. The deadline passing (Timeout,
// Request.Expires or the context) gives TimedOut. A request without a
// Digest is denied without being sent.
func Webhook(url string, opts WebhookOptions) Approver {
	w := &webhook{url: url, timeout: opts.Timeout, client: opts.Client, header: opts.Header.Clone()}
	if w.timeout <= 0 {
		w.timeout = defaultTimeout
	}
	if w.client == nil {
		w.client = &http.Client{
			// Following a redirect would send the call's (redacted)
			// arguments somewhere nobody configured.
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		}
	}
	return w
}

type webhookRequest struct {
	Tool       string          `json:"tool"`
	Arguments  json.RawMessage `json:"arguments"`
	PolicyHash string          `json:"policy_hash,omitempty"`
	SessionID  string          `json:"session_id,omitempty"`
	ExpiresAt  string          `json:"expires_at,omitempty"`
	Digest     string          `json:"digest"`
}

func (w *webhook) Approve(ctx context.Context, req Request) (Answer, error) {
	if req.Digest == "" {
		return Denied, errors.New("approve: webhook: request has no digest to bind the answer to")
	}
	args := req.Arguments
	if len(bytes.TrimSpace(args)) == 0 {
		args = json.RawMessage("{}")
	}
	wr := webhookRequest{Tool: req.Tool, Arguments: args, PolicyHash: req.PolicyHash, SessionID: req.SessionID, Digest: req.Digest}
	if !req.Expires.IsZero() {
		wr.ExpiresAt = req.Expires.UTC().Format("2006-01-02T15:04:05.000Z07:00")
	}
	body, err := json.Marshal(wr)
	if err != nil {
		return Denied, fmt.Errorf("approve: webhook: encode request: %w", err)
	}

	ctx, cancel := context.WithDeadline(ctx, deadline(w.timeout, req.Expires))
	defer cancel()
	hreq, err := http.NewRequestWithContext(ctx, http.MethodPost, w.url, bytes.NewReader(body))
	if err != nil {
		return Denied, fmt.Errorf("approve: webhook: %w", err)
	}
	for k, vs := range w.header {
		hreq.Header[k] = vs
	}
	hreq.Header.Set("Content-Type", "application/json")
	hreq.Header.Set("Accept", "application/json")

	resp, err := w.client.Do(hreq)
	if err != nil {
		return w.failed(ctx, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return Denied, fmt.Errorf("approve: webhook answered %s; denied", resp.Status)
	}
	data, err := io.ReadAll(io.LimitReader(resp.Body, maxWebhookBody+1))
	if err != nil {
		return w.failed(ctx, err)
	}
	if len(data) > maxWebhookBody {
		return Denied, fmt.Errorf("approve: webhook answer exceeds %d bytes; denied", maxWebhookBody)
	}
	decision, digest, err := parseVerdict(data)
	if err != nil {
		return Denied, fmt.Errorf("approve: webhook answer: %w; denied", err)
	}
	if digest != req.Digest {
		return Denied, fmt.Errorf("approve: webhook answer is for call %q, not %q; denied", digest, req.Digest)
	}
	switch decision {
	case "allow":
		return Approved, nil
	case "deny":
		return Denied, nil
	}
	return Denied, fmt.Errorf("approve: webhook decision %q is neither \"allow\" nor \"deny\"; denied", decision)
}

// failed maps a transport error: the deadline passing is TimedOut,
// everything else fails closed as Denied.
func (w *webhook) failed(ctx context.Context, err error) (Answer, error) {
	var ne net.Error
	if ctx.Err() != nil || errors.Is(err, context.DeadlineExceeded) || (errors.As(err, &ne) && ne.Timeout()) {
		return TimedOut, fmt.Errorf("approve: webhook: %w", err)
	}
	return Denied, fmt.Errorf("approve: webhook: %w; denied", err)
}

// parseVerdict reads {"decision":"…","digest":"…"}. It walks the tokens
// itself because encoding/json silently keeps the last of duplicate keys
// and matches keys case-insensitively, so {"decision":"deny","Decision":
// "allow"} would read as allow. Other members are ignored.
func parseVerdict(data []byte) (decision, digest string, err error) {
	dec := json.NewDecoder(bytes.NewReader(data))
	if tok, err := dec.Token(); err != nil || tok != json.Delim('{') {
		return "", "", errors.New("not a JSON object")
	}
	seen := map[string]bool{}
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return "", "", err
		}
		key := tok.(string) // object keys are always strings
		if seen[key] {
			return "", "", fmt.Errorf("duplicate key %q", key)
		}
		seen[key] = true
		switch key {
		case "decision":
			err = dec.Decode(&decision)
		case "digest":
			err = dec.Decode(&digest)
		default:
			var skip json.RawMessage
			err = dec.Decode(&skip)
		}
		if err != nil {
			return "", "", fmt.Errorf("member %q: %w", key, err)
		}
	}
	if _, err := dec.Token(); err != nil { // closing brace
		return "", "", err
	}
	if _, err := dec.Token(); err != io.EOF {
		return "", "", errors.New("trailing data after the object")
	}
	if !seen["decision"] || !seen["digest"] {
		return "", "", errors.New(`"decision" and "digest" are required`)
	}
	return decision, digest, nil
}
