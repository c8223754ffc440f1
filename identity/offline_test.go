package identity_test

import (
	"context"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"testing"

	"github.com/agentid/agentid/aip"
	"github.com/agentid/agentid/identity"
)

func TestOfflineVerifierChecksWhatNeedsNoIssuerState(t *testing.T) {
	f := newFixture(t, "audience: https://mcp.example.com")
	tok, claims := f.token()
	doc, err := f.m.Keys().JWKS()
	if err != nil {
		t.Fatal(err)
	}
	jwks, err := identity.ParseJWKS(doc)
	if err != nil {
		t.Fatal(err)
	}
	hash, err := f.pol.Hash()
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	revFile := func(content string) string {
		p := filepath.Join(dir, "rev-"+content[:8]+".json")
		os.WriteFile(p, []byte(content), 0o600)
		return p
	}
	ctx := context.Background()
	verify := func(c identity.OfflineConfig) (*identity.Claims, error) {
		t.Helper()
		v, err := identity.NewOfflineVerifier(ctx, c)
		if err != nil {
			t.Fatal(err)
		}
		return v.Validate(ctx, tok)
	}
	base := identity.OfflineConfig{Policy: f.pol, PolicyHash: hash, Keys: jwks, Now: f.clock.Now}

	t.Run("a valid token verifies, and again: its nonce is not consumed", func(t *testing.T) {
		for range 2 {
			got, err := verify(base)
			if err != nil || got.Nonce != claims.Nonce {
				t.Fatalf("%v %v", got, err)
			}
		}
	})
	t.Run("another policy hash is policy_changed", func(t *testing.T) {
		c := base
		c.PolicyHash = "0000000000000000000000000000000000000000000000000000000000000000"
		_, err := verify(c)
		expectError(t, err, aip.CodeTokenInvalid, aip.TokenErrPolicyChanged)
	})
	t.Run("a revoked session is refused", func(t *testing.T) {
		c := base
		c.RevocationFile = revFile(`{"revoked_sessions":["` + claims.SessionID + `"]}`)
		_, err := verify(c)
		expectError(t, err, aip.CodeTokenRevoked, aip.TokenErrSessionRevoked)
	})
	t.Run("a revoked token is refused", func(t *testing.T) {
		c := base
		c.RevocationFile = revFile(`{"revoked_tokens":["` + claims.Nonce + `"]}`)
		_, err := verify(c)
		expectError(t, err, aip.CodeTokenRevoked, aip.TokenErrTokenRevoked)
	})
	t.Run("a revocation file naming others lets the token through", func(t *testing.T) {
		c := base
		c.RevocationFile = revFile(`{"revoked_tokens":["00000000000000000000000000000000"]}`)
		if _, err := verify(c); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("a missing revocation file is an error, not an empty list", func(t *testing.T) {
		c := base
		c.RevocationFile = filepath.Join(dir, "missing.json")
		if _, err := identity.NewOfflineVerifier(ctx, c); !errors.Is(err, fs.ErrNotExist) {
			t.Fatalf("err = %v", err)
		}
	})
	t.Run("an invalid revocation file is an error", func(t *testing.T) {
		c := base
		c.RevocationFile = revFile(`{"revoked_sessions":["not-a-uuid"]}`)
		if _, err := identity.NewOfflineVerifier(ctx, c); err == nil {
			t.Fatal("accepted")
		}
	})
}
