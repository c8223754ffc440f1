package identity

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strconv"
	"time"
)

// Version is the token format version claim (§5.3).
const Version = "aip/v1alpha2"

// TimeFormat is the layout of issued_at and expires_at: RFC 3339 with
// milliseconds, UTC, "Z" (as in the spec's examples).
const TimeFormat = "2006-01-02T15:04:05.000Z"

// FormatTime formats t as TimeFormat in UTC.
func FormatTime(t time.Time) string { return t.UTC().Format(TimeFormat) }

// Claims are the claims of an AIP identity token (DESIGN decision 7): the
// registered JWT claims and the AIP claims of §5.3, which must agree
// (sub = agent_id, jti = nonce, iat/exp = issued_at/expires_at in seconds).
type Claims struct {
	Issuer        string // iss
	Subject       string // sub = agent_id
	Audience      string // aud (a single string)
	IssuedAtUnix  int64  // iat
	ExpiresAtUnix int64  // exp
	NotBefore     *int64 // nbf, optional (agentid never sets it)
	JWTID         string // jti = nonce

	Version    string    // "aip/v1alpha2"
	PolicyHash string    // 64 lowercase hex
	SessionID  string    // UUID
	AgentID    string    // metadata.name
	IssuedAt   time.Time // issued_at
	ExpiresAt  time.Time // expires_at
	Nonce      string    // 32 lowercase hex (16 random bytes); also the token id
	Binding    Binding
}

// Binding is the session binding context of a token (§5.3.2, DESIGN
// decision 9). agentid always fills every field; ContainerID and PodUID are
// "" outside a container or Kubernetes pod.
type Binding struct {
	ProcessID   int    `json:"process_id"`
	PolicyPath  string `json:"policy_path"`
	Hostname    string `json:"hostname"`
	ContainerID string `json:"container_id"`
	PodUID      string `json:"pod_uid"`
}

// TokenID returns the token's id: its nonce (§8.2).
func (c *Claims) TokenID() string { return c.Nonce }

// wireClaims fixes the JSON member order and types of issued tokens.
type wireClaims struct {
	Iss        string  `json:"iss"`
	Sub        string  `json:"sub"`
	Aud        string  `json:"aud"`
	Iat        int64   `json:"iat"`
	Exp        int64   `json:"exp"`
	Nbf        *int64  `json:"nbf,omitempty"`
	Jti        string  `json:"jti"`
	Version    string  `json:"version"`
	PolicyHash string  `json:"policy_hash"`
	SessionID  string  `json:"session_id"`
	AgentID    string  `json:"agent_id"`
	IssuedAt   string  `json:"issued_at"`
	ExpiresAt  string  `json:"expires_at"`
	Nonce      string  `json:"nonce"`
	Binding    Binding `json:"binding"`
}

// MarshalJSON encodes the claims as the token payload.
func (c *Claims) MarshalJSON() ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	err := enc.Encode(wireClaims{
		Iss: c.Issuer, Sub: c.Subject, Aud: c.Audience, Iat: c.IssuedAtUnix, Exp: c.ExpiresAtUnix,
		Nbf: c.NotBefore, Jti: c.JWTID, Version: c.Version, PolicyHash: c.PolicyHash,
		SessionID: c.SessionID, AgentID: c.AgentID, IssuedAt: FormatTime(c.IssuedAt),
		ExpiresAt: FormatTime(c.ExpiresAt), Nonce: c.Nonce, Binding: c.Binding,
	})
	return bytes.TrimSuffix(buf.Bytes(), []byte("\n")), err
}

// claim bits, to find the missing ones.
const (
	hasIss = 1 << iota
	hasSub
	hasAud
	hasIat
	hasExp
	hasJti
	hasVersion
	hasPolicyHash
	hasSessionID
	hasAgentID
	hasIssuedAt
	hasExpiresAt
	hasNonce
	hasBinding
	allClaims = 1<<iota - 1
)

var claimNames = [...]string{"iss", "sub", "aud", "iat", "exp", "jti", "version", "policy_hash", "session_id", "agent_id", "issued_at", "expires_at", "nonce", "binding"}

// decodeClaims decodes a payload that jsonrpc.CheckStrict has accepted
// (valid JSON, no duplicate or case-variant keys). Claim names match
// exactly (case-sensitively); a known claim of the wrong type, a missing
// claim, or a claim that disagrees with its twin is an error. Unknown
// claims are ignored.
func decodeClaims(data []byte) (*Claims, error) {
	// One string for the whole payload: claim values are substrings of it,
	// so decoding allocates little.
	s := &jscan{b: string(data)}
	c := &Claims{}
	var seen int
	var issuedAt, expiresAt string
	err := s.object(func(key string) error {
		var err error
		switch key {
		case "iss":
			c.Issuer, err = s.str("iss")
			seen |= hasIss
		case "sub":
			c.Subject, err = s.str("sub")
			seen |= hasSub
		case "aud":
			c.Audience, err = s.str("aud")
			seen |= hasAud
		case "iat":
			c.IssuedAtUnix, err = s.int("iat")
			seen |= hasIat
		case "exp":
			c.ExpiresAtUnix, err = s.int("exp")
			seen |= hasExp
		case "nbf":
			var n int64
			n, err = s.int("nbf")
			c.NotBefore = &n
		case "jti":
			c.JWTID, err = s.str("jti")
			seen |= hasJti
		case "version":
			c.Version, err = s.str("version")
			seen |= hasVersion
		case "policy_hash":
			c.PolicyHash, err = s.str("policy_hash")
			seen |= hasPolicyHash
		case "session_id":
			c.SessionID, err = s.str("session_id")
			seen |= hasSessionID
		case "agent_id":
			c.AgentID, err = s.str("agent_id")
			seen |= hasAgentID
		case "issued_at":
			issuedAt, err = s.str("issued_at")
			seen |= hasIssuedAt
		case "expires_at":
			expiresAt, err = s.str("expires_at")
			seen |= hasExpiresAt
		case "nonce":
			c.Nonce, err = s.str("nonce")
			seen |= hasNonce
		case "binding":
			err = s.binding(&c.Binding)
			seen |= hasBinding
		default:
			err = s.skip()
		}
		return err
	})
	if err != nil {
		return nil, err
	}
	if seen != allClaims {
		for i, n := range claimNames {
			if seen&(1<<i) == 0 {
				return nil, fmt.Errorf("claim %s missing", n)
			}
		}
	}
	if c.IssuedAt, err = parseTime(issuedAt); err != nil {
		return nil, fmt.Errorf("claim issued_at: %v", err)
	}
	if c.ExpiresAt, err = parseTime(expiresAt); err != nil {
		return nil, fmt.Errorf("claim expires_at: %v", err)
	}
	return c, nil
}

// checkClaims checks the structure and internal agreement of claims.
func checkClaims(c *Claims) error {
	switch {
	case c.Version != Version:
		return fmt.Errorf("version %q, want %q", clip(c.Version), Version)
	case !isLowerHex(c.Nonce, 32):
		return fmt.Errorf("nonce is not 32 lowercase hex characters")
	case c.JWTID != c.Nonce:
		return fmt.Errorf("jti and nonce differ")
	case c.AgentID == "":
		return fmt.Errorf("agent_id is empty")
	case c.Subject != c.AgentID:
		return fmt.Errorf("sub and agent_id differ")
	case c.Audience == "":
		return fmt.Errorf("aud is empty")
	case c.Issuer == "":
		return fmt.Errorf("iss is empty")
	case !isLowerHex(c.PolicyHash, 64):
		return fmt.Errorf("policy_hash is not 64 lowercase hex characters")
	case !isUUID(c.SessionID):
		return fmt.Errorf("session_id is not a lowercase UUID")
	case c.ExpiresAtUnix != floorUnix(c.ExpiresAt):
		return fmt.Errorf("exp and expires_at disagree")
	case c.IssuedAtUnix != floorUnix(c.IssuedAt):
		return fmt.Errorf("iat and issued_at disagree")
	case !c.ExpiresAt.After(c.IssuedAt):
		return fmt.Errorf("expires_at is not after issued_at")
	case c.Binding.ProcessID <= 0:
		return fmt.Errorf("binding.process_id must be positive")
	case c.Binding.PolicyPath == "" || c.Binding.Hostname == "":
		return fmt.Errorf("binding.policy_path and binding.hostname are required")
	}
	return nil
}

func floorUnix(t time.Time) int64 { return t.Unix() }

// parseTime accepts RFC 3339 timestamps (any fraction, any offset).
func parseTime(s string) (time.Time, error) {
	if len(s) > 64 {
		return time.Time{}, fmt.Errorf("too long")
	}
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return time.Time{}, fmt.Errorf("not an RFC 3339 time")
	}
	return t, nil
}

func isLowerHex(s string, n int) bool {
	if len(s) != n {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f') {
			return false
		}
	}
	return true
}

// isUUID reports whether s is a UUID in canonical lowercase form.
func isUUID(s string) bool {
	if len(s) != 36 {
		return false
	}
	for i := 0; i < 36; i++ {
		c := s[i]
		switch i {
		case 8, 13, 18, 23:
			if c != '-' {
				return false
			}
		default:
			if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f') {
				return false
			}
		}
	}
	return true
}

func clip(s string) string {
	if len(s) > 40 {
		return s[:40] + "…"
	}
	return s
}

// jscan walks JSON that is already known to be valid (jsonrpc.CheckStrict),
// so it checks types, not syntax; it still never reads out of bounds.
type jscan struct {
	b string
	i int
}

func (s *jscan) ws() {
	for s.i < len(s.b) {
		switch s.b[s.i] {
		case ' ', '\t', '\n', '\r':
			s.i++
		default:
			return
		}
	}
}

func (s *jscan) peek() byte {
	s.ws()
	if s.i >= len(s.b) {
		return 0
	}
	return s.b[s.i]
}

var errSyntax = fmt.Errorf("invalid JSON")

// object calls f for each member with the scanner positioned at the value;
// f must consume the value.
func (s *jscan) object(f func(key string) error) error {
	if s.peek() != '{' {
		return fmt.Errorf("not a JSON object")
	}
	s.i++
	if s.peek() == '}' {
		s.i++
		return nil
	}
	for {
		if s.peek() != '"' {
			return errSyntax
		}
		key, err := s.rawString()
		if err != nil {
			return err
		}
		if s.peek() != ':' {
			return errSyntax
		}
		s.i++
		s.ws()
		if err := f(key); err != nil {
			return err
		}
		switch s.peek() {
		case ',':
			s.i++
		case '}':
			s.i++
			return nil
		default:
			return errSyntax
		}
	}
}

// rawString consumes a string and returns it unescaped.
func (s *jscan) rawString() (string, error) {
	start := s.i
	s.i++
	esc := false
	for s.i < len(s.b) {
		switch s.b[s.i] {
		case '\\':
			esc = true
			s.i += 2
			continue
		case '"':
			s.i++
			if !esc {
				return s.b[start+1 : s.i-1], nil
			}
			var out string
			if err := json.Unmarshal([]byte(s.b[start:s.i]), &out); err != nil {
				return "", errSyntax
			}
			return out, nil
		}
		s.i++
	}
	return "", errSyntax
}

func (s *jscan) str(name string) (string, error) {
	if s.peek() != '"' {
		return "", fmt.Errorf("claim %s must be a string", name)
	}
	return s.rawString()
}

// int consumes a JSON integer (no fraction or exponent) that fits in int64.
func (s *jscan) int(name string) (int64, error) {
	s.ws()
	start := s.i
	if s.i < len(s.b) && s.b[s.i] == '-' {
		s.i++
	}
	for s.i < len(s.b) && '0' <= s.b[s.i] && s.b[s.i] <= '9' {
		s.i++
	}
	if s.i == start || s.i < len(s.b) && (s.b[s.i] == '.' || s.b[s.i] == 'e' || s.b[s.i] == 'E') {
		return 0, fmt.Errorf("claim %s must be an integer", name)
	}
	n, err := strconv.ParseInt(s.b[start:s.i], 10, 64)
	if err != nil {
		return 0, fmt.Errorf("claim %s is out of range", name)
	}
	return n, nil
}

// skip consumes any value.
func (s *jscan) skip() error {
	switch c := s.peek(); c {
	case '"':
		_, err := s.rawString()
		return err
	case '{', '[':
		depth := 0
		for s.i < len(s.b) {
			switch s.b[s.i] {
			case '"':
				if _, err := s.rawString(); err != nil {
					return err
				}
				continue
			case '{', '[':
				depth++
			case '}', ']':
				depth--
				if depth == 0 {
					s.i++
					return nil
				}
			}
			s.i++
		}
		return errSyntax
	default:
		for s.i < len(s.b) {
			switch s.b[s.i] {
			case ',', '}', ']', ' ', '\t', '\n', '\r':
				return nil
			}
			s.i++
		}
		return nil
	}
}

func (s *jscan) binding(b *Binding) error {
	if s.peek() != '{' {
		return fmt.Errorf("claim binding must be an object")
	}
	var seen int
	err := s.object(func(key string) error {
		var err error
		switch key {
		case "process_id":
			var n int64
			n, err = s.int("binding.process_id")
			if err == nil && (n <= 0 || n > 1<<31-1) {
				err = fmt.Errorf("claim binding.process_id is out of range")
			}
			b.ProcessID = int(n)
			seen |= 1
		case "policy_path":
			b.PolicyPath, err = s.str("binding.policy_path")
			seen |= 2
		case "hostname":
			b.Hostname, err = s.str("binding.hostname")
			seen |= 4
		case "container_id":
			b.ContainerID, err = s.str("binding.container_id")
		case "pod_uid":
			b.PodUID, err = s.str("binding.pod_uid")
		default:
			err = s.skip()
		}
		return err
	})
	if err == nil && seen != 7 {
		err = fmt.Errorf("claim binding must have process_id, policy_path and hostname")
	}
	return err
}

// header is the decoded JOSE header.
type header struct {
	Alg, Typ, Kid string
}

// forbiddenHeaders are header parameters whose presence rejects a token:
// key material or key locations chosen by the token (jku, jwk, x5u, x5c),
// critical extensions (we support none), and parameters of other
// serializations.
var forbiddenHeaders = map[string]string{
	"jku":  "jku (key URL) is not accepted",
	"jwk":  "embedded jwk is not accepted",
	"x5u":  "x5u (certificate URL) is not accepted",
	"x5c":  "x5c (certificate chain) is not accepted",
	"crit": "crit: no critical extensions are supported",
	"b64":  "b64 is not accepted",
	"zip":  "zip is not accepted",
	"enc":  "enc: JWE is not accepted",
}

// forbiddenHeaderError marks a header that is rejected for security rather
// than for syntax; it is reported as signature_invalid.
type forbiddenHeaderError string

func (e forbiddenHeaderError) Error() string { return string(e) }

func decodeHeader(data []byte) (header, error) {
	s := &jscan{b: string(data)}
	var h header
	var seen int
	err := s.object(func(key string) error {
		var err error
		switch key {
		case "alg":
			h.Alg, err = s.str("alg")
			seen |= 1
		case "typ":
			h.Typ, err = s.str("typ")
			seen |= 2
		case "kid":
			h.Kid, err = s.str("kid")
			seen |= 4
		default:
			if why, bad := forbiddenHeaders[key]; bad {
				return forbiddenHeaderError("header " + why)
			}
			err = s.skip()
		}
		return err
	})
	if err != nil {
		return h, err
	}
	if seen != 7 {
		return h, fmt.Errorf("header must have alg, typ and kid")
	}
	return h, nil
}
