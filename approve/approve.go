package approve

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"time"
	"unicode/utf8"

	"github.com/agentid/agentid/internal/jcs"
)

// Request is what the approver is asked about.
type Request struct {
	Tool string
	// Arguments are the call's arguments after DLP redaction. They are
	// shown to the human; the original arguments never leave the proxy.
	Arguments  json.RawMessage
	PolicyHash string
	SessionID  string
	// Expires bounds the approval: an approver gives up at this time even
	// if its own timeout is longer. Zero means no bound beyond the
	// approver's timeout and the context.
	Expires time.Time
	// Digest is Digest(key, Tool, original arguments); it binds the
	// answer to this call.
	Digest string
}

// Answer is the outcome of an approval.
type Answer uint8

const (
	// Denied: the human said no, or the approver failed closed.
	Denied Answer = iota
	// Approved: the human said yes to exactly this call.
	Approved
	// TimedOut: nobody answered before the deadline or the context ended.
	TimedOut
)

func (a Answer) String() string {
	switch a {
	case Denied:
		return "denied"
	case Approved:
		return "approved"
	case TimedOut:
		return "timed out"
	}
	return fmt.Sprintf("Answer(%d)", uint8(a))
}

// Approver decides on one Request. Implementations must be safe for
// concurrent use, honour ctx, and never return Approved with an error.
type Approver interface {
	Approve(ctx context.Context, req Request) (Answer, error)
}

// Func adapts a function to the Approver interface, for tests and for
// embedding agentid with a custom approval UI.
type Func func(ctx context.Context, req Request) (Answer, error)

// Approve calls f. An Approved answer that comes with an error is turned
// into Denied, so a buggy function cannot fail open.
func (f Func) Approve(ctx context.Context, req Request) (Answer, error) {
	a, err := f(ctx, req)
	if a == Approved && err != nil {
		return Denied, err
	}
	return a, err
}

// errHeadless explains Headless denials in the audit log.
var errHeadless = errors.New("approve: no terminal or webhook is available to ask a human; denied")

// Headless returns an Approver that denies every request immediately. It is
// used when the proxy has no controlling terminal (an MCP client started it
// as a background process) and no webhook is configured: asking nobody must
// not mean yes.
func Headless() Approver {
	return Func(func(context.Context, Request) (Answer, error) {
		return Denied, errHeadless
	})
}

// Default returns a terminal approver on the controlling terminal if one can
// be opened, and Headless otherwise. A webhook approver is only ever chosen by
// configuration.
func Default() Approver {
	a, err := Terminal(TerminalOptions{})
	if err != nil {
		return Headless()
	}
	return a
}

// DigestKeySize is the size of the key NewDigestKey returns.
const DigestKeySize = 32

// NewDigestKey returns a random key for Digest, made once per process (or
// session): digests made with it can be compared with each other, and
// reveal nothing about the call to anyone without it.
func NewDigestKey() []byte {
	k := make([]byte, DigestKeySize)
	if _, err := rand.Read(k); err != nil {
		panic("approve: no randomness: " + err.Error())
	}
	return k
}

// Digest returns the lowercase hex HMAC-SHA256 under key of the RFC 8785
// (JCS) form of {"tool": tool, "arguments": args}; nil or empty args count
// as {}.
//
// The digest binds an approval to exactly one call: the approver echoes it,
// and two calls with the same tool and arguments have the same digest under
// one key. It is keyed because the approver sees the arguments redacted: an
// unkeyed hash of the original arguments would let it recover a redacted
// 4-digit PIN in 10^4 guesses. JCS makes the digest independent of key
// order and whitespace; numbers are compared as IEEE 754 doubles (1.0 and 1
// digest alike). Args with duplicate keys or invalid UTF-8 are rejected:
// they have no single meaning to bind to. A key shorter than 16 bytes is
// refused.
func Digest(key []byte, tool string, args json.RawMessage) (string, error) {
	if len(key) < 16 {
		return "", errors.New("approve: digest: key shorter than 16 bytes")
	}
	if !utf8.ValidString(tool) {
		return "", errors.New("approve: digest: tool name is not valid UTF-8")
	}
	if len(bytes.TrimSpace(args)) == 0 {
		args = json.RawMessage("{}")
	}
	if !utf8.Valid(args) || !json.Valid(args) {
		return "", errors.New("approve: digest: arguments are not valid JSON")
	}
	name, err := json.Marshal(tool)
	if err != nil {
		return "", fmt.Errorf("approve: digest: %w", err)
	}
	doc := make([]byte, 0, len(name)+len(args)+len(`{"tool":,"arguments":}`))
	doc = append(doc, `{"tool":`...)
	doc = append(doc, name...)
	doc = append(doc, `,"arguments":`...)
	doc = append(doc, args...)
	doc = append(doc, '}')
	canon, err := jcs.Transform(doc)
	if err != nil {
		return "", fmt.Errorf("approve: digest: %w", err)
	}
	mac := hmac.New(sha256.New, key)
	mac.Write(canon)
	return hex.EncodeToString(mac.Sum(nil)), nil
}

// deadline returns the earliest of now+timeout and expires (if set).
func deadline(timeout time.Duration, expires time.Time) time.Time {
	d := time.Now().Add(timeout)
	if !expires.IsZero() && expires.Before(d) {
		d = expires
	}
	return d
}
