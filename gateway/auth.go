package gateway

import (
	"encoding/json"
	"net/http"
	"strings"

	"github.com/agentid/agentid/aip"
	"github.com/agentid/agentid/enforce"
	"github.com/agentid/agentid/identity"
	"github.com/agentid/agentid/jsonrpc"
	"github.com/agentid/agentid/server"
)

// metadataPath is where OAuth protected-resource metadata is published
// (RFC 9728 §3); the MCP path is appended for the path-specific form that
// MCP clients try first.
const metadataPath = "/.well-known/oauth-protected-resource"

// authenticate establishes who sent r: the AIP token of its Authorization
// header, validated (and consumed) by the core's identity manager, and the
// SPIFFE ID of a verified client certificate. When the request may not
// proceed it answers it (401, or 503 when the token could not be checked)
// and ok is false. body is the request's message, whose id the answer
// carries ("" for a GET or DELETE).
func (g *Gateway) authenticate(w http.ResponseWriter, r *http.Request, body []byte) (caller enforce.Caller, who principal, ok bool) {
	for _, u := range server.ClientURIs(r) {
		if strings.HasPrefix(u, "spiffe://") {
			who.Peer = u
			break
		}
	}
	if _, named := g.cfg.Server.ClientMayCall(r, g.core.Policy().Policy.Metadata.Name); !named {
		// Clients are named for this policy (--token-client), and this
		// one is not: refused before its token is spent or its body read.
		g.cfg.Log.Warn("client certificate not named for the policy", "client_spiffe_id", who.Peer, "remote", r.RemoteAddr)
		answer(w, http.StatusForbidden, body, aip.CodeForbidden,
			map[string]any{"reason": "Client certificate not named for this policy"})
		return caller, who, false
	}
	token, present, err := server.Bearer(r)
	if err != nil {
		g.unauthorized(w, r, body, &identity.ValidationError{Code: aip.CodeTokenInvalid, TokenError: aip.TokenErrMalformed, Reason: err.Error()})
		return caller, who, false
	}
	m := g.core.Identity()
	if m == nil {
		// The policy enables no identity: a Bearer credential means nothing
		// here, and it is never forwarded either.
		return caller, who, true
	}
	required := m.IdentityConfig().RequireToken
	if !present {
		if required {
			g.unauthorized(w, r, body, &identity.ValidationError{Code: aip.CodeTokenRequired, Reason: "Identity token required for this policy"})
			return caller, who, false
		}
		return caller, who, true
	}
	claims, err := m.Validate(r.Context(), token)
	g.cfg.Server.TokenChecked(err == nil)
	if err != nil {
		verr := identity.AsValidationError(err)
		if verr == nil {
			// The token verified but its replay or revocation could not be
			// checked: never let it through unchecked.
			g.cfg.Log.Error("token validation unavailable", "error", err)
			answer(w, http.StatusServiceUnavailable, body, aip.CodeForbidden,
				map[string]any{"reason": aip.TokenErrValidationUnavailable})
			return caller, who, false
		}
		if required {
			g.unauthorized(w, r, body, verr)
			return caller, who, false
		}
		// Without require_token an invalid token is audited (by the
		// identity manager) and the request goes on unauthenticated, as on
		// stdio.
		return caller, who, true
	}
	caller.Token = claims
	who.Agent, who.Session, who.TokenID = claims.AgentID, claims.SessionID, claims.TokenID()
	return caller, who, true
}

// unauthorized answers 401 with the challenge of RFC 6750 §3 pointing at
// the metadata (RFC 9728 §5.1), and the AIP error for the message's id.
func (g *Gateway) unauthorized(w http.ResponseWriter, r *http.Request, body []byte, verr *identity.ValidationError) {
	challenge := `Bearer resource_metadata="` + g.publicURL(r) + metadataPath + g.cfg.Path + `"`
	if verr.Code != aip.CodeTokenRequired {
		challenge += `, error="invalid_token"`
	}
	w.Header().Set("WWW-Authenticate", challenge)
	answer(w, http.StatusUnauthorized, body, verr.Code, verr.Data("", false))
}

// answer writes status with the AIP error code for the id of the message
// in body (null when it shows none).
func answer(w http.ResponseWriter, status int, body []byte, code int, data map[string]any) {
	id, _ := jsonrpc.IDFromHead(body)
	writeMessage(w, status, jsonrpc.ErrorResponse(id, code, aip.Message(code), aip.MarkData(code, data)))
}

// publicURL is the gateway's base URL: the configured one, or the one this
// request reached.
func (g *Gateway) publicURL(r *http.Request) string {
	if g.cfg.PublicURL != "" {
		return strings.TrimSuffix(g.cfg.PublicURL, "/")
	}
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	return scheme + "://" + r.Host
}

// serveMetadata publishes the protected-resource metadata of RFC 9728:
// tokens go in the Authorization header only, and agentid's token endpoint
// and keys are named (AIP tokens are not OAuth access tokens, so no
// authorization server is listed).
func (g *Gateway) serveMetadata(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		httpError(w, http.StatusMethodNotAllowed, "method not allowed")
		return
	}
	base := g.publicURL(r)
	md := map[string]any{
		"resource":                 base + g.cfg.Path,
		"bearer_methods_supported": []string{"header"},
		"resource_name":            "agentid gateway",
	}
	if m := g.core.Identity(); m != nil {
		md["jwks_uri"] = base + g.core.Policy().Server.Endpoints.JWKS
		md["aip_token_endpoint"] = base + server.TokenPath
		md["aip_audience"] = m.IdentityConfig().Audience
	}
	b, _ := json.Marshal(md)
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Cache-Control", "public, max-age=3600")
	w.Write(b)
}
