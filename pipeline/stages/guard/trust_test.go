package guard

import (
	"fmt"
	"net/netip"
	"testing"
	"time"

	"sipedge/pipeline"
)

func registerFromTo(from string) []byte {
	return []byte("REGISTER sip:example.com SIP/2.0\r\nVia: SIP/2.0/UDP 203.0.113.5:5060;branch=z9hG4bKx\r\n" +
		"Max-Forwards: 70\r\nFrom: " + from + ";tag=a\r\nTo: <sip:1000@example.com>\r\n" +
		"Call-ID: r1\r\nCSeq: 1 REGISTER\r\nContent-Length: 0\r\n\r\n")
}

// Bans only on evidence a third party cannot forge for someone else: a
// display name or From/To signature drops, however often, and never bans;
// a User-Agent signature bans after ScannerMatches; allow-listed,
// backend and trusted sources are never banned (counted as spared).
func TestBansNeedUnforgeableEvidence(t *testing.T) {
	fb := &fakeBanner{}
	trunk := netip.MustParsePrefix("198.51.100.0/24")
	backend := netip.MustParseAddrPort("192.0.2.50:5060")
	g, err := New(Config{Banner: fb, Now: func() int64 { return 1 }, OverLimit: Silent, ScannerMatches: 3,
		NeverBan: []netip.Prefix{trunk}, Backends: []netip.AddrPort{backend}, Allow: []netip.Prefix{netip.MustParsePrefix("203.0.113.200/32")}})
	if err != nil {
		t.Fatal(err)
	}
	s := soloStage(t, g)
	var ctx pipeline.Ctx
	carrier := netip.MustParseAddrPort("198.51.100.7:5060")
	caller := netip.MustParseAddrPort("203.0.113.9:5060")
	for i := 0; i < 20; i++ {
		if v := proc(s, &ctx, registerFromTo(`"sipvicious" <sip:100@x>`), caller, 1); v != pipeline.Drop {
			t.Fatalf("From signature: %v, want a drop", v)
		}
	}
	g.Drain()
	if len(fb.get()) != 0 || len(g.Bans()) != 0 {
		t.Fatalf("a From/To signature banned: %+v %+v", fb.get(), g.Bans())
	}
	if v := proc(s, &ctx, register("Zoiper"), caller, 1); v != pipeline.Continue {
		t.Fatalf("after From/To matches the caller's clean message: %v, want it through", v)
	}
	// User-Agent: 3 matches ban; from a trusted network, never.
	for _, src := range []netip.AddrPort{caller, carrier, netip.AddrPortFrom(backend.Addr(), 40000)} {
		for i := 0; i < 3; i++ {
			proc(s, &ctx, register("friendly-scanner"), src, 1)
		}
	}
	// Auth failures from a trusted network, and from a backend's IP.
	for i := 0; i < 20; i++ {
		s.AuthFailed(carrier.Addr(), 1)
		s.AuthFailed(backend.Addr(), 1)
	}
	startBatch(s, 1)
	g.Drain()
	if got := fb.get(); len(got) != 1 || got[0].addr != caller.Addr() {
		t.Errorf("banner calls %+v, want only the caller's scanner ban", got)
	}
	if st := g.Stats(); st.BansSpared < 4 {
		t.Errorf("BansSpared %d, want the trunk's, the backend host's and the auth failures' bans spared", st.BansSpared)
	}
	if v := proc(s, &ctx, register("PBX"), carrier, 1); v != pipeline.Continue {
		t.Errorf("trusted carrier after scanner matches and auth failures: %v, want it through", v)
	}
}

// A backend is an address and port: it has its own (high) limit instead
// of being exempt; a source on its IP from another port has the callers'
// limits.
func TestBackendOwnLimit(t *testing.T) {
	backend := netip.MustParseAddrPort("192.0.2.50:5060")
	g, err := New(Config{Now: func() int64 { return 1 }, OverLimit: Silent, BanAfter: time.Hour,
		Register: Limit{Rate: 1, Burst: 2}, Backend: Limit{Rate: 1, Burst: 10}, Backends: []netip.AddrPort{backend}})
	if err != nil {
		t.Fatal(err)
	}
	s := soloStage(t, g)
	var ctx pipeline.Ctx
	passed := 0
	for i := 0; i < 15; i++ {
		if proc(s, &ctx, register("PBX"), backend, 1) == pipeline.Continue {
			passed++
		}
	}
	if passed != 10 {
		t.Errorf("backend: %d of 15 passed, want its own burst of 10", passed)
	}
	solos[s].Publish()
	if st := g.Stats(); st.Drops[ReasonRateBackend] != 5 {
		t.Errorf("rate-backend drops %d, want 5", st.Drops[ReasonRateBackend])
	}
	sameHost := netip.AddrPortFrom(backend.Addr(), 40000)
	passed = 0
	for i := 0; i < 5; i++ {
		if proc(s, &ctx, register("PBX"), sameHost, 1) == pipeline.Continue {
			passed++
		}
	}
	if passed != 2 {
		t.Errorf("a caller on the backend's host: %d of 5 REGISTERs passed, want the callers' burst of 2", passed)
	}
}

// A ban queued by a worker for an address allow-listed before the ban
// goroutine saw it does not land; the registry is bounded, refusals
// counted; lapsed bans are pruned, in the Banner too.
func TestRegistryBoundedAndAllowWins(t *testing.T) {
	fb := &prunedBanner{}
	clock := int64(1)
	g, err := New(Config{Banner: fb, Now: func() int64 { return clock }, MaxRegistry: 16, BanTTL: time.Minute, AuthFailures: 1})
	if err != nil {
		t.Fatal(err)
	}
	s := soloStage(t, g)
	late := netip.MustParseAddr("203.0.113.77")
	s.AuthFailed(late, clock)
	if err := g.Allow(netip.PrefixFrom(late, 32)); err != nil {
		t.Fatal(err)
	}
	g.Drain()
	startBatch(s, clock)
	if len(fb.get()) != 0 || len(g.Bans()) != 0 {
		t.Fatalf("a ban queued before the allow-list entry landed: %+v %+v", fb.get(), g.Bans())
	}
	for i := 0; i < 20; i++ {
		s.AuthFailed(netip.AddrFrom4([4]byte{10, 9, 0, byte(i)}), clock)
	}
	g.Drain()
	solos[s].Publish()
	st := g.Stats()
	if st.RegistryAllowed != 1 || st.RegistryFull != 4 || len(fb.get()) != 16 {
		t.Errorf("registry refused %d (allow-listed, want 1) and %d (full, want 4); banner got %d, want 16", st.RegistryAllowed, st.RegistryFull, len(fb.get()))
	}
	clock += int64(time.Minute)
	if n := g.prune(); n != 16 {
		t.Errorf("pruned %d lapsed bans, want 16", n)
	}
	g.pruneBelow()
	if fb.prunes != 1 {
		t.Errorf("Banner pruned %d times, want 1", fb.prunes)
	}
	s.AuthFailed(netip.MustParseAddr("10.9.1.1"), clock)
	g.Drain()
	if len(g.Bans()) != 1 {
		t.Errorf("after pruning, a new ban: %+v", g.Bans())
	}
}

type prunedBanner struct {
	fakeBanner
	prunes int
}

func (p *prunedBanner) PruneBans() (int, error) { p.prunes++; return 0, nil }

// Fair shedding: with the worker overloaded by one heavy source, a source
// within its limits is not shed; without heavy sources, shedding takes
// every new request as before.
func TestFairShedding(t *testing.T) {
	g, err := New(Config{Now: func() int64 { return 1 }, Batch: 8, OverloadBatches: 1, OverloadFill: 100, BanAfter: time.Hour,
		OverLimit: Silent, Invite: Limit{Rate: 10, Burst: 10}})
	if err != nil {
		t.Fatal(err)
	}
	s := soloStage(t, g)
	var ctx pipeline.Ctx
	inv := func(ua string) []byte {
		return []byte("INVITE sip:bob@example.com SIP/2.0\r\nVia: SIP/2.0/UDP 203.0.113.5:5060;branch=z9hG4bKx\r\n" +
			"Max-Forwards: 70\r\nFrom: <sip:a@example.com>;tag=a\r\nTo: <sip:bob@example.com>\r\n" +
			"Call-ID: c1\r\nCSeq: 1 INVITE\r\nUser-Agent: " + ua + "\r\nContent-Length: 0\r\n\r\n")
	}
	flood := netip.MustParseAddrPort("198.51.100.66:5060")
	caller := netip.MustParseAddrPort("203.0.113.9:5060")
	now := int64(1)
	legitPassed, legitSent := 0, 0
	for batch := 0; batch < 50; batch++ {
		s.StartBatch(now, 8)
		for i := 0; i < 7; i++ {
			proc(s, &ctx, inv("flood"), flood, now)
		}
		if batch%5 == 1 { // 2 calls/s: well within its limits
			legitSent++
			if proc(s, &ctx, inv("Zoiper"), caller, now) == pipeline.Continue {
				legitPassed++
			}
		} else {
			proc(s, &ctx, inv("flood"), flood, now)
		}
		now += int64(100 * time.Millisecond)
	}
	if legitPassed != legitSent {
		t.Errorf("the caller within its limits: %d of %d INVITEs passed while one source flooded", legitPassed, legitSent)
	}
	solos[s].Publish()
	if st := g.Stats(); st.ShedSpared == 0 || st.Overloaded != 1 {
		t.Errorf("ShedSpared %d, overloaded %d: want the caller spared by an overloaded worker", st.ShedSpared, st.Overloaded)
	}
	// Many light sources, none heavy: every new INVITE is shed.
	shed := 0
	for batch := 0; batch < 5; batch++ {
		s.StartBatch(now, 8)
		for i := 0; i < 8; i++ {
			src := netip.AddrPortFrom(netip.AddrFrom4([4]byte{100, 64, byte(batch), byte(i)}), 5060)
			if proc(s, &ctx, inv(fmt.Sprint("ua", i)), src, now) == pipeline.Drop {
				shed++
			}
		}
		now += int64(time.Millisecond)
	}
	if shed < 30 {
		t.Errorf("a spread flood with no heavy source: %d of 40 shed, want (nearly) all once the heavy source is gone", shed)
	}
}
