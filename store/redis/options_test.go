package redis_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/agentid/agentid/internal/testenv"
	"github.com/agentid/agentid/store/redis"
)

func TestOpenRejectsBadURLs(t *testing.T) {
	ctx := context.Background()
	for _, tc := range []struct{ name, url, want string }{
		{"another scheme", "postgres://127.0.0.1:1/x", "scheme"},
		{"a timeout that is not a duration", "redis://127.0.0.1:1/0?timeout=soon", "timeout"},
		{"a zero timeout", "redis://127.0.0.1:1/0?timeout=0s", "timeout"},
		{"an option neither go-redis nor the store knows", "redis://127.0.0.1:1/0?colour=blue", "colour"},
		{"an unreachable server", "redis://127.0.0.1:1/0?timeout=300ms", "ping"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, err := redis.Open(ctx, tc.url)
			if err == nil {
				s.Close()
				t.Fatal("Open succeeded")
			}
			if !strings.HasPrefix(err.Error(), "store/redis: ") || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %q: want it prefixed store/redis: and naming %q", err, tc.want)
			}
		})
	}
}

func TestOpenDoesNotLeakThePassword(t *testing.T) {
	_, err := redis.Open(context.Background(), "redis://user:s3cret@127.0.0.1:notaport/0")
	if err == nil || strings.Contains(err.Error(), "s3cret") {
		t.Fatalf("Open error %v: want an error without the password", err)
	}
}

// raw is a plain go-redis client on the test server, to look at the keys
// the store writes.
func raw(t *testing.T, url string) *goredis.Client {
	opts, err := goredis.ParseURL(url)
	if err != nil {
		t.Fatal(err)
	}
	c := goredis.NewClient(opts)
	t.Cleanup(func() { c.Close() })
	return c
}

func TestKeysCarryThePrefixAndRedisExpiry(t *testing.T) {
	srv := testenv.Redis(t)
	ctx := context.Background()
	prefix := "t" + strings.ReplaceAll(t.Name(), "/", "-") + time.Now().Format("150405.000000") + ":"
	s := open(t, srv.URL+"?prefix="+prefix)
	other := open(t, srv.URL+"?prefix=other-"+prefix)
	c := raw(t, srv.URL)

	if fresh, err := s.CheckAndRecord(ctx, "n1", time.Minute); err != nil || !fresh {
		t.Fatalf("CheckAndRecord = %v, %v", fresh, err)
	}
	if pttl := c.PTTL(ctx, prefix+"n:n1").Val(); pttl <= 59*time.Second || pttl > time.Minute {
		t.Errorf("nonce key %sn:n1 expires in %v, want about 1m", prefix, pttl)
	}
	if fresh, err := other.CheckAndRecord(ctx, "n1", time.Minute); err != nil || !fresh {
		t.Errorf("a store with another prefix saw the nonce: %v, %v", fresh, err)
	}
	// A sub-millisecond ttl still records the nonce (rounded up to 1 ms).
	if fresh, err := s.CheckAndRecord(ctx, "n2", time.Microsecond); err != nil || !fresh {
		t.Errorf("CheckAndRecord with a 1µs ttl = %v, %v", fresh, err)
	}

	at := time.Date(2026, 1, 2, 3, 4, 5, 678_901_000, time.UTC)
	if err := s.RevokeSession(ctx, "s1", at, time.Hour); err != nil {
		t.Fatal(err)
	}
	if err := s.RevokeSession(ctx, "s1", at.Add(time.Minute), time.Minute); err != nil {
		t.Fatal(err)
	}
	if pttl := c.PTTL(ctx, prefix+"rs:s1").Val(); pttl <= 59*time.Minute {
		t.Errorf("a shorter second revocation cut the retention to %v", pttl)
	}
	if got, ok, err := s.SessionRevoked(ctx, "s1"); err != nil || !ok || !got.Equal(at) {
		t.Errorf("SessionRevoked = %v, %v, %v; want %v to the microsecond", got, ok, err, at)
	}

	if err := s.RecordToken(ctx, "t1", time.Hour); err != nil {
		t.Fatal(err)
	}
	if err := s.RecordToken(ctx, "t1", time.Second); err != nil {
		t.Fatal(err)
	}
	if pttl := c.PTTL(ctx, prefix+"it:t1").Val(); pttl <= 59*time.Minute {
		t.Errorf("a shorter second registration cut the retention to %v", pttl)
	}

	if ok, err := s.Allow(ctx, "k", 1, time.Minute, time.Now()); err != nil || !ok {
		t.Fatalf("Allow = %v, %v", ok, err)
	}
	for _, k := range []string{prefix + "rl:{k}z", prefix + "rl:{k}m"} {
		if pttl := c.PTTL(ctx, k).Val(); pttl <= 0 || pttl > time.Minute+2*time.Second {
			t.Errorf("rate-limit key %s expires in %v, want about a minute", k, pttl)
		}
	}
}

func TestScriptsAreReloadedAfterAFlush(t *testing.T) {
	srv := testenv.Redis(t)
	ctx := context.Background()
	s := open(t, srv.URL)
	key := "flush-" + time.Now().Format(time.RFC3339Nano)
	if ok, err := s.Allow(ctx, key, 2, time.Minute, time.Now()); err != nil || !ok {
		t.Fatalf("Allow = %v, %v", ok, err)
	}
	// A restarted server, or SCRIPT FLUSH, forgets the cached scripts:
	// EVALSHA answers NOSCRIPT and the store sends the script again.
	if err := raw(t, srv.URL).ScriptFlush(ctx).Err(); err != nil {
		t.Fatal(err)
	}
	if ok, err := s.Allow(ctx, key, 2, time.Minute, time.Now()); err != nil || !ok {
		t.Fatalf("Allow after SCRIPT FLUSH = %v, %v", ok, err)
	}
	if ok, err := s.Allow(ctx, key, 2, time.Minute, time.Now()); err != nil || ok {
		t.Fatalf("third call of 2/minute = %v, %v; want refused", ok, err)
	}
	if err := s.RevokeToken(ctx, key, time.Now(), time.Minute); err != nil {
		t.Fatalf("RevokeToken after SCRIPT FLUSH: %v", err)
	}
}

func TestCallsHonourTheURLTimeout(t *testing.T) {
	srv := testenv.NewRedis(t)
	ctx := context.Background()
	s := open(t, srv.URL+"?timeout=200ms")
	// A server that stops answering without closing connections: CLIENT
	// PAUSE holds every command until it ends.
	if err := raw(t, srv.URL).Do(ctx, "CLIENT", "PAUSE", "3000", "ALL").Err(); err != nil {
		t.Fatal(err)
	}
	// DeadlineExceeded proves the timeout ended the call: without it, the
	// call would succeed once the pause ends (no clock is read here).
	fresh, err := s.CheckAndRecord(ctx, "paused", time.Minute)
	if fresh || !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("CheckAndRecord on a paused server = %v, %v; want DeadlineExceeded", fresh, err)
	}
}
