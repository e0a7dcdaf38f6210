package pipeline

import "sync/atomic"

// Counters is a block of per-core counters: the one counter mechanism of
// the pipeline. Its owner (a worker, or a stage of that worker) counts in
// plain fields; the worker publishes every block it holds with atomic
// stores once per loop iteration; readers on other goroutines (the
// exporter, Stats) load the published values. No counter is shared between
// cores: sums are made when scraped.
//
// A Counters is a small value (two slices) that views part of its worker's
// block: copy it freely within the worker.
type Counters struct {
	v   []uint64
	pub []atomic.Uint64
}

// NewCounters returns a block of n counters of its own (a stage made
// outside a worker: its owner publishes it).
func NewCounters(n int) Counters {
	return Counters{v: make([]uint64, n), pub: make([]atomic.Uint64, n)}
}

// Len is the number of counters.
func (c Counters) Len() int { return len(c.v) }

// Inc adds one to counter i. Owner only.
func (c Counters) Inc(i int) { c.v[i]++ }

// Add adds n to counter i. Owner only.
func (c Counters) Add(i int, n uint64) { c.v[i] += n }

// Set sets counter i (a gauge, or a total kept elsewhere). Owner only.
func (c Counters) Set(i int, n uint64) { c.v[i] = n }

// Get reads counter i as counted. Owner only.
func (c Counters) Get(i int) uint64 { return c.v[i] }

// Load reads counter i as last published. Any goroutine.
func (c Counters) Load(i int) uint64 { return c.pub[i].Load() }

// Publish makes the counts visible to Load. Only changed counters are
// stored, so a quiet iteration costs a compare per counter. Owner only.
func (c Counters) Publish() {
	for i, v := range c.v {
		if c.pub[i].Load() != v {
			c.pub[i].Store(v)
		}
	}
}

// sub is the view of n counters from off.
func (c Counters) sub(off, n int) Counters {
	return Counters{v: c.v[off : off+n : off+n], pub: c.pub[off : off+n : off+n]}
}

// CounterDef declares one counter family of a stage (or of the worker):
// its metric name and help, and either one counter or one per value of
// one label.
type CounterDef struct {
	// Name is the Prometheus name ("sipedge_guard_dropped_total").
	Name string
	Help string
	// Gauge marks a level rather than a running total.
	Gauge bool
	// Label and Values: one counter per value, labelled Label="value";
	// no Values is a single counter.
	Label  string
	Values []string
	// PerWorker exports one sample per worker (labelled worker="i")
	// instead of the sum over workers.
	PerWorker bool
}

// Slots is how many counters the family takes.
func (d *CounterDef) Slots() int { return max(1, len(d.Values)) }

// CounterSlots is how many counters a list of families takes.
func CounterSlots(defs []CounterDef) int {
	n := 0
	for i := range defs {
		n += defs[i].Slots()
	}
	return n
}
