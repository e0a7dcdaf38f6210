package auth

import "sipedge/pipeline"

// Metrics is a snapshot of the counters of every worker, summed.
type Metrics struct {
	// Challenges counts 401/407 sent (stale ones included).
	Challenges uint64
	// Successes counts requests that authenticated.
	Successes uint64
	// Failures counts failed authentications: 403, malformed (400) or
	// forged-nonce credentials; each was reported to the FailureSink.
	Failures uint64
	// Stale counts right answers to expired nonces (challenged again with
	// stale=true).
	Stale uint64
	// Replays counts right answers whose nonce-count was used before;
	// InvalidNonces nonces that are forged, foreign or bound to another
	// source or call; Rechallenged answers without qop=auth or with an
	// algorithm not configured. All three are challenged again and none
	// is a failure. FromMismatch counts 403s for a From user that is not
	// the authenticated one.
	Replays, InvalidNonces, Rechallenged, FromMismatch uint64
	// SourceParkLimit counts lookups refused because their source had
	// MaxParkedPerSource under way; Merged lookups that joined one of the
	// same user already under way; FillsLost store answers the worker's
	// fill ring could not take.
	SourceParkLimit, Merged, FillsLost uint64
	// CacheHits, NegativeHits and CacheMisses count cache lookups: found,
	// found as known-absent, not found (then parked).
	CacheHits, NegativeHits, CacheMisses uint64
	// CacheEvictions counts live entries evicted to make room.
	CacheEvictions uint64
	// CacheEntries is the current number of cached entries (all workers);
	// CacheCapacity the bound.
	CacheEntries, CacheCapacity uint64
	// Parked counts messages parked for a lookup.
	Parked uint64
	// Trusted counts requests from trusted sources (not authenticated).
	Trusted uint64
	// BadRequests counts 400s for malformed credentials or a wrong uri.
	BadRequests uint64
	// StoreErrorAnswers counts parked messages answered with the
	// store-error fallback (503 or drop).
	StoreErrorAnswers uint64
	// FillSkipped counts answers not cached because an invalidation came
	// while they were fetched.
	FillSkipped uint64
	// Flushes counts whole-cache flushes applied by workers.
	Flushes uint64
	// Lookups, NotFound and StoreErrors count store lookups and their
	// outcomes (helpers).
	Lookups, NotFound, StoreErrors uint64
	// LateAnswers counts lookups answered after the deadline (the message
	// had already had the fallback).
	LateAnswers uint64
	// QueueFull counts lookups refused because a helper's queue was full;
	// RingFull answers the worker's ring could not take.
	QueueFull, RingFull uint64
	// Invalidations counts changes pushed by the store (per user), and
	// InvalidateAlls whole-cache invalidations (reload, reconnection).
	Invalidations, InvalidateAlls uint64
	// Latency is the store lookups' latency, every helper's.
	Latency pipeline.LatencySnapshot
}

// Metrics returns the counters as last published by the workers (once per
// batch) and the helpers. Safe from any goroutine.
func (a *Auth) Metrics() Metrics {
	var m Metrics
	for _, c := range a.cores {
		g := func(i int) uint64 {
			if c.cnt.Len() == 0 { // no stage made for this worker yet
				return 0
			}
			return c.cnt.Load(i)
		}
		m.Challenges += g(cChallenges)
		m.Successes += g(cSuccesses)
		m.Failures += g(cFailures)
		m.Stale += g(cStale)
		m.Replays += g(cReplays)
		m.InvalidNonces += g(cInvalidNonces)
		m.Rechallenged += g(cRechallenged)
		m.FromMismatch += g(cFromMismatch)
		m.SourceParkLimit += g(cSourceParkLimit)
		m.CacheHits += g(cCacheHits)
		m.NegativeHits += g(cNegativeHits)
		m.CacheMisses += g(cCacheMisses)
		m.CacheEvictions += g(cEvictions)
		m.Parked += g(cParked)
		m.Trusted += g(cTrusted)
		m.BadRequests += g(cBadRequests)
		m.StoreErrorAnswers += g(cStoreErrors)
		m.FillSkipped += g(cFillSkipped)
		m.Flushes += g(cFlushes)
		if c.cache != nil {
			m.CacheCapacity += uint64(c.cache.capacity())
			m.CacheEntries += g(cEntries)
		}
		if h := c.help; h != nil {
			m.Lookups += h.lookups.Load()
			m.NotFound += h.notFound.Load()
			m.StoreErrors += h.errs.Load()
			m.LateAnswers += h.late.Load()
			m.QueueFull += h.queueFull.Load()
			m.Merged += h.merged.Load()
			m.FillsLost += h.fillsLost.Load()
			m.RingFull += h.ringFull.Load()
			m.Latency.Add(h.latency.Snapshot())
		}
	}
	m.Invalidations = a.invalidations.Load()
	m.InvalidateAlls = a.flushes.Load()
	return m
}
