package media

import (
	"net/netip"
	"testing"
	"time"

	"sipedge/pipeline"
)

// A relay whose pings fail goes down after DownAfter of them and comes
// back after UpAfter answers, its calls counted as orphaned; one that
// still answers calls stays up however late its pings are.
func TestRelayDownUp(t *testing.T) {
	a := netip.MustParseAddrPort("127.0.0.1:2223")
	b := netip.MustParseAddrPort("127.0.0.1:2224")
	st := newStats()
	r, err := newRelays([]pipeline.BackendSpec{{Addr: a, Weight: 1}, {Addr: b, Weight: 1}}, st)
	if err != nil {
		t.Fatal(err)
	}
	var logged []string
	logf := func(msg string, _ ...any) { logged = append(logged, msg) }
	p := Ping{Interval: time.Second, Timeout: time.Second, DownAfter: 3, UpAfter: 2}
	x := r.Relay(a)
	x.Calls.Store(7)
	for i := 0; i < 2; i++ {
		r.observe(x, false, p, logf)
	}
	if !x.Up() || r.UpCount() != 2 {
		t.Fatal("down before down_after failed pings")
	}
	r.observe(x, false, p, logf)
	if x.Up() || r.UpCount() != 1 || r.Load().Up(a) {
		t.Fatal("still up after down_after failed pings")
	}
	if x.Orphaned.Load() != 7 || x.Calls.Load() != 0 || x.Downs.Load() != 1 || len(logged) != 1 {
		t.Errorf("orphaned %d calls %d downs %d logs %q; want 7 0 1 and one line", x.Orphaned.Load(), x.Calls.Load(), x.Downs.Load(), logged)
	}
	// Every call now picks b.
	for _, id := range []string{"c1", "c2", "c3", "c4", "c5", "c6"} {
		if k := r.Load().Pick([]byte(id)); r.Load().Backends[k].Addr != b {
			t.Errorf("call %s picked %v with a down", id, r.Load().Backends[k].Addr)
		}
	}
	r.observe(x, true, p, logf)
	if x.Up() {
		t.Fatal("up after one answered ping, want up_after = 2")
	}
	r.observe(x, true, p, logf)
	if !x.Up() || !r.Load().Up(a) {
		t.Fatal("not up after up_after answered pings")
	}
	// Busy, not dead: pings fail, calls are answered.
	y := r.Relay(b)
	y.lastOK.Store(time.Now().UnixNano())
	for i := 0; i < 10; i++ {
		r.observe(y, false, p, logf)
	}
	if !y.Up() {
		t.Error("a relay answering calls was marked down for late pings")
	}
}

// Replace keeps the state of the relays it keeps (a down relay stays
// down, its counts go on), adds new ones up, drops the others with a log
// line, and publishes one new snapshot for the workers.
func TestRelaysReplaceCarriesState(t *testing.T) {
	a := netip.MustParseAddrPort("127.0.0.1:2223")
	b := netip.MustParseAddrPort("127.0.0.1:2224")
	c := netip.MustParseAddrPort("127.0.0.1:2225")
	r, err := newRelays([]pipeline.BackendSpec{{Addr: a, Weight: 1}, {Addr: b, Weight: 1}}, newStats())
	if err != nil {
		t.Fatal(err)
	}
	var logged []string
	logf := func(msg string, _ ...any) { logged = append(logged, msg) }
	r.SetUp(a, false, logf)
	xa, xb := r.Relay(a), r.Relay(b)
	xb.Calls.Store(4)
	logged = nil
	before := r.Load()
	if err := r.Replace([]pipeline.BackendSpec{{Addr: a, Weight: 2}, {Addr: c, Weight: 1, Priority: 10}}, logf); err != nil {
		t.Fatal(err)
	}
	select {
	case <-before.Changed():
	default:
		t.Fatal("Replace published no new snapshot")
	}
	if r.Relay(a) != xa || xa.Up() || r.Load().Up(a) || xa.Downs.Load() != 1 {
		t.Errorf("kept relay a lost its state: same %v up %v/%v downs %d", r.Relay(a) == xa, xa.Up(), r.Load().Up(a), xa.Downs.Load())
	}
	if x := r.Relay(c); x == nil || !x.Up() || !r.Load().Up(c) {
		t.Errorf("new relay c is not up: %+v", x)
	}
	if r.Relay(b) != nil || len(r.List()) != 2 || r.List()[1].Addr != c {
		t.Errorf("relay b still listed: %v", r.List())
	}
	if len(logged) != 1 || xb.Calls.Load() != 4 {
		t.Errorf("dropping b with 4 calls logged %q", logged)
	}
	// a is down: c (priority 10, the standby) takes every call.
	if k := r.Load().Pick([]byte("call-1")); k < 0 || r.Load().Backends[k].Addr != c {
		t.Errorf("call picked %d in %+v, want the standby c", k, r.Load().Backends)
	}
	bad := r.Load()
	if err := r.Replace([]pipeline.BackendSpec{{Addr: b, Weight: -1}}, logf); err == nil {
		t.Fatal("a negative weight was accepted")
	}
	if r.Load() != bad || r.Relay(a) != xa || r.Relay(b) != nil {
		t.Error("a refused Replace changed the set")
	}
}
