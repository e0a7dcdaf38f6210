package pipeline_test

import (
	"testing"
	"time"

	"sipedge/pipeline"
	"sipedge/pipeline/port"
)

// BenchmarkWorkerCallFlow measures the whole per-message path on one core
// (one goroutine): parse, stages, build, and the memport's copy in and out,
// over 1,024 calls' INVITE, 100, 180, 200, ACK, BYE, 200 cycled. One op is
// one message. Per-stage ns come from the worker's own 1-in-64 sampling.
func BenchmarkWorkerCallFlow(b *testing.B) {
	flows := callFlows(b, 1024)
	r := newRig(b, pipeline.Config{Batch: 64, SampleEvery: 64})
	r.port.In = flows
	r.port.Cycle = true
	r.port.Sink = func(*port.Packet) {}
	b.ReportAllocs()
	b.ResetTimer()
	start := time.Now()
	before := r.w.Stats().Rx
	for done := 0; done < b.N; {
		n, err := r.w.Poll()
		if err != nil {
			b.Fatal(err)
		}
		done += n
	}
	el := time.Since(start)
	st := r.w.Stats()
	msgs := st.Rx - before
	b.ReportMetric(float64(msgs)/el.Seconds(), "msgs/s")
	for _, s := range st.Stages {
		if s.Samples > 0 {
			b.ReportMetric(float64(s.SampledNs)/float64(s.Samples), s.Name+"-ns/msg")
		}
	}
	if st.Tx != st.Rx {
		b.Fatalf("rx %d tx %d: drops %v", st.Rx, st.Tx, st.Drops)
	}
}
