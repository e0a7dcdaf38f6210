package pipeline

import "math/bits"

// Counter layout: one flat slice per worker so that publishing is one loop.
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
	cDropBase     = cParseErrBase + NumParseErrors
	cStageBase    = cDropBase + int(numDropReasons)
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

// Per-stage counters, stageWidth apart.
const (
	sIn        = 0
	sVerdict   = 1 // numVerdicts entries
	sNs        = sVerdict + int(numVerdicts)
	sSamples   = sNs + 1
	stageWidth = sSamples + 1
)

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
	ParseErrors [NumParseErrors]uint64
	// Drops by reason, indexed by DropReason.
	Drops  [numDropReasons]uint64
	Stages []StageStats
}

// Dropped returns the drops counted under r.
func (s *Stats) Dropped(r DropReason) uint64 { return s.Drops[r] }

// publish makes the counters visible to Stats. Only changed counters are
// stored, so an idle or light loop costs a compare per counter.
func (w *Worker) publish() {
	for i, v := range w.cnt {
		if v != w.last[i] {
			w.last[i] = v
			w.pub[i].Store(v)
		}
	}
}

// Stats returns the counters as last published by the worker (at the end
// of every loop iteration). Safe from any goroutine.
func (w *Worker) Stats() Stats {
	g := func(i int) uint64 { return w.pub[i].Load() }
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
	for i := range s.ParseErrors {
		s.ParseErrors[i] = g(cParseErrBase + i)
	}
	for r := range s.Drops {
		s.Drops[r] = g(cDropBase + r)
	}
	s.Stages = make([]StageStats, len(w.stages))
	for i, st := range w.stages {
		b := cStageBase + i*stageWidth
		ss := &s.Stages[i]
		ss.Name = st.Name()
		ss.In = g(b + sIn)
		for v := range ss.Verdicts {
			ss.Verdicts[v] = g(b + sVerdict + v)
		}
		ss.SampledNs, ss.Samples = g(b+sNs), g(b+sSamples)
	}
	return s
}
