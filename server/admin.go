package server

import (
	"bytes"
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"slices"
	"sync"
	"time"

	"github.com/agentid/agentid/aip"
	"github.com/agentid/agentid/audit"
	"github.com/agentid/agentid/identity"
	"github.com/agentid/agentid/internal/strictjson"
)

// verifiedClient reports whether the request came with a client
// certificate that the listener verified against its client CA.
func verifiedClient(r *http.Request) bool {
	return r.TLS != nil && len(r.TLS.VerifiedChains) > 0
}

// ClientURIs are the URI SANs (a SPIFFE ID) of the request's verified
// client certificate; nil without one.
func ClientURIs(r *http.Request) []string {
	uris, _ := clientIdentities(r)
	return uris
}

// clientIdentities are the names a verified client certificate goes by:
// its URI SANs (a SPIFFE ID) and its subject's common name.
func clientIdentities(r *http.Request) (uris []string, commonName string) {
	if !verifiedClient(r) {
		return nil, ""
	}
	leaf := r.TLS.VerifiedChains[0][0]
	for _, u := range leaf.URIs {
		uris = append(uris, u.String())
	}
	return uris, leaf.Subject.CommonName
}

// admin returns who is acting as admin, and false when the request does
// not carry the admin credential: the admin token as a Bearer credential,
// or a verified client certificate named in AdminIdentities. An agent's
// identity token is never an admin credential (spec §6.5.4).
//
// An admin identity that is an absolute URI names a URI SAN, any other a
// common name, never the other way round: whoever may choose the common
// name of a certificate the CA signs (or a CA that copies a DNS name into
// it) could otherwise take the SPIFFE ID of the admin.
func (s *Server) admin(r *http.Request) (string, bool) {
	if id, ok := namedClient(r, s.cfg.AdminIdentities); ok {
		return id, true
	}
	if tok, _, err := bearer(r); err == nil && tok != "" && sameSecret(tok, s.cfg.AdminToken) {
		return "admin-token", true
	}
	return "", false
}

// namedClient returns the identity in ids that the request's verified
// client certificate has: an absolute URI names a URI SAN, anything else
// the subject's common name (see admin).
func namedClient(r *http.Request, ids []string) (string, bool) {
	uris, cn := clientIdentities(r)
	for _, id := range ids {
		if u, err := url.Parse(id); err == nil && u.Scheme != "" {
			if slices.Contains(uris, id) {
				return id, true
			}
		} else if cn != "" && cn == id {
			return id, true
		}
	}
	return "", false
}

// clientMayObtain reports whether a client known only by its verified
// certificate may obtain tokens for tenant t: with TokenClients naming
// clients for it, only those; with none named, any verified client of a
// server with one policy, and none of a server with several (a Team A
// certificate must not obtain Team B's tokens).
func (s *Server) clientMayObtain(r *http.Request, t *tenant) bool {
	if ids, ok := s.cfg.TokenClients[t.name]; ok {
		_, named := namedClient(r, ids)
		return named
	}
	return len(s.tenants.Load().list) == 1
}

// ClientMayCall reports whether the request's client certificate lets it
// act under the policy named policy (metadata.name): with TokenClients
// naming clients for that policy, only a verified certificate they name
// may, and id is the name it matched; with none named, any request may.
func (s *Server) ClientMayCall(r *http.Request, policy string) (id string, ok bool) {
	ids, restricted := s.cfg.TokenClients[policy]
	if !restricted {
		return "", true
	}
	return namedClient(r, ids)
}

// tokenCredential reports whether the request carries the token
// credential (Config.TokenCredential) as its Bearer credential.
func (s *Server) tokenCredential(r *http.Request) bool {
	tok, _, err := bearer(r)
	return err == nil && tok != "" && sameSecret(tok, s.cfg.TokenCredential)
}

// revokeRequest is the body of POST /v1/revoke (spec §6.5.1).
type revokeRequest struct {
	Type       string `json:"type"`
	SessionID  string `json:"session_id"`
	TokenNonce string `json:"token_nonce"`
	Reason     string `json:"reason"`
}

type revokeResponse struct {
	Revoked   bool   `json:"revoked"`
	Type      string `json:"type"`
	Target    string `json:"target"`
	RevokedAt string `json:"revoked_at"`
}

// decodeStrict decodes a small JSON body into v: strictjson's MCP rules
// first, then encoding/json with unknown members refused.
func decodeStrict(body []byte, v any) error {
	if err := strictjson.Validate(strictjson.MCP, body); err != nil {
		return err
	}
	d := json.NewDecoder(bytes.NewReader(body))
	d.DisallowUnknownFields()
	return d.Decode(v)
}

func (s *Server) handleRevoke(w http.ResponseWriter, r *http.Request) {
	who, ok := s.admin(r)
	if !ok {
		w.Header().Set("WWW-Authenticate", `Bearer realm="agentid-admin"`)
		writeError(w, http.StatusUnauthorized, errUnauthorized, "the admin credential is required")
		return
	}
	body, ok := readJSONBody(w, r, s.cfg.MaxBodyBytes)
	if !ok {
		return
	}
	var req revokeRequest
	if err := decodeStrict(body, &req); err != nil {
		writeError(w, http.StatusBadRequest, errInvalidRequest, err.Error())
		return
	}
	var target string
	switch req.Type {
	case "session":
		target = req.SessionID
	case "token":
		target = req.TokenNonce
	default:
		writeError(w, http.StatusBadRequest, errInvalidRequest, `type must be "session" or "token"`)
		return
	}
	if target == "" {
		writeError(w, http.StatusBadRequest, errInvalidRequest, "the id to revoke is missing")
		return
	}
	ctx := r.Context()
	if reg := s.cfg.Registry; reg != nil {
		var known bool
		var err error
		if req.Type == "session" {
			known, err = reg.SessionKnown(ctx, target)
		} else {
			known, err = reg.TokenKnown(ctx, target)
		}
		if err != nil {
			s.cfg.Log.Error("registry unavailable", "error", err)
			writeError(w, http.StatusServiceUnavailable, errUnavailable, "the store is unavailable")
			return
		}
		if !known {
			writeError(w, http.StatusNotFound, errNotFound, req.Type+" not found")
			return
		}
	}
	// The stores are shared by every tenant: any tenant's manager revokes
	// for all of them.
	m := s.anyManager()
	if m == nil {
		writeError(w, http.StatusNotFound, errNotFound, "no policy enables identity")
		return
	}
	now := s.cfg.Now()
	var err error
	if req.Type == "session" {
		err = m.RevokeSession(ctx, target, req.Reason)
	} else {
		err = m.RevokeToken(ctx, target, req.Reason)
	}
	if err != nil {
		var se *identity.StoreError
		if errors.As(err, &se) {
			writeError(w, http.StatusServiceUnavailable, errUnavailable, "the store is unavailable")
			return
		}
		writeError(w, http.StatusBadRequest, errInvalidRequest, err.Error())
		return
	}
	rec := audit.Record{Timestamp: now, Direction: aip.Upstream, Decision: aip.AuditAllow, PolicyMode: s.firstMode(), Event: "REVOCATION",
		Reason: req.Reason, Extra: map[string]any{"type": req.Type, "target": target, "admin": who}}
	if err := s.cfg.Audit.Log(rec); err != nil {
		// The revocation took effect; it must not go unrecorded silently.
		s.cfg.Log.Error("audit write of a revocation failed", "error", err, "type", req.Type, "target", target)
	}
	s.metrics.revoked(req.Type)
	writeJSON(w, http.StatusOK, revokeResponse{Revoked: true, Type: req.Type, Target: target, RevokedAt: identity.FormatTime(now)})
}

func (s *Server) anyManager() *identity.Manager {
	for _, t := range s.tenants.Load().list {
		if m := t.core.Identity(); m != nil {
			return m
		}
	}
	return nil
}

func (s *Server) firstMode() string { return s.tenants.Load().list[0].core.Policy().Mode() }

// tokenRequest is the body of POST /v1/token: which policy (metadata.name
// or audience; optional with one policy), an existing session to continue
// (optional), and the agent's binding context as it reports it.
type tokenRequest struct {
	Policy    string           `json:"policy"`
	SessionID string           `json:"session_id"`
	Binding   identity.Binding `json:"binding"`
}

type tokenResponse struct {
	Token     string `json:"token"`
	TokenID   string `json:"token_id"`
	SessionID string `json:"session_id"`
	ExpiresAt string `json:"expires_at"`
}

// handleToken issues a single-use token to a remote agent. Only an admin,
// a holder of the token credential or a client with a verified certificate
// may ask: a token is what /v1/validate trusts.
func (s *Server) handleToken(w http.ResponseWriter, r *http.Request) {
	if _, ok := s.admin(r); !ok && !verifiedClient(r) && !s.tokenCredential(r) {
		w.Header().Set("WWW-Authenticate", `Bearer realm="agentid-admin"`)
		writeError(w, http.StatusUnauthorized, errUnauthorized, "the admin credential or a client certificate is required")
		return
	}
	body, ok := readJSONBody(w, r, s.cfg.MaxBodyBytes)
	if !ok {
		return
	}
	var req tokenRequest
	if err := decodeStrict(body, &req); err != nil {
		writeError(w, http.StatusBadRequest, errInvalidRequest, err.Error())
		return
	}
	t, ok := s.tenants.Load().byName(req.Policy)
	if !ok {
		writeError(w, http.StatusNotFound, errNotFound, "no such policy")
		return
	}
	if _, isAdmin := s.admin(r); !isAdmin && !s.tokenCredential(r) && !s.clientMayObtain(r, t) {
		writeError(w, http.StatusForbidden, errForbidden, "this client certificate may not obtain tokens for this policy")
		return
	}
	m := t.core.Identity()
	if m == nil {
		writeError(w, http.StatusNotFound, errNotFound, "the policy does not enable identity")
		return
	}
	ctx := r.Context()
	retention := identity.TokenRetention(m.IdentityConfig())
	if req.SessionID != "" {
		if reg := s.cfg.Registry; reg != nil {
			known, err := reg.SessionKnown(ctx, req.SessionID)
			if err != nil {
				writeError(w, http.StatusServiceUnavailable, errUnavailable, "the store is unavailable")
				return
			}
			if !known {
				writeError(w, http.StatusNotFound, errNotFound, "session not found")
				return
			}
		}
		if _, revoked, err := s.cfg.Revocations.SessionRevoked(ctx, req.SessionID); err != nil {
			writeError(w, http.StatusServiceUnavailable, errUnavailable, "the store is unavailable")
			return
		} else if revoked {
			writeError(w, http.StatusForbidden, errForbidden, "session revoked")
			return
		}
	}
	tok, claims, err := m.IssueFor(ctx, req.SessionID, req.Binding)
	if err != nil {
		writeError(w, http.StatusBadRequest, errInvalidRequest, err.Error())
		return
	}
	if reg := s.cfg.Registry; reg != nil {
		err := reg.RecordSession(ctx, claims.SessionID, max(retention, identity.DefaultSessionRetention))
		if err == nil {
			err = reg.RecordToken(ctx, claims.Nonce, retention)
		}
		if err != nil {
			// An unrecorded token could not be revoked by id: not issued.
			writeError(w, http.StatusServiceUnavailable, errUnavailable, "the store is unavailable")
			return
		}
	}
	s.sessions.seen(claims.SessionID, claims.ExpiresAt, s.cfg.Now())
	writeJSON(w, http.StatusOK, tokenResponse{Token: tok, TokenID: claims.Nonce, SessionID: claims.SessionID, ExpiresAt: identity.FormatTime(claims.ExpiresAt)})
}

// activeSessions counts the sessions with a token not yet expired that this
// replica issued or accepted, for aip_active_sessions.
type activeSessions struct {
	mu    sync.Mutex
	until map[string]time.Time
	// prune is the size at which seen forgets the expired sessions: they
	// would otherwise pile up until /metrics is scraped, if ever.
	prune int
}

// minSessionPrune is the least size at which seen prunes.
const minSessionPrune = 1024

// seen records at now that session has a token valid until exp.
func (a *activeSessions) seen(session string, exp, now time.Time) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.until == nil {
		a.until = make(map[string]time.Time)
	}
	if exp.After(a.until[session]) {
		a.until[session] = exp
	}
	if len(a.until) >= max(a.prune, minSessionPrune) {
		// Twice the live size next time: amortized constant work a call.
		a.forget(now)
		a.prune = 2 * len(a.until)
	}
}

// forget drops the sessions expired at now; a.mu is held.
func (a *activeSessions) forget(now time.Time) {
	for id, exp := range a.until {
		if !now.Before(exp) {
			delete(a.until, id)
		}
	}
}

// count returns the number of sessions active at now, forgetting the rest.
func (a *activeSessions) count(now time.Time) int {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.forget(now)
	return len(a.until)
}
