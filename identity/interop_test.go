package identity_test

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/agentid/agentid/internal/testenv"

	jose "github.com/go-jose/go-jose/v4"

	"github.com/agentid/agentid/aip"
	"github.com/agentid/agentid/identity"
)

// joseDir is the npm package with the pinned "jose" library.
const joseDir = "../test/interop"

// runJose runs the interop driver with a request and decodes its answer.
func runJose(t *testing.T, req, resp any) {
	t.Helper()
	node, err := exec.LookPath("node")
	testenv.RequireComponent(t, "Node.js (for the npm jose interop test)", err)
	_, err = os.Stat(filepath.Join(joseDir, "node_modules", "jose", "package.json"))
	testenv.RequireComponent(t, "npm jose in "+joseDir+" (npm ci)", err)
	in, _ := json.Marshal(req)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, node, "token.mjs")
	cmd.Dir = joseDir
	cmd.Stdin = bytes.NewReader(in)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("node token.mjs: %v\n%s", err, stderr.String())
	}
	if err := json.Unmarshal(out, resp); err != nil {
		t.Fatalf("interop answer: %v\n%s", err, out)
	}
}

func TestInteropJose(t *testing.T) {
	for _, alg := range []string{"ES256", "ES384", "EdDSA", "RS256"} {
		t.Run(alg, func(t *testing.T) {
			// A real clock: jose checks exp and iat against its own.
			pol := writePolicy(t, t.TempDir(), "interop-agent", "token_ttl: 5m\naudience: https://mcp.example.com\nkeys:\n  signing_algorithm: "+alg)
			m, err := identity.NewManager(identity.Config{Policy: pol})
			if err != nil {
				t.Fatal(err)
			}
			defer m.Close()
			ctx := context.Background()
			jwks, _ := m.JWKS()

			// 1. Our tokens verify with jose against our JWKS.
			var toks []string
			for range 3 {
				tok, _, err := m.Issue(ctx)
				if err != nil {
					t.Fatal(err)
				}
				toks = append(toks, tok)
			}
			// And a tampered one must fail there too.
			tampered := toks[0][:len(toks[0])-4] + "AAAA"
			var vr struct {
				Results []struct {
					OK      bool           `json:"ok"`
					Error   string         `json:"error"`
					Header  map[string]any `json:"header"`
					Payload map[string]any `json:"payload"`
				} `json:"results"`
			}
			runJose(t, map[string]any{"op": "verify", "jwks": json.RawMessage(jwks), "audience": "https://mcp.example.com", "alg": alg,
				"tokens": append(toks, tampered)}, &vr)
			if len(vr.Results) != 4 {
				t.Fatalf("results %+v", vr)
			}
			for i, r := range vr.Results[:3] {
				if !r.OK {
					t.Fatalf("jose rejected our token %d: %s", i, r.Error)
				}
				if r.Header["typ"] != "aip+jwt" || r.Header["kid"] != m.Keys().ActiveKID() || r.Payload["agent_id"] != "interop-agent" {
					t.Fatalf("jose saw header %v payload %v", r.Header, r.Payload)
				}
			}
			if vr.Results[3].OK {
				t.Fatal("jose accepted a tampered token")
			}

			// 2. A token jose signs with our key verifies with our verifier.
			pemBytes, _ := m.Keys().PrivateKeyPEM()
			priv, err := identity.ParsePrivateKeyPEM(pemBytes)
			if err != nil {
				t.Fatal(err)
			}
			privJWK, err := json.Marshal(jose.JSONWebKey{Key: priv, KeyID: m.Keys().ActiveKID(), Algorithm: alg})
			if err != nil {
				t.Fatal(err)
			}
			_, c, _ := m.Issue(ctx) // claims template for this session
			c.Nonce = "0123456789abcdef0123456789abcdef"
			c.JWTID = c.Nonce
			payload, _ := c.MarshalJSON()
			var sr struct {
				Token string `json:"token"`
			}
			runJose(t, map[string]any{"op": "sign", "jwk": json.RawMessage(privJWK), "alg": alg, "kid": m.Keys().ActiveKID(),
				"payload": json.RawMessage(payload)}, &sr)
			got, err := m.Validate(ctx, sr.Token)
			if err != nil {
				t.Fatalf("our verifier rejected jose's token: %v\n%s", err, sr.Token)
			}
			if got.Nonce != c.Nonce || got.SessionID != m.SessionID() {
				t.Fatalf("claims %+v", got)
			}
			// jose's token is single-use with us too.
			if _, err := m.Validate(ctx, sr.Token); identity.AsValidationError(err) == nil || identity.AsValidationError(err).TokenError != aip.TokenErrReplayDetected {
				t.Fatalf("replay of jose's token: %v", err)
			}
		})
	}
}
