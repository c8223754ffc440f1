package server

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"

	"github.com/agentid/agentid/aip"
	"github.com/agentid/agentid/audit"
	"github.com/agentid/agentid/enforce"
	"github.com/agentid/agentid/internal/strictjson"
)

// validateRequest is the body of POST /v1/validate (spec §6.2.1).
type validateRequest struct {
	Tool      string
	Arguments json.RawMessage
	// ToolDefinition is agentid's addition: the tool's entry in the MCP
	// server's tools/list as the asking proxy saw it, for schema pins.
	ToolDefinition json.RawMessage
	// RoundTicket is agentid's addition: the ticket of the earlier round a
	// retry of a multi-round-trip call continues (enforce.Call.Round), ""
	// for a new call. A request that carries the member at all, even
	// empty, asks for the ticket of the next round (HasRoundTicket).
	RoundTicket    string
	HasRoundTicket bool
}

// decodeValidateRequest reads a validation request with the rules of an MCP
// message (strictjson's MCP profile: no duplicate or case-variant keys at
// any depth, no invalid UTF-8), since its arguments are what a tools/call
// would carry. Members other than tool and arguments are ignored, a
// "token" among them: tokens travel only in the Authorization header.
func decodeValidateRequest(body []byte) (validateRequest, error) {
	var req validateRequest
	sc := strictjson.NewScanner(strictjson.MCP, body)
	defer sc.Release()
	tok, err := sc.Next()
	if err != nil {
		return req, err
	}
	if tok.Kind != strictjson.Object {
		return req, errors.New("the body is not a JSON object")
	}
	var haveTool bool
	for {
		key, val, ok, err := sc.Member()
		if err != nil {
			return req, err
		}
		if !ok {
			break
		}
		switch string(sc.Text(key)) {
		case "tool":
			if val.Kind != strictjson.String {
				return req, errors.New("tool must be a string")
			}
			req.Tool, haveTool = string(sc.Text(val)), true
		case "arguments":
			if val.Kind != strictjson.Object {
				return req, errors.New("arguments must be an object")
			}
			req.Arguments = body[val.Start:val.End]
		case "tool_definition":
			if val.Kind != strictjson.Object {
				return req, errors.New("tool_definition must be an object")
			}
			req.ToolDefinition = body[val.Start:val.End]
		case "round_ticket":
			if val.Kind != strictjson.String {
				return req, errors.New("round_ticket must be a string")
			}
			req.RoundTicket, req.HasRoundTicket = string(sc.Text(val)), true
		}
	}
	if err := sc.Finish(); err != nil {
		return req, err
	}
	switch {
	case !haveTool || req.Tool == "":
		return req, errors.New("tool is required")
	case req.Arguments == nil:
		return req, errors.New("arguments is required")
	}
	return req, nil
}

// validateResponse is the 200 body of spec §6.2.2.
type validateResponse struct {
	Decision    string              `json:"decision"`
	Reason      string              `json:"reason,omitempty"`
	Violations  []enforce.Violation `json:"violations,omitempty"`
	TokenStatus *tokenStatus        `json:"token_status,omitempty"`
	// Code is the AIP error code of a block (agentid's addition to §6.2.2),
	// so that a proxy deciding through the server answers its client with
	// the code it would have answered locally.
	Code int `json:"code,omitempty"`
	// RoundTicket (agentid's addition) is what a retry of this call
	// presents should the MCP server answer it with input_required.
	RoundTicket string `json:"round_ticket,omitempty"`
}

type tokenStatus struct {
	Valid     bool  `json:"valid"`
	ExpiresIn int64 `json:"expires_in"`
}

func (s *Server) handleValidate(w http.ResponseWriter, r *http.Request) {
	token, present, err := bearer(r)
	if err != nil && !present {
		writeError(w, http.StatusBadRequest, errInvalidRequest, err.Error())
		return
	}
	body, ok := readJSONBody(w, r, s.cfg.MaxBodyBytes)
	if !ok {
		return
	}
	if err != nil {
		// A Bearer credential that is not a token at all.
		s.metrics.tokenValidation(false)
		writeJSON(w, http.StatusUnauthorized, errorBody{Error: errTokenInvalid, TokenError: aip.TokenErrMalformed})
		return
	}
	if token == "" && s.requireAuth.Load() && !verifiedClient(r) {
		writeJSON(w, http.StatusUnauthorized, errorBody{Error: errTokenRequired, Message: "this listener requires a token or a client certificate"})
		return
	}
	req, err := decodeValidateRequest(body)
	if err != nil {
		writeError(w, http.StatusBadRequest, errInvalidRequest, err.Error())
		return
	}
	ts := s.tenants.Load()
	t, tokenErr := ts.forToken(token)
	if t == nil {
		if token == "" {
			writeJSON(w, http.StatusUnauthorized, errorBody{Error: errTokenRequired})
		} else {
			s.metrics.tokenValidation(false)
			writeJSON(w, http.StatusUnauthorized, errorBody{Error: errTokenInvalid, TokenError: tokenErr})
		}
		return
	}
	// Where the listener requires authentication, a request without a
	// verified client certificate is authenticated by its token alone:
	// a policy that validates none cannot decide it.
	needToken := s.requireAuth.Load() && !verifiedClient(r)
	if needToken && t.core.Identity() == nil {
		writeJSON(w, http.StatusUnauthorized, errorBody{Error: errTokenRequired, Message: "this listener requires a client certificate"})
		return
	}
	// A store slower than server.timeout counts as unavailable: the
	// failover mode decides (§3.8.4). A client that hangs up does not: its
	// cancellation would look like a store outage (a fail_open alert,
	// failover counted and audited), so the decision, bounded by the
	// timeout, is made and recorded whether or not anyone reads it.
	ctx, cancel := context.WithTimeout(context.WithoutCancel(r.Context()), t.core.Policy().Server.Timeout)
	check := t.core.Check(ctx, enforce.Call{Tool: req.Tool, Arguments: req.Arguments, Token: token, RequireToken: needToken, ToolDefinition: req.ToolDefinition, Round: req.RoundTicket, Rounds: req.HasRoundTicket})
	cancel()
	if needToken && check.Token == nil {
		check = refuseUnauthenticated(check)
	}
	if err := s.cfg.Audit.LogAll(check.Audit); err != nil && !s.cfg.AuditBestEffort {
		s.cfg.Log.Error("audit write failed; the request is refused", "error", err)
		writeError(w, http.StatusInternalServerError, errInternal, "audit log unavailable")
		return
	}
	s.metrics.checked(check, token != "")
	if check.Token != nil {
		s.sessions.seen(check.Token.SessionID, check.Token.ExpiresAt, s.cfg.Now())
	}
	status, resp := s.checkResponse(check, token != "")
	writeJSON(w, status, resp)
}

// refuseUnauthenticated turns the decision on a call whose token did not
// validate, under a policy that does not require one, into the refusal of
// that token: on a listener that requires authentication it was the
// caller's only credential. The token's failure is recorded as a block;
// the decision, which the caller may not learn, is not recorded at all.
// (The call's rate limit was spent already; a core option to require the
// token would spare it.)
func refuseUnauthenticated(c enforce.Check) enforce.Check {
	for _, rec := range c.Audit {
		if rec.Event != enforce.EventTokenNotRequired {
			continue
		}
		rec.Event, rec.Decision = enforce.EventTokenRejected, aip.AuditBlock
		return enforce.Check{Decision: aip.DecisionBlock, Code: rec.Code, Reason: "Token invalid", TokenError: rec.Reason, Audit: []audit.Record{rec}}
	}
	return c
}

// checkResponse maps the core's decision to HTTP (DESIGN decision 13): a
// decision body for every policy outcome, 429 for a rate limit, 401 for a
// token the policy requires, 503 when the decision could not be made.
func (s *Server) checkResponse(c enforce.Check, presented bool) (int, any) {
	switch c.Code {
	case aip.CodeRateLimited:
		return http.StatusTooManyRequests, struct {
			errorBody
			validateResponse
		}{errorBody{Error: errRateLimited}, validateResponse{Decision: c.Decision, Reason: c.Reason, Violations: c.Violations, Code: c.Code}}
	case aip.CodeTokenRequired:
		return http.StatusUnauthorized, errorBody{Error: errTokenRequired}
	case aip.CodeTokenInvalid, aip.CodeTokenRevoked, aip.CodeAudienceMismatch:
		te := c.TokenError
		if te == "" {
			te = aip.TokenErrMalformed
		}
		return http.StatusUnauthorized, errorBody{Error: errTokenInvalid, TokenError: te}
	case aip.CodePolicySignatureInvalid:
		return http.StatusServiceUnavailable, errorBody{Error: errUnavailable, Message: "no valid policy is loaded"}
	case aip.CodeInternalError:
		return http.StatusInternalServerError, errorBody{Error: errInternal}
	case aip.CodeForbidden:
		if c.Reason == aip.TokenErrValidationUnavailable {
			return http.StatusServiceUnavailable, errorBody{Error: errValidationUnavailable}
		}
	}
	resp := validateResponse{Decision: c.Decision, Reason: c.Reason, Violations: c.Violations, Code: c.Code, RoundTicket: c.Round}
	if presented {
		resp.TokenStatus = &tokenStatus{Valid: c.Token != nil, ExpiresIn: c.ExpiresIn(s.cfg.Now())}
	}
	return http.StatusOK, resp
}
