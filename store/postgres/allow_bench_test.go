package postgres_test

import (
	"context"
	"testing"
	"time"

	"github.com/agentid/agentid/internal/testenv"
)

// BenchmarkAllow is one key under a limit it mostly stays within, the
// shape of the contract's "large counts" test: the cost of the sliding
// log's round trip, serialized on one key.
func BenchmarkAllow(b *testing.B) {
	s := open(b, newDatabase(b, testenv.Postgres(b), "prune_interval=0"))
	ctx := context.Background()
	t0 := time.Now()
	for i := 0; b.Loop(); i++ {
		if _, err := s.Allow(ctx, "bench", 10000, time.Second, t0.Add(time.Duration(i)*100*time.Microsecond)); err != nil {
			b.Fatal(err)
		}
	}
}
