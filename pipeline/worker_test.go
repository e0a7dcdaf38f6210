package pipeline_test

import (
	"context"
	"testing"

	"golang.org/x/sys/unix"

	"sipedge/pipeline"
	"sipedge/pipeline/memport"
	"sipedge/pipeline/port"
)

// stageFunc adapts a function to a Stage for tests.
type stageFunc struct {
	name string
	fn   func(c *pipeline.Ctx) pipeline.Verdict
}

func (s stageFunc) Def() *pipeline.StageDef                        { return &pipeline.StageDef{Name: s.name} }
func (s stageFunc) NewStage(*pipeline.Env) (pipeline.Stage, error) { return s, nil }
func (s stageFunc) Process(c *pipeline.Ctx) pipeline.Verdict       { return s.fn(c) }

// parkFunc is a test stage that parks: Process may call c.Park(ref, ...)
// with the helper registered for it; Resume is resume, or Continue.
type parkFunc struct {
	name    string
	helper  pipeline.Helper
	fb      pipeline.Fallback
	process func(c *pipeline.Ctx, ref pipeline.HelperRef) pipeline.Verdict
	resume  func(c *pipeline.Ctx) pipeline.Verdict
}

type parkInstance struct {
	parkFunc
	ref pipeline.HelperRef
}

func (s parkFunc) Def() *pipeline.StageDef { return &pipeline.StageDef{Name: s.name, Parks: true} }
func (s parkFunc) NewStage(env *pipeline.Env) (pipeline.Stage, error) {
	ref, err := env.Helper(s.helper, s.fb)
	return &parkInstance{s, ref}, err
}
func (s *parkInstance) Process(c *pipeline.Ctx) pipeline.Verdict { return s.process(c, s.ref) }
func (s *parkInstance) Resume(c *pipeline.Ctx) pipeline.Verdict {
	if s.resume == nil {
		return pipeline.Continue
	}
	return s.resume(c)
}

func runStages(t testing.TB, frames int, in []memport.Datagram, stages ...pipeline.StageMaker) (*pipeline.Worker, *memport.Port) {
	t.Helper()
	p := memport.New(frames, 2048)
	p.In = in
	w, err := pipeline.NewWorker(p, pipeline.Config{Key: &testKey, Core: -1}, stages)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 100; i++ {
		if _, err := w.Poll(); err != nil {
			break
		}
	}
	return w, p
}

func TestStageContract(t *testing.T) {
	in := []memport.Datagram{dgram(caller, newCall(1).request("OPTIONS", false))}
	cont := stageFunc{"cont", func(*pipeline.Ctx) pipeline.Verdict { return pipeline.Continue }}
	early := stageFunc{"early", func(c *pipeline.Ctx) pipeline.Verdict { return c.Respond(200, "OK", nil) }}
	lie := stageFunc{"lie", func(*pipeline.Ctx) pipeline.Verdict { return pipeline.Forward }}
	bogus := stageFunc{"bogus", func(*pipeline.Ctx) pipeline.Verdict { return pipeline.Verdict(200) }}
	for _, tc := range []struct {
		name   string
		stages []pipeline.StageMaker
	}{
		{"all continue", []pipeline.StageMaker{cont, stageFunc{"cont2", cont.fn}}},
		{"respond before parse", []pipeline.StageMaker{early}},
		{"forward without building", []pipeline.StageMaker{lie}},
		{"unknown verdict", []pipeline.StageMaker{bogus}},
	} {
		w, p := runStages(t, 8, in, tc.stages...)
		st := w.Stats()
		if len(p.Sent) != 0 || st.Drops[pipeline.DropNoVerdict] != 1 {
			t.Errorf("%s: sent %d, no-verdict drops %d", tc.name, len(p.Sent), st.Drops[pipeline.DropNoVerdict])
		}
		if st.Stages[0].In != 1 {
			t.Errorf("%s: first stage saw %d messages", tc.name, st.Stages[0].In)
		}
	}
	// The only frame holds the received datagram: no transmit buffer.
	reply := stageFunc{"reply", func(c *pipeline.Ctx) pipeline.Verdict {
		if b := c.TxBuf(); b == nil {
			return c.Drop(pipeline.DropNoTxBuffer)
		}
		return c.Reply(copy(c.TxBuf(), c.Buf))
	}}
	w, _ := runStages(t, 1, in, reply)
	if w.Stats().Drops[pipeline.DropNoTxBuffer] != 1 {
		t.Errorf("no-tx-buffer drops = %d", w.Stats().Drops[pipeline.DropNoTxBuffer])
	}
	w, p := runStages(t, 4, in, reply)
	if len(p.Sent) != 1 || p.Sent[0].Dst != caller || p.Sent[0].Src != edgeAddr {
		t.Errorf("echo: %d sent, to %v from %v", len(p.Sent), p.Sent[0].Dst, p.Sent[0].Src)
	}
	if st := w.Stats(); st.Stages[0].Verdicts[pipeline.Respond] != 1 || st.Tx != 1 {
		t.Errorf("echo counters: %+v tx %d", st.Stages[0], st.Tx)
	}
}

func TestNewWorkerErrors(t *testing.T) {
	p := memport.New(1, 64)
	s := []pipeline.StageMaker{stageFunc{"x", nil}}
	if _, err := pipeline.NewWorker(p, pipeline.Config{}, s); err == nil {
		t.Error("a worker without a key was built")
	}
	if _, err := pipeline.NewWorker(p, pipeline.Config{Key: &testKey}, nil); err == nil {
		t.Error("a worker without stages was built")
	}
}

// BenchmarkWorkerLoop is the loop's own cost per message: receive, one
// stage that copies the datagram into a transmit buffer, transmit, release.
func BenchmarkWorkerLoop(b *testing.B) {
	p := memport.New(256, 2048)
	p.In = []memport.Datagram{dgram(caller, newCall(1).request("INVITE", false))}
	p.Cycle = true
	p.Sink = func(*port.Packet) {}
	echo := stageFunc{"echo", func(c *pipeline.Ctx) pipeline.Verdict {
		b := c.TxBuf()
		if b == nil {
			return c.Drop(pipeline.DropNoTxBuffer)
		}
		return c.Reply(copy(b, c.Buf))
	}}
	w, err := pipeline.NewWorker(p, pipeline.Config{Key: &testKey, Core: -1}, []pipeline.StageMaker{echo})
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for done := 0; done < b.N; {
		n, err := w.Poll()
		if err != nil {
			b.Fatal(err)
		}
		done += n
	}
}

// A worker configured with a core runs its stages on a thread pinned to it.
func TestRunPinsToCore(t *testing.T) {
	var got unix.CPUSet
	var gerr error
	probe := stageFunc{"affinity", func(c *pipeline.Ctx) pipeline.Verdict {
		gerr = unix.SchedGetaffinity(0, &got)
		return c.Drop(pipeline.DropPolicy)
	}}
	p := memport.New(8, 2048)
	p.In = []memport.Datagram{dgram(caller, "x")}
	w, err := pipeline.NewWorker(p, pipeline.Config{Key: &testKey, Core: 0}, []pipeline.StageMaker{probe})
	if err != nil {
		t.Fatal(err)
	}
	if err := w.Run(context.Background()); err != nil {
		t.Fatalf("Run pinned to core 0: %v", err)
	}
	if gerr != nil {
		t.Fatalf("SchedGetaffinity: %v", gerr)
	}
	if got.Count() != 1 || !got.IsSet(0) {
		t.Errorf("stage ran with affinity to %d CPUs (core 0 set: %v), want only core 0", got.Count(), got.IsSet(0))
	}
	w2, _ := pipeline.NewWorker(memport.New(1, 64), pipeline.Config{Key: &testKey, Core: 1 << 20}, []pipeline.StageMaker{probe})
	if err := w2.Run(context.Background()); err == nil {
		t.Error("pinning to a CPU that does not exist did not fail")
	}
}

// A name given twice, a stage that declares Parks without Resume, and a
// stage that registers a helper without declaring Parks are refused when
// the worker is built, not found at the first parked message.
func TestChainRefusesBrokenContracts(t *testing.T) {
	cont := stageFunc{"cont", func(*pipeline.Ctx) pipeline.Verdict { return pipeline.Continue }}
	noResume := maker{&pipeline.StageDef{Name: "noresume", Parks: true}, func(*pipeline.Env) (pipeline.Stage, error) { return cont, nil }}
	undeclared := maker{&pipeline.StageDef{Name: "undeclared"}, func(env *pipeline.Env) (pipeline.Stage, error) {
		_, err := env.Helper(newFakeHelper(t), pipeline.Fallback{})
		return cont, err
	}}
	for _, stages := range [][]pipeline.StageMaker{{cont, cont}, {noResume}, {undeclared}} {
		if _, err := pipeline.NewWorker(memport.New(1, 64), pipeline.Config{Key: &testKey, Core: -1}, stages); err == nil {
			t.Errorf("%s: accepted", stages[0].Def().Name)
		}
	}
}

type maker struct {
	def *pipeline.StageDef
	mk  func(*pipeline.Env) (pipeline.Stage, error)
}

func (m maker) Def() *pipeline.StageDef                            { return m.def }
func (m maker) NewStage(env *pipeline.Env) (pipeline.Stage, error) { return m.mk(env) }

// A stage's own drop reasons are counted once, under the stage, and in the
// node's drops as policy; an undeclared one is a stage bug.
func TestOwnDropsCountedOnce(t *testing.T) {
	in := []memport.Datagram{dgram(caller, "x"), dgram(caller, "y")}
	def := &pipeline.StageDef{Name: "picky", Drops: []string{"ex", "why"}}
	picky := maker{def, func(*pipeline.Env) (pipeline.Stage, error) {
		return stageFunc{"picky", func(c *pipeline.Ctx) pipeline.Verdict {
			if c.Buf[0] == 'x' {
				return c.DropOwn(1)
			}
			return c.DropOwn(7)
		}}, nil
	}}
	w, _ := runStages(t, 4, in, picky)
	st := w.Stats()
	if st.Stages[0].OwnDrops[1] != 1 || st.Drops[pipeline.DropPolicy] != 1 || st.Drops[pipeline.DropNoVerdict] != 1 {
		t.Errorf("own drops %v, policy %d, no-verdict %d", st.Stages[0].OwnDrops, st.Drops[pipeline.DropPolicy], st.Drops[pipeline.DropNoVerdict])
	}
}
