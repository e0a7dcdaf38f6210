package pipeline_test

import (
	"context"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"sipedge/pipeline"
	"sipedge/pipeline/port"
)

// fakeHelper answers on its own goroutine, like a real one, when told to.
type fakeHelper struct {
	reqs     chan req
	answered chan struct{}
}

type req struct {
	h   pipeline.Handle
	key string
}

func newFakeHelper(t *testing.T) *fakeHelper {
	f := &fakeHelper{reqs: make(chan req, 64), answered: make(chan struct{}, 64)}
	return f
}

func (f *fakeHelper) Request(h pipeline.Handle, key []byte) {
	f.reqs <- req{h, string(key)} // copies key: only valid during the call
}

// next waits (bounded) for the next request the worker made.
func (f *fakeHelper) next(t *testing.T) req {
	t.Helper()
	select {
	case r := <-f.reqs:
		return r
	case <-time.After(5 * time.Second):
		t.Fatal("the worker never asked the helper")
	}
	return req{}
}

// answer replies from another goroutine and waits until the answer is in
// the worker's ring.
func (f *fakeHelper) answer(t *testing.T, r req, data string) {
	t.Helper()
	go func() {
		var a pipeline.Answer
		a.SetBytes([]byte("answer for " + data))
		if r.h.Answer(&a) {
			f.answered <- struct{}{}
		}
	}()
	select {
	case <-f.answered:
	case <-time.After(5 * time.Second):
		t.Fatal("the helper's answer did not reach the ring")
	}
}

// parker parks every INVITE on its helper with its Call-ID as the key.
func parker(h pipeline.Helper, fb pipeline.Fallback, wait time.Duration) parkFunc {
	return parkFunc{name: "parker", helper: h, fb: fb, process: func(c *pipeline.Ctx, ref pipeline.HelperRef) pipeline.Verdict {
		if c.Msg.IsRequest && string(c.Msg.B(c.Msg.CSeqSpan)) == "INVITE" {
			return c.Park(ref, c.Msg.B(c.Msg.CallID), wait)
		}
		return pipeline.Continue
	}}
}

// seer records the answer of the resumed message.
type seer struct{ got *string }

func (seer) Def() *pipeline.StageDef                          { return &pipeline.StageDef{Name: "seer"} }
func (s seer) NewStage(*pipeline.Env) (pipeline.Stage, error) { return s, nil }
func (s seer) Process(c *pipeline.Ctx) pipeline.Verdict {
	if c.Answer != nil {
		*s.got = string(c.Answer.Bytes())
	}
	return pipeline.Continue
}

type parkRig struct {
	*rig
	clock  atomic.Int64
	helper *fakeHelper
	got    string
}

func newParkRig(t *testing.T, cfg pipeline.Config, fb pipeline.Fallback) *parkRig {
	pr := &parkRig{helper: newFakeHelper(t)}
	pr.clock.Store(int64(time.Hour))
	cfg.Now = pr.clock.Load
	r := newRig(t, pipeline.Config{})
	r.w = r.withStages(cfg, parker(pr.helper, fb, 100*time.Millisecond), seer{&pr.got})
	pr.rig = r
	return pr
}

func TestParkResume(t *testing.T) {
	pr := newParkRig(t, pipeline.Config{}, pipeline.Fallback{})
	c := newCall(10)
	if out := pr.send(caller, c.request("INVITE", false)); len(out) != 0 {
		t.Fatalf("a parked INVITE produced %d datagrams", len(out))
	}
	r := pr.helper.next(t)
	if r.key != c.id {
		t.Fatalf("helper got key %q, want the Call-ID", r.key)
	}
	if pr.w.Parked() != 1 {
		t.Fatalf("parked = %d", pr.w.Parked())
	}
	// Other traffic flows while the INVITE waits.
	if d, _ := pr.sendOne(caller, c.request("BYE", true)); d.Dst != backendA && d.Dst != backendB {
		t.Fatalf("BYE went to %v while the INVITE was parked", d.Dst)
	}
	pr.helper.answer(t, r, "10")
	d, m := pr.pollOne()
	if string(m.B(m.CallID)) != c.id || (d.Dst != backendA && d.Dst != backendB) {
		t.Fatalf("resumed message: Call-ID %q to %v", m.B(m.CallID), d.Dst)
	}
	if pr.got != "answer for 10" {
		t.Errorf("the stage after the parker saw answer %q", pr.got)
	}
	st := pr.w.Stats()
	if st.Parked != 1 || st.Resumed != 1 || pr.w.Parked() != 0 {
		t.Errorf("parked %d resumed %d in pool %d", st.Parked, st.Resumed, pr.w.Parked())
	}
	// Answering again (a buggy helper) is discarded as late.
	pr.helper.answer(t, r, "10 again")
	if out := pr.send(caller); len(out) != 0 || pr.w.Stats().LateAnswers != 1 {
		t.Errorf("a second answer produced %d datagrams, late answers %d", len(out), pr.w.Stats().LateAnswers)
	}
}

func TestParkTimeoutThenLateAnswer(t *testing.T) {
	pr := newParkRig(t, pipeline.Config{}, pipeline.Fallback{})
	c := newCall(11)
	pr.send(caller, c.request("INVITE", false))
	r := pr.helper.next(t)
	pr.clock.Add(int64(99 * time.Millisecond))
	if out := pr.send(caller); len(out) != 0 {
		t.Fatal("fallback before the deadline")
	}
	pr.clock.Add(int64(2 * time.Millisecond))
	d, m := pr.pollOne()
	if status(m) != 503 || header(m, "Retry-After") != "5" || d.Dst != caller {
		t.Fatalf("after the deadline: %d Retry-After %q to %v, want 503 to the caller", status(m), header(m, "Retry-After"), d.Dst)
	}
	pr.helper.answer(t, r, "late")
	if out := pr.send(caller); len(out) != 0 {
		t.Fatalf("late answer produced %d datagrams", len(out))
	}
	st := pr.w.Stats()
	if st.ParkTimeouts != 1 || st.Fallback503 != 1 || st.LateAnswers != 1 || st.Resumed != 0 || pr.got != "" {
		t.Errorf("timeouts %d fallback %d late %d resumed %d seen %q", st.ParkTimeouts, st.Fallback503, st.LateAnswers, st.Resumed, pr.got)
	}
}

func TestParkPoolFull(t *testing.T) {
	for _, fb := range []pipeline.Fallback{{}, {Drop: true}} {
		pr := newParkRig(t, pipeline.Config{ParkSlots: 2}, fb)
		out := pr.send(caller, newCall(1).request("INVITE", false), newCall(2).request("INVITE", false), newCall(3).request("INVITE", false))
		st := pr.w.Stats()
		if pr.w.Parked() != 2 || st.ParkFull != 1 {
			t.Fatalf("fallback %+v: parked %d, pool-full %d", fb, pr.w.Parked(), st.ParkFull)
		}
		if !fb.Drop && (len(out) != 1 || status(parse(t, out[0].Payload)) != 503) {
			t.Errorf("pool full with reject: %d datagrams, want one 503", len(out))
		}
		if fb.Drop && (len(out) != 0 || st.Drops[pipeline.DropParkFull] != 1) {
			t.Errorf("pool full with drop: %d datagrams, drops %d", len(out), st.Drops[pipeline.DropParkFull])
		}
	}
}

func TestRunStopsAtEOFAndFlushesParked(t *testing.T) {
	pr := newParkRig(t, pipeline.Config{}, pipeline.Fallback{Drop: true})
	pr.port.In = append(pr.port.In, dgram(caller, newCall(1).request("INVITE", false)), dgram(caller, newCall(2).request("BYE", true)))
	if err := pr.w.Run(context.Background()); err != nil {
		t.Fatalf("Run: %v", err)
	}
	st := pr.w.Stats()
	if len(pr.port.Sent) != 1 || st.Drops[pipeline.DropStopping] != 1 || pr.w.Parked() != 0 {
		t.Errorf("sent %d (want the BYE), stopping drops %d, parked %d", len(pr.port.Sent), st.Drops[pipeline.DropStopping], pr.w.Parked())
	}
	if n := pr.port.FramesInUse(); n > 1 {
		t.Errorf("%d frames leaked", n)
	}
}

func TestRunStopsOnContextAndStop(t *testing.T) {
	r := newRig(t, pipeline.Config{})
	r.port.In = []memportDatagram{dgram(caller, newCall(1).request("BYE", true))}
	r.port.Cycle = true
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- r.w.Run(ctx) }()
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Run after cancel: %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Run did not return after the context was cancelled")
	}
	r.w.Stop() // after Run returned: must not block
	if err := r.w.Run(context.Background()); err == nil {
		t.Error("a second Run was accepted")
	}

	r2 := newRig(t, pipeline.Config{})
	r2.port.In = r.port.In
	r2.port.Cycle = true
	started := make(chan struct{})
	var once sync.Once
	r2.port.Sink = func(*port.Packet) { once.Do(func() { close(started) }) }
	go func() { done <- r2.w.Run(context.Background()) }()
	select {
	case <-started:
	case <-time.After(5 * time.Second):
		t.Fatal("the worker sent nothing")
	}
	// Scraping while the worker runs is race-free (go test -race).
	var last uint64
	for i := 0; i < 100; i++ {
		st := r2.w.Stats()
		if st.Rx < last {
			t.Fatalf("published rx went back from %d to %d", last, st.Rx)
		}
		last = st.Rx
	}
	r2.w.Stop()
	if err := <-done; err != nil {
		t.Fatalf("Run after Stop: %v", err)
	}
}

// FuncHelper end to end: a worker parks many messages, the helper's
// goroutine looks them up and every one resumes.
func TestFuncHelper(t *testing.T) {
	fh := pipeline.NewFuncHelper(64, func(key []byte, a *pipeline.Answer) {
		a.SetBytes(append([]byte("looked up "), key...))
	})
	ctx, cancel := context.WithCancel(context.Background())
	helperDone := make(chan struct{})
	go func() { fh.Run(ctx); close(helperDone) }()
	defer func() { cancel(); <-helperDone }()

	pr := newParkRig(t, pipeline.Config{}, pipeline.Fallback{})
	var got []string
	pr.w = pr.withStages(pipeline.Config{}, parker(fh, pipeline.Fallback{}, time.Minute), stageFunc{"record", func(c *pipeline.Ctx) pipeline.Verdict {
		if c.Answer != nil {
			got = append(got, string(c.Answer.Bytes()))
		}
		return pipeline.Continue
	}})
	const n = 40
	var msgs []string
	for i := 0; i < n; i++ {
		msgs = append(msgs, newCall(100+i).request("INVITE", false))
	}
	out := pr.send(caller, msgs...)
	deadline := time.Now().Add(10 * time.Second)
	for len(out) < n && time.Now().Before(deadline) {
		out = append(out, pr.send(caller)...) // polls; answers arrive asynchronously
		runtime.Gosched()
	}
	if len(out) != n || len(got) != n {
		t.Fatalf("%d of %d parked INVITEs forwarded, %d answers seen (refused %d)", len(out), n, len(got), fh.Refused.Load())
	}
	for i, g := range got {
		if !strings.HasPrefix(g, "looked up c") {
			t.Fatalf("answer %d = %q", i, g)
		}
	}
}
