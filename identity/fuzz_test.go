package identity_test

import (
	"context"
	"strings"
	"testing"

	jose "github.com/go-jose/go-jose/v4"

	"github.com/agentid/agentid/identity"
	"github.com/agentid/agentid/store/memory"
)

// FuzzValidate feeds arbitrary tokens to a Verifier. It must never panic,
// and whatever it accepts must be a token whose signature go-jose (an
// independent implementation) also verifies with the same key and
// algorithm, and whose claims ParseUnverified decodes identically.
func FuzzValidate(f *testing.F) {
	fx := newFixture(f, "token_ttl: 5m\naudience: https://mcp.example.com")
	pub := fx.m.Keys().ActivePublicKey()
	kid := fx.m.Keys().ActiveKID()
	for range 3 {
		tok, _ := fx.token()
		f.Add(tok)
	}
	tok, _ := fx.token()
	parts := strings.Split(tok, ".")
	f.Add(parts[0] + "." + parts[1] + ".")
	f.Add(parts[0] + "." + parts[1])
	f.Add("not-a-valid-token-format")
	f.Add(enc.EncodeToString([]byte(`{"alg":"none","typ":"aip+jwt","kid":"`+kid+`"}`)) + "." + parts[1] + ".")
	f.Add(enc.EncodeToString([]byte(`{"alg":"HS256","typ":"aip+jwt","kid":"`+kid+`"}`)) + "." + parts[1] + "." + parts[2])
	f.Add(enc.EncodeToString([]byte(`{"alg":"ES256","typ":"aip+jwt","kid":"`+kid+`","crit":["x"]}`)) + "." + parts[1] + "." + parts[2])
	f.Add("..")
	f.Add("e30.e30.e30")

	f.Fuzz(func(t *testing.T, token string) {
		// A verifier with a fresh nonce store per input, so a seed token
		// stays acceptable across iterations.
		v, err := identity.NewVerifier(identity.VerifierConfig{
			Keys: fx.m.Keys(), Audience: "https://mcp.example.com", PolicyHash: fx.m.PolicyHash(),
			BindingMode: "process", Binding: identity.CurrentBinding(fx.pol.Path),
			Nonces: memory.NewNonceStore(memory.Options{Now: fx.clock.Now}), NonceTTL: 10 * 60e9,
			Revocations: memory.NewRevocationStore(memory.Options{Now: fx.clock.Now}), Now: fx.clock.Now,
		})
		if err != nil {
			t.Fatal(err)
		}
		c, err := v.Validate(context.Background(), token)
		if err != nil {
			if identity.AsValidationError(err) == nil {
				t.Fatalf("non-validation error: %v", err)
			}
			return
		}
		jws, jerr := jose.ParseSignedCompact(token, []jose.SignatureAlgorithm{jose.ES256})
		if jerr != nil {
			t.Fatalf("accepted a token go-jose cannot parse: %v\n%q", jerr, token)
		}
		if _, jerr := jws.Verify(pub); jerr != nil {
			t.Fatalf("accepted a token whose signature go-jose rejects: %v\n%q", jerr, token)
		}
		u, err := identity.ParseUnverified(token)
		if err != nil || *u != *c {
			t.Fatalf("ParseUnverified disagrees with Validate: %v", err)
		}
		if _, err := v.Validate(context.Background(), token); identity.AsValidationError(err) == nil {
			t.Fatalf("accepted twice")
		}
	})
}
