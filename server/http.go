package server

import (
	"crypto/sha256"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"io"
	"mime"
	"net/http"
	"strings"
)

// Error codes of the error bodies ({"error": <code>, ...}), spec §6.2.3 and
// §6.5.3, plus the transport's own.
const (
	errInvalidRequest        = "invalid_request"
	errTokenRequired         = "token_required"
	errTokenInvalid          = "token_invalid"
	errForbidden             = "forbidden"
	errRateLimited           = "rate_limited"
	errInternal              = "internal_error"
	errUnauthorized          = "unauthorized"
	errNotFound              = "not_found"
	errMethodNotAllowed      = "method_not_allowed"
	errUnsupportedMediaType  = "unsupported_media_type"
	errRequestTooLarge       = "request_too_large"
	errValidationUnavailable = "validation_unavailable"
	errUnavailable           = "unavailable"
)

// errorBody is the body of every error answer.
type errorBody struct {
	Error      string `json:"error"`
	TokenError string `json:"token_error,omitempty"`
	Message    string `json:"message,omitempty"`
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		status, b = http.StatusInternalServerError, []byte(`{"error":"internal_error"}`)
	}
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	w.Write(append(b, '\n'))
}

func writeError(w http.ResponseWriter, status int, code, message string) {
	writeJSON(w, status, errorBody{Error: code, Message: message})
}

// bearer returns the token of the request's Authorization header (RFC 6750
// §2.1): the Bearer scheme, in any letter case, and a b64token. present
// reports whether a Bearer credential was there at all; a header with
// another scheme (Basic) carries no token. Tokens anywhere else (body,
// query, cookies) are never read (spec §6.2.1). More than one
// Authorization header is an error: which one counts would be a guess.
func bearer(r *http.Request) (token string, present bool, err error) { return Bearer(r) }

// Bearer is the Bearer credential of r's Authorization header, with the
// rules of bearer: the one reader of that header for every agentid HTTP
// endpoint.
func Bearer(r *http.Request) (token string, present bool, err error) {
	vals := r.Header.Values("Authorization")
	switch len(vals) {
	case 0:
		return "", false, nil
	case 1:
	default:
		return "", false, errors.New("more than one Authorization header")
	}
	scheme, cred, ok := strings.Cut(vals[0], " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return "", false, nil
	}
	cred = strings.TrimLeft(cred, " ")
	if cred == "" || !isB64Token(cred) {
		return "", true, errors.New("malformed Bearer credential")
	}
	return cred, true, nil
}

// isB64Token reports whether s is an RFC 6750 b64token.
func isB64Token(s string) bool {
	end := len(s)
	for end > 0 && s[end-1] == '=' {
		end--
	}
	if end == 0 {
		return false
	}
	for i := 0; i < end; i++ {
		c := s[i]
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		case c == '-', c == '.', c == '_', c == '~', c == '+', c == '/':
		default:
			return false
		}
	}
	return true
}

// readJSONBody reads a POST body of type application/json, at most limit
// bytes. It writes the error answer itself and returns ok false when the
// request is refused.
func readJSONBody(w http.ResponseWriter, r *http.Request, limit int64) (body []byte, ok bool) {
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		writeError(w, http.StatusMethodNotAllowed, errMethodNotAllowed, "use POST")
		return nil, false
	}
	mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if err != nil || mt != "application/json" {
		writeError(w, http.StatusUnsupportedMediaType, errUnsupportedMediaType, "Content-Type must be application/json")
		return nil, false
	}
	body, err = io.ReadAll(http.MaxBytesReader(w, r.Body, limit))
	if err != nil {
		var tooLarge *http.MaxBytesError
		if errors.As(err, &tooLarge) {
			writeError(w, http.StatusRequestEntityTooLarge, errRequestTooLarge, "request body too large")
		} else {
			writeError(w, http.StatusBadRequest, errInvalidRequest, "request body could not be read")
		}
		return nil, false
	}
	return body, true
}

// sameSecret compares a presented credential with the configured one in
// time that depends on neither: both are hashed first, so not even their
// lengths leak.
func sameSecret(presented string, want []byte) bool {
	if len(want) == 0 {
		return false
	}
	a, b := sha256.Sum256([]byte(presented)), sha256.Sum256(want)
	return subtle.ConstantTimeCompare(a[:], b[:]) == 1
}
