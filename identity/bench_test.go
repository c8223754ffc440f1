package identity_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/sha256"
	"math/big"
	"strings"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"

	"github.com/agentid/agentid/identity"
)

// Benchmarks per algorithm, in one run: the raw signature verification of
// a token (the floor), the full Validate with the in-memory stores (target
// ≤ 1.25× raw), go-jose's parse+verify for comparison, and issuance.
//
//	go test -run '^$' -bench . -benchmem ./identity/

func benchFixture(b *testing.B, alg string) *fixture {
	return newFixture(b, "token_ttl: 15m\nnonce_window: 15m\nkeys:\n  signing_algorithm: "+alg)
}

func rawVerifier(b *testing.B, f *fixture, alg string) (func(input string, sig []byte) bool, string, []byte) {
	tok, _ := f.token()
	i := strings.LastIndexByte(tok, '.')
	input := tok[:i]
	sig, _ := enc.DecodeString(tok[i+1:])
	pub := f.m.Keys().ActivePublicKey()
	switch alg {
	case "ES256":
		k := pub.(*ecdsa.PublicKey)
		return func(input string, sig []byte) bool {
			h := sha256.Sum256([]byte(input))
			r, s := new(big.Int).SetBytes(sig[:32]), new(big.Int).SetBytes(sig[32:])
			return ecdsa.Verify(k, h[:], r, s)
		}, input, sig
	case "EdDSA":
		k := pub.(ed25519.PublicKey)
		return func(input string, sig []byte) bool { return ed25519.Verify(k, []byte(input), sig) }, input, sig
	}
	b.Fatalf("alg %s", alg)
	return nil, "", nil
}

func benchmarkAlg(b *testing.B, alg string) {
	b.Run("RawVerify", func(b *testing.B) {
		f := benchFixture(b, alg)
		verify, input, sig := rawVerifier(b, f, alg)
		b.ReportAllocs()
		b.ResetTimer()
		for i := 0; i < b.N; i++ {
			if !verify(input, sig) {
				b.Fatal("raw verify failed")
			}
		}
	})
	b.Run("Validate", func(b *testing.B) {
		// Fresh tokens: a validated token is consumed (single use).
		f := benchFixture(b, alg)
		toks := make([]string, b.N)
		for i := range toks {
			toks[i], _ = f.token()
		}
		v := f.m.Verifier()
		ctx := context.Background()
		b.ReportAllocs()
		b.ResetTimer()
		for i := 0; i < b.N; i++ {
			if _, err := v.Validate(ctx, toks[i]); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("GoJoseParseVerify", func(b *testing.B) {
		f := benchFixture(b, alg)
		tok, _ := f.token()
		pub := f.m.Keys().ActivePublicKey()
		b.ReportAllocs()
		b.ResetTimer()
		for i := 0; i < b.N; i++ {
			jws, err := jose.ParseSignedCompact(tok, []jose.SignatureAlgorithm{jose.SignatureAlgorithm(alg)})
			if err != nil {
				b.Fatal(err)
			}
			if _, err := jws.Verify(pub); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("Issue", func(b *testing.B) {
		f := benchFixture(b, alg)
		ctx := context.Background()
		b.ReportAllocs()
		b.ResetTimer()
		for i := 0; i < b.N; i++ {
			if _, _, err := f.m.Issue(ctx); err != nil {
				b.Fatal(err)
			}
		}
	})
}

func BenchmarkES256(b *testing.B) { benchmarkAlg(b, "ES256") }
func BenchmarkEdDSA(b *testing.B) { benchmarkAlg(b, "EdDSA") }

// BenchmarkValidateOverhead isolates everything Validate does besides the
// signature: parse, strict JSON checks, claims, stores.
func BenchmarkValidateOverhead(b *testing.B) {
	f := benchFixture(b, "EdDSA")
	tok, _ := f.token()
	h, _, _ := identity.DecodeUnverified(tok)
	_ = h
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, err := identity.ParseUnverified(tok); err != nil {
			b.Fatal(err)
		}
	}
}

// benchmarkRatio interleaves the raw signature verification and the full
// Validate (in-memory stores, fresh token each time) in one loop, so that
// load on a shared machine affects both alike, and reports both costs and
// their ratio (target ≤ 1.25).
func benchmarkRatio(b *testing.B, alg string) {
	f := benchFixture(b, alg)
	verify, input, sig := rawVerifier(b, f, alg)
	toks := make([]string, b.N)
	for i := range toks {
		toks[i], _ = f.token()
	}
	v := f.m.Verifier()
	ctx := context.Background()
	var raw, full time.Duration
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		t0 := time.Now()
		if !verify(input, sig) {
			b.Fatal("raw verify failed")
		}
		t1 := time.Now()
		if _, err := v.Validate(ctx, toks[i]); err != nil {
			b.Fatal(err)
		}
		t2 := time.Now()
		raw += t1.Sub(t0)
		full += t2.Sub(t1)
	}
	b.ReportMetric(float64(raw.Nanoseconds())/float64(b.N), "raw-ns/op")
	b.ReportMetric(float64(full.Nanoseconds())/float64(b.N), "validate-ns/op")
	b.ReportMetric(float64(full)/float64(raw), "ratio")
}

func BenchmarkRatioES256(b *testing.B) { benchmarkRatio(b, "ES256") }
func BenchmarkRatioEdDSA(b *testing.B) { benchmarkRatio(b, "EdDSA") }
