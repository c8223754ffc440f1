package redis

import (
	"context"
	"fmt"
	"strconv"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/agentid/agentid/store"
)

// checkTokenScript reads a token's two revocation records and, when neither
// exists and ARGV[2] is "1", records its nonce with SET NX PX: one round
// trip for a whole validation. KEYS: session revocation, token revocation,
// nonce; ARGV[1]: nonce ttl in ms. It returns {session revoked at or false,
// token revoked at or false, 1 when the nonce was recorded}.
var checkTokenScript = goredis.NewScript(`
local s = redis.call('GET', KEYS[1])
local t = redis.call('GET', KEYS[2])
if s or t or ARGV[2] ~= '1' then
	return {s or false, t or false, 0}
end
if redis.call('SET', KEYS[3], '1', 'NX', 'PX', ARGV[1]) then
	return {false, false, 1}
end
return {false, false, 0}
`)

// CheckToken implements store.TokenChecker.
func (s *Store) CheckToken(ctx context.Context, session, nonce string, record bool, ttl time.Duration) (store.TokenCheck, error) {
	var tc store.TokenCheck
	if err := checkKey(session, ttl); err != nil {
		return tc, err
	}
	if err := checkKey(nonce, ttl); err != nil {
		return tc, err
	}
	ctx, cancel, err := s.call(ctx)
	if err != nil {
		return tc, err
	}
	defer cancel()
	rec := "0"
	if record {
		rec = "1"
	}
	res, err := checkTokenScript.Run(ctx, s.c, []string{s.prefix + "rs:" + session, s.prefix + "rt:" + nonce, s.prefix + "n:" + nonce},
		millis(ttl), rec).Slice()
	if err != nil {
		return tc, s.wrap("check token", err)
	}
	if len(res) != 3 {
		return tc, fmt.Errorf("store/redis: check token: %d results", len(res))
	}
	if tc.SessionRevokedAt, tc.SessionRevoked, err = revokedAt(res[0]); err != nil {
		return store.TokenCheck{}, err
	}
	if tc.TokenRevokedAt, tc.TokenRevoked, err = revokedAt(res[1]); err != nil {
		return store.TokenCheck{}, err
	}
	n, _ := res[2].(int64)
	tc.Fresh = n == 1
	return tc, nil
}

// revokedAt reads a revocation record the script returned (nil: none).
func revokedAt(v any) (time.Time, bool, error) {
	s, ok := v.(string)
	if !ok {
		return time.Time{}, false, nil
	}
	us, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		return time.Time{}, false, fmt.Errorf("store/redis: revocation record %q is not a time", s)
	}
	return time.UnixMicro(us).UTC(), true, nil
}
