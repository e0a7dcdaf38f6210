package pipeline_test

import (
	"net/netip"
	"strings"
	"testing"

	"sipedge/pipeline"
	"sipedge/pipeline/chain"
	"sipedge/pipeline/memport"
	"sipedge/sipcore"
)

// routeRefused reads the route stage's sipedge_route_refused_total slots
// (no-token, bad-token, destination).
func (r *rig) routeRefused() []uint64 {
	r.t.Helper()
	for _, s := range r.w.Stats().Stages {
		if s.Name == "route" {
			return s.Counters
		}
	}
	r.t.Fatal("no route stage")
	return nil
}

// recordRoute sends the caller's INVITE through the edge and returns the
// Record-Route URI the backend sees, and that backend.
func (r *rig) recordRoute(c call, from netip.AddrPort) (string, netip.AddrPort) {
	r.t.Helper()
	d, m := r.sendOne(from, c.request("INVITE", false))
	if m.NRecordRoute != 1 || m.ParseAddress(&m.RecordRoutes[0]) != nil {
		r.t.Fatalf("no Record-Route on the forwarded INVITE:\n%s", d.Payload)
	}
	return string(m.B(m.RecordRoutes[0].URI.Raw)), d.Dst
}

// backendBYE is the backend's in-dialog BYE of c towards the caller, with
// route as its Route header ("" for none).
func backendBYE(c call, ruri, route string) string {
	var b strings.Builder
	b.WriteString("BYE " + ruri + " SIP/2.0\r\nVia: SIP/2.0/UDP 10.0.0.1:5060;branch=z9hG4bKb2b" + c.fromTag + "\r\nMax-Forwards: 70\r\n")
	if route != "" {
		b.WriteString("Route: <" + route + ">\r\n")
	}
	b.WriteString("From: Bob <sip:bob@example.com>;tag=" + c.toTag + "\r\nTo: Alice <sip:alice@example.com>;tag=" + c.fromTag + "\r\n")
	b.WriteString("Call-ID: " + c.id + "\r\nCSeq: 1 BYE\r\nContent-Length: 0\r\n\r\n")
	return b.String()
}

// In-dialog requests from a backend go to the caller address the signed
// Record-Route token binds, whatever the Request-URI says (a caller behind
// NAT whose Contact is private is reachable). Without the token, with a
// token of another call or from another source, they are refused with
// 403 and counted: a spoofed backend source cannot make the edge relay.
func TestBackendInDialogNeedsToken(t *testing.T) {
	r := newRig(t, pipeline.Config{})
	c := newCall(1)
	natted := netip.MustParseAddrPort("198.51.100.20:61000") // the NAT's public side
	rr, be := r.recordRoute(c, natted)
	d, m := r.sendOne(be, backendBYE(c, "sip:alice@192.168.1.5:5060", rr))
	if d.Dst != natted {
		t.Fatalf("BYE from the backend went to %v, want the caller's observed %v", d.Dst, natted)
	}
	if m.NRoute != 0 || m.NRecordRoute != 0 || m.NVia != 2 || string(m.B(m.RURI.Raw)) != "sip:alice@192.168.1.5:5060" {
		t.Errorf("Routes %d (ours removed), Record-Routes %d, Vias %d, Request-URI %q (kept)", m.NRoute, m.NRecordRoute, m.NVia, m.B(m.RURI.Raw))
	}

	// The attack: in-dialog requests aimed at a third party.
	victim := "sip:x@198.51.100.99:5060"
	for _, tc := range []struct {
		name, route string
		slot        int
		otherCall   bool
	}{
		{"no Route", "", 0, false},
		{"our Route without a token", "sip:192.0.2.1:5060;lr", 0, false},
		{"a foreign Route", "sip:198.51.100.99:5060;lr", 0, false},
		{"the token of another call", rr, 1, true},
		{"a forged token", rr[:strings.Index(rr, "se-rt=")+6] + "c6336463-13c4-0123456789abcdef", 1, false},
	} {
		cc := c
		if tc.otherCall {
			cc = newCall(2)
		}
		before := r.routeRefused()[tc.slot]
		_, m := r.sendOne(be, backendBYE(cc, victim, tc.route))
		if m.IsRequest || m.StatusCode != 403 {
			t.Errorf("%s: got %s, want 403 back to the backend address", tc.name, m.Buf())
		}
		if got := r.routeRefused()[tc.slot]; got != before+1 {
			t.Errorf("%s: refused[%d] = %d, want %d", tc.name, tc.slot, got, before+1)
		}
	}
	// An ACK cannot be answered: dropped, counted.
	ack := strings.Replace(strings.Replace(backendBYE(c, victim, ""), "BYE ", "ACK ", 1), "1 BYE", "1 ACK", 1)
	before := r.routeRefused()[0]
	r.expectNothing(be, ack, pipeline.DropPolicy)
	if r.routeRefused()[0] != before+1 {
		t.Error("refused ACK not counted")
	}
}

// A backend is an address and port: a caller on a backend's IP (edge and
// PBX on one host) from another port is a caller, routed to a backend,
// not refused or looped.
func TestCallerOnBackendIP(t *testing.T) {
	r := newRig(t, pipeline.Config{})
	sameHost := netip.AddrPortFrom(backendA.Addr(), 40002)
	d, m := r.sendOne(sameHost, newCall(3).request("INVITE", false))
	if !m.IsRequest || (d.Dst != backendA && d.Dst != backendB) {
		t.Fatalf("INVITE from %v: sent %v to %v, want it forwarded to a backend", sameHost, m.Buf(), d.Dst)
	}
}

// Initial requests from a backend go only where [dispatcher]
// backend_destinations allows: none by default (403, counted).
func TestBackendInitialDestinations(t *testing.T) {
	inv := func(ruri string) string {
		return "INVITE " + ruri + " SIP/2.0\r\nVia: SIP/2.0/UDP 10.0.0.1:5060;branch=z9hG4bKbi1\r\nMax-Forwards: 70\r\n" +
			"From: <sip:pbx@example.com>;tag=p1\r\nTo: <sip:x@example.net>\r\nCall-ID: out-1@pbx\r\nCSeq: 1 INVITE\r\nContent-Length: 0\r\n\r\n"
	}
	r := newRig(t, pipeline.Config{})
	_, m := r.sendOne(backendA, inv("sip:x@198.51.100.7:5060"))
	if m.IsRequest || m.StatusCode != 403 {
		t.Fatalf("initial request from a backend with no destinations allowed: %s, want 403", m.Buf())
	}
	if got := r.routeRefused()[2]; got != 1 {
		t.Errorf("refused[destination] = %d, want 1", got)
	}

	// Allowed: 198.51.100.0/24 only.
	bk := newBackends(t, backendA, backendB)
	p, err := chain.Proxy(chain.ProxyConfig{Key: &testKey, SentBy: edgeAddr.String(), RecordRoute: "sip:192.0.2.1:5060;lr",
		Names: []string{"192.0.2.1"}, Backends: bk, BackendDestinations: []netip.Prefix{netip.MustParsePrefix("198.51.100.0/24")}})
	if err != nil {
		t.Fatal(err)
	}
	r2 := &rig{t: t, port: memport.New(64, 4096), bk: bk, proxy: p}
	r2.w = r2.withStages(pipeline.Config{})
	if d, m := r2.sendOne(backendA, inv("sip:x@198.51.100.7:5060")); !m.IsRequest || d.Dst != netip.MustParseAddrPort("198.51.100.7:5060") {
		t.Errorf("allowed destination: sent %s to %v", m.Buf(), d.Dst)
	}
	if _, m := r2.sendOne(backendA, inv("sip:x@203.0.113.50:5060")); m.IsRequest || m.StatusCode != 403 {
		t.Errorf("destination outside the allowed prefix: %s, want 403", m.Buf())
	}
}

// The Call-ID hash is keyed: the same pick for the same key (every node
// of a cluster), another spread under another key.
func TestCallIDHashKeyed(t *testing.T) {
	pick := func(k *sipcore.Key) []int {
		bk := newBackends(t, backendA, backendB, netip.MustParseAddrPort("10.0.0.3:5060"), netip.MustParseAddrPort("10.0.0.4:5060"))
		bk.SetKey(k)
		s := bk.Load()
		var out []int
		for i := 0; i < 200; i++ {
			out = append(out, s.Pick([]byte(newCall(i).id)))
		}
		return out
	}
	other := sipcore.NewKey([]byte("another cluster secret, 32 bytes"))
	same := sipcore.NewKey([]byte("pipeline test cluster secret 32b"))
	a, b, c := pick(&testKey), pick(&same), pick(&other)
	moved := 0
	for i := range a {
		if a[i] != b[i] {
			t.Fatalf("call %d: two nodes with one secret picked %d and %d", i, a[i], b[i])
		}
		if a[i] != c[i] {
			moved++
		}
	}
	if moved < 100 {
		t.Errorf("only %d of 200 calls changed backend under another key: the hash is not keyed", moved)
	}
}

// Relaying through the route token allocates nothing: the backend's
// in-dialog BYEs (token checked, sent to the caller it binds) and forged
// ones (refused with 403), cycled through a worker.
func TestBackendRelayAllocatesNothing(t *testing.T) {
	r := newRig(t, pipeline.Config{Batch: 64})
	c := newCall(7)
	rr, be := r.recordRoute(c, caller)
	good := dgram(be, backendBYE(c, "sip:alice@192.168.1.5:5060", rr))
	forged := dgram(be, backendBYE(c, "sip:x@198.51.100.99:5060", "sip:192.0.2.1:5060;lr"))
	for i := 0; i < 64; i++ {
		if i%2 == 0 {
			r.port.In = append(r.port.In, good)
		} else {
			r.port.In = append(r.port.In, forged)
		}
	}
	poll, _ := r.cycle(t, 10)
	before := r.w.Stats()
	if a := testing.AllocsPerRun(50, poll); a != 0 {
		t.Fatalf("%v allocations per batch of 64 backend requests, want 0", a)
	}
	if after := r.w.Stats(); after.Rx-before.Rx < 3000 || r.routeRefused()[0] < 1500 {
		t.Fatalf("rx %d, refused %v: the cycle did not run both kinds", after.Rx-before.Rx, r.routeRefused())
	}
}
