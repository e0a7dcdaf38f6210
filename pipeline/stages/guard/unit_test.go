package guard

import (
	"fmt"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	"sipedge/pipeline"
)

const ms = int64(time.Millisecond)

func TestGCRABucket(t *testing.T) {
	g := newGCRA(Limit{Rate: 10, Burst: 5})
	var tat int64
	now := int64(1e12)
	for i := 0; i < 5; i++ {
		if !g.allow(&tat, now) {
			t.Fatalf("message %d of the burst refused", i+1)
		}
	}
	if g.allow(&tat, now) {
		t.Fatal("6th message at once allowed with burst 5")
	}
	// Refused messages take no token: 99 ms later still nothing.
	if g.allow(&tat, now+99*ms) {
		t.Fatal("allowed before one interval (100 ms) passed")
	}
	if !g.allow(&tat, now+100*ms) || g.allow(&tat, now+100*ms) {
		t.Fatal("want exactly one token back after 100 ms")
	}
	// A long silence refills to the burst, not beyond.
	later := now + 10*int64(time.Second)
	n := 0
	for g.allow(&tat, later) {
		n++
	}
	if n != 5 {
		t.Fatalf("after a long pause %d messages allowed at once, want the burst 5", n)
	}
	// Sustained: over 10 s at 100/s offered, about 10/s pass.
	tat = 0
	passed := 0
	for i := 0; i < 1000; i++ {
		if g.allow(&tat, later+int64(i)*10*ms) {
			passed++
		}
	}
	if passed < 100 || passed > 106 {
		t.Fatalf("%d of 1000 passed over 10s at rate 10 burst 5, want 100..105", passed)
	}
}

func addrN(i int) netip.Addr {
	return netip.AddrFrom4([4]byte{10, byte(i >> 16), byte(i >> 8), byte(i)})
}

// TestTableSpoofedFlood: a million distinct sources, each seen once, go
// through a 64K table while 200 steady sources keep sending. Memory stays
// the table, and the steady sources never lose their state.
func TestTableSpoofedFlood(t *testing.T) {
	tab := newTable(65536, int64(time.Minute))
	size := len(tab.e)
	legit := make([]addrKey, 200)
	for i := range legit {
		legit[i] = keyOf(netip.AddrFrom4([4]byte{192, 0, 2, byte(i)}))
	}
	touch := func(k addrKey, now int64) *entry {
		e := tab.get(k, now)
		e.hits++
		e.last = now
		return e
	}
	now := int64(1)
	for _, k := range legit { // known before the flood starts
		for j := 0; j < 5; j++ {
			touch(k, now)
		}
	}
	const flood = 1_000_000
	for i := 0; i < flood; i++ {
		now += 1000 // 1M packets/s
		touch(keyOf(netip.AddrFrom4([4]byte{100, byte(i >> 16), byte(i >> 8), byte(i)})), now)
		if i%1000 == 0 {
			for _, k := range legit {
				touch(k, now)
			}
		}
	}
	if len(tab.e) != size {
		t.Fatalf("table grew from %d to %d entries", size, len(tab.e))
	}
	if tab.evictions < flood-uint64(size) {
		t.Fatalf("%d evictions for %d new sources in %d slots: the flood was not replaced", tab.evictions, flood, size)
	}
	for i, k := range legit {
		e := tab.find(k)
		if e == nil {
			t.Fatalf("steady source %d lost its entry to the flood", i)
		}
		if want := uint32(5 + flood/1000); e.hits != want {
			t.Fatalf("steady source %d has %d hits, want %d: its state was reset", i, e.hits, want)
		}
	}
}

func TestIdleEntriesAreReused(t *testing.T) {
	tab := newTable(16, 10)
	k := keyOf(addrN(1))
	e := tab.get(k, 1)
	e.hits = 1000
	// Fill the whole table at time 100: the idle heavy entry goes first.
	for i := 2; i < 200; i++ {
		e := tab.get(keyOf(addrN(i)), 100)
		e.hits = 1
	}
	if tab.find(k) != nil {
		t.Fatal("an entry idle for longer than IdleAfter kept its slot")
	}
}

func TestStartLine(t *testing.T) {
	for _, c := range []struct {
		in           string
		kind, method int
	}{
		{"INVITE sip:a@b SIP/2.0\r\n", kindRequest, methodINVITE},
		{"REGISTER sip:b SIP/2.0\r\n", kindRequest, methodREGISTER},
		{"ACK sip:b SIP/2.0\r\n", kindRequest, methodACK},
		{"OPTIONS sip:b SIP/2.0\r\n", kindRequest, methodOther},
		{"invite sip:b SIP/2.0\r\n", kindRequest, methodOther}, // methods are case-sensitive
		{"SIP/2.0 200 OK\r\n", kindResponse, methodOther},
		{"\r\n\r\n", kindKeepalive, methodOther},
		{"\r\n", kindKeepalive, methodOther},
		{"", kindNotSIP, methodOther},
		{"GET / HTTP/1.1\r\n", kindRequest, methodOther},        // token + SP: shape only; the parser refuses it
		{"\x00\x01\x00\x00!\x12\xa4B", kindNotSIP, methodOther}, // STUN
		{"HI", kindNotSIP, methodOther},
		{"SIP/2.0", kindNotSIP, methodOther},
		{strings.Repeat("A", 40) + " x", kindNotSIP, methodOther},
		{"\x16\x03\x01\x02\x00", kindNotSIP, methodOther}, // TLS on the UDP port
	} {
		var s shape
		s.startLine([]byte(c.in))
		if s.kind != c.kind || s.method != c.method {
			t.Errorf("%q: kind %d method %d, want %d %d", c.in, s.kind, s.method, c.kind, c.method)
		}
	}
}

func TestHeaderLines(t *testing.T) {
	msg := "INVITE sip:bob@example.com SIP/2.0\r\n" +
		"Via: SIP/2.0/UDP a;branch=z9hG4bK1, SIP/2.0/UDP b;branch=z9hG4bK2\r\n" +
		"v: SIP/2.0/UDP c;branch=z9hG4bK3\r\n" +
		"f: \"x\" <sip:100@1.1.1.1>;tag=1\r\n" +
		"TO : <sip:bob@example.com>;TAG=abc\r\n" +
		"User-Agent:   Friendly-Scanner  \r\n" +
		" folded continuation\r\n" +
		"Call-ID: 1\r\n" +
		"\r\n" +
		"Via: in the body, not a header\r\n"
	var s shape
	s.startLine([]byte(msg))
	s.headerLines([]byte(msg), 100)
	if s.headers != 6 || s.vias != 3 {
		t.Errorf("headers %d vias %d, want 6 and 3", s.headers, s.vias)
	}
	if string(s.ua) != "Friendly-Scanner" || string(s.from) != "\"x\" <sip:100@1.1.1.1>;tag=1" || string(s.to) != "<sip:bob@example.com>;TAG=abc" {
		t.Errorf("ua %q from %q to %q", s.ua, s.from, s.to)
	}
	if !containsFold(s.to, tagParam) {
		t.Error("To tag in upper case not found")
	}
	// The count stops past the limit.
	s.headerLines([]byte(msg), 2)
	if s.headers != 3 {
		t.Errorf("headers = %d with limit 2, want 3 (limit+1)", s.headers)
	}
}

func TestSignatures(t *testing.T) {
	g, err := New(Config{})
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		ua   string
		want bool
	}{
		{"friendly-scanner", true},
		{"FRIENDLY-SCANNER", true},
		{"sipvicious 0.3.4", true},
		{"sipcli/v1.8", true},
		{"sipsak 0.9.7", true},
		{"VaxSIPUserAgent/3.5", true},
		{"Mozilla SIP (sipvicious)", true},
		{"Zoiper rv2.10", false},
		{"Linphone/5.2 (belle-sip)", false},
		{"Asterisk PBX 20.1", false},
		{"", false},
		{"friendly-scanne", false},
	} {
		if got := g.uaPat.match([]byte(c.ua)); got != c.want {
			t.Errorf("User-Agent %q matched %v, want %v", c.ua, got, c.want)
		}
	}
	if !g.ftPat.match([]byte(`"sipvicious"<sip:100@1.1.1.1>;tag=6`)) {
		t.Error("svmap's From not matched")
	}
	g2, _ := New(Config{UserAgents: []string{}})
	if g2.uaPat.match([]byte("friendly-scanner")) {
		t.Error("an empty signature list matched")
	}
}

// solos are the stages made outside a worker, by stage.
var solos = map[*Stage]*pipeline.Solo{}

// soloStage makes g's stage of one more worker outside any worker,
// counting as a worker's chain would (pipeline.Solo).
func soloStage(t testing.TB, g *Guard) *Stage {
	t.Helper()
	so, err := pipeline.NewSolo(len(g.stageList()), g)
	if err != nil {
		t.Fatal(err)
	}
	s := so.Stage().(*Stage)
	solos[s] = so
	return s
}

// startBatch is the worker's per-batch hook, then its publication.
func startBatch(s *Stage, now int64) {
	s.StartBatch(now, 0)
	solos[s].Publish()
}

// proc runs one datagram through the stage, the way a worker would, and
// returns the verdict. Respond paths need a worker (see the external
// tests); these use Silent.
func proc(s *Stage, ctx *pipeline.Ctx, msg []byte, src netip.AddrPort, now int64) pipeline.Verdict {
	ctx.Buf, ctx.Src, ctx.Now = msg, src, now
	return solos[s].Process(ctx)
}

func register(ua string) []byte {
	return []byte("REGISTER sip:example.com SIP/2.0\r\n" +
		"Via: SIP/2.0/UDP 203.0.113.5:5060;branch=z9hG4bKx\r\n" +
		"Max-Forwards: 70\r\nFrom: <sip:1000@example.com>;tag=a\r\nTo: <sip:1000@example.com>\r\n" +
		"Call-ID: r1\r\nCSeq: 1 REGISTER\r\nContact: <sip:1000@203.0.113.5>\r\n" +
		"User-Agent: " + ua + "\r\nContent-Length: 0\r\n\r\n")
}

func TestAllowListPrecedence(t *testing.T) {
	g, err := New(Config{
		OverLimit: Silent,
		Register:  Limit{Rate: 1, Burst: 1},
		Allow:     []netip.Prefix{netip.MustParsePrefix("198.51.100.0/24")},
		BanAfter:  -1,
	})
	if err != nil {
		t.Fatal(err)
	}
	s := soloStage(t, g)
	var ctx pipeline.Ctx
	trunk := netip.MustParseAddrPort("198.51.100.7:5060")
	other := netip.MustParseAddrPort("203.0.113.5:5060")
	scan := register("friendly-scanner")
	for i := 0; i < 100; i++ {
		if v := proc(s, &ctx, register("PBX"), trunk, int64(i)); v != pipeline.Continue {
			t.Fatalf("allow-listed REGISTER %d: %v, want continue (never rate limited)", i, v)
		}
		if v := proc(s, &ctx, scan, trunk, int64(i)); v != pipeline.Continue {
			t.Fatalf("allow-listed sipsak-style monitor %d: %v, want continue", i, v)
		}
	}
	s.AuthFailed(trunk.Addr(), 1)
	for i := 0; i < 20; i++ {
		s.AuthFailed(trunk.Addr(), 2)
	}
	if err := g.Ban(trunk.Addr(), time.Hour); err == nil {
		t.Error("operator ban of an allow-listed address accepted")
	}
	if v := proc(s, &ctx, register("PBX"), other, 200); v != pipeline.Continue {
		t.Fatalf("first REGISTER of another source: %v", v)
	}
	if v := proc(s, &ctx, register("PBX"), other, 200); v != pipeline.Drop {
		t.Fatalf("second REGISTER at once over 1/s burst 1: %v, want drop", v)
	}
	startBatch(s, 300)
	st := g.Stats()
	if st.Allowed != 200 || st.Bans[ReasonAuth] != 0 || st.Bans[ReasonScanner] != 0 || st.Drops[ReasonRateRegister] != 1 {
		t.Fatalf("stats %+v", st)
	}
	// Allow-listing a banned source lifts its ban.
	startBatch(s, 301)
	if v := proc(s, &ctx, register("PBX"), other, 400); v != pipeline.Drop || s.bans.check(keyOf(other.Addr()), 400) == nil {
		t.Fatalf("source over the limit with BanAfter 1ns is not banned (%v)", v)
	}
	g.Drain()
	if err := g.Allow(netip.MustParsePrefix("203.0.113.0/24")); err != nil {
		t.Fatal(err)
	}
	startBatch(s, 500)
	if s.bans.check(keyOf(other.Addr()), 500) != nil || len(g.Bans()) != 0 {
		t.Fatalf("ban survived allow-listing: %+v", g.Bans())
	}
}

func TestShapeDrops(t *testing.T) {
	g, err := New(Config{MaxMessageSize: 1000, MaxHeaders: 10, MaxVias: 2})
	if err != nil {
		t.Fatal(err)
	}
	s := soloStage(t, g)
	var ctx pipeline.Ctx
	src := netip.MustParseAddrPort("203.0.113.5:5060")
	vias := "INVITE sip:b SIP/2.0\r\nVia: SIP/2.0/UDP a, SIP/2.0/UDP b\r\nv: SIP/2.0/UDP c\r\n\r\n"
	many := "INVITE sip:b SIP/2.0\r\n" + strings.Repeat("X-A: 1\r\n", 11) + "\r\n"
	for _, c := range []struct {
		msg  string
		want Reason
	}{
		{strings.Repeat("x", 1001), ReasonOversize},
		{"\x16\x03\x01", ReasonNotSIP},
		{"\r\n\r\n", ReasonKeepalive},
		{vias, ReasonTooManyVias},
		{many, ReasonTooManyHeaders},
	} {
		before := g.Stats().Drops[c.want]
		if v := proc(s, &ctx, []byte(c.msg), src, 1); v != pipeline.Drop || g.Stats().Drops[c.want] != before+1 {
			t.Errorf("%.20q: %v, %s drops %d, want one more", c.msg, v, c.want, g.Stats().Drops[c.want])
		}
	}
}

func TestScannerBannedAndOperatorUnban(t *testing.T) {
	fb := &fakeBanner{}
	clock := int64(1)
	g, err := New(Config{Banner: fb, Now: func() int64 { return clock }, BanTTL: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	s := soloStage(t, g)
	var ctx pipeline.Ctx
	src := netip.MustParseAddrPort("203.0.113.66:5070")
	// ScannerMatches (5) User-Agent matches: dropped, the 5th bans.
	for i := 0; i < 5; i++ {
		if i > 0 && i < 5 {
			if v := proc(s, &ctx, register("PBX"), src, clock); v != pipeline.Continue {
				t.Fatalf("clean message after %d scanner matches: %v, want it through (no ban yet)", i, v)
			}
		}
		if v := proc(s, &ctx, register("sipcli/v1.8"), src, clock); v != pipeline.Drop {
			t.Fatalf("scanner: %v", v)
		}
	}
	// Later messages, even clean ones, hit the ban.
	for i := 0; i < 3; i++ {
		if v := proc(s, &ctx, register("PBX"), src, clock); v != pipeline.Drop {
			t.Fatalf("banned source passed: %v", v)
		}
	}
	g.Drain()
	if got := fb.get(); len(got) != 1 || got[0].addr != src.Addr() || got[0].ttl != time.Minute {
		t.Fatalf("banner calls %+v, want one for %v 1m", got, src.Addr())
	}
	bans := g.Bans()
	if len(bans) != 1 || bans[0].Addr != src.Addr() || bans[0].Reason != ReasonScanner || bans[0].Dropped != 3 || bans[0].Left != time.Minute {
		t.Fatalf("bans %+v", bans)
	}
	if err := g.Unban(src.Addr()); err != nil {
		t.Fatal(err)
	}
	startBatch(s, clock)
	if v := proc(s, &ctx, register("PBX"), src, clock); v != pipeline.Continue {
		t.Fatalf("after unban: %v", v)
	}
	if len(g.Bans()) != 0 || fb.unbans != 1 {
		t.Fatalf("bans %+v unbans %d", g.Bans(), fb.unbans)
	}
	// Operator ban reaches the worker at its next batch, then lapses.
	other := netip.MustParseAddr("2001:db8::7")
	if err := g.Ban(other, time.Second); err != nil {
		t.Fatal(err)
	}
	startBatch(s, clock)
	osrc := netip.AddrPortFrom(other, 5060)
	if v := proc(s, &ctx, register("PBX"), osrc, clock); v != pipeline.Drop {
		t.Fatalf("operator-banned source: %v", v)
	}
	clock += int64(time.Second)
	if v := proc(s, &ctx, register("PBX"), osrc, clock); v != pipeline.Continue {
		t.Fatalf("after the operator ban lapsed: %v", v)
	}
}

func TestAuthFailuresBan(t *testing.T) {
	g, err := New(Config{AuthFailures: 3, AuthWindow: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	s := soloStage(t, g)
	a := netip.MustParseAddr("203.0.113.9")
	sec := int64(time.Second)
	s.AuthFailed(a, 1)
	s.AuthFailed(a, 2)
	// The window passes: the count starts again.
	s.AuthFailed(a, 2+sec)
	s.AuthFailed(a, 3+sec)
	if s.bans.check(keyOf(a), 4+sec) != nil {
		t.Fatal("banned after 2 failures per window")
	}
	s.AuthFailed(a, 4+sec)
	if s.bans.check(keyOf(a), 5+sec) == nil {
		t.Fatal("3 failures within the window did not ban")
	}
	if s.cnt.Get(cBanBase+int(ReasonAuth)-1) != 1 || s.cnt.Get(cAuthFailures) != 5 {
		t.Fatalf("counters: bans %d failures %d", s.cnt.Get(cBanBase+int(ReasonAuth)-1), s.cnt.Get(cAuthFailures))
	}
}

// The auth engineer calls AuthFailed through an interface of this method set.
var _ interface{ AuthFailed(netip.Addr, int64) } = (*Stage)(nil)
var _ pipeline.Stage = (*Stage)(nil)
var _ pipeline.BatchStarter = (*Stage)(nil)

func TestBanRingFullIsCounted(t *testing.T) {
	g, err := New(Config{RingSize: 2})
	if err != nil {
		t.Fatal(err)
	}
	s := soloStage(t, g)
	for i := 0; i < 5; i++ {
		s.ban(addrN(i), keyOf(addrN(i)), ReasonScanner, 1)
	}
	if s.cnt.Get(cBanRingFull) != 3 {
		t.Fatalf("ring full counted %d times, want 3 (ring of 2)", s.cnt.Get(cBanRingFull))
	}
	// The worker still enforces all five.
	for i := 0; i < 5; i++ {
		if s.bans.check(keyOf(addrN(i)), 2) == nil {
			t.Fatalf("ban %d not enforced by the worker", i)
		}
	}
}

func TestProcessAllocatesNothing(t *testing.T) {
	g, err := New(Config{OverLimit: Silent, All: Limit{Rate: 100, Burst: 10}, Allow: []netip.Prefix{netip.MustParsePrefix("10.9.0.0/16")},
		Backends: []netip.AddrPort{netip.MustParseAddrPort("192.0.2.50:5060")}, NeverBan: []netip.Prefix{netip.MustParsePrefix("198.51.100.0/24")}})
	if err != nil {
		t.Fatal(err)
	}
	s := soloStage(t, g)
	var ctx pipeline.Ctx
	legit := register("Zoiper")
	scanner := register("friendly-scanner")
	i := 0
	for _, c := range []struct {
		name string
		msg  []byte
		src  func() netip.AddrPort
	}{
		{"legit", legit, func() netip.AddrPort { return netip.AddrPortFrom(addrN(i%1000), 5060) }},
		{"flood one source", legit, func() netip.AddrPort { return netip.MustParseAddrPort("203.0.113.1:5060") }},
		{"spoofed flood", legit, func() netip.AddrPort { return netip.AddrPortFrom(addrN(i), 5060) }},
		{"scanner", scanner, func() netip.AddrPort { return netip.AddrPortFrom(addrN(i), 5060) }},
		{"allow-listed", legit, func() netip.AddrPort { return netip.MustParseAddrPort("10.9.1.1:5060") }},
		{"v6", legit, func() netip.AddrPort { return netip.MustParseAddrPort("[2001:db8::1]:5060") }},
		{"backend", legit, func() netip.AddrPort { return netip.MustParseAddrPort("192.0.2.50:5060") }},
		{"From/To signature", registerFromTo(`"sipvicious" <sip:1@x>`), func() netip.AddrPort { return netip.AddrPortFrom(addrN(i), 5060) }},
		{"trusted scanner (never banned)", scanner, func() netip.AddrPort { return netip.MustParseAddrPort("198.51.100.9:5060") }},
	} {
		n := testing.AllocsPerRun(2000, func() {
			i++
			proc(s, &ctx, c.msg, c.src(), int64(i)*1000)
			if i%16 == 0 { // batches of 16: not overloaded
				startBatch(s, int64(i)*1000)
			}
		})
		if n != 0 {
			t.Errorf("%s: %v allocations per message", c.name, n)
		}
	}
	s.AuthFailed(addrN(1), 1)
	if n := testing.AllocsPerRun(1000, func() { i++; s.AuthFailed(addrN(i), int64(i)) }); n != 0 {
		t.Errorf("AuthFailed: %v allocations", n)
	}
}

type banCall struct {
	addr netip.Addr
	ttl  time.Duration
}

type fakeBanner struct {
	mu     sync.Mutex
	calls  []banCall
	unbans int
}

func (f *fakeBanner) Ban(a netip.Addr, ttl time.Duration) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls = append(f.calls, banCall{a, ttl})
	return nil
}

func (f *fakeBanner) Unban(netip.Addr) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.unbans++
	return nil
}

func (f *fakeBanner) get() []banCall {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]banCall(nil), f.calls...)
}

// TestListingWhileBanning reads bans and metrics from another goroutine
// while the worker bans and drops (run with -race): every listed ban is
// one the worker made, with a sane time left.
func TestListingWhileBanning(t *testing.T) {
	g, err := New(Config{MaxBans: 256, BanTTL: time.Hour, Now: func() int64 { return 1 }})
	if err != nil {
		t.Fatal(err)
	}
	s := soloStage(t, g)
	done := make(chan struct{})
	errc := make(chan error, 1)
	go func() {
		defer close(errc)
		for {
			select {
			case <-done:
				return
			default:
			}
			for _, b := range g.Bans() {
				if b.Reason != ReasonScanner || b.Left <= 0 || b.Left > time.Hour || b.Addr.As4()[0] != 10 {
					errc <- fmt.Errorf("torn or foreign ban listed: %+v", b)
					return
				}
			}
			_ = g.Stats() // the exporter's read, concurrent with the worker
		}
	}()
	var ctx pipeline.Ctx
	scan := register("sipvicious")
	for i := 0; i < 20000; i++ {
		proc(s, &ctx, scan, netip.AddrPortFrom(addrN(i), 5060), 1)
		if i%64 == 0 {
			startBatch(s, 1)
			g.Drain()
		}
	}
	close(done)
	if err := <-errc; err != nil {
		t.Fatal(err)
	}
}
