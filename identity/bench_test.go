package identity_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/sha256"
	"math/big"
	"slices"
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

func rawVerifier(b *testing.B, f *fixture, alg string) (func(input []byte, sig []byte) bool, []byte, []byte) {
	tok, _ := f.token()
	i := strings.LastIndexByte(tok, '.')
	input := []byte(tok[:i])
	sig, _ := enc.DecodeString(tok[i+1:])
	pub := f.m.Keys().ActivePublicKey()
	switch alg {
	case "ES256":
		k := pub.(*ecdsa.PublicKey)
		return func(input []byte, sig []byte) bool {
			h := sha256.Sum256(input)
			r, s := new(big.Int).SetBytes(sig[:32]), new(big.Int).SetBytes(sig[32:])
			return ecdsa.Verify(k, h[:], r, s)
		}, input, sig
	case "EdDSA":
		k := pub.(ed25519.PublicKey)
		return func(input []byte, sig []byte) bool { return ed25519.Verify(k, input, sig) }, input, sig
	}
	b.Fatalf("alg %s", alg)
	return nil, nil, nil
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
// Validate (in-memory stores, fresh token each time) in one loop and
// reports the median of each and the ratio of the medians (target ≤ 1.25).
// Medians of interleaved samples keep a shared, loaded machine's
// preemption spikes out of the comparison.
func benchmarkRatio(b *testing.B, alg string) {
	f := benchFixture(b, alg)
	verify, input, sig := rawVerifier(b, f, alg)
	toks := make([]string, b.N)
	for i := range toks {
		toks[i], _ = f.token()
	}
	v := f.m.Verifier()
	ctx := context.Background()
	pub := f.m.Keys().ActivePublicKey()
	algs := []jose.SignatureAlgorithm{jose.SignatureAlgorithm(alg)}
	raw := make([]time.Duration, b.N)
	full := make([]time.Duration, b.N)
	gj := make([]time.Duration, b.N)
	iss := make([]time.Duration, b.N)
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
		jws, err := jose.ParseSignedCompact(toks[0], algs)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := jws.Verify(pub); err != nil {
			b.Fatal(err)
		}
		t3 := time.Now()
		if _, _, err := f.m.Issue(ctx); err != nil {
			b.Fatal(err)
		}
		t4 := time.Now()
		raw[i], full[i], gj[i], iss[i] = t1.Sub(t0), t2.Sub(t1), t3.Sub(t2), t4.Sub(t3)
	}
	b.StopTimer()
	mr, mf := median(raw), median(full)
	b.ReportMetric(float64(mr.Nanoseconds()), "raw-p50-ns")
	b.ReportMetric(float64(mf.Nanoseconds()), "validate-p50-ns")
	b.ReportMetric(float64(median(gj).Nanoseconds()), "gojose-p50-ns")
	b.ReportMetric(float64(median(iss).Nanoseconds()), "issue-p50-ns")
	b.ReportMetric(float64(mf)/float64(mr), "ratio")
}

func median(d []time.Duration) time.Duration {
	s := slices.Clone(d)
	slices.Sort(s)
	return s[len(s)/2]
}

func BenchmarkRatioES256(b *testing.B) { benchmarkRatio(b, "ES256") }
func BenchmarkRatioEdDSA(b *testing.B) { benchmarkRatio(b, "EdDSA") }
