package resolve_test

import (
	"context"
	"net/netip"
	"slices"
	"testing"
	"time"

	"sipedge/appliance/resolve"
	"sipedge/appliance/resolve/dnstest"
)

// publications collects what a Watcher publishes.
type publications chan []resolve.Member

func (p publications) publish(m []resolve.Member) error { p <- m; return nil }

// next waits (bounded) for a publication that satisfies ok.
func (p publications) next(t *testing.T, what string, within time.Duration, ok func([]resolve.Member) bool) []resolve.Member {
	t.Helper()
	deadline := time.After(within)
	for {
		select {
		case m := <-p:
			if ok(m) {
				return m
			}
		case <-deadline:
			t.Fatalf("no publication %s within %v", what, within)
			return nil
		}
	}
}

func addrs(ms []resolve.Member) []string {
	var out []string
	for _, m := range ms {
		out = append(out, m.Addr.String())
	}
	slices.Sort(out)
	return out
}

// A static entry and an SRV name: weights are the SRV weights times the
// entry's, a weight of 0 becomes a small one, priorities are the records';
// a record change is picked up when the TTL runs out (1s here, above the
// 100ms floor), a server that stops answering leaves the last set in
// place with the failures counted, and answers again bring changes in.
func TestWatcherTTLChangesAndOutage(t *testing.T) {
	s := dnstest.Start(t,
		`_sip._udp.pbx.test. 1 IN SRV 10 30 5080 a.pbx.test.`,
		`_sip._udp.pbx.test. 1 IN SRV 10 0 5081 a.pbx.test.`,
		`_sip._udp.pbx.test. 1 IN SRV 20 10 5082 a.pbx.test.`,
		`a.pbx.test. 1 IN A 127.0.3.1`,
	)
	r := newResolver(t, s)
	entries := []resolve.Entry{
		{Name: mustName(t, "127.0.0.5:5060"), Weight: 3, Priority: 7},
		{Name: mustName(t, "sip:pbx.test;transport=udp"), Weight: 2},
	}
	pubs := make(publications, 16)
	w := resolve.NewWatcher(r, entries, pubs.publish, nil)
	first := w.ResolveAll(context.Background())
	<-pubs
	want := []resolve.Member{
		{Addr: netip.MustParseAddrPort("127.0.0.5:5060"), Priority: 7, Weight: 3, Entry: 0},
		{Addr: netip.MustParseAddrPort("127.0.3.1:5080"), Priority: 10, Weight: 60, Entry: 1},
		{Addr: netip.MustParseAddrPort("127.0.3.1:5081"), Priority: 10, Weight: 2.0 / 256, Entry: 1},
		{Addr: netip.MustParseAddrPort("127.0.3.1:5082"), Priority: 20, Weight: 20, Entry: 1},
	}
	if !slices.Equal(first, want) {
		t.Fatalf("first set\n got %+v\nwant %+v", first, want)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); w.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })

	changedAt := time.Now()
	s.Set(t,
		`_sip._udp.pbx.test. 1 IN SRV 10 30 5080 b.pbx.test.`,
		`b.pbx.test. 1 IN A 127.0.3.2`,
	)
	got := pubs.next(t, "with the changed record", 5*time.Second, func(m []resolve.Member) bool {
		return slices.Equal(addrs(m), []string{"127.0.0.5:5060", "127.0.3.2:5080"})
	})
	if took := time.Since(changedAt); took > 3*time.Second {
		t.Errorf("a change under a 1s TTL took %v to be picked up", took)
	}
	t.Logf("record change picked up after %v (TTL 1s)", time.Since(changedAt).Round(10*time.Millisecond))

	before := w.Stats()
	s.SetDown(true)
	deadline := time.Now().Add(10 * time.Second)
	for w.Stats().Failures < before.Failures+2 {
		if time.Now().After(deadline) {
			t.Fatalf("no lookup failure counted with the server down: %+v", w.Stats())
		}
		time.Sleep(20 * time.Millisecond)
	}
	if cur := w.Current(); !slices.Equal(cur, got) {
		t.Errorf("DNS down changed the set to %+v, want the last good %+v", cur, got)
	}
	select {
	case m := <-pubs:
		t.Errorf("published %+v while DNS was down", m)
	default:
	}

	s.Set(t, `_sip._udp.pbx.test. 1 IN SRV 10 30 5080 c.pbx.test.`, `c.pbx.test. 1 IN A 127.0.3.3`)
	s.SetDown(false)
	pubs.next(t, "after DNS came back", 5*time.Second, func(m []resolve.Member) bool {
		return slices.Equal(addrs(m), []string{"127.0.0.5:5060", "127.0.3.3:5080"})
	})

	// An empty answer (the name removed) is not a set: the last one stays.
	emptyBefore := w.Stats().Empty
	s.Set(t)
	w.Refresh()
	deadline = time.Now().Add(5 * time.Second)
	for w.Stats().Empty == emptyBefore {
		if time.Now().After(deadline) {
			t.Fatalf("an empty answer was not counted: %+v", w.Stats())
		}
		time.Sleep(20 * time.Millisecond)
	}
	if cur := addrs(w.Current()); !slices.Equal(cur, []string{"127.0.0.5:5060", "127.0.3.3:5080"}) {
		t.Errorf("an empty answer changed the set to %v", cur)
	}
}

// A name that never resolved (DNS down at start) gives an empty set, is
// retried after the floor, and its targets join once the DNS answers.
func TestWatcherStartsWithDNSDown(t *testing.T) {
	s := dnstest.Start(t, `late.test. 5 IN A 127.0.4.1`)
	s.SetDown(true)
	r := newResolver(t, s)
	pubs := make(publications, 16)
	w := resolve.NewWatcher(r, []resolve.Entry{{Name: mustName(t, "late.test:5060"), Weight: 1}}, pubs.publish, nil)
	if got := w.ResolveAll(context.Background()); len(got) != 0 {
		t.Fatalf("got %+v with DNS down", got)
	}
	if st := w.Stats(); st.Failures != 1 {
		t.Errorf("stats %+v, want one failure", st)
	}
	<-pubs
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); w.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
	s.SetDown(false)
	pubs.next(t, "once DNS answered", 5*time.Second, func(m []resolve.Member) bool {
		return slices.Equal(addrs(m), []string{"127.0.4.1:5060"})
	})
}

// A target that leaves the DNS stays in the set with weight 0 for Linger
// (its calls' in-dialog requests still come from a known backend; no new
// call goes to it), then goes; one that comes back returns at once.
func TestWatcherLinger(t *testing.T) {
	s := dnstest.Start(t, `a.test. 1 IN A 127.0.7.1`, `a.test. 1 IN A 127.0.7.2`)
	r, err := resolve.New(resolve.Config{Servers: []string{s.Addr}, Timeout: 300 * time.Millisecond,
		TTLFloor: 100 * time.Millisecond, TTLCeiling: time.Minute, Linger: 700 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	pubs := make(publications, 16)
	w := resolve.NewWatcher(r, []resolve.Entry{{Name: mustName(t, "a.test:5060"), Weight: 2}}, pubs.publish, nil)
	w.ResolveAll(context.Background())
	<-pubs
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); w.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })

	s.Set(t, `a.test. 1 IN A 127.0.7.1`)
	left := time.Now()
	got := pubs.next(t, "with the departed target at weight 0", 5*time.Second, func(m []resolve.Member) bool { return len(m) == 2 && m[1].Weight == 0 })
	if got[0].Addr.String() != "127.0.7.1:5060" || got[0].Weight != 2 || got[1].Addr.String() != "127.0.7.2:5060" {
		t.Errorf("lingering set %+v", got)
	}
	pubs.next(t, "without it once Linger passed", 5*time.Second, func(m []resolve.Member) bool { return len(m) == 1 })
	if d := time.Since(left); d < 700*time.Millisecond {
		t.Errorf("the departed target went after %v, before Linger (700ms)", d)
	}

	s.Set(t, `a.test. 1 IN A 127.0.7.3`)
	pubs.next(t, "lingering .1 and the new .3", 5*time.Second, func(m []resolve.Member) bool { return len(m) == 2 && m[0].Addr.String() == "127.0.7.3:5060" })
	s.Set(t, `a.test. 1 IN A 127.0.7.3`, `a.test. 1 IN A 127.0.7.1`)
	pubs.next(t, ".1 back at full weight", 5*time.Second, func(m []resolve.Member) bool {
		return len(m) == 2 && m[0].Weight == 2 && m[1].Weight == 2
	})
}
