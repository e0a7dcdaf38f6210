package pipeline_test

import (
	"bytes"
	"context"
	"net"
	"net/netip"
	"os"
	"runtime"
	"strconv"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"sipedge/pipeline"
	"sipedge/pipeline/port/socketport"
)

// waitRig is a worker on a real kernel socket, so that its waits are real
// sleeps in the kernel, with stages that report every message they see.
type waitRig struct {
	w      *pipeline.Worker
	p      *socketport.Port
	seen   chan string
	client *net.UDPConn
	done   chan error
	cancel context.CancelFunc
}

func newWaitRig(t *testing.T, cfg pipeline.Config, extra ...pipeline.StageMaker) *waitRig {
	t.Helper()
	p, err := socketport.Open(socketport.Config{Listen: netip.MustParseAddrPort("127.0.0.1:0")})
	if err != nil {
		t.Fatal(err)
	}
	r := &waitRig{p: p, seen: make(chan string, 16), done: make(chan error, 1)}
	report := stageFunc{"report", func(c *pipeline.Ctx) pipeline.Verdict {
		r.seen <- string(c.Buf)
		return c.Drop(pipeline.DropPolicy)
	}}
	stages := append(extra, report)
	cfg.Key, cfg.Core = &testKey, -1
	if r.w, err = pipeline.NewWorker(p, cfg, stages); err != nil {
		t.Fatal(err)
	}
	if r.client, err = net.DialUDP("udp", nil, net.UDPAddrFromAddrPort(p.LocalAddr())); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	r.cancel = cancel
	go func() { r.done <- r.w.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		r.w.Stop()
		r.w.Close()
		p.Close()
		r.client.Close()
	})
	return r
}

func (r *waitRig) send(t *testing.T, payload string) {
	t.Helper()
	if _, err := r.client.Write([]byte(payload)); err != nil {
		t.Fatal(err)
	}
}

// expect waits (bounded) for the stages to see payload.
func (r *waitRig) expect(t *testing.T, payload string) {
	t.Helper()
	select {
	case got := <-r.seen:
		if got != payload {
			t.Fatalf("stage saw %q, want %q", got, payload)
		}
	case <-time.After(10 * time.Second):
		t.Fatalf("the worker did not process %q within 10 s", payload)
	}
}

// inPpoll waits (bounded) until the worker's own thread is blocked in the
// kernel in ppoll(2): /proc/self/task/TID/syscall names the system call a
// blocked thread is in. A worker waiting through Go's netpoller would be in
// futex (parked on its locked thread) instead.
func (r *waitRig) inPpoll(t *testing.T) {
	t.Helper()
	var last string
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); runtime.Gosched() {
		th, err := r.w.Thread()
		if err != nil {
			t.Fatal(err)
		}
		if th.TID == 0 {
			continue
		}
		b, err := os.ReadFile("/proc/self/task/" + strconv.Itoa(th.TID) + "/syscall")
		if err != nil {
			t.Fatalf("reading the worker thread's syscall: %v", err)
		}
		f := bytes.Fields(b)
		if len(f) > 0 && string(f[0]) == strconv.Itoa(unix.SYS_PPOLL) {
			return
		}
		last = string(bytes.TrimSpace(b))
	}
	t.Fatalf("the worker thread never blocked in ppoll (syscall %d); last seen: %q", unix.SYS_PPOLL, last)
}

// A worker in block mode sleeps in ppoll on its own thread, is woken by the
// kernel for a datagram, and sleeps again.
func TestWaitBlockSleepsInKernel(t *testing.T) {
	r := newWaitRig(t, pipeline.Config{Wait: pipeline.WaitBlock, MaxSleep: time.Hour})
	r.inPpoll(t)
	r.send(t, "one")
	r.expect(t, "one")
	r.inPpoll(t)
	r.send(t, "two")
	r.expect(t, "two")
	r.inPpoll(t)
	st := r.w.Stats()
	if st.Sleeps < 2 || st.WakeRx < 1 || st.Spins != 0 {
		t.Errorf("sleeps %d, datagrams found on waking %d, spins %d: want >= 2, >= 1, 0", st.Sleeps, st.WakeRx, st.Spins)
	}
	th, err := r.w.Thread()
	if err != nil || th.Voluntary == 0 || th.CPUNs == 0 {
		t.Errorf("thread stats %+v (%v): want its sleeps counted as voluntary switches and its CPU time", th, err)
	}
}

// The garbage collector's stop-the-world must not wait for a worker asleep
// in the kernel (its P is in a syscall, so the runtime takes it), and the
// worker keeps working afterwards.
func TestStopTheWorldReachesSleepingWorker(t *testing.T) {
	r := newWaitRig(t, pipeline.Config{Wait: pipeline.WaitBlock, MaxSleep: time.Hour})
	r.inPpoll(t)
	gc := make(chan struct{})
	go func() {
		runtime.GC() // stops the world twice
		close(gc)
	}()
	select {
	case <-gc:
	case <-time.After(10 * time.Second):
		t.Fatal("runtime.GC did not finish within 10 s while the worker slept")
	}
	r.send(t, "after gc")
	r.expect(t, "after gc")
}

// Cancelling the context (what SIGTERM does in the daemon) wakes a worker
// that sleeps with an hour's timeout; Run returns nil.
func TestCancelWakesSleepingWorker(t *testing.T) {
	r := newWaitRig(t, pipeline.Config{Wait: pipeline.WaitBlock, MaxSleep: time.Hour})
	r.inPpoll(t)
	r.cancel()
	select {
	case err := <-r.done:
		if err != nil {
			t.Fatalf("Run after cancel: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Run did not return within 10 s of the cancel while the worker slept")
	}
}

// A helper's answer wakes a sleeping worker at once: the parked message
// resumes although neither its deadline nor MaxSleep (an hour each) came.
func TestAnswerWakesSleepingWorker(t *testing.T) {
	h := newFakeHelper(t)
	park := parkFunc{name: "park", helper: h, process: func(c *pipeline.Ctx, ref pipeline.HelperRef) pipeline.Verdict {
		return c.Park(ref, []byte("key"), time.Hour)
	}}
	r := newWaitRig(t, pipeline.Config{Wait: pipeline.WaitBlock, MaxSleep: time.Hour}, park)
	r.send(t, "parked")
	req := h.next(t)
	r.inPpoll(t)
	h.answer(t, req, "x")
	r.expect(t, "parked")
}

// Busy mode never sleeps; adaptive mode sleeps when traffic is sparse.
func TestWaitModes(t *testing.T) {
	busy := newWaitRig(t, pipeline.Config{Wait: pipeline.WaitBusy, MaxSleep: time.Hour})
	busy.send(t, "b")
	busy.expect(t, "b")
	for deadline := time.Now().Add(10 * time.Second); busy.w.Stats().Spins < 1000; runtime.Gosched() {
		if time.Now().After(deadline) {
			t.Fatalf("busy worker: %d spins after 10 s", busy.w.Stats().Spins)
		}
	}
	if st := busy.w.Stats(); st.Sleeps != 0 {
		t.Errorf("busy worker slept %d times", st.Sleeps)
	}
	busy.cancel()

	adaptive := newWaitRig(t, pipeline.Config{Wait: pipeline.WaitAdaptive, MaxSleep: time.Hour})
	adaptive.inPpoll(t)
	adaptive.send(t, "a")
	adaptive.expect(t, "a")
	adaptive.inPpoll(t)
}

func TestParseWaitMode(t *testing.T) {
	for _, m := range []pipeline.WaitMode{pipeline.WaitAdaptive, pipeline.WaitBusy, pipeline.WaitBlock} {
		got, err := pipeline.ParseWaitMode(m.String())
		if err != nil || got != m {
			t.Errorf("ParseWaitMode(%q) = %v, %v", m.String(), got, err)
		}
	}
	if _, err := pipeline.ParseWaitMode("spin"); err == nil {
		t.Error(`ParseWaitMode("spin") accepted`)
	}
}
