package appliance

import (
	"context"
	"fmt"
	"math"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"sipedge/appliance/config"
	"sipedge/appliance/resolve/dnstest"
	"sipedge/pipeline"
)

func dnsConfig(server string, backends ...config.Backend) *config.Config {
	cfg := config.Default()
	cfg.Dispatcher.Backends = backends
	cfg.Dispatcher.DNS = config.DNS{Servers: []string{server}, Timeout: config.Duration(300 * time.Millisecond),
		TTLFloor: config.Duration(100 * time.Millisecond), TTLCeiling: config.Duration(time.Minute)}
	return cfg
}

// setLoader is a published server set: pipeline.Backends, media.Relays.
type setLoader interface{ Load() *pipeline.BackendSet }

// callShares picks a backend for n Call-IDs on the current snapshot.
func callShares(bk setLoader, n int) map[string]float64 {
	s := bk.Load()
	out := map[string]float64{}
	for i := 0; i < n; i++ {
		if k := s.Pick(fmt.Appendf(nil, "%d-dns-weights@198.51.100.1", i)); k >= 0 {
			out[s.Backends[k].Addr.String()] += 1.0 / float64(n)
		}
	}
	return out
}

// wantShares checks shares within 10% (relative) of want, and nothing else.
func wantShares(t *testing.T, got, want map[string]float64) {
	t.Helper()
	for a, w := range want {
		if math.Abs(got[a]-w) > 0.1*w {
			t.Errorf("%s got %.3f of 10,000 calls, want %.3f within 10%%: %v", a, got[a], w, got)
		}
	}
	if len(got) != len(want) {
		t.Errorf("calls went to %v, want only %v", got, want)
	}
}

// waitSet waits (bounded) until the backend set satisfies ok.
func waitSet(t *testing.T, bk setLoader, what string, ok func(*pipeline.BackendSet) bool) {
	t.Helper()
	deadline := time.After(5 * time.Second)
	for s := bk.Load(); !ok(s); s = bk.Load() {
		select {
		case <-s.Changed():
		case <-deadline:
			t.Fatalf("backend set never %s: %+v", what, bk.Load().Backends)
		}
	}
}

// Backends given as a SIP URI resolve through NAPTR and SRV to a weighted
// set with a standby priority: 10,000 Call-IDs split by the SRV weights
// (3:1, within 10%), the standby takes every call once both preferred
// backends are down and gives them back when one returns; a record change
// is picked up at its TTL with the health of the kept backend carried
// over; the DNS going down keeps the last set.
func TestBackendsFromDNS(t *testing.T) {
	s := dnstest.Start(t,
		`pbx.test. 1 IN NAPTR 10 10 "s" "SIP+D2U" "" _sip._udp.pbx.test.`,
		`_sip._udp.pbx.test. 1 IN SRV 10 30 5080 a.pbx.test.`,
		`_sip._udp.pbx.test. 1 IN SRV 10 10 5081 a.pbx.test.`,
		`_sip._udp.pbx.test. 1 IN SRV 20 10 5082 b.pbx.test.`,
		`a.pbx.test. 1 IN A 127.0.5.1`,
		`b.pbx.test. 1 IN A 127.0.5.2`,
	)
	cfg := dnsConfig(s.Addr, config.Backend{Address: "sip:pbx.test", Weight: 1})
	bk, _ := pipeline.NewBackends(nil)
	d, err := openBackendDNS(cfg, nil, bk, netip.Addr{})
	if err != nil {
		t.Fatal(err)
	}
	a1, a2, sb := "127.0.5.1:5080", "127.0.5.1:5081", "127.0.5.2:5082"
	const n = 10000
	wantShares(t, callShares(bk, n), map[string]float64{a1: 0.75, a2: 0.25})
	bk.SetUp(netip.MustParseAddrPort(a1), false)
	bk.SetUp(netip.MustParseAddrPort(a2), false)
	wantShares(t, callShares(bk, n), map[string]float64{sb: 1})
	bk.SetUp(netip.MustParseAddrPort(a2), true)
	wantShares(t, callShares(bk, n), map[string]float64{a2: 1})

	d.start()
	t.Cleanup(d.stop)
	// a1 stays down across the refresh: its health is carried over.
	s.Set(t,
		`pbx.test. 1 IN NAPTR 10 10 "s" "SIP+D2U" "" _sip._udp.pbx.test.`,
		`_sip._udp.pbx.test. 1 IN SRV 10 30 5080 a.pbx.test.`,
		`_sip._udp.pbx.test. 1 IN SRV 10 10 5081 a.pbx.test.`,
		`_sip._udp.pbx.test. 1 IN SRV 10 40 5083 c.pbx.test.`,
		`a.pbx.test. 1 IN A 127.0.5.1`,
		`c.pbx.test. 1 IN A 127.0.5.3`,
	)
	waitSet(t, bk, "with the new record", func(s *pipeline.BackendSet) bool {
		return len(s.Backends) == 3 && s.Up(netip.MustParseAddrPort("127.0.5.3:5083"))
	})
	if bk.Load().Up(netip.MustParseAddrPort(a1)) {
		t.Error("a refresh that kept a backend marked down brought it back up: health must carry over")
	}
	wantShares(t, callShares(bk, n), map[string]float64{a2: 0.2, "127.0.5.3:5083": 0.8})

	before := bk.Load()
	s.SetDown(true)
	deadline := time.Now().Add(5 * time.Second)
	for d.stats().Failures < 2 {
		if time.Now().After(deadline) {
			t.Fatalf("no failed lookup counted with the DNS down: %+v", d.stats())
		}
		time.Sleep(20 * time.Millisecond)
	}
	if bk.Load() != before {
		t.Errorf("the DNS down replaced the backend set: %+v", bk.Load().Backends)
	}
	var m strings.Builder
	d.writeMetrics(promWriter{&m})
	if !strings.Contains(m.String(), `sipedge_dns_lookups_total{result="failed"} `) || strings.Contains(m.String(), `{result="failed"} 0`) {
		t.Errorf("metrics lack the failed lookups:\n%s", m.String())
	}
}

// Numeric backends never touch the DNS, with or without a port.
func TestNumericBackendsSkipDNS(t *testing.T) {
	s := dnstest.Start(t)
	cfg := dnsConfig(s.Addr, config.Backend{Address: "127.0.0.7", Weight: 1, Priority: 5}, config.Backend{Address: "sip:127.0.0.8:5070", Weight: 2})
	bk, _ := pipeline.NewBackends(nil)
	d, err := openBackendDNS(cfg, nil, bk, netip.Addr{})
	if err != nil {
		t.Fatal(err)
	}
	d.start()
	d.stop()
	got := bk.Load().Backends
	if len(got) != 2 || got[0].Addr.String() != "127.0.0.7:5060" || got[0].Priority != 5 || got[1].Addr.String() != "127.0.0.8:5070" || got[1].Weight != 2 {
		t.Errorf("backends %+v", got)
	}
	if s.Total() != 0 {
		t.Errorf("%d DNS queries for numeric backends", s.Total())
	}
}

// A backend that a DNS refresh adds joins the guard's allow-list
// (allow_backends), and one it removes leaves it, without a reload.
func TestDNSBackendsFollowGuardAllowList(t *testing.T) {
	s := dnstest.Start(t, `_sip._udp.pbx.test. 1 IN SRV 10 1 5080 a.pbx.test.`, `a.pbx.test. 1 IN A 127.0.6.1`)
	cfg := dnsConfig(s.Addr, config.Backend{Address: "sip:pbx.test;transport=udp", Weight: 1})
	cfg.Guard.AllowBackends = true
	n, err := OpenNode(&ModuleEnv{Cfg: cfg, Self: netip.MustParseAddrPort("127.0.0.1:5060"), Workers: 1, Probe: false})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(n.Close)
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	t.Cleanup(func() { cancel(); wg.Wait() })
	if err := n.Start(ctx, waitGroupGo(&wg)); err != nil {
		t.Fatal(err)
	}
	g := n.guardOf()
	// A backend DNS adds is allow-listed (allow_backends) and trusted as a
	// backend (its own limits, never banned) at once, not at the next reload.
	allowed := func(ip string) bool {
		return slices.Contains(g.AllowList(), netip.MustParsePrefix(ip+"/32")) &&
			slices.Contains(g.TrustedBackends(), netip.MustParseAddrPort(ip+":5080"))
	}
	if !allowed("127.0.6.1") {
		t.Fatalf("the first DNS backend is not allowed: %v", g.AllowList())
	}
	s.Set(t, `_sip._udp.pbx.test. 1 IN SRV 10 1 5080 b.pbx.test.`, `b.pbx.test. 1 IN A 127.0.6.2`)
	deadline := time.Now().Add(5 * time.Second)
	for !allowed("127.0.6.2") || allowed("127.0.6.1") {
		if time.Now().After(deadline) {
			t.Fatalf("the allow-list and trusted backends did not follow the DNS change: %v, %v", g.AllowList(), g.TrustedBackends())
		}
		time.Sleep(20 * time.Millisecond) // the guard applies allow-list changes on its own goroutine
	}
}
