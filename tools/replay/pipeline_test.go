package replay

import (
	"net/netip"
	"path/filepath"
	"testing"

	"sipedge"
	"sipedge/appliance"
	"sipedge/appliance/config"
	"sipedge/pipeline"
	"sipedge/pipeline/memport"
	"sipedge/sipcore/shareddata"
	"sipedge/tools/sipgen"
)

// checkVerdicts asserts that every message replayed got exactly one
// verdict, and that the counts are the source's times the loops.
func checkVerdicts(t *testing.T, s *Summary, workers, loops int) {
	t.Helper()
	r := s.Pipeline
	if r == nil {
		t.Fatal("no pipeline report")
	}
	var sum uint64
	for _, n := range r.Verdicts {
		sum += n
	}
	if s.Sent != s.SIP || sum != s.Sent || s.Sent == 0 {
		t.Fatalf("sent %d, SIP %d, verdicts %d (%v): every SIP datagram must be run and get one verdict", s.Sent, s.SIP, sum, r.Verdicts)
	}
	if s.SIP%uint64(loops) != 0 {
		t.Fatalf("%d SIP datagrams is not a multiple of %d loops", s.SIP, loops)
	}
	if r.Workers != workers || len(r.MessagesPerCore) != workers {
		t.Fatalf("%d workers, %d rates; want %d", r.Workers, len(r.MessagesPerCore), workers)
	}
	for _, st := range []string{"sanity", "response", "self", "route", "total"} {
		if _, ok := r.NsPerStage[st]; !ok && st != "self" && st != "route" {
			t.Fatalf("no timing for stage %q: %v", st, r.NsPerStage)
		}
	}
}

func TestPipelineSharedCaptures(t *testing.T) {
	dir := shareddata.Dir(t, "pcaps")
	for name, want := range sharedCounts {
		for _, workers := range []int{1, 2} {
			t.Run(name, func(t *testing.T) {
				s, err := Run(Options{Inputs: []string{filepath.Join(dir, name)}, Loop: 3, Workers: workers, SIPPorts: []uint16{5060}})
				if err != nil {
					t.Fatal(err)
				}
				checkVerdicts(t, s, workers, 3)
				if s.SIP != 3*want {
					t.Fatalf("%d SIP datagrams, want %d", s.SIP, 3*want)
				}
			})
		}
	}
}

// TestPipelineSipgen runs sipgen captures with and without the backend's
// responses: with the capture's secret every response is the proxy's own
// and is forwarded; with another secret every one is dropped as not ours.
func TestPipelineSipgen(t *testing.T) {
	c := sipgen.DefaultConfig()
	c.Calls, c.Registers, c.Options, c.Callers = 200, 30, 20, 50
	plain, _ := writeCapture(t, c)
	c.Responses, c.Secret = true, "replay-test-secret-0123456789"
	withResp, _ := writeCapture(t, c)

	s, err := Run(Options{Inputs: []string{plain}, Loop: 2, Workers: 2, SIPPorts: []uint16{5060}})
	if err != nil {
		t.Fatal(err)
	}
	checkVerdicts(t, s, 2, 2)
	if s.Pipeline.Verdicts["forwarded"] == 0 || len(s.Responses) != 0 {
		t.Fatalf("verdicts %v, responses %v: want requests forwarded and no responses in the capture", s.Pipeline.Verdicts, s.Responses)
	}

	s, err = Run(Options{Inputs: []string{withResp}, Loop: 2, Workers: 2, Secret: c.Secret, SIPPorts: []uint16{5060}})
	if err != nil {
		t.Fatal(err)
	}
	checkVerdicts(t, s, 2, 2)
	var responses uint64
	for _, n := range s.Responses {
		responses += n
	}
	if responses == 0 || s.Pipeline.Verdicts["dropped:response-not-ours"] != 0 {
		t.Fatalf("%d responses, verdicts %v: the capture's responses must be recognised as the proxy's own", responses, s.Pipeline.Verdicts)
	}

	s, err = Run(Options{Inputs: []string{withResp}, Loop: 2, Workers: 1, Secret: "some-other-secret-0123456789", SIPPorts: []uint16{5060}})
	if err != nil {
		t.Fatal(err)
	}
	checkVerdicts(t, s, 1, 2)
	if got := s.Pipeline.Verdicts["dropped:response-not-ours"]; got != responses {
		t.Fatalf("with another secret %d responses dropped as not ours, want all %d", got, responses)
	}
}

// TestPipelineAllocatesNothing: the whole replay, goroutines and all,
// allocates a fixed handful of times, however many messages run.
func TestPipelineAllocatesNothing(t *testing.T) {
	c := sipgen.DefaultConfig()
	c.Calls, c.Registers, c.Options, c.Callers = 300, 30, 30, 100
	c.Responses = true
	path, _ := writeCapture(t, c)
	s, err := Run(Options{Inputs: []string{path}, Loop: 20, Workers: 2, SIPPorts: []uint16{5060}})
	if err != nil {
		t.Fatal(err)
	}
	checkVerdicts(t, s, 2, 20)
	if total := s.Pipeline.AllocsPerMessage * float64(s.Sent); total > 200 {
		t.Fatalf("%.0f allocations over %d messages (%.4f per message): the hot path allocates", total, s.Sent, s.Pipeline.AllocsPerMessage)
	}
}

// TestCountedPortAllocatesNothing measures one worker loop on the replay's
// port directly, as testing.AllocsPerRun sees it.
func TestCountedPortAllocatesNothing(t *testing.T) {
	c := sipgen.DefaultConfig()
	c.Calls, c.Callers, c.Responses = 50, 20, true
	path, _ := writeCapture(t, c)
	var s Summary
	s.Requests, s.Responses = map[string]uint64{}, map[string]uint64{}
	l, err := load(&Options{Inputs: []string{path}, Loop: 1, SIPPorts: []uint16{5060}}, &s)
	if err != nil {
		t.Fatal(err)
	}
	cfg, _, err := config.Parse(sipedge.DefaultConfig, "embedded")
	if err != nil {
		t.Fatal(err)
	}
	cfg.Node.Secret = sipgen.DefaultSecret
	liftGuardLimits(cfg)
	node, err := appliance.OpenNode(&appliance.ModuleEnv{Cfg: cfg, Workers: 1, Self: l.self})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(node.Close)
	mp := memport.New(4*cfg.IO.Batch+16, 4096)
	for _, r := range l.recs {
		mp.In = append(mp.In, memport.Datagram{Payload: l.arena[r.off : r.off+r.n], Src: r.src, Dst: r.dst})
	}
	mp.Cycle, mp.Sink = true, discard
	cp := &countedPort{Port: mp, left: 1 << 40}
	w, err := node.NewWorker(cp, pipeline.Config{Core: -1, SampleEvery: sampleEvery})
	if err != nil {
		t.Fatal(err)
	}
	for range 100 { // warm-up
		w.Poll()
	}
	if a := testing.AllocsPerRun(200, func() { w.Poll() }); a != 0 {
		t.Fatalf("%v allocations per worker loop of %d messages", a, cfg.IO.Batch)
	}
	if st := w.Stats(); st.Rx < 300*uint64(cfg.IO.Batch) || st.Tx == 0 {
		t.Fatalf("received %d, transmitted %d: the loop did not run the messages", st.Rx, st.Tx)
	}
}

func TestPipelineCountsAndErrors(t *testing.T) {
	path, _ := genCapture(t)
	s, err := Run(Options{Inputs: []string{path}, Loop: 2, Workers: 3, SIPPorts: []uint16{5060}})
	if err != nil {
		t.Fatal(err)
	}
	checkVerdicts(t, s, 3, 2)
	// The malformed ones are counted, as dropped or answered, never lost.
	if s.Unparsed != 18 || s.Pipeline.Verdicts["responded"] == 0 {
		t.Fatalf("unparsed %d (want 9 x 2 loops), verdicts %v", s.Unparsed, s.Pipeline.Verdicts)
	}
	if _, err := Run(Options{Inputs: []string{path}, Config: filepath.Join(t.TempDir(), "absent.toml")}); err == nil {
		t.Fatal("a missing --config ran")
	}
	if _, err := Run(Options{Inputs: []string{path}, Secret: "short"}); err == nil {
		t.Fatal("a secret below 16 bytes ran")
	}
	if _, err := Run(Options{Inputs: []string{path}, Workers: 5000}); err == nil {
		t.Fatal("5000 workers ran")
	}
}

func TestShardBySource(t *testing.T) {
	a := netip.MustParseAddrPort("10.1.0.1:5060")
	if shardOf(a, 4) != shardOf(a, 4) {
		t.Fatal("one source on two workers")
	}
	seen := map[int]bool{}
	for i := range 64 {
		seen[shardOf(netip.AddrPortFrom(netip.AddrFrom4([4]byte{10, 1, 0, byte(i)}), 5060), 4)] = true
	}
	if len(seen) != 4 {
		t.Fatalf("64 sources reach %d of 4 workers", len(seen))
	}
}
