package pipeline

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strconv"
	"sync/atomic"
	"time"

	"sipedge/pipeline/port"
	"sipedge/sipcore"
)

// Config configures one worker. Zero values take the documented defaults.
type Config struct {
	// ID names the worker in counters and errors (usually its queue).
	ID int
	// Core is the CPU to pin the worker's thread to; -1 does not pin.
	Core int
	// Batch is the largest number of datagrams received at once (64).
	Batch int
	// Key derives the To-tags of the responses stages build (Ctx.Respond).
	Key *sipcore.Key
	// ParkSlots and ParkSlotSize size the per-core park pool (256 x 4096).
	ParkSlots, ParkSlotSize int
	// SampleEvery turns on stage timing for 1 message in SampleEvery
	// (rounded up to a power of two); 0 leaves it off.
	SampleEvery int
	// Timers bounds the live timers of the worker's wheel (ParkSlots + 64).
	Timers int
	// Now is the clock (monotonic ns); tests inject theirs. Defaults to
	// the process's monotonic clock.
	Now func() int64
	// Wait is how Run waits when the port has nothing (WaitAdaptive).
	Wait WaitMode
	// Spin is the adaptive mode's spin budget: the worker keeps polling
	// the port instead of sleeping while batches come less than Spin apart
	// and the last one is less than Spin old; 0 never spins ([io] spin
	// documents the daemon's default).
	Spin time.Duration
	// BatchDelay is the longest Run holds the first datagram of a batch
	// to gather more before running the stages (0: never).
	BatchDelay time.Duration
	// MaxSleep bounds one sleep when no timer is due sooner (1s).
	MaxSleep time.Duration
	// Log gets the report of a stage that panicked (slog.Default()).
	Log *slog.Logger
}

var epoch = time.Now()

// Nanotime is the default worker clock: monotonic nanoseconds since start.
func Nanotime() int64 { return int64(time.Since(epoch)) }

// Worker runs one port's datagrams through the stages, to completion, on
// one goroutine. Nothing in it is shared with other workers; counters are
// published for scraping by the worker itself once per loop iteration.
type Worker struct {
	cfg    Config
	port   port.Port
	chain  *chain
	park   *parker
	lastRx int // datagrams the previous Poll received
	key    *sipcore.Key
	now    func() int64

	rx  []port.Packet
	tx  []port.Packet
	ntx int
	one [1]port.Packet
	// spare is a transmit buffer a stage took but did not use; the next
	// message gets it instead of a new Alloc.
	spare    port.Packet
	hasSpare bool
	// large is the port's large transmit buffers, nil when it has none
	// (largetx.go).
	large port.LargeAllocator

	ctx Ctx
	msg sipcore.Msg

	// cnt is every per-core counter of the worker: its own, then the
	// chain's (counters.go). The worker publishes it once per iteration.
	cnt Counters

	// Waiting (wait.go): the bell other goroutines ring to wake the
	// worker, the adaptive mode's view of the traffic (ns), and the id of
	// the OS thread Run locked the worker to.
	bell       *bell
	spinNs     int64
	gap        int64
	lastRxAt   int64
	woke       bool
	tid        atomic.Int32
	batchDelay int64
	lastYield  int64

	panics panicLog

	stop    atomic.Bool
	running atomic.Bool
	done    chan struct{}
}

// NewWorker builds a worker on p running the stages makers make for it, in
// the order given (the chain file's: pipeline/chain).
func NewWorker(p port.Port, cfg Config, makers []StageMaker) (*Worker, error) {
	if p == nil {
		return nil, errors.New("pipeline: NewWorker needs a port")
	}
	if len(makers) == 0 {
		return nil, errors.New("pipeline: NewWorker needs at least one stage")
	}
	if cfg.Key == nil {
		return nil, errors.New("pipeline: Config.Key is required (derive it with sipcore.NewKey from [node] secret)")
	}
	if cfg.Batch <= 0 {
		cfg.Batch = 64
	}
	if cfg.ParkSlots <= 0 {
		cfg.ParkSlots = 256
	}
	if cfg.ParkSlotSize <= 0 {
		cfg.ParkSlotSize = 4096
	}
	if cfg.ParkSlots > 1<<20 {
		return nil, fmt.Errorf("pipeline: ParkSlots %d is too large: use at most %d", cfg.ParkSlots, 1<<20)
	}
	if cfg.Timers <= 0 {
		cfg.Timers = cfg.ParkSlots + 64
	}
	if cfg.Now == nil {
		cfg.Now = Nanotime
	}
	if cfg.Wait > WaitBlock {
		return nil, fmt.Errorf("pipeline: wait mode %d unknown", cfg.Wait)
	}
	if cfg.MaxSleep <= 0 {
		cfg.MaxSleep = time.Second
	}
	if cfg.Spin < 0 || cfg.BatchDelay < 0 {
		return nil, fmt.Errorf("pipeline: spin %v and batch delay %v must not be negative", cfg.Spin, cfg.BatchDelay)
	}
	defs := make([]*StageDef, len(makers))
	for i, m := range makers {
		if defs[i] = m.Def(); defs[i] == nil {
			return nil, fmt.Errorf("pipeline: stage %d has no StageDef", i)
		}
	}
	b, err := newBell()
	if err != nil {
		return nil, err
	}
	w := &Worker{
		cfg:    cfg,
		port:   p,
		key:    cfg.Key,
		now:    cfg.Now,
		rx:     make([]port.Packet, cfg.Batch),
		tx:     make([]port.Packet, cfg.Batch),
		done:   make(chan struct{}),
		bell:   b,
		spinNs: int64(cfg.Spin),
		// Start as sparse traffic: the first quiet moment sleeps.
		gap:        int64(time.Hour),
		batchDelay: int64(cfg.BatchDelay),
	}
	w.ctx.w = w
	w.ctx.Msg = &w.msg
	w.large, _ = p.(port.LargeAllocator)
	w.cnt = NewCounters(cStageBase + chainSlots(defs))
	w.park = newParker(cfg.ParkSlots, cfg.ParkSlotSize, cfg.Timers, w.now(), b, w.fireTimer)
	if w.chain, err = newChain(makers, w.cnt.sub(cStageBase, chainSlots(defs)), cfg.ID, w.park); err != nil {
		b.close()
		return nil, err
	}
	if cfg.SampleEvery > 0 {
		n := uint64(1)
		for n < uint64(cfg.SampleEvery) {
			n <<= 1
		}
		w.chain.sampleMask = n - 1
	}
	return w, nil
}

// Port returns the worker's port.
func (w *Worker) Port() port.Port { return w.port }

// Run pins the OS thread it runs on to the configured core and loops until the port is exhausted (io.EOF) or
// closed (port.ErrClosed), ctx is done, or Stop is called; these return
// nil. Any other port error is returned. Between iterations that received
// nothing it spins or sleeps in the port as Config.Wait says (wait.go). On
// the way out it transmits what was built and applies the fallback to
// every parked message.
func (w *Worker) Run(ctx context.Context) (err error) {
	if !w.running.CompareAndSwap(false, true) {
		return errors.New("pipeline: worker " + strconv.Itoa(w.cfg.ID) + " is already running")
	}
	defer close(w.done)
	if err := w.pinThread(); err != nil {
		return err
	}
	defer w.unpinThread()
	stopCtx := context.AfterFunc(ctx, func() {
		w.stop.Store(true)
		w.bell.ring()
	})
	defer stopCtx()
	defer w.shutdown()
	for !w.stop.Load() {
		n, err := w.Poll()
		// A short batch means the port was drained a moment ago: asking it
		// again at once would be one more empty receive (a system call on
		// the socket port) before the wait; idle goes straight to it (or
		// spins, if traffic is dense).
		if err == nil && (n == 0 || n < len(w.rx) && w.cfg.Wait != WaitBusy) {
			err = w.idle()
		}
		if Nanotime()-w.lastYield >= yieldEvery {
			if perr := w.yield(); perr != nil && err == nil {
				err = perr
			}
		}
		if err != nil {
			if errors.Is(err, io.EOF) || errors.Is(err, port.ErrClosed) {
				return nil
			}
			return err
		}
	}
	return nil
}

// Stop asks Run to return after the current iteration (waking it if it
// sleeps) and waits for it. It is safe from any goroutine, and before or
// without Run.
func (w *Worker) Stop() {
	w.stop.Store(true)
	w.bell.ring()
	if w.running.Load() {
		<-w.done
	}
}

// Close releases the worker's own descriptor (its bell) once Run has
// returned, or if it never ran; it does nothing while Run still runs (a
// descriptor the worker sleeps on must not be closed under it).
func (w *Worker) Close() {
	if w.running.Load() {
		select {
		case <-w.done:
		default:
			return
		}
	}
	w.bell.close()
}

// Poll runs one loop iteration: resume answered messages, receive a batch
// and run it through the stages, transmit, release, run due timers, publish
// counters. It returns how many datagrams it received. Run calls it in a
// loop; tests and benchmarks call it directly.
func (w *Worker) Poll() (int, error) {
	t0 := Nanotime() // busy time is wall time even when tests inject Now
	now := w.now()
	w.ctx.Now = now
	cnt := w.cnt.v
	cnt[cLoops]++
	w.chain.startBatch(now, w.lastRx)
	w.drainAnswers()

	n, rerr := w.port.Receive(w.rx)
	if n > len(w.rx) {
		n = len(w.rx)
	}
	if n > 0 {
		if w.batchDelay > 0 && n < len(w.rx) && rerr == nil {
			n, rerr = w.gather(n)
		}
		w.noteRx(n)
	}
	w.lastRx = n
	cnt[cRx] += uint64(n)
	rxFailed := rerr != nil && !errors.Is(rerr, io.EOF) && !errors.Is(rerr, port.ErrClosed)
	if rxFailed {
		cnt[cRxErrors]++ // before Publish below, so this Poll's stats show it
	}
	for i := 0; i < n; i++ {
		p := &w.rx[i]
		w.ctx.reset(p.Payload, p.Src, p.Dst, p.HW)
		w.ctx.Truncated = p.Truncated
		v, at := w.run(-1)
		p.Passed = v == Forward
		w.finish(v, at)
	}
	terr := w.flush()
	if n > 0 {
		w.port.Release(w.rx[:n])
	}
	w.park.wheel.advance(now)
	if terr == nil {
		terr = w.flush() // what the timers built
	}
	if n > 0 {
		cnt[cBusyLoops]++
		cnt[cBusyNs] += uint64(Nanotime() - t0)
		cnt[cBatchBase+batchBucket(n)]++
	}
	w.cnt.Publish()
	if rerr != nil {
		if !rxFailed {
			return n, rerr
		}
		if errors.Is(rerr, port.ErrTransient) {
			return n, nil // counted; one socket error must not stop a core
		}
		return n, fmt.Errorf("pipeline: worker %d: receive on %s: %w", w.cfg.ID, w.port.Name(), rerr)
	}
	if terr != nil {
		if errors.Is(terr, port.ErrClosed) {
			return n, terr
		}
		return n, fmt.Errorf("pipeline: worker %d: transmit on %s: %w", w.cfg.ID, w.port.Name(), terr)
	}
	return n, nil
}

// gather keeps receiving into the rest of the batch for at most BatchDelay
// after the first datagram, so that the stages and the transmit run once
// for several datagrams.
func (w *Worker) gather(n int) (int, error) {
	end := Nanotime() + w.batchDelay
	for n < len(w.rx) && Nanotime() < end {
		k, err := w.port.Receive(w.rx[n:])
		n += min(k, len(w.rx)-n)
		if err != nil {
			return n, err
		}
	}
	return n, nil
}

// finish acts on the verdict v that stage at gave the message in w.ctx.
func (w *Worker) finish(v Verdict, at int) {
	c := &w.ctx
	switch v {
	case Forward, Respond:
		if !c.outReady {
			w.drop(DropNoVerdict)
			break
		}
		w.commit()
	case Park:
		w.parkMessage(at)
	case Drop:
		if c.own == 0 { // a stage's own reason was counted by the chain
			w.drop(c.reason)
		}
	default:
		w.drop(DropNoVerdict)
	}
	w.releaseOut()
}

func (w *Worker) drop(r DropReason) {
	if r >= numDropReasons {
		r = DropNoVerdict
	}
	w.cnt.v[cDropBase+int(r)]++
}

// takeTx gets a transmit buffer: the spare if one is held, else from the port.
func (w *Worker) takeTx(p *port.Packet) bool {
	if w.hasSpare {
		*p, w.hasSpare = w.spare, false
		p.Payload = p.Payload[:0]
		return true
	}
	if w.port.Alloc(w.one[:]) != 1 {
		return false
	}
	*p = w.one[0]
	return true
}

// commit queues the built message, transmitting first when the batch is full.
func (w *Worker) commit() {
	c := &w.ctx
	if w.ntx == len(w.tx) {
		if err := w.flush(); err != nil {
			w.cnt.v[cTxErrors]++
		}
	}
	w.tx[w.ntx] = c.out
	w.ntx++
	c.hasOut, c.outReady = false, false
}

func (w *Worker) flush() error {
	if w.ntx == 0 {
		return nil
	}
	n := w.ntx
	w.ntx = 0
	sent, err := w.port.Transmit(w.tx[:n])
	w.cnt.v[cTx] += uint64(sent)
	w.cnt.v[cTxUnsent] += uint64(n - sent)
	return err
}

func (w *Worker) shutdown() {
	if err := w.flush(); err != nil {
		w.cnt.v[cTxErrors]++
	}
	w.park.each(func(slot uint32) {
		w.expire(slot, DropStopping)
	})
	if err := w.flush(); err != nil {
		w.cnt.v[cTxErrors]++
	}
	w.cnt.Publish()
}

func (w *Worker) fireTimer(kind uint8, arg uint64) {
	switch kind {
	case timerPark:
		if slot, ok := w.park.timedOut(arg); ok {
			w.cnt.v[cParkTimeouts]++
			w.expire(slot, DropParkTimeout)
		}
	}
}

// Parked reports how many messages are parked (for tests and gauges; call
// it only from the worker's goroutine or after Run returned).
func (w *Worker) Parked() int { return w.park.parked() }

// parkMessage sets the message in w.ctx aside for the helper stage at
// asked for.
func (w *Worker) parkMessage(at int) {
	c := &w.ctx
	h := w.park.helper(c.parkRef)
	if h < 0 {
		w.drop(DropNoVerdict)
		return
	}
	switch w.park.park(h, at, c.Buf, c.Src, c.Dst, c.HW, c.Now+int64(c.parkWait), c.parkKey) {
	case parkTooLarge:
		w.fallback(h, at, DropParkTooLarge)
	case parkFull:
		w.cnt.v[cParkFull]++
		w.fallback(h, at, DropParkFull)
	default:
		w.cnt.v[cParked]++
	}
}

// fallback gives the message in w.ctx, parked by stage at, helper h's
// fallback.
func (w *Worker) fallback(h, at int, r DropReason) {
	c := &w.ctx
	if !w.park.fbs[h].Drop {
		if !c.tried {
			c.Parse()
		}
		if c.Parsed && c.Respond(503, "Service Unavailable", w.park.retry[h]) == Respond {
			w.cnt.v[cFallback503]++
			w.chain.refused(c, at)
			w.commit()
			return
		}
	}
	w.drop(r)
}

// loadSlot puts parked message slot into w.ctx, parsed.
func (w *Worker) loadSlot(slot uint32) *parkSlot {
	s := &w.park.slots[slot]
	c := &w.ctx
	c.reset(w.park.buf(slot)[:s.n], s.src, s.dst, s.hw)
	c.Parse()
	return s
}

// expire applies the fallback to parked message slot and frees it.
func (w *Worker) expire(slot uint32, r DropReason) {
	s := w.loadSlot(slot)
	w.park.wheel.cancel(s.timer)
	w.fallback(int(s.helper), int(s.stage), r)
	w.releaseOut()
	w.park.release(slot)
}

func (w *Worker) releaseOut() {
	c := &w.ctx
	if c.hasOut { // taken but not sent: keep it for the next message
		w.spare, w.hasSpare = c.out, true
		c.hasOut = false
	}
}

// drainAnswers resumes the messages whose helpers answered, at most one
// batch per helper per loop so that answers cannot starve receive.
func (w *Worker) drainAnswers() {
	for _, r := range w.park.rings {
		for k := 0; k < w.cfg.Batch; k++ {
			e := r.q.Peek()
			if e == nil {
				break
			}
			w.resume(e)
			r.q.Advance()
		}
	}
}

// resume gives an answered message back to the stage that parked it.
func (w *Worker) resume(e *ringEntry) {
	if _, ok := w.park.answered(e); !ok {
		w.cnt.v[cLateAnswers]++
		return
	}
	s := w.loadSlot(e.slot)
	w.ctx.Answer = &e.ans
	w.cnt.v[cResumed]++
	v, at := w.run(int(s.stage))
	w.finish(v, at)
	w.park.release(e.slot)
}
