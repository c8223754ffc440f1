package memory_test

import (
	"context"
	"testing"
	"time"

	"github.com/agentid/agentid/store"
	"github.com/agentid/agentid/store/memory"
	"github.com/agentid/agentid/store/storetest"
)

func TestNonceStoreContract(t *testing.T) {
	storetest.TestNonceStore(t, func(t *testing.T, c *storetest.Clock) store.NonceStore {
		return memory.NewNonceStore(memory.Options{Now: c.Now})
	}, storetest.Options{})
}

func TestRevocationStoreContract(t *testing.T) {
	storetest.TestRevocationStore(t, func(t *testing.T, c *storetest.Clock) store.RevocationStore {
		return memory.NewRevocationStore(memory.Options{Now: c.Now})
	}, storetest.Options{})
}

func TestNonceStorePrunesExpired(t *testing.T) {
	c := storetest.NewClock(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
	s := memory.NewNonceStore(memory.Options{Now: c.Now, SweepInterval: time.Minute})
	ctx := context.Background()
	for i := range 100 {
		if _, err := s.CheckAndRecord(ctx, string(rune('a'+i%26))+time.Duration(i).String(), 5*time.Minute); err != nil {
			t.Fatal(err)
		}
	}
	if s.Len() != 100 {
		t.Fatalf("Len = %d, want 100", s.Len())
	}
	c.Advance(6 * time.Minute)
	// The next record triggers the amortised sweep.
	if _, err := s.CheckAndRecord(ctx, "new", 5*time.Minute); err != nil {
		t.Fatal(err)
	}
	if s.Len() != 1 {
		t.Fatalf("after sweep Len = %d, want 1", s.Len())
	}
	c.Advance(6 * time.Minute)
	if n := s.Prune(); n != 1 || s.Len() != 0 {
		t.Fatalf("Prune removed %d, Len %d; want 1, 0", n, s.Len())
	}
}

func TestRevocationStorePrunesExpired(t *testing.T) {
	c := storetest.NewClock(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
	s := memory.NewRevocationStore(memory.Options{Now: c.Now})
	ctx := context.Background()
	_ = s.RevokeSession(ctx, "s", c.Now(), time.Hour)
	_ = s.RevokeToken(ctx, "t", c.Now(), time.Minute)
	c.Advance(2 * time.Minute)
	if n := s.Prune(); n != 1 || s.Len() != 1 {
		t.Fatalf("Prune removed %d, Len %d; want 1, 1", n, s.Len())
	}
}

func BenchmarkCheckAndRecord(b *testing.B) {
	s := memory.NewNonceStore(memory.Options{})
	ctx := context.Background()
	keys := make([]string, 4096)
	for i := range keys {
		keys[i] = time.Duration(i).String() + "-nonce-0123456789abcdef"
	}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		_, _ = s.CheckAndRecord(ctx, keys[i%len(keys)], time.Millisecond)
	}
}

func TestRateLimiterContract(t *testing.T) {
	storetest.TestRateLimiter(t, func(t *testing.T) store.RateLimiter { return memory.NewRateLimiter() }, storetest.Options{})
}

func TestRegistryContract(t *testing.T) {
	storetest.TestRegistry(t, func(t *testing.T, c *storetest.Clock) store.Registry {
		return memory.NewRegistry(memory.Options{Now: c.Now})
	}, storetest.Options{})
}

func TestBackendContract(t *testing.T) {
	storetest.TestBackend(t, func(t *testing.T, c *storetest.Clock) store.Backend {
		return memory.New(memory.Options{Now: c.Now})
	}, storetest.Options{})
}
