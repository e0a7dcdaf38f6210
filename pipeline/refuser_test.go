package pipeline_test

import (
	"fmt"
	"slices"
	"strconv"
	"testing"
	"time"

	"sipedge/pipeline"
	"sipedge/pipeline/port"
)

// recorder is a Refuser stage: it lets everything through and records
// the statuses it is told its requests were refused with.
type recorder struct {
	name string
	got  *[]int
}

func (r recorder) Def() *pipeline.StageDef                        { return &pipeline.StageDef{Name: r.name} }
func (r recorder) NewStage(*pipeline.Env) (pipeline.Stage, error) { return r, nil }
func (r recorder) Process(*pipeline.Ctx) pipeline.Verdict         { return pipeline.Continue }
func (r recorder) Refused(c *pipeline.Ctx, status int) {
	if !c.Parsed || !c.Msg.IsRequest {
		panic("Refused on a message that is not a parsed request")
	}
	*r.got = append(*r.got, status)
}

// answerer answers INVITEs whose To user is a status code ("sip:404@")
// with that status; the others go on.
type answerer struct{}

func (answerer) Def() *pipeline.StageDef                          { return &pipeline.StageDef{Name: "answerer"} }
func (a answerer) NewStage(*pipeline.Env) (pipeline.Stage, error) { return a, nil }
func (answerer) Process(c *pipeline.Ctx) pipeline.Verdict {
	if st, err := strconv.Atoi(string(c.Msg.B(c.Msg.RURI.User))); err == nil {
		return c.Respond(st, "Test", nil)
	}
	return pipeline.Continue
}

// A stage that implements Refuser hears of every final failure a later
// stage (or a later stage's park fallback) answered a request with, and
// of nothing else: not successes, not its own or earlier stages' answers,
// not forwarded requests.
func TestRefusedAfterLocalFailure(t *testing.T) {
	var before, after []int
	h := newFakeHelper(t)
	// Park only INVITEs to "park": the others pass the parker.
	park := parkFunc{name: "parker", helper: h, fb: pipeline.Fallback{}, process: func(c *pipeline.Ctx, ref pipeline.HelperRef) pipeline.Verdict {
		if string(c.Msg.B(c.Msg.RURI.User)) == "park" {
			return c.Park(ref, []byte("k"), 100*time.Millisecond)
		}
		return pipeline.Continue
	}}
	pr := &parkRig{helper: h}
	pr.clock.Store(int64(time.Hour))
	r := newRig(t, pipeline.Config{})
	r.w = r.withStages(pipeline.Config{Now: pr.clock.Load}, recorder{"before", &before}, park, answerer{}, recorder{"after", &after})
	pr.rig = r
	invite := func(user string) string {
		return "INVITE sip:" + user + "@example.com SIP/2.0\r\nVia: SIP/2.0/UDP 203.0.113.9:40001;branch=z9hG4bK" + user +
			"\r\nMax-Forwards: 70\r\nTo: <sip:" + user + "@example.com>\r\nFrom: <sip:a@example.com>;tag=f\r\nCall-ID: " + user +
			"@x\r\nCSeq: 1 INVITE\r\nContent-Length: 0\r\n\r\n"
	}
	for _, c := range []struct {
		user string
		want []int
	}{
		{"404", []int{404}},
		{"480", []int{404, 480}},
		{"200", []int{404, 480}}, // a success is not a refusal
		{"183", []int{404, 480}},
		{"bob", []int{404, 480}}, // forwarded by route
	} {
		out := pr.send(caller, invite(c.user))
		if len(out) != 1 {
			t.Fatalf("%s: sent %d datagrams, want 1", c.user, len(out))
		}
		if !slices.Equal(before, c.want) {
			t.Fatalf("after INVITE to %s: the stage before heard %v, want %v", c.user, before, c.want)
		}
	}
	// Parked by a later stage, then timed out: the fallback's 503 counts.
	if out := pr.send(caller, invite("park")); len(out) != 0 {
		t.Fatalf("the parked INVITE produced %d datagrams", len(out))
	}
	h.next(t)
	pr.clock.Add(int64(101 * time.Millisecond))
	if _, m := pr.pollOne(); status(m) != 503 {
		t.Fatalf("after the deadline: %d, want the fallback's 503", status(m))
	}
	if want := []int{404, 480, 503}; !slices.Equal(before, want) {
		t.Fatalf("after the park fallback: the stage before heard %v, want %v", before, want)
	}
	if len(after) != 0 {
		t.Errorf("the stage after the answerer heard %v: it never saw those requests", after)
	}
}

// counter is a Refuser that only counts.
type counter struct{ n *int }

func (c counter) Def() *pipeline.StageDef                        { return &pipeline.StageDef{Name: "counter"} }
func (c counter) NewStage(*pipeline.Env) (pipeline.Stage, error) { return c, nil }
func (counter) Process(*pipeline.Ctx) pipeline.Verdict           { return pipeline.Continue }
func (c counter) Refused(*pipeline.Ctx, int)                     { *c.n++ }

// refusals runs INVITEs a later stage answers 404 through a worker with a
// Refuser before it; poll runs one batch.
// Without the Refuser, it is the baseline of the hook's cost.
func refusals(tb testing.TB, refuser bool) (poll func(), n *int, w *pipeline.Worker) {
	n = new(int)
	r := newRig(tb, pipeline.Config{})
	stages := []pipeline.StageMaker{answerer{}}
	if refuser {
		stages = []pipeline.StageMaker{counter{n}, answerer{}}
	}
	r.w = r.withStages(pipeline.Config{Batch: 64}, stages...)
	inv := "INVITE sip:404@example.com SIP/2.0\r\nVia: SIP/2.0/UDP 203.0.113.9:40001;branch=z9hG4bKr404\r\n" +
		"Max-Forwards: 70\r\nTo: <sip:404@example.com>\r\nFrom: <sip:a@example.com>;tag=f\r\nCall-ID: r404@x\r\nCSeq: 1 INVITE\r\nContent-Length: 0\r\n\r\n"
	for i := 0; i < 64; i++ {
		r.port.In = append(r.port.In, dgram(caller, inv))
	}
	r.port.Cycle = true
	r.port.Sink = func(*port.Packet) {}
	return func() {
		if _, err := r.w.Poll(); err != nil {
			tb.Fatal(err)
		}
	}, n, r.w
}

// Telling the Refusers of a local failure allocates nothing.
func TestRefusedAllocatesNothing(t *testing.T) {
	poll, n, w := refusals(t, true)
	for i := 0; i < 10; i++ {
		poll()
	}
	before, rx := *n, w.Stats().Rx
	if a := testing.AllocsPerRun(100, poll); a != 0 {
		t.Fatalf("%v allocations per batch of refused INVITEs, want 0", a)
	}
	if got, msgs := *n-before, int(w.Stats().Rx-rx); got == 0 || got != msgs {
		t.Fatalf("the Refuser heard of %d refusals for %d INVITEs answered 404", got, msgs)
	}
}

// BenchmarkRefused is a batch of 64 INVITEs answered 404 by a stage, with
// and without a Refuser before it: the hook's cost per batch.
func BenchmarkRefused(b *testing.B) {
	for _, with := range []bool{false, true} {
		b.Run(fmt.Sprintf("refuser=%v", with), func(b *testing.B) {
			poll, _, _ := refusals(b, with)
			b.ReportAllocs()
			for b.Loop() {
				poll()
			}
		})
	}
}
