package pipeline

import (
	"sync/atomic"
	"time"
)

// LatencyBounds are the upper bounds of every helper latency histogram (a
// credential lookup, a binding write, a relay exchange), 100 us to 1 s:
// one set, so that an operator compares the stores and relays bucket by
// bucket.
var LatencyBounds = [...]time.Duration{
	100 * time.Microsecond, 250 * time.Microsecond, 500 * time.Microsecond,
	time.Millisecond, 2500 * time.Microsecond, 5 * time.Millisecond,
	10 * time.Millisecond, 25 * time.Millisecond, 50 * time.Millisecond,
	100 * time.Millisecond, 250 * time.Millisecond, time.Second,
}

// Latency is a histogram of the latencies helper goroutines observe of an
// external service. Helpers are off the hot path, so it counts in atomics
// and any number of helpers may share one.
type Latency struct {
	buckets [len(LatencyBounds) + 1]atomic.Uint64
	sumNs   atomic.Uint64
}

// Observe counts one latency d.
func (h *Latency) Observe(d time.Duration) {
	i := 0
	for i < len(LatencyBounds) && d > LatencyBounds[i] {
		i++
	}
	h.buckets[i].Add(1)
	h.sumNs.Add(uint64(d))
}

// Snapshot reads the histogram; any goroutine.
func (h *Latency) Snapshot() LatencySnapshot {
	var s LatencySnapshot
	for i := range h.buckets {
		s.Counts[i] = h.buckets[i].Load()
	}
	s.Sum = time.Duration(h.sumNs.Load())
	return s
}

// LatencySnapshot is a Latency read at one moment; snapshots of several
// histograms add up (Add).
type LatencySnapshot struct {
	// Counts[i] are the observations above LatencyBounds[i-1] and at or
	// under LatencyBounds[i]; the last one, those over every bound.
	Counts [len(LatencyBounds) + 1]uint64
	// Sum is the total of the observations.
	Sum time.Duration
}

// Add adds o into s.
func (s *LatencySnapshot) Add(o LatencySnapshot) {
	for i, c := range o.Counts {
		s.Counts[i] += c
	}
	s.Sum += o.Sum
}

// Count is the number of observations.
func (s LatencySnapshot) Count() uint64 {
	var n uint64
	for _, c := range s.Counts {
		n += c
	}
	return n
}
