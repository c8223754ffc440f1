package identity_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/agentid/agentid/identity"
	"github.com/agentid/agentid/policy"
)

func examplePolicy(dir string) *policy.Policy {
	path := filepath.Join(dir, "agent.yaml")
	doc := `apiVersion: aip.io/v1alpha2
kind: AgentPolicy
metadata:
  name: secure-agent
spec:
  allowed_tools: [read_file]
  identity:
    enabled: true
    token_ttl: 5m
    rotation_interval: 4m
    require_token: true
    audience: https://mcp.example.com
`
	if err := os.WriteFile(path, []byte(doc), 0o600); err != nil {
		panic(err)
	}
	p, _, err := policy.Load(path)
	if err != nil {
		panic(err)
	}
	return p
}

// A Manager issues the session's tokens and validates them; a token is
// accepted once.
func ExampleManager() {
	dir, _ := os.MkdirTemp("", "example")
	defer os.RemoveAll(dir)
	ctx := context.Background()

	m, err := identity.NewManager(identity.Config{
		Policy:  examplePolicy(dir),
		OnEvent: func(e identity.Event) { fmt.Println("audit:", e.Type) },
	})
	if err != nil {
		panic(err)
	}
	defer m.Close()

	tok, _ := m.Token(ctx)
	claims, err := m.Validate(ctx, tok)
	fmt.Println(claims.AgentID, claims.Audience, err)

	_, err = m.Validate(ctx, tok)
	ve := identity.AsValidationError(err)
	fmt.Println(ve.Code, ve.TokenError)
	// Output:
	// audit: TOKEN_ISSUED
	// secure-agent https://mcp.example.com <nil>
	// audit: TOKEN_VALIDATION_FAILED
	// -32009 replay_detected
}

// Rotation follows the injected clock: after rotation_interval the current
// token is replaced, in the same session.
func ExampleManager_Token() {
	dir, _ := os.MkdirTemp("", "example")
	defer os.RemoveAll(dir)
	ctx := context.Background()
	now := time.Date(2026, 1, 24, 10, 30, 0, 0, time.UTC)
	m, _ := identity.NewManager(identity.Config{Policy: examplePolicy(dir), Now: func() time.Time { return now }})
	defer m.Close()

	_, c1, _ := m.CurrentToken(ctx)
	now = now.Add(4 * time.Minute)
	_, c2, _ := m.CurrentToken(ctx)
	fmt.Println(c1.Nonce != c2.Nonce, c1.SessionID == c2.SessionID)
	fmt.Println(identity.FormatTime(c2.IssuedAt), identity.FormatTime(c2.ExpiresAt))
	// Output:
	// true true
	// 2026-01-24T10:34:00.000Z 2026-01-24T10:39:00.000Z
}

// A process that did not issue the token (a validation server, or
// `agentid token verify`) verifies it against the issuer's JWKS.
func ExampleNewVerifier() {
	dir, _ := os.MkdirTemp("", "example")
	defer os.RemoveAll(dir)
	ctx := context.Background()
	p := examplePolicy(dir)
	issuer, _ := identity.NewManager(identity.Config{Policy: p})
	defer issuer.Close()
	tok, _, _ := issuer.Issue(ctx)

	doc, _ := issuer.JWKS() // served at /v1/jwks
	keys, err := identity.ParseJWKS(doc)
	if err != nil {
		panic(err)
	}
	hash, _ := p.Hash()
	v, err := identity.NewVerifier(identity.VerifierConfig{
		Keys:               keys,
		Audience:           p.IdentityConfig().Audience,
		PolicyHash:         hash,
		DisableReplayCheck: true, // offline check; an enforcing verifier passes Nonces
	})
	if err != nil {
		panic(err)
	}
	c, err := v.Validate(ctx, tok)
	fmt.Println(c.AgentID, err)

	_, err = v.Validate(ctx, "not-a-valid-token-format")
	fmt.Println(identity.AsValidationError(err).TokenError)
	// Output:
	// secure-agent <nil>
	// malformed
}

// ValidationError carries the JSON-RPC error of §7.2.
func ExampleValidationError_Data() {
	dir, _ := os.MkdirTemp("", "example")
	defer os.RemoveAll(dir)
	ctx := context.Background()
	at := time.Date(2026, 1, 24, 10, 30, 0, 0, time.UTC)
	m, _ := identity.NewManager(identity.Config{Policy: examplePolicy(dir), Now: func() time.Time { return at }})
	defer m.Close()
	tok, _ := m.Token(ctx)
	_ = m.EndSession(ctx) // SIGUSR1

	_, err := m.Validate(ctx, tok)
	ve := identity.AsValidationError(err)
	d := ve.Data("write_file", false)
	fmt.Println(ve.Code, ve.Message())
	fmt.Println(d["token_error"], d["revocation_type"], d["revoked_at"])
	// Output:
	// -32011 Token revoked
	// session_revoked session 2026-01-24T10:30:00.000Z
}
