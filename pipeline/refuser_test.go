package pipeline_test

import (
	"slices"
	"strconv"
	"testing"
	"time"

	"sipedge/pipeline"
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
