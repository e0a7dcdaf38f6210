package pipeline

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"runtime"
	"strconv"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"
)

// WaitMode is how a worker waits when its port has nothing to receive.
type WaitMode uint8

const (
	// WaitAdaptive spins on the port while traffic is dense (the gap
	// between batches is shorter than Config.Spin) and sleeps in the kernel
	// when it is not. The default.
	WaitAdaptive WaitMode = iota
	// WaitBusy never sleeps: the core is dedicated to the worker (DPDK
	// style), for the lowest latency at the cost of a full core, always.
	WaitBusy
	// WaitBlock always sleeps in the kernel when there is nothing to do:
	// the cheapest on a shared box, one kernel wake-up per quiet gap.
	WaitBlock
)

// ParseWaitMode reads "adaptive", "busy" or "block".
func ParseWaitMode(s string) (WaitMode, error) {
	switch s {
	case "adaptive", "":
		return WaitAdaptive, nil
	case "busy":
		return WaitBusy, nil
	case "block":
		return WaitBlock, nil
	}
	return 0, fmt.Errorf("pipeline: wait mode %q: want \"adaptive\", \"busy\" or \"block\"", s)
}

func (m WaitMode) String() string {
	switch m {
	case WaitAdaptive:
		return "adaptive"
	case WaitBusy:
		return "busy"
	case WaitBlock:
		return "block"
	}
	return "wait(" + strconv.Itoa(int(m)) + ")"
}

// bell wakes a sleeping worker from other goroutines: helpers answering a
// parked message, Stop, Wake. It is an eventfd in the port's poll set,
// written only when the worker said it is going to sleep (armed), so under
// load ringing costs an atomic load and nothing else.
type bell struct {
	fd    int
	armed atomic.Bool
}

func newBell() (*bell, error) {
	fd, err := unix.Eventfd(0, unix.EFD_NONBLOCK|unix.EFD_CLOEXEC)
	if err != nil {
		return nil, fmt.Errorf("pipeline: worker eventfd: %w (raise the open files limit)", err)
	}
	return &bell{fd: fd}, nil
}

// ring wakes the worker if it is asleep or about to sleep.
func (b *bell) ring() {
	if b == nil || !b.armed.Load() || !b.armed.CompareAndSwap(true, false) {
		return
	}
	one := [8]byte{1}
	unix.Write(b.fd, one[:])
}

// disarm ends a sleep; if someone rang meanwhile, the eventfd is reset.
func (b *bell) disarm() {
	if b.armed.CompareAndSwap(true, false) {
		return
	}
	var v [8]byte
	unix.Read(b.fd, v[:])
}

func (b *bell) close() {
	if b != nil && b.fd >= 0 {
		unix.Close(b.fd)
		b.fd = -1
	}
}

// Wake makes a sleeping worker run one loop iteration now: its stages'
// StartBatch hooks see a configuration or ban change at once rather than
// at the next datagram or the end of the poll interval. Safe from any
// goroutine.
func (w *Worker) Wake() { w.bell.ring() }

// While traffic is recent, a sleep is kept under the Go scheduler's 10 ms
// retake threshold. A thread in a syscall for longer than that has its P
// taken away by sysmon; once every P is idle sysmon sleeps deeply, and the
// worker's next wake-up must wake sysmon, which then polls every 20 us for a
// millisecond before backing off again. Measured at 100 calls/s (gaps of
// about 9 ms between calls), that storm was the largest single cost in the
// profile (do_nanosleep from runtime.usleep, 26% of the process's CPU).
// Waking every 9 ms during a quiet spell costs less than one storm per
// quiet spell; after warmWindow without traffic the worker sleeps long and
// lets sysmon sleep too (the idle cost).
const (
	warmSleep  = int64(9 * time.Millisecond)
	warmWindow = int64(100 * time.Millisecond)
)

// idle is called when an iteration received nothing. It returns at once
// when the wait mode says spin, else it sleeps in the port until a
// datagram, a helper's answer, Stop, the next timer or MaxSleep.
func (w *Worker) idle() error {
	switch w.cfg.Wait {
	case WaitBusy:
		w.cnt.v[cSpins]++
		return nil
	case WaitAdaptive:
		if w.gap < w.spinNs && Nanotime()-w.lastRxAt < w.spinNs {
			w.cnt.v[cSpins]++
			return nil
		}
	}
	timeout := w.cfg.MaxSleep
	if now := Nanotime(); now-w.lastRxAt < warmWindow {
		// Keep the scheduler's view of the worker fresh across the sleep
		// (see yieldEvery): never sleep past warmSleep after the last
		// yield, and yield first when little of that is left.
		left := w.lastYield + warmSleep - now
		if left < warmSleep/4 {
			if err := w.yield(); err != nil {
				return err
			}
			left = warmSleep
		}
		timeout = min(timeout, time.Duration(left))
	}
	if due, ok := w.park.wheel.next(); ok {
		d := time.Duration(due*TimerTick - w.now())
		if d <= 0 {
			return nil
		}
		timeout = min(timeout, d)
	}
	b := w.bell
	b.armed.Store(true)
	// Look again after arming: an answer pushed or a stop requested before
	// the producer could see the bell armed is found here; anything later
	// rings it.
	if w.stop.Load() || w.answersPending() {
		b.disarm()
		return nil
	}
	// The runtime may have moved the worker to another thread since the
	// last look (a preemption, or exitsyscall finding no free P): the
	// thread about to sleep is the one that must be pinned and reported.
	// 200 ns, against the tens of microseconds a sleep and wake cost.
	if err := w.followThread(); err != nil {
		b.disarm()
		return err
	}
	w.cnt.v[cSleeps]++
	err := w.port.Wait(timeout, b.fd)
	b.disarm()
	w.woke = true
	return err
}

func (w *Worker) answersPending() bool { return w.park.pending() }

// noteRx feeds the adaptive wait: the gap between batches, smoothed.
func (w *Worker) noteRx(n int) {
	if w.woke {
		w.woke = false
		w.cnt.v[cWakeRx] += uint64(n)
	}
	now := Nanotime()
	if w.lastRxAt != 0 {
		g := now - w.lastRxAt
		w.gap += (g - w.gap) / 8
	}
	w.lastRxAt = now
}

// yieldEvery is how often a running worker passes through the Go
// scheduler (runtime.Gosched): just under sysmon's 10 ms.
//
// Why: since Go 1.26 sysmon takes the P away from a goroutine that has not
// been rescheduled for 10 ms even while it is in a system call, and every
// such retake puts sysmon back to polling every 20 us. A worker that never
// yields and sleeps in ppoll is retaken after nearly every wake-up, which
// kept sysmon polling 1,900 times a second at 100 calls/s (26% of the
// process's CPU in the profile). A Gosched every 9 ms resets the scheduler's
// clock for the worker. The goroutine is not locked to its thread: a locked
// goroutine's Gosched is a hand-off between two threads every time; an
// unlocked one usually continues on the same thread, and when the runtime
// gives it to another (about 70 times a second at 2,000 calls/s, counted in
// Migrations) the new thread is pinned instead. Measured against a locked
// worker sleeping in a raw ppoll (which never yields, is preempted by
// sysmon every 10 ms and keeps sysmon from deep sleep): the same CPU per
// call at 100 calls/s, 12% less at 2,000, and 0.15% instead of 0.9% of a
// core idle.
const yieldEvery = int64(9 * time.Millisecond)

// yield passes through the scheduler and re-pins the worker if the runtime
// moved it to another thread meanwhile (rare: only when no P was free).
func (w *Worker) yield() error {
	runtime.Gosched()
	w.lastYield = Nanotime()
	return w.followThread()
}

// followThread re-pins the worker if it now runs on another thread than
// the one it pinned.
func (w *Worker) followThread() error {
	if int32(unix.Gettid()) != w.tid.Load() {
		w.cnt.v[cMigrations]++
		return w.pinThread()
	}
	return nil
}

// processCPUs is the set of CPUs the process may use, read once before any
// worker runs. A worker reading it from its own thread at start could read
// a one-core mask: the runtime may hand it a thread another worker pinned
// and then left, and it would later "give back" that one core (CI saw a
// thread left on 1 CPU of 2 after a two-worker daemon stopped).
var processCPUs, processCPUsErr = func() (unix.CPUSet, error) {
	var set unix.CPUSet
	err := unix.SchedGetaffinity(0, &set)
	return set, err
}()

// pinThread pins the thread the worker runs on to its core (when it has
// one), gives the thread it ran on before back to every CPU, and records
// the thread for Thread.
//
// The worker is not locked to its thread (see yieldEvery); it stays on it
// because it never parks: it either runs or sleeps in a system call on it.
func (w *Worker) pinThread() error {
	tid := unix.Gettid()
	old := int(w.tid.Load())
	if w.cfg.Core >= 0 {
		if processCPUsErr != nil {
			return fmt.Errorf("pipeline: worker %d: reading the CPUs this process may use: %w", w.cfg.ID, processCPUsErr)
		}
		var set unix.CPUSet
		set.Set(w.cfg.Core)
		// By tid, not 0: if the goroutine moved since Gettid, 0 would pin a
		// thread that is never recorded, so never given back; the next
		// followThread pins the new one.
		if e := unix.SchedSetaffinity(tid, &set); e != nil {
			return fmt.Errorf("pipeline: worker %d: pin to core %d: %w (check [io] cores against the CPUs present)", w.cfg.ID, w.cfg.Core, e)
		}
		if old != 0 && old != tid {
			unix.SchedSetaffinity(old, &processCPUs) // the old thread may run anything now
		}
	}
	w.tid.Store(int32(tid))
	return nil
}

// unpinThread gives the worker's last thread back to every CPU when Run
// returns: the runtime reuses the thread for other goroutines, and a
// process started from it would inherit the one-core mask (an in-process
// daemon's tests then saw "this machine has CPUs 1").
func (w *Worker) unpinThread() {
	if tid := int(w.tid.Swap(0)); tid != 0 && w.cfg.Core >= 0 {
		unix.SchedSetaffinity(tid, &processCPUs)
	}
}

// ThreadStats are the kernel's counters of a worker's OS thread.
type ThreadStats struct {
	// TID is the thread id (0 before Run locked the worker to its thread).
	TID int
	// CPUNs is the time the thread ran, exact (schedstat).
	CPUNs uint64
	// Voluntary counts the thread's sleeps (context switches it asked
	// for); Involuntary counts preemptions by other threads on its core.
	Voluntary, Involuntary uint64
}

// Thread reads the worker thread's counters from /proc (at scrape time, so
// the worker pays nothing for them). Zero before Run.
func (w *Worker) Thread() (ThreadStats, error) {
	tid := int(w.tid.Load())
	st := ThreadStats{TID: tid}
	if tid == 0 {
		return st, nil
	}
	dir := "/proc/self/task/" + strconv.Itoa(tid) + "/"
	b, err := os.ReadFile(dir + "schedstat")
	if err != nil {
		return st, err
	}
	if f := bytes.Fields(b); len(f) > 0 {
		st.CPUNs, _ = strconv.ParseUint(string(f[0]), 10, 64)
	}
	b, err = os.ReadFile(dir + "status")
	if err != nil {
		return st, err
	}
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		k, v, ok := bytes.Cut(sc.Bytes(), []byte(":"))
		if !ok {
			continue
		}
		n, _ := strconv.ParseUint(string(bytes.TrimSpace(v)), 10, 64)
		switch string(k) {
		case "voluntary_ctxt_switches":
			st.Voluntary = n
		case "nonvoluntary_ctxt_switches":
			st.Involuntary = n
		}
	}
	return st, nil
}
