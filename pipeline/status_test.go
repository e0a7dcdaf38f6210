package pipeline_test

import (
	"net/netip"
	"testing"

	"sipedge/pipeline"
)

// Per-backend request counters follow what was forwarded, survive a reload
// that keeps the address, and the busy/batch counters see every batch.
func TestBackendStatusAndBusyCounters(t *testing.T) {
	r := newRig(t, pipeline.Config{})
	sent := map[netip.AddrPort]uint64{}
	for i := 0; i < 200; i++ {
		out := r.send(caller, newCall(i).request("INVITE", false))
		if len(out) != 1 {
			t.Fatalf("call %d: %d datagrams forwarded, want 1", i, len(out))
		}
		sent[out[0].Dst]++
	}
	check := func(when string) {
		t.Helper()
		for _, st := range r.bk.Status() {
			if st.Requests != sent[st.Addr] {
				t.Errorf("%s: backend %v reports %d requests, %d were forwarded to it", when, st.Addr, st.Requests, sent[st.Addr])
			}
		}
	}
	check("before reload")
	if err := r.bk.Replace([]pipeline.BackendSpec{{Addr: backendA, Weight: 2}, {Addr: backendB, Weight: 1}}); err != nil {
		t.Fatal(err)
	}
	check("after reload")
	s := r.w.Stats()
	var batches uint64
	for _, n := range s.Batches {
		batches += n
	}
	if s.BusyLoops != 200 || batches != 200 || s.Batches[0] != 200 {
		t.Fatalf("busy loops %d, batches %v: want 200 batches of one datagram", s.BusyLoops, s.Batches)
	}
	if s.BusyNs == 0 {
		t.Fatal("busy time not counted")
	}
}

func TestBatchBucketMax(t *testing.T) {
	want := []int{1, 3, 7, 15, 31, 63, 127, 255, -1}
	for i, w := range want {
		if got := pipeline.BatchBucketMax(i); got != w {
			t.Errorf("BatchBucketMax(%d) = %d, want %d", i, got, w)
		}
	}
}

// Parse errors are counted by rule, and every sipcore rule has a name.
func TestParseErrorsCounted(t *testing.T) {
	r := newRig(t, pipeline.Config{})
	c := newCall(1)
	bad := c.request("INVITE", false, "CSeq: x INVITE") // a second, malformed CSeq
	r.send(caller, bad, "garbage that is not SIP\r\n\r\n")
	s := r.w.Stats()
	var total uint64
	named := map[string]uint64{}
	for i, n := range s.ParseErrors {
		total += n
		named[pipeline.ParseErrorName(i)] += n
	}
	if total != 2 {
		t.Fatalf("%d parse errors counted (%v), want 2", total, named)
	}
	if named["other"] != 0 {
		t.Fatalf("a parse error landed in other: %v", named)
	}
}
