package server

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/agentid/agentid/aip"
	"github.com/agentid/agentid/enforce"
	"github.com/agentid/agentid/identity"
	"github.com/agentid/agentid/internal/strictjson"
	"github.com/agentid/agentid/internal/trusturl"
)

// ClientConfig configures a Client.
type ClientConfig struct {
	// URL is the server's base URL (https://, or http:// on loopback).
	URL string
	// Timeout bounds each request (the policy's server.timeout); 5s when 0.
	Timeout time.Duration
	// TLS holds the client certificate (mTLS) and the CAs that verify the
	// server; nil uses the system's roots.
	TLS *tls.Config
	// Credential, when set, is sent as "Authorization: Bearer" to
	// /v1/token: the admin credential, when the server knows this process
	// by no client certificate.
	Credential string
	// Policy names the policy (tenant) to obtain tokens for; "" on a
	// server with one policy.
	Policy string
	// Binding is this process's binding, reported with each token request.
	Binding identity.Binding
	// ValidatePath is the server's validate endpoint; /v1/validate when "".
	ValidatePath string
	// MaxBodyBytes is the server's body limit (its Config.MaxBodyBytes);
	// DefaultMaxBodyBytes when 0. A call over it is refused here.
	MaxBodyBytes int64
}

// Client asks a validation server to decide tool calls: it is the
// enforce.Remote of `agentid proxy --server URL`. Connections are reused;
// it is safe for concurrent use.
type Client struct {
	cfg  ClientConfig
	base *url.URL
	http *http.Client

	mu      sync.Mutex
	session string // the session of the tokens obtained so far
}

// NewClient returns a client for cfg.
func NewClient(cfg ClientConfig) (*Client, error) {
	u, err := trusturl.Check(cfg.URL)
	if err != nil {
		return nil, fmt.Errorf("server: --server: %w", err)
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = 5 * time.Second
	}
	if cfg.ValidatePath == "" {
		cfg.ValidatePath = "/v1/validate"
	}
	if cfg.MaxBodyBytes <= 0 {
		cfg.MaxBodyBytes = DefaultMaxBodyBytes
	}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.MaxIdleConnsPerHost = 64
	tr.ForceAttemptHTTP2 = true
	if cfg.TLS != nil {
		tr.TLSClientConfig = cfg.TLS.Clone()
		if tr.TLSClientConfig.MinVersion < tls.VersionTLS12 {
			tr.TLSClientConfig.MinVersion = tls.VersionTLS12
		}
	}
	return &Client{cfg: cfg, base: u, http: &http.Client{Transport: tr, Timeout: cfg.Timeout,
		// A validation answer never redirects; following one would send
		// the token elsewhere.
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}}, nil
}

// Close closes idle connections.
func (c *Client) Close() { c.http.CloseIdleConnections() }

// errUnsendable is a request that could not be built from what the caller
// gave: no server was asked, so it is no outage either.
var errUnsendable = errors.New("server: the request cannot be sent")

// errTooLarge is a request body over the server's limit.
var errTooLarge = errors.New("server: the request exceeds the server's body limit")

func (c *Client) post(ctx context.Context, path string, body any, bearer string) (int, []byte, error) {
	b, err := json.Marshal(body)
	if err != nil {
		return 0, nil, fmt.Errorf("%w: %v", errUnsendable, err)
	}
	if int64(len(b)) > c.cfg.MaxBodyBytes {
		// The server would answer 413, or cut the connection before it
		// could: refused here, so that no agent can make its call look
		// like an outage.
		return 0, nil, errTooLarge
	}
	u := c.base.JoinPath(path)
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, u.String(), bytes.NewReader(b))
	if err != nil {
		return 0, nil, err
	}
	req.Header.Set("Content-Type", "application/json")
	if bearer != "" {
		req.Header.Set("Authorization", "Bearer "+bearer)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return 0, nil, fmt.Errorf("server: %s: %w", path, err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, DefaultMaxBodyBytes))
	if err != nil {
		return 0, nil, fmt.Errorf("server: %s: %w", path, err)
	}
	return resp.StatusCode, raw, nil
}

// Check implements enforce.Remote: the server's decision, or an error when
// no validation server answered (network, timeout, a gateway's 5xx without
// the server's error body), for which the proxy applies failover_mode.
// Every other answer that is not a decision is a refusal, never a
// failover: a body that does not parse strictly, a 200 without a known
// decision, a redirect, a 4xx, or the server's own 5xx error (its
// fail_closed answer, an audit log it cannot write). The server was
// reached and did not allow the call; failing over would let whoever can
// provoke such an answer (arguments over the server's body limit) choose
// fail_open.
func (c *Client) Check(ctx context.Context, call enforce.Call) (enforce.Check, error) {
	if call.Token != "" && !isB64Token(call.Token) {
		// The agent chose a token no Authorization header can carry (a
		// line break, a control character): the request would fail before
		// it was sent, which must not pass for an unreachable server. The
		// server answers any such Bearer credential this way.
		return enforce.Check{Decision: aip.DecisionBlock, Code: aip.CodeTokenInvalid, Reason: "Token invalid", TokenError: aip.TokenErrMalformed}, nil
	}
	status, raw, err := c.post(ctx, c.cfg.ValidatePath, struct {
		Tool           string          `json:"tool"`
		Arguments      json.RawMessage `json:"arguments"`
		ToolDefinition json.RawMessage `json:"tool_definition,omitempty"`
		// Always sent, "" for a new call: it asks for the next round's
		// ticket.
		RoundTicket string `json:"round_ticket"`
	}{call.Tool, nonNullObject(call.Arguments), call.ToolDefinition, call.Round}, call.Token)
	switch {
	case errors.Is(err, errTooLarge):
		return tooLarge, nil
	case errors.Is(err, errUnsendable):
		return unanswered, nil
	}
	if err != nil {
		return enforce.Check{}, err
	}
	var body struct {
		errorBody
		validateResponse
	}
	parsed := decodeAnswer(raw, &body) == nil
	if status >= 500 && !(parsed && body.Error != "") {
		return enforce.Check{}, fmt.Errorf("server: validate answered %d %s", status, excerpt(raw))
	}
	if !parsed {
		return unanswered, nil
	}
	res := enforce.Check{Decision: body.Decision, Reason: body.Reason, Violations: body.Violations, Code: body.Code, TokenError: body.TokenError}
	switch {
	case status == http.StatusOK && (body.Decision == aip.DecisionAllow || body.Decision == aip.DecisionAsk):
		res.Code, res.Round = 0, body.RoundTicket
		return res, nil
	case status == http.StatusOK && body.Decision == aip.DecisionBlock:
		if res.Code == 0 {
			res.Code = aip.CodeForbidden
		}
		return res, nil
	case status == http.StatusTooManyRequests:
		res.Decision, res.Code = aip.DecisionBlock, aip.CodeRateLimited
		if res.Reason == "" {
			res.Reason = "Rate limit exceeded"
		}
		return res, nil
	case status == http.StatusUnauthorized && body.Error == errTokenRequired:
		return enforce.Check{Decision: aip.DecisionBlock, Code: aip.CodeTokenRequired, Reason: "Identity token required for this policy"}, nil
	case status == http.StatusUnauthorized && body.Error == errTokenInvalid:
		res = enforce.Check{Decision: aip.DecisionBlock, Code: aip.CodeTokenInvalid, Reason: "Token invalid", TokenError: body.TokenError}
		switch body.TokenError {
		case aip.TokenErrSessionRevoked, aip.TokenErrTokenRevoked:
			res.Code, res.Reason = aip.CodeTokenRevoked, "Token revoked"
		case aip.TokenErrAudienceMismatch:
			res.Code, res.Reason = aip.CodeAudienceMismatch, "Audience mismatch"
		}
		return res, nil
	case status == http.StatusBadRequest:
		// The server refused the request itself: this call cannot be
		// decided there, and is refused rather than failed over.
		return enforce.Check{Decision: aip.DecisionBlock, Code: aip.CodeInvalidParams, Reason: "invalid request: " + body.Message}, nil
	case status == http.StatusRequestEntityTooLarge:
		return tooLarge, nil
	}
	return unanswered, nil
}

// tooLarge is the refusal of a call whose request exceeds the server's
// body limit, as the server's 413 would be.
var tooLarge = enforce.Check{Decision: aip.DecisionBlock, Code: aip.CodeInvalidParams, Reason: "invalid request: the arguments exceed the validation server's limit"}

// unanswered is the refusal of a call the server was asked about but did
// not decide: what fail_closed answers.
var unanswered = enforce.Check{Decision: aip.DecisionBlock, Code: aip.CodeForbidden, Reason: aip.TokenErrValidationUnavailable}

// decodeAnswer decodes a server's JSON answer with the rules the server
// applies to requests (no duplicate or case-variant keys, valid UTF-8): a
// body two parsers could read differently is no answer. A 200's decision
// must be under its exact name, which encoding/json alone would not
// require.
func decodeAnswer(raw []byte, v any) error {
	if err := strictjson.Validate(strictjson.MCP, raw); err != nil {
		return err
	}
	var members map[string]json.RawMessage
	if err := json.Unmarshal(raw, &members); err != nil {
		return err
	}
	for k := range members {
		if k != strings.ToLower(k) {
			return fmt.Errorf("server: answer member %q is not the server's", k)
		}
	}
	return json.Unmarshal(raw, v)
}

// excerpt is the start of a body that is no answer, quoted for the log.
func excerpt(raw []byte) string {
	const n = 200
	if len(raw) > n {
		return strconv.Quote(string(raw[:n])) + "…"
	}
	return strconv.Quote(string(raw))
}

// Token implements enforce.Remote: a token from POST /v1/token for this
// process's session, which continues across calls.
func (c *Client) Token(ctx context.Context) (enforce.RemoteToken, error) {
	c.mu.Lock()
	session := c.session
	c.mu.Unlock()
	status, raw, err := c.post(ctx, TokenPath, tokenRequest{Policy: c.cfg.Policy, SessionID: session, Binding: c.cfg.Binding}, c.cfg.Credential)
	if err != nil {
		return enforce.RemoteToken{}, err
	}
	if status == http.StatusForbidden && session != "" {
		// The session was revoked: start another.
		c.mu.Lock()
		c.session = ""
		c.mu.Unlock()
		return c.Token(ctx)
	}
	var out tokenResponse
	if status != http.StatusOK || json.Unmarshal(raw, &out) != nil || out.Token == "" {
		return enforce.RemoteToken{}, fmt.Errorf("server: token answered %d %s", status, excerpt(raw))
	}
	exp, err := time.Parse(time.RFC3339Nano, out.ExpiresAt)
	if err != nil {
		return enforce.RemoteToken{}, errors.New("server: token: expires_at is not a time")
	}
	c.mu.Lock()
	c.session = out.SessionID
	c.mu.Unlock()
	return enforce.RemoteToken{Token: out.Token, TokenID: out.TokenID, SessionID: out.SessionID, ExpiresAt: exp}, nil
}

func nonNullObject(args json.RawMessage) json.RawMessage {
	if len(bytes.TrimSpace(args)) == 0 || string(bytes.TrimSpace(args)) == "null" {
		return json.RawMessage(`{}`)
	}
	return args
}

// ClientTLS is the TLS configuration of a Client: caFile (PEM) verifies
// the server ("" for the system's roots), certFile and keyFile are the
// client certificate for mTLS (both or neither).
func ClientTLS(caFile, certFile, keyFile string) (*tls.Config, error) {
	cfg := &tls.Config{MinVersion: tls.VersionTLS12}
	if caFile != "" {
		pem, err := os.ReadFile(caFile)
		if err != nil {
			return nil, fmt.Errorf("server: CA: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("server: %s holds no PEM certificate", caFile)
		}
		cfg.RootCAs = pool
	}
	if (certFile == "") != (keyFile == "") {
		return nil, errors.New("server: a client certificate needs both its certificate and its key")
	}
	if certFile != "" {
		pair, err := tls.LoadX509KeyPair(certFile, keyFile)
		if err != nil {
			return nil, fmt.Errorf("server: client certificate: %w", err)
		}
		cfg.Certificates = []tls.Certificate{pair}
	}
	return cfg, nil
}
