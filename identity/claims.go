package identity

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math/bits"
	"time"

	"github.com/agentid/agentid/internal/strictjson"
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

// The claims, by index in claimNames; bit i of a decoding's seen is claim
// i. All but nbf are required.
const (
	claimIss = iota
	claimSub
	claimAud
	claimIat
	claimExp
	claimJti
	claimVersion
	claimPolicyHash
	claimSessionID
	claimAgentID
	claimIssuedAt
	claimExpiresAt
	claimNonce
	claimBinding
	claimNbf
	requiredClaims = 1<<claimNbf - 1
)

var claimNames = [...]string{"iss", "sub", "aud", "iat", "exp", "jti", "version", "policy_hash", "session_id", "agent_id", "issued_at", "expires_at", "nonce", "binding", "nbf"}

// The members of binding, by index in bindingNames; the first three are
// required.
const (
	bindingProcessID = iota
	requiredBinding  = 1<<3 - 1
)

var bindingNames = [...]string{"process_id", "policy_path", "hostname", "container_id", "pod_uid"}

// decodeClaims decodes a payload under the JOSE profile, in one pass that
// also validates it. A payload that is not strict JSON is an errNotStrict,
// whatever else is wrong with it. Then a known claim of the wrong type, a
// name that differs from a known claim's only in letter case, a missing
// claim, or a time that does not parse is an error. Claim names match
// exactly; unknown claims are ignored.
func decodeClaims(data []byte) (*Claims, error) {
	r := newReader(data)
	c := &Claims{}
	var issuedAt, expiresAt string
	strs := [len(claimNames)]*string{
		claimIss: &c.Issuer, claimSub: &c.Subject, claimAud: &c.Audience, claimJti: &c.JWTID,
		claimVersion: &c.Version, claimPolicyHash: &c.PolicyHash, claimSessionID: &c.SessionID,
		claimAgentID: &c.AgentID, claimIssuedAt: &issuedAt, claimExpiresAt: &expiresAt, claimNonce: &c.Nonce,
	}
	var seen int
	if r.object() {
		for key := range r.keys {
			i := r.member(key, claimNames[:], strs[:], "")
			switch i {
			case claimIat:
				c.IssuedAtUnix = r.int(r.value(), "iat")
			case claimExp:
				c.ExpiresAtUnix = r.int(r.value(), "exp")
			case claimNbf:
				n := r.int(r.value(), "nbf")
				c.NotBefore = &n
			case claimBinding:
				r.binding(&c.Binding)
			}
			if i >= 0 {
				seen |= 1 << i
			}
		}
	}
	if err := r.finish(); err != nil {
		return nil, err
	}
	if missing := requiredClaims &^ seen; missing != 0 {
		return nil, fmt.Errorf("claim %s missing", claimNames[bits.TrailingZeros(uint(missing))])
	}
	var err error
	if c.IssuedAt, err = parseTime(issuedAt); err != nil {
		return nil, fmt.Errorf("claim issued_at: %v", err)
	}
	if c.ExpiresAt, err = parseTime(expiresAt); err != nil {
		return nil, fmt.Errorf("claim expires_at: %v", err)
	}
	return c, nil
}

// binding reads the binding claim.
func (r *reader) binding(b *Binding) {
	t, err := r.s.Next()
	if err != nil {
		return
	}
	if t.Kind != strictjson.Object {
		r.failf("claim binding must be an object")
		if t.Kind == strictjson.Array {
			r.skipOpened()
		}
		return
	}
	strs := [len(bindingNames)]*string{nil, &b.PolicyPath, &b.Hostname, &b.ContainerID, &b.PodUID}
	var seen int
	for key := range r.keys {
		i := r.member(key, bindingNames[:], strs[:], "binding.")
		if i == bindingProcessID {
			n := r.int(r.value(), "binding.process_id")
			if n <= 0 || n > 1<<31-1 {
				r.failf("claim binding.process_id is out of range")
			}
			b.ProcessID = int(n)
		}
		if i >= 0 {
			seen |= 1 << i
		}
	}
	if seen&requiredBinding != requiredBinding {
		r.failf("claim binding must have process_id, policy_path and hostname")
	}
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
