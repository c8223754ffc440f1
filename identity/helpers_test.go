package identity_test

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/base64"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/agentid/agentid/identity"
	"github.com/agentid/agentid/policy"
)

// fakeClock is an injectable clock: tests advance it instead of sleeping.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock() *fakeClock {
	return &fakeClock{t: time.Date(2026, 1, 24, 10, 30, 0, 0, time.UTC)}
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// writePolicy writes a policy with the given identity block (indented
// under spec.identity) and loads it.
func writePolicy(t testing.TB, dir, name, identityBlock string, extraSpec ...string) *policy.Policy {
	t.Helper()
	var b strings.Builder
	b.WriteString("apiVersion: aip.io/v1alpha2\nkind: AgentPolicy\nmetadata:\n  name: " + name + "\nspec:\n  allowed_tools: [read_file]\n")
	for _, s := range extraSpec {
		b.WriteString(s)
	}
	b.WriteString("  identity:\n    enabled: true\n")
	for _, l := range strings.Split(strings.TrimSpace(identityBlock), "\n") {
		if l = strings.TrimRight(l, " "); l != "" {
			b.WriteString("    " + l + "\n")
		}
	}
	path := filepath.Join(dir, name+".yaml")
	if err := os.WriteFile(path, []byte(b.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	p, _, err := policy.Load(path)
	if err != nil {
		t.Fatalf("load policy: %v\n%s", err, b.String())
	}
	return p
}

type fixture struct {
	t      testing.TB
	clock  *fakeClock
	pol    *policy.Policy
	m      *identity.Manager
	events []identity.Event
	mu     sync.Mutex
	ctx    context.Context
}

// newFixture makes a Manager on a fake clock for a policy with the given
// identity settings.
func newFixture(t testing.TB, identityBlock string, mod ...func(*identity.Config)) *fixture {
	t.Helper()
	f := &fixture{t: t, clock: newClock(), ctx: context.Background()}
	f.pol = writePolicy(t, t.TempDir(), "test-agent", identityBlock)
	cfg := identity.Config{
		Policy: f.pol,
		Now:    f.clock.Now,
		OnEvent: func(e identity.Event) {
			f.mu.Lock()
			f.events = append(f.events, e)
			f.mu.Unlock()
		},
	}
	for _, m := range mod {
		m(&cfg)
	}
	m, err := identity.NewManager(cfg)
	if err != nil {
		t.Fatalf("NewManager: %v", err)
	}
	t.Cleanup(func() { m.Close() })
	f.m = m
	return f
}

func (f *fixture) token() (string, *identity.Claims) {
	f.t.Helper()
	tok, c, err := f.m.Issue(f.ctx)
	if err != nil {
		f.t.Fatalf("Issue: %v", err)
	}
	return tok, c
}

func (f *fixture) eventsOf(typ string) []identity.Event {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []identity.Event
	for _, e := range f.events {
		if e.Type == typ {
			out = append(out, e)
		}
	}
	return out
}

// privateKey returns the Manager's active private signing key.
func (f *fixture) privateKey() crypto.Signer {
	f.t.Helper()
	pemBytes, err := f.m.Keys().PrivateKeyPEM()
	if err != nil {
		f.t.Fatal(err)
	}
	k, err := identity.ParsePrivateKeyPEM(pemBytes)
	if err != nil {
		f.t.Fatal(err)
	}
	return k
}

// expectError asserts that err is a ValidationError with code and token_error.
func expectError(t testing.TB, err error, code int, tokenErr string) *identity.ValidationError {
	t.Helper()
	ve := identity.AsValidationError(err)
	if ve == nil {
		t.Fatalf("got error %v (%T), want a ValidationError %d %s", err, err, code, tokenErr)
	}
	if ve.Code != code || ve.TokenError != tokenErr {
		t.Fatalf("got %d %q (%s), want %d %q", ve.Code, ve.TokenError, ve.Reason, code, tokenErr)
	}
	return ve
}

var enc = base64.RawURLEncoding

// signRaw signs "header.payload" (raw JSON strings) with key under alg,
// producing any token a forger with that key could produce.
func signRaw(t testing.TB, alg string, key any, headerJSON, payloadJSON string) string {
	t.Helper()
	input := enc.EncodeToString([]byte(headerJSON)) + "." + enc.EncodeToString([]byte(payloadJSON))
	var sig []byte
	switch alg {
	case "none":
		sig = nil
	case "HS256":
		m := hmac.New(sha256.New, key.([]byte))
		m.Write([]byte(input))
		sig = m.Sum(nil)
	case "EdDSA":
		sig = ed25519.Sign(key.(ed25519.PrivateKey), []byte(input))
	case "ES256", "ES384":
		k := key.(*ecdsa.PrivateKey)
		var h []byte
		size := 32
		if alg == "ES256" {
			s := sha256.Sum256([]byte(input))
			h = s[:]
		} else {
			s := sha512.Sum384([]byte(input))
			h, size = s[:], 48
		}
		r, s, err := ecdsa.Sign(rand.Reader, k, h)
		if err != nil {
			t.Fatal(err)
		}
		sig = make([]byte, 2*size)
		r.FillBytes(sig[:size])
		s.FillBytes(sig[size:])
	default:
		t.Fatalf("signRaw: alg %s", alg)
	}
	return input + "." + enc.EncodeToString(sig)
}

// payloadOf returns the decoded payload of a token as a generic map.
func payloadOf(t testing.TB, tok string) map[string]any {
	t.Helper()
	_, p, err := identity.DecodeUnverified(tok)
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	d := json.NewDecoder(strings.NewReader(string(p)))
	d.UseNumber()
	if err := d.Decode(&m); err != nil {
		t.Fatal(err)
	}
	return m
}

func headerOf(t testing.TB, tok string) map[string]any {
	t.Helper()
	h, _, err := identity.DecodeUnverified(tok)
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(h, &m); err != nil {
		t.Fatal(err)
	}
	return m
}

func mustJSON(t testing.TB, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func numInt(v any) int64 {
	n, err := v.(json.Number).Int64()
	if err != nil {
		panic(err)
	}
	return n
}

func asStoreError(err error, target **identity.StoreError) bool {
	return errors.As(err, target)
}
