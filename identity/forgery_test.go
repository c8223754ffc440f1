package identity_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/agentid/agentid/aip"
	"github.com/agentid/agentid/identity"
)

// Every forgery an attacker holding a valid token (but not the signing key)
// can try, and the clock and state attacks, each with the exact error it
// must produce.

const forgeryIdentity = "token_ttl: 5m\nsession_binding: process\naudience: https://mcp.example.com"

// reSign re-signs a modified payload with the Manager's real key, so that
// the claim checks, not the signature, are what is tested.
func reSign(t *testing.T, f *fixture, tok string, payloadJSON string) string {
	t.Helper()
	h, _, _ := identity.DecodeUnverified(tok)
	return signRaw(t, "ES256", f.privateKey(), string(h), payloadJSON)
}

func modifiedPayload(t *testing.T, tok string, mod func(m map[string]any)) string {
	m := payloadOf(t, tok)
	mod(m)
	return mustJSON(t, m)
}

func TestForgeryTamperedPayload(t *testing.T) {
	f := newFixture(t, forgeryIdentity)
	tok, _ := f.token()
	parts := strings.Split(tok, ".")
	p := modifiedPayload(t, tok, func(m map[string]any) { m["agent_id"] = "admin-agent"; m["sub"] = "admin-agent" })
	forged := parts[0] + "." + enc.EncodeToString([]byte(p)) + "." + parts[2]
	_, err := f.m.Validate(f.ctx, forged)
	expectError(t, err, aip.CodeTokenInvalid, aip.TokenErrSignatureInvalid)
	// Extending expiry without the key fails the same way.
	p = modifiedPayload(t, tok, func(m map[string]any) { m["expires_at"] = "2036-01-24T10:35:00.000Z"; m["exp"] = 2084776500 })
	forged = parts[0] + "." + enc.EncodeToString([]byte(p)) + "." + parts[2]
	_, err = f.m.Validate(f.ctx, forged)
	expectError(t, err, aip.CodeTokenInvalid, aip.TokenErrSignatureInvalid)
	// The original still validates: the failures consumed nothing.
	if _, err := f.m.Validate(f.ctx, tok); err != nil {
		t.Fatalf("original token: %v", err)
	}
}

func TestForgeryTamperedHeader(t *testing.T) {
	f := newFixture(t, forgeryIdentity)
	tok, _ := f.token()
	parts := strings.Split(tok, ".")
	h := headerOf(t, tok)
	h["typ"] = "AIP+JWT"
	forged := enc.EncodeToString([]byte(mustJSON(t, h))) + "." + parts[1] + "." + parts[2]
	_, err := f.m.Validate(f.ctx, forged)
	expectError(t, err, aip.CodeTokenInvalid, aip.TokenErrSignatureInvalid)
	// A changed kid that names no key.
	h = headerOf(t, tok)
	h["kid"] = h["kid"].(string) + "x"
	forged = enc.EncodeToString([]byte(mustJSON(t, h))) + "." + parts[1] + "." + parts[2]
	_, err = f.m.Validate(f.ctx, forged)
	expectError(t, err, aip.CodeTokenInvalid, aip.TokenErrSignatureInvalid)
}

func TestForgeryAlgNone(t *testing.T) {
	f := newFixture(t, forgeryIdentity)
	tok, _ := f.token()
	_, p, _ := identity.DecodeUnverified(tok)
	kid := headerOf(t, tok)["kid"].(string)
	for _, alg := range []string{"none", "None", "NONE", "nOnE", ""} {
		hdr := mustJSON(t, map[string]string{"alg": alg, "typ": "aip+jwt", "kid": kid})
		// With an empty signature part, and with the original signature.
		noSig := enc.EncodeToString([]byte(hdr)) + "." + enc.EncodeToString(p) + "."
		if _, err := f.m.Validate(f.ctx, noSig); err == nil {
			t.Fatalf("alg %q with empty signature accepted", alg)
		}
		withSig := noSig + strings.Split(tok, ".")[2]
		_, err := f.m.Validate(f.ctx, withSig)
		expectError(t, err, aip.CodeTokenInvalid, aip.TokenErrSignatureInvalid)
	}
}

func TestForgeryHS256WithPublicKeyBytes(t *testing.T) {
	f := newFixture(t, forgeryIdentity)
	tok, _ := f.token()
	_, p, _ := identity.DecodeUnverified(tok)
	kid := headerOf(t, tok)["kid"].(string)
	pub := f.privateKey().Public().(*ecdsa.PublicKey)
	der, _ := x509.MarshalPKIXPublicKey(pub)
	pemBytes := pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})
	uncompressed := elliptic.Marshal(pub.Curve, pub.X, pub.Y) //nolint:staticcheck // the bytes an attacker would try
	jwks, _ := f.m.JWKS()
	for name, secret := range map[string][]byte{"DER": der, "PEM": pemBytes, "point": uncompressed, "JWKS": jwks, "kid": []byte(kid)} {
		hdr := mustJSON(t, map[string]string{"alg": "HS256", "typ": "aip+jwt", "kid": kid})
		forged := signRaw(t, "HS256", secret, hdr, string(p))
		_, err := f.m.Validate(f.ctx, forged)
		if ve := identity.AsValidationError(err); ve == nil || ve.TokenError != aip.TokenErrSignatureInvalid {
			t.Fatalf("HS256 keyed with the public key (%s): %v", name, err)
		}
	}
	// RS256 or ES384 claimed for the EC P-256 key are refused as well.
	for _, alg := range []string{"RS256", "ES384", "EdDSA", "PS256", "HS512"} {
		hdr := mustJSON(t, map[string]string{"alg": alg, "typ": "aip+jwt", "kid": kid})
		forged := enc.EncodeToString([]byte(hdr)) + "." + strings.SplitN(tok, ".", 2)[1]
		_, err := f.m.Validate(f.ctx, forged)
		expectError(t, err, aip.CodeTokenInvalid, aip.TokenErrSignatureInvalid)
	}
}

func TestForgeryUnknownKid(t *testing.T) {
	f := newFixture(t, forgeryIdentity)
	tok, _ := f.token()
	_, p, _ := identity.DecodeUnverified(tok)
	other, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	otherKid, _ := identity.Thumbprint(other.Public())
	realKid := headerOf(t, tok)["kid"].(string)
	for name, kid := range map[string]string{"attacker's own kid": otherKid, "our kid, attacker's key": realKid} {
		hdr := mustJSON(t, map[string]string{"alg": "ES256", "typ": "aip+jwt", "kid": kid})
		forged := signRaw(t, "ES256", other, hdr, string(p))
		_, err := f.m.Validate(f.ctx, forged)
		if ve := expectError(t, err, aip.CodeTokenInvalid, aip.TokenErrSignatureInvalid); ve.Claims != nil {
			t.Errorf("%s: claims of an unverified token were returned", name)
		}
	}
	// No kid at all.
	hdr := mustJSON(t, map[string]string{"alg": "ES256", "typ": "aip+jwt"})
	_, err := f.m.Validate(f.ctx, signRaw(t, "ES256", f.privateKey(), hdr, string(p)))
	expectError(t, err, aip.CodeTokenInvalid, aip.TokenErrMalformed)
}

func TestForgeryKidPathTricks(t *testing.T) {
	f := newFixture(t, forgeryIdentity)
	tok, _ := f.token()
	_, p, _ := identity.DecodeUnverified(tok)
	realKid := headerOf(t, tok)["kid"].(string)
	tricks := []string{
		"../../../../dev/null", "/dev/null", "/etc/passwd", "file:///etc/passwd", "..", ".",
		realKid + "/../" + realKid, "./" + realKid, realKid + "\x00", "\x00", realKid + " ", " " + realKid,
		strings.ToUpper(realKid), "' OR '1'='1", "https://attacker.example/jwks.json", strings.Repeat("A", 5000),
	}
	for _, kid := range tricks {
		hdr := mustJSON(t, map[string]string{"alg": "HS256", "typ": "aip+jwt", "kid": kid})
		forged := signRaw(t, "HS256", []byte{}, hdr, string(p))
		if _, err := f.m.Validate(f.ctx, forged); identity.AsValidationError(err) == nil {
			t.Fatalf("kid %q: %v", kid, err)
		}
		hdr = mustJSON(t, map[string]string{"alg": "ES256", "typ": "aip+jwt", "kid": kid})
		forged = signRaw(t, "ES256", f.privateKey(), hdr, string(p))
		_, err := f.m.Validate(f.ctx, forged)
		if ve := identity.AsValidationError(err); ve == nil || ve.Code != aip.CodeTokenInvalid ||
			(ve.TokenError != aip.TokenErrSignatureInvalid && ve.TokenError != aip.TokenErrMalformed) {
			t.Fatalf("kid %q signed with the real key: %v", kid, err)
		}
	}
}

func TestForgeryForbiddenHeaders(t *testing.T) {
	f := newFixture(t, forgeryIdentity)
	tok, _ := f.token()
	_, p, _ := identity.DecodeUnverified(tok)
	kid := headerOf(t, tok)["kid"].(string)
	pubJWK := `{"kty":"EC","crv":"P-256","x":"AAAA","y":"AAAA"}`
	for name, extra := range map[string]string{
		"jku":          `"jku":"https://attacker.example/jwks.json"`,
		"x5u":          `"x5u":"https://attacker.example/cert.pem"`,
		"jwk":          `"jwk":` + pubJWK,
		"x5c":          `"x5c":["MIIB"]`,
		"unknown crit": `"crit":["exp"],"exp":1`,
		"empty crit":   `"crit":[]`,
		"b64":          `"b64":false`,
	} {
		hdr := `{"alg":"ES256","typ":"aip+jwt","kid":"` + kid + `",` + extra + `}`
		// Signed with the real key: the header alone must reject it.
		forged := signRaw(t, "ES256", f.privateKey(), hdr, string(p))
		_, err := f.m.Validate(f.ctx, forged)
		expectError(t, err, aip.CodeTokenInvalid, aip.TokenErrSignatureInvalid)
		_ = name
	}
	// Wrong typ, also signed with the real key.
	for _, typ := range []string{"JWT", "at+jwt", ""} {
		hdr := mustJSON(t, map[string]string{"alg": "ES256", "typ": typ, "kid": kid})
		_, err := f.m.Validate(f.ctx, signRaw(t, "ES256", f.privateKey(), hdr, string(p)))
		expectError(t, err, aip.CodeTokenInvalid, aip.TokenErrMalformed)
	}
}

func TestForgeryExpired(t *testing.T) {
	f := newFixture(t, forgeryIdentity)
	tok, c := f.token()
	f.clock.Advance(5*time.Minute + time.Millisecond)
	_, err := f.m.Validate(f.ctx, tok)
	ve := expectError(t, err, aip.CodeTokenInvalid, aip.TokenErrExpired)
	if ve.Claims == nil || ve.Claims.Nonce != c.Nonce {
		t.Error("expired: claims not reported for audit")
	}
	// Exactly at expires_at it is still valid (§5.4.3: now > expires_at).
	tok2, _ := f.token()
	f.clock.Advance(5 * time.Minute)
	if _, err := f.m.Validate(f.ctx, tok2); err != nil {
		t.Fatalf("at expires_at: %v", err)
	}
}

func TestForgeryNotYetValid(t *testing.T) {
	f := newFixture(t, forgeryIdentity)
	tok, _ := f.token()
	future := f.clock.Now().Add(time.Minute)
	// issued_at/iat in the future, beyond the 5 s leeway, exp consistent.
	p := modifiedPayload(t, tok, func(m map[string]any) {
		m["issued_at"] = identity.FormatTime(future)
		m["iat"] = future.Unix()
		m["expires_at"] = identity.FormatTime(future.Add(5 * time.Minute))
		m["exp"] = future.Add(5 * time.Minute).Unix()
	})
	_, err := f.m.Validate(f.ctx, reSign(t, f, tok, p))
	expectError(t, err, aip.CodeTokenInvalid, aip.TokenErrNotYetValid)
	// nbf in the future.
	p = modifiedPayload(t, tok, func(m map[string]any) { m["nbf"] = future.Unix() })
	_, err = f.m.Validate(f.ctx, reSign(t, f, tok, p))
	expectError(t, err, aip.CodeTokenInvalid, aip.TokenErrNotYetValid)
	// Within the leeway is fine.
	near := f.clock.Now().Add(3 * time.Second)
	p = modifiedPayload(t, tok, func(m map[string]any) { m["nbf"] = near.Unix() })
	if _, err := f.m.Validate(f.ctx, reSign(t, f, tok, p)); err != nil {
		t.Fatalf("nbf within leeway: %v", err)
	}
}

func TestForgeryWrongAudience(t *testing.T) {
	f := newFixture(t, forgeryIdentity)
	// Another service's Manager sharing the signing key (the worst case):
	// same key, same policy hash would be needed too, so craft the aud.
	tok, _ := f.token()
	p := modifiedPayload(t, tok, func(m map[string]any) { m["aud"] = "https://other-mcp.example.com" })
	_, err := f.m.Validate(f.ctx, reSign(t, f, tok, p))
	ve := expectError(t, err, aip.CodeAudienceMismatch, aip.TokenErrAudienceMismatch)
	if ve.ExpectedAudience != "https://mcp.example.com" || ve.TokenAudience != "https://other-mcp.example.com" {
		t.Errorf("audiences: %q %q", ve.ExpectedAudience, ve.TokenAudience)
	}
	// aud as an array, even holding the right value, is not accepted.
	p = modifiedPayload(t, tok, func(m map[string]any) { m["aud"] = []string{"https://mcp.example.com"} })
	_, err = f.m.Validate(f.ctx, reSign(t, f, tok, p))
	expectError(t, err, aip.CodeTokenInvalid, aip.TokenErrMalformed)
}

func TestForgeryOtherPolicyHash(t *testing.T) {
	f := newFixture(t, forgeryIdentity)
	// Manager B: another policy (different tools, same name and audience),
	// same signing keys.
	other := writePolicy(t, t.TempDir(), "test-agent", forgeryIdentity, "  allowed_methods: [tools/call]\n")
	mb, err := identity.NewManager(identity.Config{Policy: other, Keys: f.m.Keys(), Now: f.clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	tok, _, err := mb.Issue(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	_, err = f.m.Validate(f.ctx, tok)
	expectError(t, err, aip.CodeTokenInvalid, aip.TokenErrPolicyChanged)
}

func TestForgeryReplaySequential(t *testing.T) {
	f := newFixture(t, forgeryIdentity)
	tok, _ := f.token()
	if _, err := f.m.Validate(f.ctx, tok); err != nil {
		t.Fatalf("first use: %v", err)
	}
	for range 3 {
		_, err := f.m.Validate(f.ctx, tok)
		expectError(t, err, aip.CodeTokenInvalid, aip.TokenErrReplayDetected)
	}
	// Still refused late in the token's life.
	f.clock.Advance(4*time.Minute + 59*time.Second)
	_, err := f.m.Validate(f.ctx, tok)
	expectError(t, err, aip.CodeTokenInvalid, aip.TokenErrReplayDetected)
}

func TestForgeryReplayConcurrent(t *testing.T) {
	f := newFixture(t, forgeryIdentity)
	tok, _ := f.token()
	const n = 1000
	var ok, replay, other atomic.Int64
	var wg sync.WaitGroup
	gate := make(chan struct{})
	for range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-gate
			_, err := f.m.Validate(context.Background(), tok)
			switch ve := identity.AsValidationError(err); {
			case err == nil:
				ok.Add(1)
			case ve != nil && ve.TokenError == aip.TokenErrReplayDetected:
				replay.Add(1)
			default:
				other.Add(1)
			}
		}()
	}
	close(gate)
	wg.Wait()
	if ok.Load() != 1 || replay.Load() != n-1 || other.Load() != 0 {
		t.Fatalf("%d concurrent validations: %d accepted, %d replay, %d other; want exactly 1 accepted", n, ok.Load(), replay.Load(), other.Load())
	}
}

func TestForgeryRevokedSession(t *testing.T) {
	f := newFixture(t, forgeryIdentity)
	tok, c := f.token()
	revokedAt := f.clock.Now()
	if err := f.m.RevokeSession(f.ctx, c.SessionID, "compromised"); err != nil {
		t.Fatal(err)
	}
	f.clock.Advance(time.Second)
	_, err := f.m.Validate(f.ctx, tok)
	ve := expectError(t, err, aip.CodeTokenRevoked, aip.TokenErrSessionRevoked)
	if !ve.RevokedAt.Equal(revokedAt) || ve.RevocationType != "session" {
		t.Errorf("revoked_at %v type %q", ve.RevokedAt, ve.RevocationType)
	}
	d := ve.Data("write_file", false)
	if d["revocation_type"] != "session" || d["revoked_at"] != identity.FormatTime(revokedAt) || d["tool"] != "write_file" {
		t.Errorf("data %v", d)
	}
	// Revocation is checked first: an expired token of a revoked session
	// reports the revocation.
	f.clock.Advance(time.Hour)
	_, err = f.m.Validate(f.ctx, tok)
	expectError(t, err, aip.CodeTokenRevoked, aip.TokenErrSessionRevoked)
	if len(f.eventsOf(identity.EventRevocation)) != 1 {
		t.Error("no REVOCATION event")
	}
}

func TestForgeryRevokedToken(t *testing.T) {
	f := newFixture(t, forgeryIdentity)
	tok, c := f.token()
	tok2, _ := f.token()
	if err := f.m.RevokeToken(f.ctx, c.Nonce, "leaked"); err != nil {
		t.Fatal(err)
	}
	_, err := f.m.Validate(f.ctx, tok)
	ve := expectError(t, err, aip.CodeTokenRevoked, aip.TokenErrTokenRevoked)
	if ve.RevocationType != "token" {
		t.Errorf("revocation_type %q", ve.RevocationType)
	}
	if _, err := f.m.Validate(f.ctx, tok2); err != nil {
		t.Fatalf("another token of the same session: %v", err)
	}
}

func TestForgeryTruncated(t *testing.T) {
	f := newFixture(t, forgeryIdentity)
	tok, _ := f.token()
	for i := 0; i < len(tok); i++ {
		_, err := f.m.Validate(f.ctx, tok[:i])
		ve := identity.AsValidationError(err)
		if ve == nil {
			t.Fatalf("prefix of %d bytes: %v", i, err)
		}
		if i == 0 {
			if ve.Code != aip.CodeTokenRequired {
				t.Fatalf("empty token: %d", ve.Code)
			}
			continue
		}
		if ve.Code != aip.CodeTokenInvalid || (ve.TokenError != aip.TokenErrMalformed && ve.TokenError != aip.TokenErrSignatureInvalid) {
			t.Fatalf("prefix of %d bytes: %d %s", i, ve.Code, ve.TokenError)
		}
	}
	// Parts removed or added.
	parts := strings.Split(tok, ".")
	for _, bad := range []string{parts[0], parts[0] + "." + parts[1], parts[0] + "." + parts[1] + ".", "." + parts[1] + "." + parts[2], tok + "." + parts[2], tok + "=", "not-a-valid-token-format"} {
		_, err := f.m.Validate(f.ctx, bad)
		if ve := identity.AsValidationError(err); ve == nil || ve.Code != aip.CodeTokenInvalid {
			t.Fatalf("%q: %v", bad, err)
		}
	}
	_, err := f.m.Validate(f.ctx, "not-a-valid-token-format")
	expectError(t, err, aip.CodeTokenInvalid, aip.TokenErrMalformed) // validation-050
}

func TestForgeryOversized(t *testing.T) {
	f := newFixture(t, forgeryIdentity)
	tok, _ := f.token()
	// A correctly signed token padded past 8 KiB with an unknown claim.
	p := modifiedPayload(t, tok, func(m map[string]any) { m["pad"] = strings.Repeat("x", identity.MaxTokenSize) })
	big := reSign(t, f, tok, p)
	_, err := f.m.Validate(f.ctx, big)
	ve := expectError(t, err, aip.CodeTokenInvalid, aip.TokenErrMalformed)
	if !strings.Contains(ve.Reason, "larger") {
		t.Errorf("reason %q", ve.Reason)
	}
	// Just under the limit it is accepted (unknown claims are ignored).
	pad := identity.MaxTokenSize - len(reSign(t, f, tok, modifiedPayload(t, tok, func(m map[string]any) { m["pad"] = "" })))
	p = modifiedPayload(t, tok, func(m map[string]any) { m["pad"] = strings.Repeat("x", pad*3/4-8) })
	if ok := reSign(t, f, tok, p); len(ok) <= identity.MaxTokenSize {
		if _, err := f.m.Validate(f.ctx, ok); err != nil {
			t.Fatalf("token of %d bytes: %v", len(ok), err)
		}
	}
}

func TestForgeryDuplicateClaims(t *testing.T) {
	f := newFixture(t, forgeryIdentity)
	tok, _ := f.token()
	_, p, _ := identity.DecodeUnverified(tok)
	payload := string(p)
	cases := map[string]string{
		"duplicate aud":        strings.Replace(payload, `{`, `{"aud":"https://other.example",`, 1),
		"duplicate nonce":      strings.Replace(payload, `{`, `{"nonce":"00000000000000000000000000000000",`, 1),
		"case variant Aud":     strings.Replace(payload, `{`, `{"Aud":"https://other.example",`, 1),
		"duplicate in binding": strings.Replace(payload, `"binding":{`, `"binding":{"process_id":1,`, 1),
		"escaped duplicate":    strings.Replace(payload, `{`, `{"\u0061ud":"https://other.example",`, 1),
		// Alone, a case variant of an optional claim is no duplicate, but a
		// consumer decoding with encoding/json would read it as the claim.
		"case variant of the optional nbf": strings.Replace(payload, `{`, `{"NBF":4102444800,`, 1),
		"case variant of binding.pod_uid":  strings.Replace(payload, `"binding":{`, `"binding":{"Pod_UID":"x",`, 1),
		"case variant with a dotless i":    strings.Replace(payload, `"binding":{`, `"binding":{"conta\u0131ner_id":"x",`, 1),
		"integer beyond 2^53 in nbf":       strings.Replace(payload, `{`, `{"nbf":9007199254740993,`, 1),
		"number beyond the double range":   strings.Replace(payload, `{`, `{"x":1e400,`, 1),
		"nesting deeper than 64 levels":    strings.Replace(payload, `{`, `{"x":`+strings.Repeat("[", 65)+strings.Repeat("]", 65)+`,`, 1),
		"wrong type before a duplicate":    strings.Replace(payload, `{`, `{"nbf":"0","x":1,"X":2,`, 1),
	}
	for name, bad := range cases {
		if bad == payload {
			t.Fatalf("%s: no change", name)
		}
		_, err := f.m.Validate(f.ctx, reSign(t, f, tok, bad))
		expectError(t, err, aip.CodeTokenInvalid, aip.TokenErrMalformed)
	}
	// Duplicate header member.
	kid := headerOf(t, tok)["kid"].(string)
	for _, hdr := range []string{
		`{"alg":"ES256","alg":"none","typ":"aip+jwt","kid":"` + kid + `"}`,
		// A forbidden member does not hide what is wrong with the rest:
		// whatever its order, a header that is not strict JSON is malformed.
		`{"alg":"ES256","typ":"aip+jwt","kid":"` + kid + `","jku":"https://attacker.example","x":1,"X":2}`,
		`{"alg":"ES256","typ":"aip+jwt","kid":"` + kid + `","jku":"https://attacker.example","x":9007199254740993}`,
	} {
		_, err := f.m.Validate(f.ctx, signRaw(t, "ES256", f.privateKey(), hdr, payload))
		expectError(t, err, aip.CodeTokenInvalid, aip.TokenErrMalformed)
	}
}

func TestForgeryWrongClaimTypes(t *testing.T) {
	f := newFixture(t, forgeryIdentity)
	tok, _ := f.token()
	cases := map[string]func(m map[string]any){
		"iat string": func(m map[string]any) { m["iat"] = "1769250600" },
		"exp float":  func(m map[string]any) { m["exp"] = 1769250900.5 },
		"exp exponent": func(m map[string]any) {
			m["exp"] = json.Number(strconv.FormatFloat(float64(numInt(m["exp"])), 'e', -1, 64))
		},
		"exp fraction zero":   func(m map[string]any) { m["exp"] = json.Number(m["exp"].(json.Number).String() + ".0") },
		"nbf string":          func(m map[string]any) { m["nbf"] = "0" },
		"aud number":          func(m map[string]any) { m["aud"] = 1 },
		"aud null":            func(m map[string]any) { m["aud"] = nil },
		"nonce number":        func(m map[string]any) { m["nonce"] = 1 },
		"nonce uppercase":     func(m map[string]any) { n := strings.ToUpper(m["nonce"].(string)); m["nonce"], m["jti"] = n, n },
		"session_id object":   func(m map[string]any) { m["session_id"] = map[string]any{} },
		"session_id not uuid": func(m map[string]any) { m["session_id"] = "session-1" },
		"binding string":      func(m map[string]any) { m["binding"] = "strict" },
		"binding null":        func(m map[string]any) { m["binding"] = nil },
		"process_id string":   func(m map[string]any) { m["binding"].(map[string]any)["process_id"] = "123" },
		"process_id zero":     func(m map[string]any) { m["binding"].(map[string]any)["process_id"] = 0 },
		"process_id missing":  func(m map[string]any) { delete(m["binding"].(map[string]any), "process_id") },
		"hostname number":     func(m map[string]any) { m["binding"].(map[string]any)["hostname"] = 1 },
		"version":             func(m map[string]any) { m["version"] = "aip/v1alpha1" },
		"policy_hash short":   func(m map[string]any) { m["policy_hash"] = "abc" },
		"expires_at number":   func(m map[string]any) { m["expires_at"] = 1769250900 },
		"expires_at garbage":  func(m map[string]any) { m["expires_at"] = "tomorrow" },
		"exp disagrees":       func(m map[string]any) { m["exp"] = numInt(m["exp"]) + 3600 },
		"iat disagrees":       func(m map[string]any) { m["iat"] = numInt(m["iat"]) - 1 },
		"jti differs":         func(m map[string]any) { m["jti"] = "00000000000000000000000000000000" },
		"sub differs":         func(m map[string]any) { m["sub"] = "other-agent" },
		"missing nonce":       func(m map[string]any) { delete(m, "nonce") },
		"missing exp":         func(m map[string]any) { delete(m, "exp") },
		"missing binding":     func(m map[string]any) { delete(m, "binding") },
		"payload array":       nil,
	}
	for name, mod := range cases {
		var p string
		if mod == nil {
			p = `["not","an","object"]`
		} else {
			p = modifiedPayload(t, tok, mod)
		}
		_, err := f.m.Validate(f.ctx, reSign(t, f, tok, p))
		if ve := identity.AsValidationError(err); ve == nil || ve.Code != aip.CodeTokenInvalid || ve.TokenError != aip.TokenErrMalformed {
			t.Errorf("%s: got %v, want malformed", name, err)
		}
	}
}

func TestEmptyTokenIsTokenRequired(t *testing.T) {
	f := newFixture(t, forgeryIdentity)
	_, err := f.m.Validate(f.ctx, "")
	ve := expectError(t, err, aip.CodeTokenRequired, "")
	if ve.Message() != "Token required" {
		t.Errorf("message %q", ve.Message())
	}
	if len(f.eventsOf(identity.EventTokenValidationFailed)) != 0 {
		t.Error("an absent token produced a validation-failed event")
	}
}
