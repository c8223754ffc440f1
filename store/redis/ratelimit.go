package redis

import (
	"context"
	"time"

	goredis "github.com/redis/go-redis/v9"
)

// allowScript is the sliding log of one rate-limit key, in one round trip.
//
// KEYS[1]: a sorted set of the accepted calls (member a sequence number,
// score the call's time in µs); KEYS[2]: a hash with the limit it counts
// for ("cfg"), the latest time seen and the last sequence number.
// ARGV: now (µs), limit, period (µs), the keys' lifetime (ms).
//
// A call at now counts the accepted calls in (now-per, now]. Scores and
// times stay below 2^53 µs (year 2255), where Lua's doubles are exact;
// values written back are copied from the arguments or formatted as
// integers, never as Lua's default %.14g.
var allowScript = goredis.NewScript(`
local now = tonumber(ARGV[1])
local at = ARGV[1]
local limit = tonumber(ARGV[2])
local per = tonumber(ARGV[3])
local cfg = ARGV[2] .. '/' .. ARGV[3]
local st = redis.call('HMGET', KEYS[2], 'cfg', 'latest', 'seq')
local seq = 0
if st[1] == cfg then
	local latest = tonumber(st[2])
	if latest > now then
		now = latest
		at = st[2]
	end
	seq = tonumber(st[3])
else
	-- New key, or one used with another limit: count afresh.
	redis.call('DEL', KEYS[1])
end
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', string.format('%.0f', now - per))
local allowed = 0
if redis.call('ZCARD', KEYS[1]) < limit then
	seq = seq + 1
	redis.call('ZADD', KEYS[1], at, string.format('%.0f', seq))
	allowed = 1
end
redis.call('HSET', KEYS[2], 'cfg', cfg, 'latest', at, 'seq', string.format('%.0f', seq))
redis.call('PEXPIRE', KEYS[1], ARGV[4])
redis.call('PEXPIRE', KEYS[2], ARGV[4])
return allowed
`)

// rateKeyMargin keeps a key's state a little longer than its period, for
// callers whose clock runs slightly behind the server's.
const rateKeyMargin = time.Second

// Allow implements store.RateLimiter.
func (s *Store) Allow(ctx context.Context, key string, limit int, per time.Duration, now time.Time) (bool, error) {
	if err := checkLimit(key, limit, per); err != nil {
		return false, err
	}
	ctx, cancel, err := s.call(ctx)
	if err != nil {
		return false, err
	}
	defer cancel()
	// Periods finer than a microsecond count as one.
	perUS := max(per.Microseconds(), 1)
	// One hash tag for both keys: Redis Cluster needs a script's keys in
	// one slot.
	base := s.prefix + "rl:{" + key + "}"
	n, err := allowScript.Run(ctx, s.c, []string{base + "z", base + "m"},
		now.UnixMicro(), limit, perUS, millis(per+rateKeyMargin)).Int()
	if err != nil {
		return false, s.wrap("rate limit", err)
	}
	return n == 1, nil
}
