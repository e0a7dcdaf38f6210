package pipeline

import (
	"math/bits"

	"sipedge/sipcore"
)

// Counter layout: one flat block per worker (a Counters) so that publishing
// is one loop: the worker's own counters, then the chain's (chain.go).
const (
	cLoops = iota
	cRx
	cTx
	cTxUnsent
	cTxErrors
	cRxErrors
	cParked
	cResumed
	cLateAnswers
	cParkFull
	cParkTimeouts
	cFallback503
	cBusyLoops
	cBusyNs
	cSleeps
	cWakeRx
	cSpins
	cMigrations
	cBatchBase
	cParseErrBase = cBatchBase + NumBatchBuckets
)

var (
	cDropBase  = cParseErrBase + NumParseErrors
	cStageBase = cDropBase + int(numDropReasons)
)

// NumBatchBuckets is the number of receive batch size buckets: bucket i
// counts batches of 2^i to 2^(i+1) - 1 datagrams (bucket 0: exactly 1), the
// last one everything from 256 up.
const NumBatchBuckets = 9

// BatchBucketMax returns the largest batch size bucket i counts (its
// Prometheus "le" bound); the last bucket has no bound and returns -1.
func BatchBucketMax(i int) int {
	if i >= NumBatchBuckets-1 {
		return -1
	}
	return 1<<(i+1) - 1
}

func batchBucket(n int) int {
	b := bits.Len(uint(n)) - 1
	if b >= NumBatchBuckets {
		b = NumBatchBuckets - 1
	}
	return b
}

// NumParseErrors is the size of Stats.ParseErrors: every rule of
// sipcore.ParseRules, and "other" last (an error that is none of them).
var NumParseErrors = len(sipcore.ParseRules()) + 1

// ParseErrorName is the metrics label of Stats.ParseErrors[i]: the sipcore
// rule name, or "other".
func ParseErrorName(i int) string {
	if r := sipcore.ParseRules(); i >= 0 && i < len(r) {
		return r[i].Rule
	}
	return "other"
}

func parseErrIndex(err error) int {
	if i := sipcore.ParseRuleIndex(err); i >= 0 {
		return i
	}
	return NumParseErrors - 1
}

// StageStats are one stage's counters.
type StageStats struct {
	Name string
	// In counts messages the stage processed.
	In uint64
	// Verdicts counts its decisions, indexed by Verdict.
	Verdicts [numVerdicts]uint64
	// SampledNs is the time spent in the stage over Samples sampled
	// messages (Config.SampleEvery); SampledNs/Samples is ns per message.
	SampledNs, Samples uint64
	// OwnDrops counts its drops for its own reasons, indexed as
	// StageDef.Drops.
	OwnDrops []uint64
	// Counters are its own declared counters (StageDef.Counters), slot by
	// slot.
	Counters []uint64
}

// Stats is a snapshot of one worker's counters.
type Stats struct {
	Loops, Rx, Tx uint64
	// TxUnsent counts buffers the port did not send; TxErrors and RxErrors
	// count port errors.
	TxUnsent, TxErrors, RxErrors uint64
	// Park/resume: parked, resumed on an answer, answers that came after
	// the fallback (discarded), park attempts with the pool full, deadlines
	// missed, and 503s sent as fallback.
	Parked, Resumed, LateAnswers, ParkFull, ParkTimeouts, Fallback503 uint64
	// BusyLoops counts loop iterations that received at least one
	// datagram and BusyNs the wall time they took (receive to publish), so
	// BusyNs over elapsed time is the worker's busy ratio.
	BusyLoops, BusyNs uint64
	// Sleeps counts the times the worker slept in the kernel (each ends in
	// a wake-up) and WakeRx the datagrams the first receive after a
	// wake-up found: WakeRx/Sleeps is datagrams per wake-up. Spins counts
	// empty polls the worker made instead of sleeping (busy and adaptive
	// modes).
	Sleeps, WakeRx, Spins uint64
	// Migrations counts the times the Go runtime moved the worker to
	// another OS thread (it is re-pinned there).
	Migrations uint64
	// Batches counts the busy loops by receive batch size (see
	// BatchBucketMax).
	Batches [NumBatchBuckets]uint64
	// ParseErrors counts messages Ctx.Parse rejected, by rule (see
	// ParseErrorName).
	ParseErrors []uint64
	// Drops by reason, indexed by DropReason; DropPolicy is the sum of
	// the stages' own drops.
	Drops  [numDropReasons]uint64
	Stages []StageStats
}

// Dropped returns the drops counted under r.
func (s *Stats) Dropped(r DropReason) uint64 { return s.Drops[r] }

// Stats returns the counters as last published by the worker (at the end
// of every loop iteration). Safe from any goroutine.
func (w *Worker) Stats() Stats {
	g := w.cnt.Load
	s := Stats{
		Loops: g(cLoops), Rx: g(cRx), Tx: g(cTx), TxUnsent: g(cTxUnsent),
		TxErrors: g(cTxErrors), RxErrors: g(cRxErrors), Parked: g(cParked),
		Resumed: g(cResumed), LateAnswers: g(cLateAnswers), ParkFull: g(cParkFull),
		ParkTimeouts: g(cParkTimeouts), Fallback503: g(cFallback503),
		BusyLoops: g(cBusyLoops), BusyNs: g(cBusyNs),
		Sleeps: g(cSleeps), WakeRx: g(cWakeRx), Spins: g(cSpins), Migrations: g(cMigrations),
	}
	for i := range s.Batches {
		s.Batches[i] = g(cBatchBase + i)
	}
	s.ParseErrors = make([]uint64, NumParseErrors)
	for i := range s.ParseErrors {
		s.ParseErrors[i] = g(cParseErrBase + i)
	}
	for r := range s.Drops {
		s.Drops[r] = g(cDropBase + r)
	}
	ch := w.chain
	s.Stages = make([]StageStats, len(ch.stages))
	for i, d := range ch.defs {
		c := ch.cnt.Load
		b := ch.base[i]
		ss := &s.Stages[i]
		ss.Name = d.Name
		ss.In = c(b + sIn)
		for v := range ss.Verdicts {
			ss.Verdicts[v] = c(b + sVerdict + v)
		}
		ss.SampledNs, ss.Samples = c(b+sNs), c(b+sSamples)
		ss.OwnDrops = make([]uint64, len(d.Drops))
		for k := range ss.OwnDrops {
			ss.OwnDrops[k] = c(b + sOwnDrops + k)
			s.Drops[DropPolicy] += ss.OwnDrops[k]
		}
		ss.Counters = make([]uint64, CounterSlots(d.Counters))
		for k := range ss.Counters {
			ss.Counters[k] = c(b + sOwnDrops + len(d.Drops) + k)
		}
	}
	return s
}

// StageDefs are the declarations of the worker's stages, in chain order.
func (w *Worker) StageDefs() []*StageDef { return w.chain.defs }
