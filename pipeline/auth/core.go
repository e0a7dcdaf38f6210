package auth

import (
	"sync/atomic"
	"time"
)

// Worker-side counters: plain fields on the hot path, published with
// atomic stores once per batch (publish) for Metrics to read.
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
	numCounters
)

// core is one worker's share of Auth: its cache, counters, invalidation
// ring and helper. Fields without atomics belong to the worker goroutine.
type core struct {
	a           *Auth
	id          int
	staged      bool
	helperIndex int
	cache       *cache

	cnt [numCounters]uint64
	pub [numCounters]atomic.Uint64

	inv          invRing
	flushSeq     atomic.Uint64 // written by invalidation producers
	appliedFlush uint64
	applied      uint64 // highest invalidation seq this worker applied

	entries atomic.Uint64 // cache.live, published per batch

	wall time.Time // wall clock for nonces, read once per batch

	help *helper

	failures FailureSink // Config.Failures or this worker's WorkerFailures
}

func newCore(a *Auth, id int) *core {
	c := &core{a: a, id: id}
	if a.peek == nil {
		c.cache = newCache(a.cfg.CacheSize)
	}
	return c
}

// startBatch applies pending invalidations, reads the wall clock and
// publishes the counters: once per worker loop, not per message.
func (c *core) startBatch() {
	if f := c.flushSeq.Load(); f > c.appliedFlush {
		if c.cache != nil {
			c.cache.clear()
		}
		c.appliedFlush = f
		c.applied = max(c.applied, f)
		c.cnt[cFlushes]++
	}
	for {
		e, ok := c.inv.pop()
		if !ok {
			break
		}
		if c.cache != nil {
			c.cache.remove(e.k)
		}
		c.applied = max(c.applied, e.seq)
	}
	c.wall = c.a.cfg.Clock()
	if c.cache != nil {
		c.cnt[cEvictions] = c.cache.evictions
		if n := uint64(c.cache.live); c.entries.Load() != n {
			c.entries.Store(n)
		}
	}
	for i, v := range c.cnt {
		if c.pub[i].Load() != v {
			c.pub[i].Store(v)
		}
	}
}
