package postgres_test

import (
	"context"
	"fmt"
	"net/url"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/agentid/agentid/internal/testenv"
	"github.com/agentid/agentid/store"
	"github.com/agentid/agentid/store/postgres"
	"github.com/agentid/agentid/store/storetest"
)

func TestMain(m *testing.M) {
	code := m.Run()
	testenv.StopServers()
	os.Exit(code)
}

var dbSeq atomic.Int64

// newDatabase creates an empty database on srv and returns its URL, with
// the extra query options opts (e.g. "unlogged=true").
func newDatabase(t testing.TB, srv *testenv.Server, opts string) string {
	t.Helper()
	ctx := context.Background()
	c, err := pgx.Connect(ctx, srv.URL)
	if err != nil {
		t.Fatalf("connecting to %s: %v", srv.URL, err)
	}
	defer c.Close(ctx)
	name := fmt.Sprintf("agentid_test_%d_%d", os.Getpid(), dbSeq.Add(1))
	if _, err := c.Exec(ctx, "CREATE DATABASE "+name); err != nil {
		t.Fatalf("CREATE DATABASE %s: %v", name, err)
	}
	u, err := url.Parse(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	u.Path = "/" + name
	if opts != "" {
		u.RawQuery += "&" + opts
	}
	return u.String()
}

// sharedDB is one database for the tests that only need the store's
// contract; their keys are unique.
var sharedDB struct {
	once sync.Once
	url  string
}

func sharedURL(t testing.TB) string {
	srv := testenv.Postgres(t)
	sharedDB.once.Do(func() { sharedDB.url = newDatabase(t, srv, "") })
	return sharedDB.url
}

func open(t testing.TB, url string) *postgres.Store {
	t.Helper()
	s, err := postgres.Open(context.Background(), url)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// sql runs one statement on the database at url, outside the store.
func sql(t testing.TB, url, stmt string, args ...any) {
	t.Helper()
	ctx := context.Background()
	c, err := pgx.Connect(ctx, plain(url))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close(ctx)
	if _, err := c.Exec(ctx, stmt, args...); err != nil {
		t.Fatalf("%s: %v", stmt, err)
	}
}

func count(t testing.TB, url, query string) int64 {
	t.Helper()
	ctx := context.Background()
	c, err := pgx.Connect(ctx, plain(url))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close(ctx)
	var n int64
	if err := c.QueryRow(ctx, query).Scan(&n); err != nil {
		t.Fatalf("%s: %v", query, err)
	}
	return n
}

// TestBackendContract runs every store contract against a real PostgreSQL,
// with logged and with UNLOGGED tables.
func TestBackendContract(t *testing.T) {
	for _, tc := range []struct{ name, opts string }{{"logged", ""}, {"unlogged", "unlogged=true"}} {
		t.Run(tc.name, func(t *testing.T) {
			url := sharedURL(t)
			if tc.opts != "" {
				url = newDatabase(t, testenv.Postgres(t), tc.opts)
			}
			storetest.TestBackend(t, func(t *testing.T, _ *storetest.Clock) store.Backend {
				return open(t, url)
			}, storetest.Options{RealTime: true})
		})
	}
}

// TestStoreSurvivesServerRestart stops PostgreSQL under load and starts it
// again: the same Store recovers, and what was committed before (a
// revocation, a nonce) still holds after.
func TestStoreSurvivesServerRestart(t *testing.T) {
	srv := testenv.NewPostgres(t)
	s := open(t, newDatabase(t, srv, ""))
	storetest.TestOutage(t, s, srv, storetest.OutageOptions{Durable: true})
}

func TestReplicasShareState(t *testing.T) {
	url := sharedURL(t)
	storetest.TestReplicas(t, func(t *testing.T) store.Backend { return open(t, url) }, 3)
}

func TestConcurrentStartsMigrateOnce(t *testing.T) {
	url := newDatabase(t, testenv.Postgres(t), "")
	const replicas = 6
	var wg sync.WaitGroup
	errs := make(chan error, replicas)
	gate := make(chan struct{})
	for range replicas {
		wg.Go(func() {
			<-gate
			s, err := postgres.Open(context.Background(), url)
			if err != nil {
				errs <- err
				return
			}
			s.Close()
		})
	}
	close(gate)
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Errorf("a concurrent Open failed: %v", err)
	}
	if n := count(t, url, "SELECT count(*) FROM agentid_schema"); n != 1 {
		t.Errorf("agentid_schema has %d rows, want 1", n)
	}
	if v := count(t, url, "SELECT version FROM agentid_schema"); v != postgres.SchemaVersion {
		t.Errorf("schema version %d, want %d", v, postgres.SchemaVersion)
	}
}

func TestANewerSchemaIsRefused(t *testing.T) {
	url := newDatabase(t, testenv.Postgres(t), "")
	open(t, url).Close()
	sql(t, url, "UPDATE agentid_schema SET version = $1", postgres.SchemaVersion+1)
	if s, err := postgres.Open(context.Background(), url); err == nil {
		s.Close()
		t.Fatal("Open accepted a schema newer than this build's")
	}
}

func TestUnloggedOption(t *testing.T) {
	srv := testenv.Postgres(t)
	ctx := context.Background()
	persistence := func(url, table string) string {
		t.Helper()
		c, err := pgx.Connect(ctx, plain(url))
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close(ctx)
		var p string
		if err := c.QueryRow(ctx, "SELECT relpersistence::text FROM pg_class WHERE oid = $1::regclass", table).Scan(&p); err != nil {
			t.Fatal(err)
		}
		return p
	}
	for _, tc := range []struct {
		opts     string
		unlogged bool
	}{{"", false}, {"unlogged=false", false}, {"unlogged=true", true}} {
		t.Run("opts="+tc.opts, func(t *testing.T) {
			url := newDatabase(t, srv, tc.opts)
			s := open(t, url)
			got, err := s.Unlogged(ctx)
			if err != nil || got != tc.unlogged {
				t.Fatalf("Unlogged = %v, %v; want %v", got, err, tc.unlogged)
			}
			want := "p"
			if tc.unlogged {
				want = "u"
			}
			for _, table := range []string{"agentid_nonces", "agentid_issued", "agentid_rate_limits", "agentid_rate_calls"} {
				if p := persistence(url, table); p != want {
					t.Errorf("%s has relpersistence %q, want %q", table, p, want)
				}
			}
			if p := persistence(url, "agentid_revocations"); p != "p" {
				t.Errorf("agentid_revocations has relpersistence %q: revocations must always be logged", p)
			}
		})
	}
	t.Run("the option applies only when the tables are created", func(t *testing.T) {
		url := newDatabase(t, srv, "unlogged=true")
		open(t, url).Close()
		u, _ := url2(url, "unlogged", "false")
		if got, err := open(t, u).Unlogged(ctx); err != nil || !got {
			t.Errorf("reopened with unlogged=false: Unlogged = %v, %v; want the existing UNLOGGED tables reported", got, err)
		}
	})
}

// plain returns rawURL without the store's own options, for pgx itself.
func plain(rawURL string) string {
	u, err := url.Parse(rawURL)
	if err != nil {
		panic(err)
	}
	q := u.Query()
	for _, name := range []string{"timeout", "prune_interval", "unlogged"} {
		q.Del(name)
	}
	u.RawQuery = q.Encode()
	return u.String()
}

// url2 returns rawURL with the query option name set to value.
func url2(rawURL, name, value string) (string, error) {
	u, err := url.Parse(rawURL)
	if err != nil {
		return "", err
	}
	q := u.Query()
	q.Set(name, value)
	u.RawQuery = q.Encode()
	return u.String(), nil
}

func TestPruneDeletesExpiredRowsInBatches(t *testing.T) {
	url := newDatabase(t, testenv.Postgres(t), "prune_interval=0")
	s := open(t, url)
	ctx := context.Background()
	const expired = 2*postgres.PruneBatch + 17
	sql(t, url, "INSERT INTO agentid_nonces SELECT 'old-' || g, now() - interval '1 second' FROM generate_series(1, $1) g", expired)
	sql(t, url, "INSERT INTO agentid_issued SELECT 'token', 'old-' || g, now() - interval '1 second' FROM generate_series(1, 10) g")
	sql(t, url, "INSERT INTO agentid_revocations SELECT 'session', 'old-' || g, now(), now() - interval '1 second' FROM generate_series(1, 10) g")
	for i := range 5 {
		if _, err := s.Allow(ctx, "live-"+strconv.Itoa(i), 3, time.Hour, time.Now()); err != nil {
			t.Fatal(err)
		}
		if _, err := s.CheckAndRecord(ctx, "live-"+strconv.Itoa(i), time.Hour); err != nil {
			t.Fatal(err)
		}
	}
	sql(t, url, "INSERT INTO agentid_rate_limits VALUES ('old', 1, 1, 1, 0, 1, now() - interval '1 second')")
	sql(t, url, "INSERT INTO agentid_rate_calls VALUES ('old', 0, 1)")

	// An expired row not pruned yet does not make its nonce a replay.
	if fresh, err := s.CheckAndRecord(ctx, "old-1", time.Hour); err != nil || !fresh {
		t.Fatalf("CheckAndRecord of an expired, unpruned nonce = %v, %v; want fresh", fresh, err)
	}
	if fresh, err := s.CheckAndRecord(ctx, "old-1", time.Hour); err != nil || fresh {
		t.Fatalf("second CheckAndRecord of it = %v, %v; want a replay", fresh, err)
	}
	n, err := s.Prune(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if want := int64(expired - 1 + 10 + 10 + 1); n != want {
		t.Errorf("Prune deleted %d rows, want %d", n, want)
	}
	for query, want := range map[string]int64{
		"SELECT count(*) FROM agentid_nonces":      6,
		"SELECT count(*) FROM agentid_issued":      0,
		"SELECT count(*) FROM agentid_revocations": 0,
		"SELECT count(*) FROM agentid_rate_limits": 5,
		"SELECT count(*) FROM agentid_rate_calls":  5,
	} {
		if got := count(t, url, query); got != want {
			t.Errorf("%s = %d after Prune, want %d", query, got, want)
		}
	}
	if n, err := s.Prune(ctx); err != nil || n != 0 {
		t.Errorf("second Prune = %d, %v; want 0", n, err)
	}
}

func TestThePrunerRunsPeriodically(t *testing.T) {
	url := newDatabase(t, testenv.Postgres(t), "prune_interval=100ms")
	open(t, url)
	sql(t, url, "INSERT INTO agentid_nonces SELECT 'old-' || g, now() - interval '1 second' FROM generate_series(1, 50) g")
	deadline := time.Now().Add(10 * time.Second)
	for count(t, url, "SELECT count(*) FROM agentid_nonces") != 0 {
		if time.Now().After(deadline) {
			t.Fatal("expired nonces still there 10s later with prune_interval=100ms")
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestASlowServerIsAnErrorWithinTheTimeout holds the row lock a rate limit
// needs from another connection: the call must give up at the URL's
// timeout with an error, not wait, and not allow.
func TestASlowServerIsAnErrorWithinTheTimeout(t *testing.T) {
	url := newDatabase(t, testenv.Postgres(t), "timeout=300ms")
	s := open(t, url)
	ctx := context.Background()
	if ok, err := s.Allow(ctx, "locked", 5, time.Minute, time.Now()); err != nil || !ok {
		t.Fatalf("Allow = %v, %v", ok, err)
	}
	c, err := pgx.Connect(ctx, plain(url))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close(ctx)
	tx, err := c.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback(ctx)
	if _, err := tx.Exec(ctx, "SELECT 1 FROM agentid_rate_limits WHERE key = 'locked' FOR UPDATE"); err != nil {
		t.Fatal(err)
	}
	// The lock is held until the rollback below: without the timeout this
	// call would never return (no clock is read here).
	ok, err := s.Allow(ctx, "locked", 5, time.Minute, time.Now())
	if ok || err == nil {
		t.Fatalf("Allow behind a held lock = %v, %v; want an error, not allowed", ok, err)
	}
	tx.Rollback(ctx)
	if ok, err := s.Allow(ctx, "locked", 5, time.Minute, time.Now()); err != nil || !ok {
		t.Fatalf("Allow after the lock is released = %v, %v", ok, err)
	}
}

func TestOpenRejectsBadURLs(t *testing.T) {
	ctx := context.Background()
	for _, tc := range []struct{ name, url string }{
		{"another scheme", "redis://127.0.0.1:1/0"},
		{"a timeout that is not a duration", "postgres://u@127.0.0.1:1/db?timeout=soon"},
		{"a negative prune interval", "postgres://u@127.0.0.1:1/db?prune_interval=-1s"},
		{"unlogged that is not a boolean", "postgres://u@127.0.0.1:1/db?unlogged=maybe"},
		{"an unreachable server", "postgres://u@127.0.0.1:1/db?connect_timeout=1"},
		{"a password in a URL that does not parse", "postgres://u:s3cret@127.0.0.1:notaport/db"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, err := postgres.Open(ctx, tc.url)
			if err == nil {
				s.Close()
				t.Fatal("Open succeeded")
			}
			msg := err.Error()
			if len(msg) < 16 || msg[:16] != "store/postgres: " {
				t.Errorf("error %q: want it prefixed store/postgres:", msg)
			}
			if containsFold(msg, "s3cret") {
				t.Errorf("error %q shows the password", msg)
			}
		})
	}
}

func containsFold(s, sub string) bool {
	for i := 0; i+len(sub) <= len(s); i++ {
		if s[i:i+len(sub)] == sub {
			return true
		}
	}
	return false
}

func BenchmarkCheckAndRecord(b *testing.B) {
	for _, tc := range []struct{ name, opts string }{{"logged", ""}, {"unlogged", "unlogged=true"}} {
		// Set up once: b.Run calls the function again for each b.N.
		s := open(b, newDatabase(b, testenv.Postgres(b), tc.opts+"&prune_interval=0"))
		b.Run(tc.name, func(b *testing.B) {
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
		})
	}
}

// TestReplicasPruneTogether runs the pruners of several replicas at once on
// one backlog: SKIP LOCKED shares the rows out, so every expired row is
// deleted exactly once and nobody waits on or fails for another.
func TestReplicasPruneTogether(t *testing.T) {
	url := newDatabase(t, testenv.Postgres(t), "prune_interval=0")
	const replicas, expired = 3, 3*postgres.PruneBatch + 500
	stores := make([]*postgres.Store, replicas)
	for i := range stores {
		stores[i] = open(t, url)
	}
	sql(t, url, "INSERT INTO agentid_nonces SELECT 'old-' || g, now() - interval '1 second' FROM generate_series(1, $1) g", expired)
	var total atomic.Int64
	var wg sync.WaitGroup
	for _, s := range stores {
		wg.Go(func() {
			n, err := s.Prune(context.Background())
			if err != nil {
				t.Error(err)
			}
			total.Add(n)
		})
	}
	wg.Wait()
	if total.Load() != expired {
		t.Errorf("the replicas deleted %d rows in all, want %d", total.Load(), expired)
	}
	if n := count(t, url, "SELECT count(*) FROM agentid_nonces"); n != 0 {
		t.Errorf("%d expired nonces left", n)
	}
}
