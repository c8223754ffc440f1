package redis

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"strconv"
	"sync/atomic"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/agentid/agentid/store"
)

// DefaultPrefix is the key prefix when the URL does not set one.
const DefaultPrefix = "agentid:"

// DefaultTimeout is the deadline of each call when the URL does not set one.
const DefaultTimeout = 2 * time.Second

// Store is a store.Backend on one Redis server, safe for concurrent use.
type Store struct {
	c       *goredis.Client
	prefix  string
	timeout time.Duration
	closed  atomic.Bool
}

var _ store.Backend = (*Store)(nil)

// Open connects to the Redis server at rawURL (see the package
// documentation for the URL) and checks that it answers.
func Open(ctx context.Context, rawURL string) (*Store, error) {
	u, err := url.Parse(rawURL)
	if err != nil {
		return nil, fmt.Errorf("store/redis: parsing the URL: %w", redactURLError(err))
	}
	if u.Scheme != "redis" && u.Scheme != "rediss" {
		return nil, fmt.Errorf("store/redis: URL scheme %q, want redis or rediss", u.Scheme)
	}
	s := &Store{prefix: DefaultPrefix, timeout: DefaultTimeout}
	q := u.Query()
	// go-redis rejects query options it does not know: this package's own
	// are taken out before it parses the rest.
	if q.Has("prefix") {
		s.prefix = q.Get("prefix")
		q.Del("prefix")
	}
	if q.Has("timeout") {
		d, err := time.ParseDuration(q.Get("timeout"))
		if err != nil || d <= 0 {
			return nil, fmt.Errorf("store/redis: timeout=%q: want a positive duration such as 2s", q.Get("timeout"))
		}
		s.timeout = d
		q.Del("timeout")
	}
	u.RawQuery = q.Encode()
	opts, err := goredis.ParseURL(u.String())
	if err != nil {
		return nil, fmt.Errorf("store/redis: %w", err)
	}
	// Without this go-redis ignores the context's deadline on the socket
	// and waits for its own read timeout when a server stops answering.
	opts.ContextTimeoutEnabled = true
	s.c = goredis.NewClient(opts)
	if err := s.Ping(ctx); err != nil {
		s.c.Close()
		return nil, err
	}
	return s, nil
}

// redactURLError drops the URL from a parse error: it may hold a password.
func redactURLError(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return ue.Err
	}
	return err
}

// call prepares the context of one operation: ErrClosed after Close, the
// caller's own error when it is already done, else a deadline.
func (s *Store) call(ctx context.Context) (context.Context, context.CancelFunc, error) {
	if s.closed.Load() {
		return nil, nil, fmt.Errorf("store/redis: %w", store.ErrClosed)
	}
	if err := ctx.Err(); err != nil {
		return nil, nil, fmt.Errorf("store/redis: %w", err)
	}
	ctx, cancel := context.WithTimeout(ctx, s.timeout)
	return ctx, cancel, nil
}

// wrap names the operation in an error and turns go-redis's closed client
// into store.ErrClosed.
func (s *Store) wrap(op string, err error) error {
	if errors.Is(err, goredis.ErrClosed) || s.closed.Load() {
		return fmt.Errorf("store/redis: %s: %w", op, store.ErrClosed)
	}
	return fmt.Errorf("store/redis: %s: %w", op, err)
}

func checkKey(key string, ttl time.Duration) error {
	if err := store.CheckKey(key, ttl); err != nil {
		return fmt.Errorf("store/redis: %w", err)
	}
	return nil
}

func checkLimit(key string, limit int, per time.Duration) error {
	if err := store.CheckLimit(key, limit, per); err != nil {
		return fmt.Errorf("store/redis: %w", err)
	}
	return nil
}

// millis rounds d up to whole milliseconds, Redis's finest expiry.
func millis(d time.Duration) int64 {
	return int64((d + time.Millisecond - 1) / time.Millisecond)
}

// CheckAndRecord implements store.NonceStore.
func (s *Store) CheckAndRecord(ctx context.Context, nonce string, ttl time.Duration) (bool, error) {
	if err := checkKey(nonce, ttl); err != nil {
		return false, err
	}
	ctx, cancel, err := s.call(ctx)
	if err != nil {
		return false, err
	}
	defer cancel()
	err = s.c.SetArgs(ctx, s.prefix+"n:"+nonce, "1", goredis.SetArgs{
		Mode: "NX",
		TTL:  time.Duration(millis(ttl)) * time.Millisecond,
	}).Err()
	switch {
	case err == nil:
		return true, nil
	case errors.Is(err, goredis.Nil): // NX: the nonce was there
		return false, nil
	default:
		return false, s.wrap("check nonce", err)
	}
}

// revokeScript records a revocation, keeping the earliest time and the
// later expiry. KEYS[1]: the record; ARGV[1]: revoked at, µs since the
// epoch; ARGV[2]: retention in ms. The stored time is copied, never
// formatted from a Lua number, which would lose digits.
var revokeScript = goredis.NewScript(`
local at = ARGV[1]
local ttl = tonumber(ARGV[2])
local old = redis.call('GET', KEYS[1])
if old then
	if tonumber(old) < tonumber(at) then at = old end
	local left = redis.call('PTTL', KEYS[1])
	if left > ttl then ttl = left end
end
redis.call('SET', KEYS[1], at, 'PX', ttl)
return 1
`)

func (s *Store) revoke(ctx context.Context, kind, key string, at time.Time, ttl time.Duration) error {
	if err := checkKey(key, ttl); err != nil {
		return err
	}
	ctx, cancel, err := s.call(ctx)
	if err != nil {
		return err
	}
	defer cancel()
	err = revokeScript.Run(ctx, s.c, []string{s.prefix + kind + key}, at.UnixMicro(), millis(ttl)).Err()
	if err != nil {
		return s.wrap("revoke", err)
	}
	return nil
}

func (s *Store) revoked(ctx context.Context, kind, key string) (time.Time, bool, error) {
	ctx, cancel, err := s.call(ctx)
	if err != nil {
		return time.Time{}, false, err
	}
	defer cancel()
	v, err := s.c.Get(ctx, s.prefix+kind+key).Result()
	if errors.Is(err, goredis.Nil) {
		return time.Time{}, false, nil
	}
	if err != nil {
		return time.Time{}, false, s.wrap("read revocation", err)
	}
	us, err := strconv.ParseInt(v, 10, 64)
	if err != nil {
		// Another writer under our prefix: fail closed, as revoked now
		// would be a guess; the caller treats the error as unknown.
		return time.Time{}, false, fmt.Errorf("store/redis: revocation record %q is not a time", v)
	}
	return time.UnixMicro(us).UTC(), true, nil
}

// RevokeSession implements store.RevocationStore.
func (s *Store) RevokeSession(ctx context.Context, id string, at time.Time, ttl time.Duration) error {
	return s.revoke(ctx, "rs:", id, at, ttl)
}

// RevokeToken implements store.RevocationStore.
func (s *Store) RevokeToken(ctx context.Context, nonce string, at time.Time, ttl time.Duration) error {
	return s.revoke(ctx, "rt:", nonce, at, ttl)
}

// SessionRevoked implements store.RevocationStore.
func (s *Store) SessionRevoked(ctx context.Context, id string) (time.Time, bool, error) {
	return s.revoked(ctx, "rs:", id)
}

// TokenRevoked implements store.RevocationStore.
func (s *Store) TokenRevoked(ctx context.Context, nonce string) (time.Time, bool, error) {
	return s.revoked(ctx, "rt:", nonce)
}

// recordScript sets a registry record for ARGV[1] ms unless it already
// lives longer. PTTL is -2 for a missing key.
var recordScript = goredis.NewScript(`
if redis.call('PTTL', KEYS[1]) < tonumber(ARGV[1]) then
	redis.call('SET', KEYS[1], '1', 'PX', ARGV[1])
end
return 1
`)

func (s *Store) record(ctx context.Context, kind, key string, ttl time.Duration) error {
	if err := checkKey(key, ttl); err != nil {
		return err
	}
	ctx, cancel, err := s.call(ctx)
	if err != nil {
		return err
	}
	defer cancel()
	if err := recordScript.Run(ctx, s.c, []string{s.prefix + kind + key}, millis(ttl)).Err(); err != nil {
		return s.wrap("record", err)
	}
	return nil
}

func (s *Store) known(ctx context.Context, kind, key string) (bool, error) {
	ctx, cancel, err := s.call(ctx)
	if err != nil {
		return false, err
	}
	defer cancel()
	n, err := s.c.Exists(ctx, s.prefix+kind+key).Result()
	if err != nil {
		return false, s.wrap("read registry", err)
	}
	return n == 1, nil
}

// RecordSession implements store.Registry.
func (s *Store) RecordSession(ctx context.Context, id string, ttl time.Duration) error {
	return s.record(ctx, "is:", id, ttl)
}

// RecordToken implements store.Registry.
func (s *Store) RecordToken(ctx context.Context, nonce string, ttl time.Duration) error {
	return s.record(ctx, "it:", nonce, ttl)
}

// SessionKnown implements store.Registry.
func (s *Store) SessionKnown(ctx context.Context, id string) (bool, error) {
	return s.known(ctx, "is:", id)
}

// TokenKnown implements store.Registry.
func (s *Store) TokenKnown(ctx context.Context, nonce string) (bool, error) {
	return s.known(ctx, "it:", nonce)
}

// Ping implements store.Backend.
func (s *Store) Ping(ctx context.Context) error {
	ctx, cancel, err := s.call(ctx)
	if err != nil {
		return err
	}
	defer cancel()
	if err := s.c.Ping(ctx).Err(); err != nil {
		return s.wrap("ping", err)
	}
	return nil
}

// Close implements store.Backend. Calls after Close return store.ErrClosed.
func (s *Store) Close() error {
	if s.closed.Swap(true) {
		return nil
	}
	if err := s.c.Close(); err != nil {
		return fmt.Errorf("store/redis: close: %w", err)
	}
	return nil
}
