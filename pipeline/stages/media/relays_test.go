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
