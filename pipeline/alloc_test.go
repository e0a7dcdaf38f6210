package pipeline_test

import (
	"testing"

	"sipedge/pipeline"
	"sipedge/pipeline/port"
)

// cycle makes the port replay its input forever, counting what the
// worker sends, and returns one Poll after warm polls (the first use of
// every frame and buffer) and the count.
func (r *rig) cycle(t *testing.T, warm int) (poll func(), sent *int) {
	r.port.Cycle = true
	sent = new(int)
	r.port.Sink = func(*port.Packet) { *sent++ }
	poll = func() {
		if _, err := r.w.Poll(); err != nil {
			t.Fatal(err)
		}
	}
	for i := 0; i < warm; i++ {
		poll()
	}
	return poll, sent
}

// The hot path allocates nothing: whole calls (requests forwarded,
// responses forwarded back) through a worker, stage timing on.
func TestWorkerAllocatesNothing(t *testing.T) {
	flows := callFlows(t, 100)
	r := newRig(t, pipeline.Config{Batch: 64, SampleEvery: 8})
	r.port.In = flows
	poll, sent := r.cycle(t, 20)
	before := r.w.Stats()
	sentBefore := *sent
	const polls = 160 // x 64 = 10,240 messages
	allocs := testing.AllocsPerRun(polls, poll)
	after := r.w.Stats()
	msgs := after.Rx - before.Rx
	if msgs < 10000 {
		t.Fatalf("only %d messages went through", msgs)
	}
	if allocs != 0 {
		t.Fatalf("%v allocations per batch of 64 messages, want 0", allocs)
	}
	if got := uint64(*sent - sentBefore); got != msgs {
		t.Fatalf("%d messages in, %d out: every message of a call flow is forwarded (drops %v)", msgs, got, after.Drops)
	}
	if after.Stages[0].Samples == 0 {
		t.Fatal("stage timing was on but took no sample")
	}
}
