package redis_test

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/agentid/agentid/internal/testenv"
	"github.com/agentid/agentid/store"
	"github.com/agentid/agentid/store/redis"
	"github.com/agentid/agentid/store/storetest"
)

func TestMain(m *testing.M) {
	code := m.Run()
	testenv.StopServers()
	os.Exit(code)
}

func open(t testing.TB, url string) *redis.Store {
	t.Helper()
	s, err := redis.Open(context.Background(), url)
	if err != nil {
		t.Fatalf("Open(%s): %v", url, err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// TestBackendContract runs every store contract against a real Redis
// server. The subtests share it; storetest's keys are unique per test.
func TestBackendContract(t *testing.T) {
	srv := testenv.Redis(t)
	storetest.TestBackend(t, func(t *testing.T, _ *storetest.Clock) store.Backend {
		return open(t, srv.URL)
	}, storetest.Options{RealTime: true})
}

func TestStoreSurvivesServerRestart(t *testing.T) {
	srv := testenv.NewRedis(t)
	storetest.TestOutage(t, open(t, srv.URL), srv, storetest.OutageOptions{})
}

func TestReplicasShareState(t *testing.T) {
	srv := testenv.Redis(t)
	storetest.TestReplicas(t, func(t *testing.T) store.Backend { return open(t, srv.URL) }, 3)
}

func BenchmarkCheckAndRecord(b *testing.B) {
	s := open(b, testenv.Redis(b).URL)
	ctx := context.Background()
	var seq atomic.Int64
	b.RunParallel(func(pb *testing.PB) {
		base := fmt.Sprintf("bench-%d-%d-", time.Now().UnixNano(), seq.Add(1))
		for i := 0; pb.Next(); i++ {
			if fresh, err := s.CheckAndRecord(ctx, base+strconv.Itoa(i), time.Minute); err != nil || !fresh {
				b.Fatalf("CheckAndRecord = %v, %v", fresh, err)
			}
		}
	})
}
