package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// runInProcess runs the root command with args and returns stdout, stderr
// and the exit code the process would have.
func runInProcess(t *testing.T, stdin string, args ...string) (string, string, int) {
	t.Helper()
	var out, errb bytes.Buffer
	root := newRootCmd(&out, &errb)
	root.SetIn(strings.NewReader(stdin))
	root.SetArgs(args)
	err := root.Execute()
	code := 0
	var ee exitError
	switch {
	case errors.As(err, &ee):
		code = ee.code
	case err != nil:
		errb.WriteString(err.Error())
		code = 1
	}
	return out.String(), errb.String(), code
}

const cliPolicy = `apiVersion: aip.io/v1alpha2
kind: AgentPolicy
metadata:
  name: cli-agent # comment
spec:
  allowed_tools: [read_file]
  identity:
    enabled: true
    audience: https://mcp.example.com
`

func TestKeysGenerate(t *testing.T) {
	dir := t.TempDir()
	for _, alg := range []string{"ES256", "ES384", "EdDSA", "RS256"} {
		key := filepath.Join(dir, alg+".pem")
		pub := filepath.Join(dir, alg+".pub")
		_, stderr, code := runInProcess(t, "", "keys", "generate", "--alg", alg, "--out", key, "--pub-out", pub)
		if code != 0 || !strings.Contains(stderr, "kid ") {
			t.Fatalf("%s: exit %d %s", alg, code, stderr)
		}
		fi, err := os.Stat(key)
		if err != nil || fi.Mode().Perm() != 0o600 {
			t.Fatalf("%s: key file mode %v %v", alg, fi.Mode(), err)
		}
		data, _ := os.ReadFile(key)
		if !strings.HasPrefix(string(data), "-----BEGIN PRIVATE KEY-----") {
			t.Fatalf("%s: not PKCS#8 PEM", alg)
		}
		// No overwrite without --force.
		if _, _, code := runInProcess(t, "", "keys", "generate", "--alg", alg, "--out", key); code == 0 {
			t.Fatalf("%s: overwrote an existing key", alg)
		}
		out, _, code := runInProcess(t, "", "keys", "jwks", key, pub)
		if code != 0 || strings.Contains(out, `"d"`) || !strings.Contains(out, `"use":"sig"`) {
			t.Fatalf("%s: jwks: %d %s", alg, code, out)
		}
	}
	if _, _, code := runInProcess(t, "", "keys", "generate", "--alg", "HS256"); code == 0 {
		t.Fatal("HS256 key file generated")
	}
}

func TestTokenIssueInspectVerify(t *testing.T) {
	dir := t.TempDir()
	pol := filepath.Join(dir, "policy.yaml")
	os.WriteFile(pol, []byte(cliPolicy), 0o600)
	key := filepath.Join(dir, "key.pem")
	if _, e, code := runInProcess(t, "", "keys", "generate", "--out", key); code != 0 {
		t.Fatal(e)
	}
	jwks := filepath.Join(dir, "jwks.json")
	out, stderr, code := runInProcess(t, "", "token", "issue", "--policy", pol, "--key", key, "--jwks-out", jwks)
	if code != 0 {
		t.Fatalf("issue: %d %s", code, stderr)
	}
	tok := strings.TrimSpace(out)
	if strings.Count(tok, ".") != 2 {
		t.Fatalf("token %q", tok)
	}

	out, stderr, code = runInProcess(t, "", "token", "inspect", tok)
	var insp struct {
		Verified bool           `json:"verified"`
		Header   map[string]any `json:"header"`
		Claims   map[string]any `json:"claims"`
	}
	if code != 0 || json.Unmarshal([]byte(out), &insp) != nil || insp.Verified || insp.Header["typ"] != "aip+jwt" || insp.Claims["agent_id"] != "cli-agent" {
		t.Fatalf("inspect: %d %s", code, out)
	}
	if !strings.Contains(stderr, "NOT VERIFIED") {
		t.Fatal("inspect does not say it did not verify")
	}

	for _, keyArgs := range [][]string{{"--key", key}, {"--jwks", jwks}} {
		args := append([]string{"token", "verify", "--policy", pol}, keyArgs...)
		out, stderr, code = runInProcess(t, "", append(args, tok)...)
		if code != 0 || !strings.HasPrefix(out, "valid: agent cli-agent") {
			t.Fatalf("verify %v: %d %s %s", keyArgs, code, out, stderr)
		}
		// Offline verification does not consume the token.
		if _, _, code = runInProcess(t, tok, append(args, "-")...); code != 0 {
			t.Fatal("second offline verification failed")
		}
	}

	// Invalid: tampered, other policy, wrong key, revoked.
	parts := strings.Split(tok, ".")
	bad := parts[0] + "." + parts[1] + "A." + parts[2]
	out, _, code = runInProcess(t, "", "token", "verify", "--policy", pol, "--key", key, bad)
	if code != 1 || strings.TrimSpace(out) == "" || strings.Contains(out, "valid:") {
		t.Fatalf("tampered: %d %q", code, out)
	}
	pol2 := filepath.Join(dir, "policy2.yaml")
	os.WriteFile(pol2, []byte(strings.Replace(cliPolicy, "[read_file]", "[read_file, write_file]", 1)), 0o600)
	out, _, code = runInProcess(t, "", "token", "verify", "--policy", pol2, "--key", key, tok)
	if code != 1 || strings.TrimSpace(out) != "policy_changed" {
		t.Fatalf("other policy: %d %q", code, out)
	}
	pol3 := filepath.Join(dir, "policy3.yaml")
	os.WriteFile(pol3, []byte(strings.Replace(cliPolicy, "https://mcp.example.com", "https://other.example.com", 1)), 0o600)
	out, _, code = runInProcess(t, "", "token", "verify", "--json", "--policy", pol3, "--key", key, tok)
	if code != 1 || !strings.Contains(out, `"token_error":"audience_mismatch"`) || !strings.Contains(out, `"code":-32012`) {
		t.Fatalf("other audience: %d %q", code, out)
	}
	key2 := filepath.Join(dir, "key2.pem")
	runInProcess(t, "", "keys", "generate", "--out", key2)
	out, _, code = runInProcess(t, "", "token", "verify", "--policy", pol, "--key", key2, tok)
	if code != 1 || strings.TrimSpace(out) != "signature_invalid" {
		t.Fatalf("wrong key: %d %q", code, out)
	}
	var claims struct {
		SessionID string `json:"session_id"`
	}
	json.Unmarshal(mustJSONField(t, insp.Claims), &claims)
	rev := filepath.Join(dir, "revoked.json")
	os.WriteFile(rev, []byte(`{"revoked_sessions":["`+claims.SessionID+`"]}`), 0o600)
	out, _, code = runInProcess(t, "", "token", "verify", "--policy", pol, "--key", key, "--revocation-file", rev, tok)
	if code != 1 || strings.TrimSpace(out) != "session_revoked" {
		t.Fatalf("revoked: %d %q", code, out)
	}
	out, _, code = runInProcess(t, "", "token", "verify", "--policy", pol, "--key", key, "not-a-valid-token-format")
	if code != 1 || strings.TrimSpace(out) != "malformed" {
		t.Fatalf("garbage: %d %q", code, out)
	}
}

func mustJSONField(t *testing.T, v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestTokenVerifyJWKSURL(t *testing.T) {
	dir := t.TempDir()
	pol := filepath.Join(dir, "policy.yaml")
	os.WriteFile(pol, []byte(cliPolicy), 0o600)
	jwks := filepath.Join(dir, "jwks.json")
	out, _, code := runInProcess(t, "", "token", "issue", "--policy", pol, "--jwks-out", jwks)
	if code != 0 {
		t.Fatal("issue")
	}
	tok := strings.TrimSpace(out)
	doc, _ := os.ReadFile(jwks)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.Write(doc) }))
	defer srv.Close()
	out, stderr, code := runInProcess(t, "", "token", "verify", "--policy", pol, "--jwks", srv.URL, tok)
	if code != 0 {
		t.Fatalf("verify via URL: %d %s %s", code, out, stderr)
	}
	// Plain http to a non-loopback host is refused.
	if _, _, code := runInProcess(t, "", "token", "verify", "--policy", pol, "--jwks", "http://example.com/jwks", tok); code == 0 {
		t.Fatal("plain-http JWKS accepted")
	}
}

func TestPolicyHashSignVerify(t *testing.T) {
	dir := t.TempDir()
	pol := filepath.Join(dir, "policy.yaml")
	os.WriteFile(pol, []byte(cliPolicy), 0o640)
	out, _, code := runInProcess(t, "", "policy", "hash", pol)
	hash := strings.TrimSpace(out)
	if code != 0 || !regexp.MustCompile(`^[0-9a-f]{64}$`).MatchString(hash) {
		t.Fatalf("hash: %d %q", code, out)
	}
	key, pub := filepath.Join(dir, "ed.pem"), filepath.Join(dir, "ed.pub")
	runInProcess(t, "", "keys", "generate", "--alg", "EdDSA", "--out", key, "--pub-out", pub)

	out, _, code = runInProcess(t, "", "policy", "verify", "--pubkey", pub, pol)
	if code != 1 || !strings.Contains(out, "missing") {
		t.Fatalf("unsigned: %d %q", code, out)
	}
	if _, e, code := runInProcess(t, "", "policy", "sign", "--key", key, pol); code != 0 {
		t.Fatalf("sign: %s", e)
	}
	data, _ := os.ReadFile(pol)
	if !strings.Contains(string(data), "name: cli-agent # comment") || !strings.Contains(string(data), `signature: "ed25519:`) {
		t.Fatalf("signed file:\n%s", data)
	}
	if fi, _ := os.Stat(pol); fi.Mode().Perm() != 0o640 {
		t.Fatalf("mode changed to %v", fi.Mode())
	}
	out, _, code = runInProcess(t, "", "policy", "verify", "--pubkey", pub, pol)
	if code != 0 || !strings.Contains(out, "signature valid") {
		t.Fatalf("verify: %d %q", code, out)
	}
	out, _, _ = runInProcess(t, "", "policy", "hash", pol)
	if strings.TrimSpace(out) != hash {
		t.Fatal("signing changed the hash")
	}
	// Tampering.
	os.WriteFile(pol, []byte(strings.Replace(string(data), "[read_file]", "[read_file, write_file]", 1)), 0o640)
	out, _, code = runInProcess(t, "", "policy", "verify", "--pubkey", pub, pol)
	if code != 1 || !strings.Contains(out, "invalid") {
		t.Fatalf("tampered: %d %q", code, out)
	}
	// Wrong key type for signing.
	ec := filepath.Join(dir, "ec.pem")
	runInProcess(t, "", "keys", "generate", "--alg", "ES256", "--out", ec)
	if _, _, code := runInProcess(t, "", "policy", "sign", "--key", ec, "--out", "-", pol); code == 0 {
		t.Fatal("signed with an EC key")
	}
}
