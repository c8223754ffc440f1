// Package redis implements store.Backend on a Redis server (AIP v1alpha2
// §3.7.9 type "redis"), so that `agentid serve` replicas share nonces,
// revocations, the registry of issued sessions and tokens, and rate-limit
// counters.
//
// Open takes a redis:// or rediss:// URL as go-redis parses it (user,
// password, database number, TLS for rediss, and go-redis's own query
// options), plus two of this package:
//
//   - prefix: the prefix of every key this package writes, "agentid:" by
//     default, so that several deployments (or a deployment and other
//     applications) can share one Redis;
//   - timeout: the deadline of each call (a Go duration, 2s by default),
//     applied when the caller's context has no earlier one.
//
// Every operation is one round trip and atomic on the server:
//
//   - a nonce is SET <prefix>n:<nonce> 1 NX PX <ttl>: exactly one of any
//     number of concurrent checks, from any number of processes, sees it
//     fresh;
//   - a revocation is a Lua script that keeps the earliest revocation time
//     and the later expiry (the contract of store.RevocationStore), stored
//     as microseconds since the Unix epoch;
//   - an issued session or token is a Lua script that sets the record with
//     its ttl unless it already lives longer;
//   - a rate limit is a sliding log in a Lua script (run with EVALSHA): a
//     sorted set of the accepted calls' times and a small hash holding the
//     limit it counts for and the latest time seen. It admits exactly limit
//     calls in any window of one period, never records a refused call, and
//     counts a time earlier than the latest seen as the latest. Its memory
//     is one set member per accepted call in the window. GCRA (a token
//     bucket) was not used: once its burst is spent it admits calls as
//     they refill, more than limit in some windows of one period.
//
// Expiry is Redis's own (PX): the store ignores the caller's clock for
// records, so replicas with skewed clocks still agree on them; the
// retention passed in should include nonce_storage.clock_skew_tolerance.
// Rate limits count on the caller's now, as store.RateLimiter says.
//
// Keys are prefixed by kind (n: nonces, rs:/rt: revoked sessions and
// tokens, is:/it: issued sessions and tokens, rl: rate limits), so one
// string may be all of them at once. Redis Cluster works when the two keys
// of a rate limit share a slot, which their hash tag ({key}) ensures.
//
// Every error is wrapped with "store/redis:" and means the store could not
// decide: callers apply their failover mode, never treating a nonce as
// fresh or a call as allowed. A Store survives a restart of the server: go-
// redis reconnects on the next call, and the scripts are loaded again when
// the server answers NOSCRIPT.
package redis
