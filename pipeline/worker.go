package pipeline

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strconv"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"

	"sipedge/pipeline/port"
	"sipedge/sipcore"
)

// Fallback is what happens to a message that cannot be parked, or whose
// helper did not answer in time.
type Fallback uint8

const (
	// FallbackReject answers 503 Service Unavailable with Retry-After, so the
	// client retries (elsewhere or later) instead of timing out.
	FallbackReject Fallback = iota
	// FallbackDrop drops silently: the client's retransmission timer retries.
	FallbackDrop
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
	// Helpers are the async helpers stages park on, by index.
	Helpers []Helper
	// Fallback applies when the pool is full or an answer is late.
	Fallback Fallback
	// RetryAfter is the Retry-After (seconds) of fallback 503s (5).
	RetryAfter int
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
}

var epoch = time.Now()

// Nanotime is the default worker clock: monotonic nanoseconds since start.
func Nanotime() int64 { return int64(time.Since(epoch)) }

// BatchStarter is implemented by stages that refresh per-batch state
// (a configuration snapshot) once per loop iteration rather than per message.
// lastRx is how many datagrams the previous iteration received: a worker
// whose batches keep coming back full is falling behind (overload control).
type BatchStarter interface {
	StartBatch(now int64, lastRx int)
}

// Worker runs one port's datagrams through the stages, to completion, on
// one goroutine. Nothing in it is shared with other workers; counters are
// published for scraping by the worker itself once per loop iteration.
type Worker struct {
	cfg    Config
	port   port.Port
	stages []Stage
	starts []BatchStarter
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

	ctx   Ctx
	msg   sipcore.Msg
	wheel *timerWheel

	park       parkPool
	rings      []*answerRing
	retryExtra []byte

	sampleMask uint64
	seq        uint64

	// Counters: plain fields on the hot path, published with atomic stores
	// by the worker (publish) and read by Stats from any goroutine.
	cnt  []uint64
	last []uint64
	pub  []atomic.Uint64

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
	allCPUs    unix.CPUSet // the process's CPUs, for a thread the worker leaves

	stop    atomic.Bool
	running atomic.Bool
	done    chan struct{}
}

// NewWorker builds a worker on p running stages in the order given. The
// stages must be fresh instances for this worker (see NewProxyStages).
func NewWorker(p port.Port, cfg Config, stages []Stage) (*Worker, error) {
	if p == nil {
		return nil, errors.New("pipeline: NewWorker needs a port")
	}
	if len(stages) == 0 {
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
	if len(cfg.Helpers) > 255 {
		return nil, fmt.Errorf("pipeline: %d helpers configured, at most 255", len(cfg.Helpers))
	}
	if cfg.RetryAfter <= 0 {
		cfg.RetryAfter = 5
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
	b, err := newBell()
	if err != nil {
		return nil, err
	}
	w := &Worker{
		cfg:    cfg,
		port:   p,
		stages: stages,
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
	for _, st := range stages {
		if b, ok := st.(BatchStarter); ok {
			w.starts = append(w.starts, b)
		}
	}
	w.ctx.w = w
	w.ctx.Msg = &w.msg
	w.wheel = newTimerWheel(cfg.Timers, w.now(), w.fireTimer)
	w.park.init(cfg.ParkSlots, cfg.ParkSlotSize)
	w.rings = make([]*answerRing, len(cfg.Helpers))
	for i := range w.rings {
		w.rings[i] = newAnswerRing(2 * cfg.ParkSlots)
		w.rings[i].bell = b
	}
	w.retryExtra = []byte("Retry-After: " + strconv.Itoa(cfg.RetryAfter) + "\r\n")
	if cfg.SampleEvery > 0 {
		n := uint64(1)
		for n < uint64(cfg.SampleEvery) {
			n <<= 1
		}
		w.sampleMask = n - 1
	}
	nc := cStageBase + len(stages)*stageWidth
	w.cnt = make([]uint64, nc)
	w.last = make([]uint64, nc)
	w.pub = make([]atomic.Uint64, nc)
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
	defer w.tid.Store(0)
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
	w.cnt[cLoops]++
	for _, b := range w.starts {
		b.StartBatch(now, w.lastRx)
	}
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
	w.cnt[cRx] += uint64(n)
	for i := 0; i < n; i++ {
		p := &w.rx[i]
		w.ctx.reset(p.Payload, p.Src, p.Dst, p.HW)
		w.runStages(0)
	}
	terr := w.flush()
	if n > 0 {
		w.port.Release(w.rx[:n])
	}
	w.wheel.advance(now)
	if terr == nil {
		terr = w.flush() // what the timers built
	}
	if n > 0 {
		w.cnt[cBusyLoops]++
		w.cnt[cBusyNs] += uint64(Nanotime() - t0)
		w.cnt[cBatchBase+batchBucket(n)]++
	}
	w.publish()
	if rerr != nil {
		if errors.Is(rerr, io.EOF) || errors.Is(rerr, port.ErrClosed) {
			return n, rerr
		}
		w.cnt[cRxErrors]++
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

// runStages runs the message in w.ctx from stage index from to a verdict.
func (w *Worker) runStages(from int) {
	c := &w.ctx
	w.seq++
	sample := w.sampleMask != 0 && w.seq&w.sampleMask == 0
	v := Continue
	i := from
	for ; i < len(w.stages); i++ {
		base := cStageBase + i*stageWidth
		w.cnt[base+sIn]++
		if sample {
			t0 := Nanotime()
			v = w.stages[i].Process(c)
			w.cnt[base+sNs] += uint64(Nanotime() - t0)
			w.cnt[base+sSamples]++
		} else {
			v = w.stages[i].Process(c)
		}
		if v >= numVerdicts {
			v = c.Drop(DropNoVerdict)
		}
		w.cnt[base+sVerdict+int(v)]++
		if v != Continue {
			break
		}
	}
	switch v {
	case Forward, Respond:
		if !c.outReady {
			w.drop(DropNoVerdict)
			break
		}
		w.commit()
	case Park:
		w.parkMessage(i)
	case Drop:
		w.drop(c.reason)
	default:
		w.drop(DropNoVerdict)
	}
	if c.hasOut { // taken but not sent: keep it for the next message
		w.spare, w.hasSpare = c.out, true
		c.hasOut = false
	}
}

func (w *Worker) drop(r DropReason) {
	if r >= numDropReasons {
		r = DropNoVerdict
	}
	w.cnt[cDropBase+int(r)]++
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
			w.cnt[cTxErrors]++
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
	w.cnt[cTx] += uint64(sent)
	w.cnt[cTxUnsent] += uint64(n - sent)
	return err
}

func (w *Worker) shutdown() {
	if err := w.flush(); err != nil {
		w.cnt[cTxErrors]++
	}
	w.park.each(func(slot uint32) {
		w.expire(slot, DropStopping)
	})
	if err := w.flush(); err != nil {
		w.cnt[cTxErrors]++
	}
	w.publish()
}

// Timer kinds.
const (
	timerPark uint8 = iota + 1
)

func (w *Worker) fireTimer(kind uint8, arg uint64) {
	switch kind {
	case timerPark:
		slot, gen := uint32(arg), uint32(arg>>32)
		s := &w.park.slots[slot]
		if !s.inUse || s.gen != gen {
			return
		}
		s.timer = noTimer
		w.cnt[cParkTimeouts]++
		w.expire(slot, DropParkTimeout)
	}
}
