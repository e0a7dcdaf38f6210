package pipeline_test

import (
	"math"
	"net/netip"
	"strconv"
	"strings"
	"testing"

	"sipedge/pipeline"
	"sipedge/sipcore"
)

func TestForwardInitialRequest(t *testing.T) {
	r := newRig(t, pipeline.Config{})
	c := newCall(1)
	d, m := r.sendOne(caller, c.request("INVITE", false))
	if d.Dst != backendA && d.Dst != backendB {
		t.Fatalf("INVITE went to %v, not a backend", d.Dst)
	}
	if m.NVia != 2 || !testKey.IsOwnBranch(m.B(m.Vias[0].Branch)) {
		t.Fatalf("Vias = %d, top branch %q: want our Via pushed on top", m.NVia, m.B(m.Vias[0].Branch))
	}
	if got := string(m.B(m.Vias[1].Received)); got != "203.0.113.9" {
		t.Errorf("received = %q on the caller's Via", got)
	}
	if m.MaxForwards != 69 {
		t.Errorf("Max-Forwards = %d, want 69", m.MaxForwards)
	}
	if m.NRecordRoute != 1 || m.ParseAddress(&m.RecordRoutes[0]) != nil ||
		!strings.HasPrefix(string(m.B(m.RecordRoutes[0].URI.Raw)), "sip:192.0.2.1:5060;lr;se-rt=") {
		t.Errorf("Record-Route missing from an initial request")
	}
	if string(m.B(m.RURI.Raw)) != "sip:bob@example.com" {
		t.Errorf("Request-URI changed to %q", m.B(m.RURI.Raw))
	}

	// A retransmission gets the same branch and the same backend.
	d2, m2 := r.sendOne(caller, c.request("INVITE", false))
	if d2.Dst != d.Dst || string(m2.B(m2.Vias[0].Branch)) != string(m.B(m.Vias[0].Branch)) {
		t.Errorf("retransmission: %v branch %q, first %v branch %q", d2.Dst, m2.B(m2.Vias[0].Branch), d.Dst, m.B(m.Vias[0].Branch))
	}
	st := r.w.Stats()
	if st.Rx != 2 || st.Tx != 2 || st.Stages[3].Name != "route" || st.Stages[3].Verdicts[pipeline.Forward] != 2 {
		t.Errorf("counters: rx %d tx %d route %+v", st.Rx, st.Tx, st.Stages[3])
	}
}

func TestResponsePopsVia(t *testing.T) {
	r := newRig(t, pipeline.Config{})
	c := newCall(2)
	fwd, _ := r.sendOne(caller, c.request("INVITE", false))
	for _, code := range []int{100, 180, 200} {
		d, m := r.sendOne(fwd.Dst, respond(t, fwd.Payload, code, "X"))
		if d.Dst != caller {
			t.Fatalf("%d went to %v, want the caller %v (rport/received)", code, d.Dst, caller)
		}
		if m.NVia != 1 || string(m.B(m.Vias[0].Host)) != "203.0.113.9" {
			t.Fatalf("%d: Vias = %d (top %q), want only the caller's", code, m.NVia, m.B(m.Vias[0].Host))
		}
		if status(m) != code {
			t.Fatalf("status %d, want %d", status(m), code)
		}
	}
	// A response whose top Via is not ours is dropped and counted.
	resp := respond(t, []byte(c.request("INVITE", false)), 200, "OK")
	r.expectNothing(backendA, resp, pipeline.DropResponseNotOurs)
}

func TestCallIDStickiness(t *testing.T) {
	r := newRig(t, pipeline.Config{})
	const calls = 1000
	perBackend := map[netip.AddrPort]int{}
	for i := 0; i < calls; i++ {
		c := newCall(i)
		out := r.send(caller, c.request("INVITE", false), c.request("CANCEL", false), c.request("ACK", true), c.request("BYE", true))
		if len(out) != 4 {
			t.Fatalf("call %d: %d messages forwarded, want 4", i, len(out))
		}
		for _, d := range out[1:] {
			if d.Dst != out[0].Dst {
				t.Fatalf("call %d: INVITE to %v but a later message to %v", i, out[0].Dst, d.Dst)
			}
		}
		perBackend[out[0].Dst]++
	}
	for _, b := range []netip.AddrPort{backendA, backendB} {
		if n := perBackend[b]; math.Abs(float64(n)-calls/2) > 0.15*calls/2 {
			t.Errorf("backend %v got %d of %d calls, want within 15%% of %d", b, n, calls, calls/2)
		}
	}
}

func TestWeightsAndRemoval(t *testing.T) {
	c := netip.MustParseAddrPort("10.0.0.3:5060")
	bk, err := pipeline.NewBackends([]pipeline.BackendSpec{{Addr: backendA, Weight: 1}, {Addr: backendB, Weight: 1}, {Addr: c, Weight: 2}})
	if err != nil {
		t.Fatal(err)
	}
	const calls = 4000
	before := make([]netip.AddrPort, calls)
	share := map[netip.AddrPort]int{}
	s := bk.Load()
	for i := range before {
		before[i] = s.Backends[s.Pick([]byte(newCall(i).id))].Addr
		share[before[i]]++
	}
	if n := share[c]; math.Abs(float64(n)-calls/2) > 0.15*calls/2 {
		t.Errorf("weight 2 of 4 got %d of %d calls", n, calls)
	}
	// Remove B (a reload): only B's calls move.
	if err := bk.Replace([]pipeline.BackendSpec{{Addr: c, Weight: 2}, {Addr: backendA, Weight: 1}}); err != nil {
		t.Fatal(err)
	}
	s = bk.Load()
	for i := range before {
		after := s.Backends[s.Pick([]byte(newCall(i).id))].Addr
		if before[i] != backendB && after != before[i] {
			t.Fatalf("call %d moved from %v to %v though its backend stayed", i, before[i], after)
		}
	}
	// Down: no new calls; only its calls move.
	bk.SetUp(c, false)
	s = bk.Load()
	for i := 0; i < calls; i++ {
		if got := s.Backends[s.Pick([]byte(newCall(i).id))].Addr; got != backendA {
			t.Fatalf("call %d went to %v with only %v up", i, got, backendA)
		}
	}
	if err := bk.Replace([]pipeline.BackendSpec{{Addr: backendA, Weight: -1}}); err == nil {
		t.Error("a negative weight was accepted")
	}
	if err := bk.Replace([]pipeline.BackendSpec{{Addr: backendA, Weight: 1}, {Addr: backendA, Weight: 1}}); err == nil {
		t.Error("a duplicate backend was accepted")
	}
}

func TestReloadCarriesHealth(t *testing.T) {
	bk := newBackends(t, backendA, backendB)
	bk.SetUp(backendB, false)
	c := netip.MustParseAddrPort("10.0.0.3:5060")
	old := bk.Load()
	if err := bk.Replace([]pipeline.BackendSpec{{Addr: backendB, Weight: 1}, {Addr: c, Weight: 1}}); err != nil {
		t.Fatal(err)
	}
	select {
	case <-old.Changed():
	default:
		t.Fatal("old snapshot not marked changed")
	}
	s := bk.Load()
	if s.Up(backendB) || !s.Up(c) || s.IsBackend(backendA) {
		t.Errorf("after reload: B up=%v (want false, carried), new up=%v, A still a backend=%v", s.Up(backendB), s.Up(c), s.IsBackend(backendA))
	}
}

func TestAllBackendsDown(t *testing.T) {
	r := newRig(t, pipeline.Config{})
	r.bk.SetUp(backendA, false)
	r.bk.SetUp(backendB, false)
	c := newCall(3)
	d, m := r.sendOne(caller, c.request("INVITE", false))
	if status(m) != 503 || header(m, "Retry-After") != "7" || d.Dst != caller {
		t.Fatalf("got %d Retry-After %q to %v, want 503 with Retry-After 7 to the caller", status(m), header(m, "Retry-After"), d.Dst)
	}
	tag503 := string(m.B(m.To.Tag))
	r.expectNothing(caller, c.request("ACK", true), pipeline.DropNoBackend)
	// The ACK of our own 503 carries our To-tag: it ends here, even once a
	// backend is up again (no backend ever saw that INVITE).
	r.bk.SetUp(backendB, true)
	own := c
	own.toTag = tag503
	r.expectNothing(caller, own.request("ACK", true), pipeline.DropAckToSelf)
	if d, _ := r.sendOne(caller, c.request("INVITE", false)); d.Dst != backendB {
		t.Fatalf("with B back up the INVITE went to %v", d.Dst)
	}
}

func TestMaxForwardsAndLoop(t *testing.T) {
	r := newRig(t, pipeline.Config{})
	c := newCall(4)
	inv := strings.Replace(c.request("INVITE", false), "Max-Forwards: 70", "Max-Forwards: 0", 1)
	if _, m := r.sendOne(caller, inv); status(m) != 483 {
		t.Fatalf("Max-Forwards 0: got %d, want 483", status(m))
	}
	// Our own forward coming back unchanged is a loop.
	fwd, _ := r.sendOne(caller, c.request("INVITE", false))
	if _, m := r.sendOne(caller, string(fwd.Payload)); status(m) != 482 {
		t.Fatalf("looped request: got %d, want 482", status(m))
	}
}

func TestSanityRejections(t *testing.T) {
	r := newRig(t, pipeline.Config{})
	c := newCall(5)
	cases := []struct {
		name, msg string
		code      int
		hdr, val  string
	}{
		{"unknown scheme", strings.Replace(c.request("INVITE", false), "INVITE sip:bob@example.com", "INVITE mailto:bob@example.com", 1), 416, "", ""},
		{"proxy-require", c.request("INVITE", false, "Proxy-Require: foo, bar", "Proxy-Require: baz"), 420, "Unsupported", "foo, bar, baz"},
		{"missing call-id", strings.Replace(c.request("INVITE", false), "Call-ID: "+c.id+"\r\n", "", 1), 400, "", ""},
		{"bad cseq", strings.Replace(c.request("INVITE", false), "CSeq: 100 INVITE", "CSeq: x INVITE", 1), 400, "", ""},
		{"bad max-forwards", strings.Replace(c.request("INVITE", false), "Max-Forwards: 70", "Max-Forwards: many", 1), 400, "", ""},
	}
	for _, tc := range cases {
		out := r.send(caller, tc.msg)
		if len(out) != 1 {
			t.Fatalf("%s: %d datagrams sent, want 1", tc.name, len(out))
		}
		d := out[0]
		// A response to a request missing Call-ID cannot carry one, so it
		// does not parse as a message: check the status line as text.
		if !strings.HasPrefix(string(d.Payload), "SIP/2.0 "+strconv.Itoa(tc.code)+" ") || d.Dst != caller {
			t.Errorf("%s: got %q to %v, want %d to the caller", tc.name, strings.SplitN(string(d.Payload), "\r\n", 2)[0], d.Dst, tc.code)
		}
		if tc.hdr == "" {
			continue
		}
		if m := parse(t, d.Payload); header(m, tc.hdr) != tc.val {
			t.Errorf("%s: %s = %q, want %q", tc.name, tc.hdr, header(m, tc.hdr), tc.val)
		}
	}
	// Start-line errors come before any Via: nowhere to send an answer.
	r.expectNothing(caller, "HELLO WORLD\r\n\r\n", pipeline.DropUnparsable)
	// Another SIP version: its Via is read on, so it gets its 505.
	if _, m := r.sendOne(caller, strings.Replace(c.request("INVITE", false), "example.com SIP/2.0\r\n", "example.com SIP/7.0\r\n", 1)); m.StatusCode != 505 {
		t.Errorf("SIP/7.0 request: status %d, want 505", m.StatusCode)
	}
	r.expectNothing(caller, "\x00\x01\x02", pipeline.DropUnparsable)
	r.expectNothing(caller, strings.Replace(c.request("ACK", true), "CSeq: 100 ACK", "CSeq: x ACK", 1), pipeline.DropUnparsable)
	r.expectNothing(backendA, "SIP/2.0 999999 Broken\r\n\r\n", pipeline.DropUnparsable)
}

func TestOptionsToSelf(t *testing.T) {
	r := newRig(t, pipeline.Config{})
	ping := func(ruri string) string {
		return "OPTIONS " + ruri + " SIP/2.0\r\nVia: SIP/2.0/UDP 198.51.100.2:5060;branch=z9hG4bKping1\r\n" +
			"Max-Forwards: 0\r\nFrom: <sip:lb@198.51.100.2>;tag=p1\r\nTo: <" + ruri + ">\r\n" +
			"Call-ID: ping1@lb\r\nCSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n"
	}
	src := netip.MustParseAddrPort("198.51.100.2:5060")
	for _, ruri := range []string{"sip:192.0.2.1", "sip:192.0.2.1:5060", "sip:EDGE.example.com"} {
		d, m := r.sendOne(src, ping(ruri))
		if status(m) != 200 || d.Dst != src || !strings.Contains(header(m, "Allow"), "INVITE") || header(m, "Accept") == "" || m.To.Tag.Len == 0 {
			t.Errorf("OPTIONS %s: %d to %v Allow %q Accept %q To-tag %q", ruri, status(m), d.Dst, header(m, "Allow"), header(m, "Accept"), m.B(m.To.Tag))
		}
	}
	// Another port of ours is not ours; a user at our host is a call (forwarded).
	if d, m := r.sendOne(src, strings.Replace(ping("sip:192.0.2.1:5070"), "Max-Forwards: 0", "Max-Forwards: 5", 1)); d.Dst != backendA && d.Dst != backendB {
		t.Errorf("OPTIONS to another port: %d to %v, want forwarded", status(m), d.Dst)
	}
	inv := strings.Replace(ping("sip:192.0.2.1"), "OPTIONS", "INVITE", -1)
	if _, m := r.sendOne(src, inv); status(m) != 483 {
		t.Errorf("INVITE to self with Max-Forwards 0: %d, want 483", status(m))
	}
	if _, m := r.sendOne(src, strings.Replace(inv, "Max-Forwards: 0", "Max-Forwards: 9", 1)); status(m) != 404 {
		t.Errorf("INVITE to self: %d, want 404", status(m))
	}
	r.expectNothing(src, strings.Replace(ping("sip:192.0.2.1"), "OPTIONS", "ACK", -1), pipeline.DropAckToSelf)
}

// Every malformed input gets an answer or a counted drop, and frames never leak.
func TestNoLeakOnMixedInput(t *testing.T) {
	r := newRig(t, pipeline.Config{Batch: 8})
	c := newCall(6)
	msgs := []string{
		c.request("INVITE", false), "junk", "", "SIP/2.0 200 OK\r\n\r\n",
		c.request("ACK", true), c.request("OPTIONS", false, "Proxy-Require: x"),
		strings.Repeat("A", 3000),
	}
	for i := 0; i < 20; i++ {
		r.send(caller, msgs...)
	}
	st := r.w.Stats()
	var drops uint64
	for _, d := range st.Drops {
		drops += d
	}
	if st.Rx != uint64(20*len(msgs)) || st.Tx+drops != st.Rx {
		t.Errorf("rx %d = tx %d + drops %d does not hold", st.Rx, st.Tx, drops)
	}
	if n := r.port.FramesInUse(); n > 1 {
		t.Errorf("%d frames in use after the run (at most one spare allowed)", n)
	}
}

var _ = sipcore.MethodINVITE

// A backend drained to weight 0 gets no new calls, but an in-dialog
// request whose next hop (Request-URI: the backend's Contact, or the
// Route after ours) names it still reaches it; one that names no backend
// goes by the Call-ID hash, and so does a request to a backend that is
// down.
func TestInDialogFollowsDrainedBackend(t *testing.T) {
	r := newRig(t, pipeline.Config{})
	bk := r.bk
	// A call on each backend, found by trying Call-IDs.
	onto := map[netip.AddrPort]call{}
	for i := 0; len(onto) < 2 && i < 100; i++ {
		c := newCall(i)
		d, _ := r.sendOne(caller, c.request("INVITE", false))
		if _, ok := onto[d.Dst]; !ok {
			onto[d.Dst] = c
		}
	}
	cA, ok := onto[backendA]
	if !ok {
		t.Fatal("no call went to backend A")
	}
	if err := bk.Replace([]pipeline.BackendSpec{{Addr: backendA, Weight: 0}, {Addr: backendB, Weight: 1}}); err != nil {
		t.Fatal(err)
	}
	byeTo := func(ruri string, route ...string) string {
		bye := strings.Replace(cA.request("BYE", true, route...), "BYE sip:bob@example.com", "BYE "+ruri, 1)
		return bye
	}
	if d, _ := r.sendOne(caller, byeTo("sip:bob@"+backendA.String())); d.Dst != backendA {
		t.Errorf("BYE to the drained backend's Contact went to %v, want %v", d.Dst, backendA)
	}
	// Our Route first, then the backend's own Record-Route: the second
	// Route is the next hop, whatever the Request-URI says.
	if d, _ := r.sendOne(caller, byeTo("sip:bob@198.51.100.9:5060", "Route: <sip:"+backendA.String()+";lr>")); d.Dst != backendA {
		t.Errorf("BYE with the drained backend as the next Route went to %v, want %v", d.Dst, backendA)
	}
	if d, _ := r.sendOne(caller, byeTo("sip:bob@example.com")); d.Dst != backendB {
		t.Errorf("BYE naming no backend went to %v, want the hash's %v", d.Dst, backendB)
	}
	for i := 100; i < 150; i++ {
		if d, _ := r.sendOne(caller, newCall(i).request("INVITE", false)); d.Dst != backendB {
			t.Fatalf("new call %d went to %v, want only %v (A is drained)", i, d.Dst, backendB)
		}
	}
	bk.SetUp(backendA, false)
	if d, _ := r.sendOne(caller, byeTo("sip:bob@"+backendA.String())); d.Dst != backendB {
		t.Errorf("BYE to a backend that is down went to %v, want the hash's %v", d.Dst, backendB)
	}
}
