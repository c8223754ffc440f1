package jcs

import (
	"strings"
	"testing"

	gowebpki "github.com/gowebpki/jcs"
)

// card is a realistic A2A AgentCard of about 0.6 KB, as agentcard's
// benchmarks use, followed by a signature of the size our signer writes (a
// protected header with a one-certificate x5c chain).
var card = []byte(`{
  "name": "Weather Agent",
  "description": "Forecasts & alerts <beta> — ünïcødé 🌦",
  "url": "http://weather.agents.svc.cluster.local:8000",
  "version": "1.0.0",
  "protocolVersion": "0.3.0",
  "capabilities": {"streaming": false, "pushNotifications": false},
  "defaultInputModes": ["text/plain"],
  "defaultOutputModes": [],
  "skills": [{"id": "forecast", "name": "Forecast", "description": "", "tags": ["weather"]}],
  "x-vendor": {"rating": 4.50, "big": 1e21, "zero": 0},
  "signatures": [{"protected": "` + strings.Repeat("eyJhbGciOiJFUzI1NiIsInR5cCI6IkpPU0Ui", 30) + `",
    "signature": "` + strings.Repeat("Q2Fu", 21) + `AA"}]
}`)

// unsigned is card without its signatures member, which is what agentcard
// handed to gowebpki/jcs before this package existed.
var unsigned = []byte(string(card[:strings.Index(string(card), `,
  "signatures"`)]) + "\n}")

// BenchmarkCard compares this package with gowebpki/jcs on the card; run
// both in one invocation:
//
//	go test -run '^$' -bench BenchmarkCard -count 8 ./internal/jcs
func BenchmarkCard(b *testing.B) {
	b.Run("gowebpki Transform unsigned", func(b *testing.B) {
		b.ReportAllocs()
		b.SetBytes(int64(len(unsigned)))
		for b.Loop() {
			if _, err := gowebpki.Transform(unsigned); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("Transform unsigned", func(b *testing.B) {
		b.ReportAllocs()
		b.SetBytes(int64(len(unsigned)))
		for b.Loop() {
			if _, err := Transform(unsigned); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("CanonicalizeWithout signatures", func(b *testing.B) {
		b.ReportAllocs()
		b.SetBytes(int64(len(card)))
		for b.Loop() {
			if _, err := CanonicalizeWithout(nil, card, "signatures"); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// BenchmarkDeepObjects checks that cost stays linear in nesting depth: each
// level's members are sorted once and written once.
func BenchmarkDeepObjects(b *testing.B) {
	doc := []byte(strings.Repeat(`{"b":0,"a":`, 9999) + "0" + strings.Repeat("}", 9999))
	b.ReportAllocs()
	b.SetBytes(int64(len(doc)))
	for b.Loop() {
		if _, err := Transform(doc); err != nil {
			b.Fatal(err)
		}
	}
}
