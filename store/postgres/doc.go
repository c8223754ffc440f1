// Package postgres implements store.Backend on PostgreSQL (AIP v1alpha2
// §3.7.9 type "postgres"), so that `agentid serve` replicas share nonces,
// revocations, the registry of issued sessions and tokens, and rate-limit
// counters.
//
// Open takes a postgres:// or postgresql:// URL as pgx parses it (host,
// user, password, database, sslmode, pgxpool's pool_* options, and any
// server setting such as search_path, which chooses the schema the tables
// live in), plus options of this package, removed before pgx sees them:
//
//   - timeout: the deadline of each call (a Go duration, 2s by default),
//     applied when the caller's context has no earlier one;
//   - prune_interval: how often expired rows are deleted (1m by default;
//     0 turns the pruner off, for deployments that call Prune themselves);
//   - unlogged=true: create the tables that only serve the replay window as
//     UNLOGGED (see below).
//
// # Schema
//
// Open creates the tables, or migrates them to this version, in one
// transaction under an advisory lock, so that replicas starting at once
// wait for one another instead of racing on CREATE TABLE; the version is
// kept in agentid_schema. A schema newer than this build is an error rather
// than a guess. Every table has an expiry column, indexed for the pruner
// except the rate limits' (see schema.go); reads also ignore expired rows,
// so correctness never waits for the pruner.
//
// Every operation is one round trip and atomic on the server:
//
//   - a nonce is INSERT … ON CONFLICT on its primary key: a conflicting row
//     that has expired but is not pruned yet is taken over (DO UPDATE …
//     WHERE expired), any other conflict leaves the row alone and reports a
//     replay, so exactly one of any number of concurrent checks, from any
//     number of replicas, sees the nonce fresh;
//   - a revocation is an upsert keeping the earliest revocation time and
//     the later expiry;
//   - an issued session or token is an upsert keeping the later expiry;
//   - a rate limit is the function agentid_rate_allow, created by the
//     migration: a sliding log (a ring of at most limit rows holding the
//     accepted calls' times, and one row per key, locked FOR UPDATE, which
//     serializes the key's calls across connections). It admits exactly
//     limit calls in any window of one period, never records a refused
//     call, and counts a time earlier than the latest seen as the latest.
//     GCRA (a token bucket) was not used: once its burst is spent it admits
//     calls as they refill, more than limit in some windows of one period.
//
// Expiry is decided by the server's clock (now()), not the replicas', so
// replicas with skewed clocks still agree; the retention passed in should
// include nonce_storage.clock_skew_tolerance.
//
// The pruner deletes expired rows in batches of PruneBatch with FOR UPDATE
// SKIP LOCKED, so that several replicas pruning at once share the work
// instead of blocking one another or a caller.
//
// # UNLOGGED tables
//
// With unlogged=true the nonce, registry and rate-limit tables are created
// UNLOGGED: their writes skip the write-ahead log, which makes them faster
// (about the cost of a logged table with synchronous_commit=off), but
// PostgreSQL truncates them after a crash and does not replicate them to
// standbys. After a crash or a failover, then, every token still inside its
// replay window can be replayed once more, the registry forgets which ids
// were issued (POST /v1/revoke answers 404 for them until they are issued
// again), and rate limits start afresh. A clean restart keeps them.
//
// Revocations are always logged: losing them would re-admit tokens and
// sessions an administrator revoked, which is not a performance trade-off
// this package makes for anyone. The option only applies when the tables
// are created; Unlogged reports what the existing tables are.
//
// Every error is wrapped with "store/postgres:" and means the store could
// not decide: callers apply their failover mode, never treating a nonce as
// fresh or a call as allowed. A Store survives a restart of the server:
// the pool replaces broken connections on later calls.
package postgres
