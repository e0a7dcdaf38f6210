package guard_test

import (
	"fmt"
	"io"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	"sipedge/pipeline"
	"sipedge/pipeline/chain"
	"sipedge/pipeline/memport"
	"sipedge/pipeline/port"
	"sipedge/pipeline/stages/guard"
	"sipedge/sipcore"
)

var (
	testKey  = sipcore.NewKey([]byte("guard test cluster secret 32 byt"))
	edgeAddr = netip.MustParseAddrPort("192.0.2.1:5060")
	backendA = netip.MustParseAddrPort("10.0.0.1:5060")
	backendB = netip.MustParseAddrPort("10.0.0.2:5060")
)

// rig is one worker running guard + the proxy stages over a memport, on a
// clock the test moves.
type rig struct {
	t     testing.TB
	port  *memport.Port
	w     *pipeline.Worker
	g     *guard.Guard
	stage *guard.Stage
	clock int64
	sent  []memport.Datagram
}

func newRig(t testing.TB, gc guard.Config, wc pipeline.Config) *rig {
	t.Helper()
	r := &rig{t: t, port: memport.New(1024, 4096), clock: int64(time.Hour)}
	bk, err := pipeline.NewBackends([]pipeline.BackendSpec{{Addr: backendA, Weight: 1}, {Addr: backendB, Weight: 1}})
	if err != nil {
		t.Fatal(err)
	}
	proxy, err := chain.Proxy(chain.ProxyConfig{
		Key: &testKey, SentBy: edgeAddr.String(), RecordRoute: "sip:192.0.2.1:5060;lr",
		Names: []string{"192.0.2.1"}, Backends: bk,
	})
	if err != nil {
		t.Fatal(err)
	}
	now := func() int64 { return r.clock }
	gc.Now = now
	// Backends answer and send in-dialog requests: never limit them.
	gc.Allow = append(gc.Allow, netip.PrefixFrom(backendA.Addr(), 32), netip.PrefixFrom(backendB.Addr(), 32))
	if wc.Batch == 0 {
		wc.Batch = 64
	}
	gc.Batch = wc.Batch
	if r.g, err = guard.New(gc); err != nil {
		t.Fatal(err)
	}
	stages, err := chain.Default.Without("auth").Makers(append(proxy, r.g)...)
	if err != nil {
		t.Fatal(err)
	}
	wc.Key, wc.Core, wc.Now = &testKey, -1, now
	r.w, err = pipeline.NewWorker(r.port, wc, stages)
	if err != nil {
		t.Fatal(err)
	}
	r.stage = r.g.Stage(0)
	r.port.Sink = func(p *port.Packet) {
		r.sent = append(r.sent, memport.Datagram{Payload: append([]byte(nil), p.Payload...), Src: p.Src, Dst: p.Dst})
	}
	return r
}

// run delivers datagrams at the current clock and polls until all are in.
func (r *rig) run(in ...memport.Datagram) {
	r.t.Helper()
	r.port.In = append(r.port.In, in...)
	for i := 0; i < 10000; i++ {
		_, err := r.w.Poll()
		if err == io.EOF {
			break
		}
		if err != nil {
			r.t.Fatal(err)
		}
	}
	r.w.Poll() // publish: the guard publishes at the start of a batch
}

type call struct {
	id, fromTag string
	src         netip.AddrPort
}

func (c call) req(method string, inDialog bool, ua string) memport.Datagram {
	to := "To: <sip:bob@example.com>"
	route := ""
	if inDialog {
		to += ";tag=tt" + c.fromTag
		route = "Route: <sip:192.0.2.1:5060;lr>\r\n"
	}
	cseq := 1
	if method == "BYE" {
		cseq = 2
	}
	branch := "z9hG4bK" + c.fromTag + method
	if method == "ACK" {
		branch = "z9hG4bK" + c.fromTag + "INVITE"
	}
	var b strings.Builder
	fmt.Fprintf(&b, "%s sip:bob@example.com SIP/2.0\r\n", method)
	fmt.Fprintf(&b, "Via: SIP/2.0/UDP %s;branch=%s;rport\r\nMax-Forwards: 70\r\n%s", c.src, branch, route)
	fmt.Fprintf(&b, "%s\r\nFrom: <sip:alice@example.com>;tag=%s\r\nCall-ID: %s\r\nCSeq: %d %s\r\n", to, c.fromTag, c.id, cseq, method)
	fmt.Fprintf(&b, "Contact: <sip:alice@%s>\r\nUser-Agent: %s\r\nContent-Length: 0\r\n\r\n", c.src, ua)
	return memport.Datagram{Payload: []byte(b.String()), Src: c.src, Dst: edgeAddr}
}

func registerFrom(src netip.AddrPort, n int, ua string) memport.Datagram {
	c := call{id: fmt.Sprintf("reg-%d@flood", n), fromTag: fmt.Sprint(n), src: src}
	d := c.req("REGISTER", false, ua)
	return d
}

// TestAbuseMix runs 30 simulated seconds of legitimate calls mixed with a
// REGISTER flood, a scanner sweep and non-SIP garbage through a worker:
// every legitimate message is forwarded; the flood is answered 503 with
// Retry-After, then banned after BanAfter; the scanner is banned on its
// first message; the counts add up exactly.
func TestAbuseMix(t *testing.T) {
	fb := &fakeBanner{}
	r := newRig(t, guard.Config{Banner: fb}, pipeline.Config{})
	flood := netip.MustParseAddrPort("198.51.100.66:5060")
	scanner := netip.MustParseAddrPort("198.51.100.99:5070")
	const (
		seconds  = 30
		tick     = 10 * time.Millisecond
		floodPer = 2 // REGISTERs per tick: 200/s
	)
	var legitSent, floodSent, scanSent, garbageSent int
	calls := 0
	for step := 0; step < int(seconds*time.Second/tick); step++ {
		var in []memport.Datagram
		// 20 callers, each a call every 2 s: INVITE now, ACK and BYE later.
		if step%10 == 0 {
			caller := step / 10 % 20
			src := netip.AddrPortFrom(netip.AddrFrom4([4]byte{203, 0, 113, byte(10 + caller)}), 5060)
			c := call{id: fmt.Sprintf("legit-%d@pc", calls), fromTag: fmt.Sprint(calls), src: src}
			calls++
			in = append(in, c.req("INVITE", false, "Zoiper rv2.10"), c.req("ACK", true, "Zoiper rv2.10"), c.req("BYE", true, "Zoiper rv2.10"))
			legitSent += 3
		}
		for i := 0; i < floodPer; i++ {
			in = append(in, registerFrom(flood, floodSent, "Grandstream"))
			floodSent++
		}
		if step%3 == 0 && scanSent < 100 {
			c := call{id: fmt.Sprintf("scan-%d", scanSent), fromTag: "1", src: scanner}
			d := c.req("OPTIONS", false, "friendly-scanner")
			in = append(in, d)
			scanSent++
		}
		if step%30 == 0 {
			src := netip.AddrPortFrom(netip.AddrFrom4([4]byte{100, 64, byte(step >> 8), byte(step)}), 4444)
			in = append(in, memport.Datagram{Payload: []byte("\x16\x03\x01\x00\xa5garbage"), Src: src, Dst: edgeAddr})
			garbageSent++
		}
		r.run(in...)
		r.clock += int64(tick)
	}
	r.g.Drain()

	legitFwd, floodFwd, flood503 := 0, 0, 0
	for _, d := range r.sent {
		p := string(d.Payload)
		switch {
		case strings.Contains(p, "Call-ID: legit-") && (d.Dst == backendA || d.Dst == backendB):
			legitFwd++
		case strings.Contains(p, "@flood") && strings.HasPrefix(p, "REGISTER") && (d.Dst == backendA || d.Dst == backendB):
			floodFwd++
		case strings.HasPrefix(p, "SIP/2.0 503 ") && d.Dst == flood:
			if !strings.Contains(p, "\r\nRetry-After: 5\r\n") {
				t.Fatalf("503 without Retry-After:\n%s", p)
			}
			flood503++
		default:
			t.Errorf("unexpected datagram to %v:\n%s", d.Dst, p)
		}
	}
	st := r.g.Stats()
	t.Logf("legit %d/%d forwarded; flood %d sent, %d forwarded, %d answered 503; stats %+v", legitFwd, legitSent, floodSent, floodFwd, flood503, st)
	if legitFwd != legitSent {
		t.Errorf("%d of %d legitimate messages forwarded", legitFwd, legitSent)
	}
	if got := st.Rejects[guard.ReasonRateRegister]; got != uint64(flood503) || flood503 == 0 {
		t.Errorf("503s sent %d, counted %d", flood503, got)
	}
	// The scanner's first ScannerMatches (5) OPTIONS are dropped as
	// scanner, the last of them bans it.
	const scanMatches = 5
	// Flood: every message is forwarded, answered, or dropped as over the
	// limit or banned. The scanner's and the flood's banned drops share
	// one counter.
	banned := st.Drops[guard.ReasonBanned]
	if uint64(floodFwd)+uint64(flood503)+st.Drops[guard.ReasonRateRegister]+banned != uint64(floodSent+scanSent-scanMatches) {
		t.Errorf("flood %d + scanner %d: forwarded %d + 503 %d + over-limit drops %d + banned drops %d do not add up",
			floodSent, scanSent-scanMatches, floodFwd, flood503, st.Drops[guard.ReasonRateRegister], banned)
	}
	// Burst 50, then 10/s until the ban 10 s into the excess.
	if floodFwd < 140 || floodFwd > 170 {
		t.Errorf("flood forwarded %d REGISTERs, want about 50 + 10/s x 10 s", floodFwd)
	}
	if st.Bans[guard.ReasonRateRegister] != 1 || st.Bans[guard.ReasonScanner] != 1 || st.Drops[guard.ReasonScanner] != scanMatches {
		t.Errorf("bans %v scanner drops %d, want one rate ban and one scanner ban", st.Bans, st.Drops[guard.ReasonScanner])
	}
	if st.Drops[guard.ReasonNotSIP] != uint64(garbageSent) {
		t.Errorf("not-SIP drops %d, want %d", st.Drops[guard.ReasonNotSIP], garbageSent)
	}
	calls2 := fb.get()
	if len(calls2) != 2 {
		t.Fatalf("banner got %+v, want the flood and the scanner", calls2)
	}
	bans := r.g.Bans()
	if len(bans) != 2 || bans[0].Addr != flood.Addr() || bans[1].Addr != scanner.Addr() || bans[1].Dropped != uint64(scanSent-scanMatches) {
		t.Fatalf("bans %+v", bans)
	}
	// What the exporter reads (appliance/metrics.go names the families
	// from Def): the worker's per-stage counters and the guard's own.
	gst := r.g.Stats()
	if gst.Rejects[guard.ReasonRateRegister] != uint64(flood503) || gst.Drops[guard.ReasonNotSIP] != uint64(garbageSent) ||
		gst.Bans[guard.ReasonScanner] != 1 || gst.XDPBans != 2 {
		t.Errorf("guard stats %+v: want %d rate-register rejects, %d not-sip drops, 1 scanner ban, 2 XDP bans", gst, flood503, garbageSent)
	}
	ws := r.w.Stats()
	if ws.Drops[pipeline.DropPolicy] != st.Drops[guard.ReasonRateRegister]+banned+st.Drops[guard.ReasonScanner]+st.Drops[guard.ReasonNotSIP] {
		t.Errorf("worker policy drops %d do not match the guard's", ws.Drops[pipeline.DropPolicy])
	}
}

// TestOverloadSheds: with the worker's batches full, new INVITEs get 503
// while in-dialog requests keep flowing; a batch that is not full ends it.
func TestOverloadSheds(t *testing.T) {
	r := newRig(t, guard.Config{OverloadBatches: 3}, pipeline.Config{Batch: 8})
	var in []memport.Datagram
	for i := 0; i < 80; i++ {
		src := netip.AddrPortFrom(netip.AddrFrom4([4]byte{203, 0, 113, byte(i)}), 5060)
		c := call{id: fmt.Sprintf("ov-%d@pc", i), fromTag: fmt.Sprint(i), src: src}
		if i%2 == 0 {
			in = append(in, c.req("BYE", true, "x"))
		} else {
			in = append(in, c.req("INVITE", false, "x"))
		}
	}
	r.run(in...)
	byes, invites, shed := 0, 0, 0
	for _, d := range r.sent {
		p := string(d.Payload)
		switch {
		case strings.HasPrefix(p, "BYE "):
			byes++
		case strings.HasPrefix(p, "INVITE "):
			invites++
		case strings.HasPrefix(p, "SIP/2.0 503 ") && strings.Contains(p, "Retry-After: 5\r\n"):
			shed++
		}
	}
	// Batches 1-3 are full but overload is judged at the start of the
	// next batch: batches 4 to 10 shed their 4 INVITEs each.
	if byes != 40 || invites != 12 || shed != 28 {
		t.Fatalf("BYE forwarded %d (want 40), INVITE forwarded %d (want 12), shed %d (want 28)", byes, invites, shed)
	}
	if st := r.g.Stats(); st.Rejects[guard.ReasonOverload] != 28 {
		t.Fatalf("overload rejects %d", st.Rejects[guard.ReasonOverload])
	}
	if st := r.g.Stats(); st.OverloadBatches != 10 {
		t.Fatalf("full batches counted %d, want 10", st.OverloadBatches)
	}
	// The idle polls since ended the overload: INVITEs pass again.
	r.sent = nil
	c := call{id: "after@pc", fromTag: "z", src: netip.MustParseAddrPort("203.0.113.200:5060")}
	r.run(c.req("INVITE", false, "x"))
	r.run(c.req("INVITE", false, "x"))
	if r.stage.Overloaded() || len(r.sent) != 2 || !strings.HasPrefix(string(r.sent[1].Payload), "INVITE ") {
		t.Fatalf("after the load: overloaded %v, sent %d", r.stage.Overloaded(), len(r.sent))
	}
}

// TestWorkerWithGuardAllocatesNothing: a full worker iteration with the
// guard answering 503s and dropping allocates nothing.
func TestWorkerWithGuardAllocatesNothing(t *testing.T) {
	// Every batch of the cycled input is full: keep overload shedding out
	// of the way so the rate-limit path is the one exercised.
	r := newRig(t, guard.Config{Register: guard.Limit{Rate: 1, Burst: 1}, BanAfter: time.Hour, OverloadBatches: 1 << 30}, pipeline.Config{})
	r.port.Sink = func(*port.Packet) {}
	flood := netip.MustParseAddrPort("198.51.100.66:5060")
	for i := 0; i < 64; i++ {
		c := call{id: fmt.Sprintf("a-%d@pc", i), fromTag: fmt.Sprint(i), src: netip.AddrPortFrom(netip.AddrFrom4([4]byte{203, 0, 113, byte(i)}), 5060)}
		r.port.In = append(r.port.In, c.req("INVITE", false, "x"), registerFrom(flood, i, "x"))
	}
	r.port.Cycle = true
	n := testing.AllocsPerRun(200, func() {
		r.clock += int64(time.Millisecond)
		if _, err := r.w.Poll(); err != nil {
			t.Fatal(err)
		}
	})
	if n != 0 {
		t.Fatalf("%v allocations per Poll", n)
	}
	if st := r.g.Stats(); st.Rejects[guard.ReasonRateRegister] == 0 || st.Passed == 0 {
		t.Fatalf("the loop did not exercise both paths: %+v", st)
	}
}

type fakeBanner struct {
	mu    sync.Mutex
	calls []netip.Addr
}

func (f *fakeBanner) Ban(a netip.Addr, ttl time.Duration) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls = append(f.calls, a)
	return nil
}

func (f *fakeBanner) get() []netip.Addr {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]netip.Addr(nil), f.calls...)
}
