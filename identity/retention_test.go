package identity_test

import (
	"testing"
	"time"

	"github.com/agentid/agentid/identity"
	"github.com/agentid/agentid/policy"
)

func TestTokenRetentionCoversEveryMomentATokenCanBePresented(t *testing.T) {
	for _, tt := range []struct {
		name              string
		ttl, window, skew time.Duration
		want              time.Duration
	}{
		{"defaults: token_ttl 5m, nonce_window = token_ttl, skew 30s", 5 * time.Minute, 5 * time.Minute, 30 * time.Second, 5*time.Minute + 30*time.Second},
		{"a longer nonce_window", 5 * time.Minute, time.Hour, 30 * time.Second, time.Hour + 30*time.Second},
		{"never shorter than token_ttl", 10 * time.Minute, time.Minute, 0, 10 * time.Minute},
		{"no skew", time.Minute, time.Minute, 0, time.Minute},
	} {
		t.Run(tt.name, func(t *testing.T) {
			idc := policy.IdentityConfig{TokenTTL: tt.ttl, NonceWindow: tt.window,
				NonceStorage: policy.NonceStorageConfig{ClockSkewTolerance: tt.skew}}
			if got := identity.TokenRetention(idc); got != tt.want {
				t.Fatalf("TokenRetention = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestTheRevocationFileWatcherKeepsRevokedTokensForTheTokenRetention(t *testing.T) {
	f := newFixture(t, "token_ttl: 2m\nnonce_window: 10m\nnonce_storage: {clock_skew_tolerance: 1m}")
	w := f.m.RevocationFileWatcher(t.TempDir() + "/revoked.json")
	if want := 11 * time.Minute; w.TokenTTL != want || identity.TokenRetention(f.m.IdentityConfig()) != want {
		t.Fatalf("watcher TokenTTL %v, TokenRetention %v; want %v", w.TokenTTL, identity.TokenRetention(f.m.IdentityConfig()), want)
	}
}
