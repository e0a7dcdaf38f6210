package auth

import (
	"sipedge/pipeline"
	"sipedge/pipeline/internal/spsc"
	"sync/atomic"
	"time"
)

// Worker-side counters, in the order of Def.Counters: plain fields on the
// hot path, published by the worker once per batch for Metrics to read.
const (
	cChallenges = iota
	cSuccesses
	cFailures
	cStale
	cCacheHits
	cCacheMisses
	cNegativeHits
	cParked
	cTrusted
	cBadRequests
	cStoreErrors // answered with the store-error fallback
	cFillSkipped // an invalidation raced the lookup: answer used, not cached
	cFlushes
	cEvictions
	cEntries // gauge: cache.live
	cReplays
	cInvalidNonces
	cRechallenged
	cFromMismatch
	cSourceParkLimit
	cUnasserted
	numCounters
)

// core is one worker's share of Auth: its cache, counters, invalidation
// ring and helper. Fields without atomics belong to the worker goroutine.
type core struct {
	a      *Auth
	id     int
	staged bool
	cache  *cache
	nc     *ncTable // nonce-counts of the nonces this worker verified
	parks  *sourceParks

	cnt pipeline.Counters // Env.Counters of the worker's stage

	inv          *spsc.Ring[invEntry]  // from Invalidate, drained per batch
	fills        *spsc.Ring[fillEntry] // store answers from the helper, drained per batch
	flushSeq     atomic.Uint64         // written by invalidation producers
	appliedFlush uint64
	applied      uint64 // highest invalidation seq this worker applied

	wall time.Time // wall clock for nonces, read once per batch

	help *helper

	failures FailureSink // Config.Failures or this worker's WorkerFailures
}

// invRingSize bounds the invalidations in flight to one worker; beyond it
// the worker forgets its whole cache instead (Auth.Invalidate).
const invRingSize = 1024

func newCore(a *Auth, id int) *core {
	c := &core{a: a, id: id, inv: spsc.New[invEntry](invRingSize), nc: newNCTable(a.cfg.NonceCounts),
		fills: spsc.New[fillEntry](a.cfg.QueueLen), parks: newSourceParks(a.cfg.MaxParkedPerSource)}
	if a.peek == nil {
		c.cache = newCache(a.cfg.CacheSize)
	}
	return c
}

// startBatch applies pending invalidations and reads the wall clock:
// once per worker loop, not per message.
func (c *core) startBatch(now int64) {
	if f := c.flushSeq.Load(); f > c.appliedFlush {
		if c.cache != nil {
			c.cache.clear()
		}
		c.appliedFlush = f
		c.applied = max(c.applied, f)
		c.cnt.Inc(cFlushes)
	}
	var e invEntry
	for c.inv.Pop(&e) {
		if c.cache != nil {
			c.cache.remove(e.k)
		}
		c.applied = max(c.applied, e.seq)
	}
	c.wall = c.a.cfg.Clock()
	c.applyFills(now)
	if c.cache != nil {
		c.cnt.Set(cEvictions, c.cache.evictions)
		c.cnt.Set(cEntries, uint64(c.cache.live))
	}
}

// applyFills puts the store's answers into the cache, unless an
// invalidation came after the lookup began (then the answer may be stale).
func (c *core) applyFills(now int64) {
	if c.cache == nil {
		return
	}
	a := c.a
	var f fillEntry
	for c.fills.Pop(&f) {
		if f.seq < c.applied {
			c.cnt.Inc(cFillSkipped)
			continue
		}
		switch f.status {
		case answerFound:
			exp := int64(0)
			if a.cfg.CacheTTL > 0 {
				exp = now + int64(a.cfg.CacheTTL)
			}
			c.cache.put(f.k, &f.e, now, exp)
		case answerNotFound:
			c.cache.put(f.k, nil, now, now+int64(a.cfg.NegativeTTL))
		}
	}
}
