// Package auth is the digest authentication stage (RFC 3261 22, RFC 7616,
// RFC 8760) with its local credential cache, the Store interface that feeds
// the cache and the file store. See README.md for the configuration and the
// metrics.
//
// The stage challenges requests without credentials (401 for REGISTER, 407
// otherwise) with stateless nonces, and verifies credentials against HA1
// values (never passwords) held in a per-core cache. A user not in the cache
// is parked (pipeline.Ctx.Park) and fetched by a per-worker helper off the
// hot path: NewStage registers that helper with pipeline.Env.Helper, and
// the same stage's Resume gets the message back with the answer, fills the
// cache and verifies. There is one stage, "auth", declared in Def with its
// counters; it parks (Def.Parks).
//
// Why per-core caches and not a shared table: the pipeline parks a message
// and resumes it on the same worker, and only that worker reads its cache,
// so a cache owned by one worker needs neither locks nor atomics to read or
// fill, cannot be torn, and stays exact under the race detector (a seqlock
// over shared memory would need every word read atomically to be race-free
// in Go, and an immutable snapshot behind an atomic pointer costs a full
// copy per fill). The price is memory (one copy per core, bounded by
// cache_size) and one store lookup per user per core. Invalidations, which
// come from other goroutines (Redis pushes, file reloads), reach each worker
// through a bounded single-consumer ring drained once per batch; if a ring
// overflows the worker drops its whole cache rather than miss one.
//
// Entries are keyed by a 128-bit keyed hash of the user name (two
// hash/maphash sums under random seeds), so that slots have a fixed size
// whatever the length of the name; a collision needs both seeds. Each set of
// 8 ways evicts its least recently used entry when full: a bounded,
// predictable policy that costs no shared state.
//
// Failed authentications go to a FailureSink (per worker: the guard stage
// of the same worker), an interface of this package: auth does not import
// guard.
//
// auth may import pipeline (and pipeline/internal/spsc), pipeline/node and
// sipcore only; it must never import appliance, tools, bench, another
// stage, afxdp or a port, nor a client of any particular store (those live
// in sub-packages such as redisstore, which implement Store). Only its test
// helper, authtest, imports the chain file (to build real workers).
package auth
