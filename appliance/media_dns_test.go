package appliance

import (
	"log/slog"
	"net/netip"
	"strings"
	"testing"
	"time"

	"sipedge/appliance/config"
	"sipedge/appliance/resolve/dnstest"
	"sipedge/pipeline"
	"sipedge/sipcore"
)

// openMediaDNS opens [media] with relays, the DNS at server.
func openMediaDNS(t *testing.T, server string, relays ...config.MediaRelay) *mediaModule {
	t.Helper()
	return openMediaDNSLinger(t, server, 0, relays...)
}

// openMediaDNSLinger is openMediaDNS with [dispatcher.dns] linger.
func openMediaDNSLinger(t *testing.T, server string, linger time.Duration, relays ...config.MediaRelay) *mediaModule {
	t.Helper()
	cfg := dnsConfig(server)
	cfg.Dispatcher.DNS.Linger = config.Duration(linger)
	cfg.Media.Enabled = true
	cfg.Media.Relays = relays
	key := sipcore.NewKey([]byte("media-dns-test"))
	m, err := openMedia(&ModuleEnv{Cfg: cfg, Key: &key, Log: slog.New(slog.DiscardHandler), Workers: 1})
	if err != nil {
		t.Fatal(err)
	}
	mm := m.(*mediaModule)
	t.Cleanup(mm.Close)
	return mm
}

func relayRecords(extra ...string) []string {
	return append([]string{
		`r1.relays.test. 1 IN A 127.0.7.1`,
		`r2.relays.test. 1 IN A 127.0.7.2`,
		`r3.relays.test. 1 IN A 127.0.7.3`,
		`r4.relays.test. 1 IN A 127.0.7.4`,
	}, extra...)
}

// Media relays given as one domain resolve through SRV _ng._udp to a
// weighted set with a standby priority, exactly as backends: 10,000
// Call-IDs split by the SRV weights (3:1, within 10% relative), the
// standby takes every call once both preferred relays are down and gives
// them back as they return; a record change is picked up at its TTL (1s)
// with the state of the kept relay carried over; the DNS going down keeps
// the last set.
func TestMediaRelaysFromDNS(t *testing.T) {
	s := dnstest.Start(t, relayRecords(
		`_ng._udp.relays.test. 1 IN SRV 10 30 2230 r1.relays.test.`,
		`_ng._udp.relays.test. 1 IN SRV 10 10 2231 r2.relays.test.`,
		`_ng._udp.relays.test. 1 IN SRV 20 10 2232 r3.relays.test.`,
	)...)
	m := openMediaDNS(t, s.Addr, config.MediaRelay{Address: "relays.test"})
	rs := m.md.Relays()
	r1, r2, r3, r4 := "127.0.7.1:2230", "127.0.7.2:2231", "127.0.7.3:2232", "127.0.7.4:2233"
	ap := netip.MustParseAddrPort
	logf := func(string, ...any) {}
	const n = 10000
	wantShares(t, callShares(rs, n), map[string]float64{r1: 0.75, r2: 0.25})
	rs.SetUp(ap(r1), false, logf)
	rs.SetUp(ap(r2), false, logf)
	wantShares(t, callShares(rs, n), map[string]float64{r3: 1})
	rs.SetUp(ap(r2), true, logf)
	wantShares(t, callShares(rs, n), map[string]float64{r2: 1})
	rs.SetUp(ap(r1), true, logf)
	wantShares(t, callShares(rs, n), map[string]float64{r1: 0.75, r2: 0.25})

	// r1 goes down and stays down across the refresh that drops r2 and
	// adds r4: its state is carried over.
	rs.SetUp(ap(r1), false, logf)
	x1 := rs.Relay(ap(r1))
	x1.Calls.Store(5)
	m.dns.start()
	t.Cleanup(m.dns.stop)
	changed := time.Now()
	s.Set(t, relayRecords(
		`_ng._udp.relays.test. 1 IN SRV 10 30 2230 r1.relays.test.`,
		`_ng._udp.relays.test. 1 IN SRV 10 10 2233 r4.relays.test.`,
		`_ng._udp.relays.test. 1 IN SRV 20 10 2232 r3.relays.test.`,
	)...)
	waitSet(t, rs, "with the new record", func(s *pipeline.BackendSet) bool {
		return len(s.Backends) == 3 && s.Up(ap(r4))
	})
	t.Logf("record change picked up %v after it (TTL 1s)", time.Since(changed).Round(time.Millisecond))
	if rs.Relay(ap(r1)) != x1 || x1.Up() || rs.Load().Up(ap(r1)) || x1.Calls.Load() != 5 {
		t.Errorf("a refresh that kept relay r1 (down, 5 calls) lost its state: up %v calls %d", x1.Up(), x1.Calls.Load())
	}
	if rs.Relay(ap(r2)) != nil {
		t.Error("relay r2 left the DNS (linger 0) but is still a relay")
	}
	wantShares(t, callShares(rs, n), map[string]float64{r4: 1})
	rs.SetUp(ap(r1), true, logf)
	wantShares(t, callShares(rs, n), map[string]float64{r1: 0.75, r4: 0.25})

	before := rs.Load()
	s.SetDown(true)
	deadline := time.Now().Add(5 * time.Second)
	for m.dns.stats().Failures < 2 {
		if time.Now().After(deadline) {
			t.Fatalf("no failed lookup counted with the DNS down: %+v", m.dns.stats())
		}
		time.Sleep(20 * time.Millisecond) // counts are atomics the refresh goroutine bumps: no event to wait on
	}
	if rs.Load() != before {
		t.Errorf("the DNS down replaced the relay set: %+v", rs.Load().Backends)
	}
	var w strings.Builder
	m.WriteMetrics(promWriter{&w})
	if !strings.Contains(w.String(), `sipedge_media_dns_lookups_total{result="failed"} `) || strings.Contains(w.String(), `sipedge_media_dns_lookups_total{result="failed"} 0`) ||
		!strings.Contains(w.String(), `sipedge_media_relay_up{relay="127.0.7.4:2233"} 1`) {
		t.Errorf("metrics lack the failed relay lookups or the new relay:\n%s", w.String())
	}
}

// Relays given as IP:port or a bare IP (port 2223) never touch the DNS; a
// relay's configured priority makes it a standby; a host:port name asks
// A/AAAA only.
func TestMediaRelaysNumericAndHostPort(t *testing.T) {
	s := dnstest.Start(t, relayRecords()...)
	m := openMediaDNS(t, s.Addr, config.MediaRelay{Address: "127.0.0.9:2240"}, config.MediaRelay{Address: "127.0.0.10", Priority: 5})
	got := m.md.Relays().Load().Backends
	if len(got) != 2 || got[0].Addr.String() != "127.0.0.9:2240" || got[1].Addr.String() != "127.0.0.10:2223" || got[1].Priority != 5 {
		t.Errorf("relays %+v", got)
	}
	if s.Total() != 0 {
		t.Errorf("%d DNS queries for numeric relays", s.Total())
	}
	wantShares(t, callShares(m.md.Relays(), 1000), map[string]float64{"127.0.0.9:2240": 1})
	m = openMediaDNS(t, s.Addr, config.MediaRelay{Address: "r3.relays.test:2300"})
	if got := m.md.Relays().Load().Backends; len(got) != 1 || got[0].Addr.String() != "127.0.7.3:2300" {
		t.Errorf("r3.relays.test:2300 gave %+v", got)
	}
}

// A relay that leaves the DNS lingers as backends do: listed with weight
// 0 (no new calls) and its calls still reported on it, then dropped when
// linger runs out.
func TestMediaRelayLeavingDNSLingers(t *testing.T) {
	s := dnstest.Start(t, relayRecords(
		`_ng._udp.relays.test. 1 IN SRV 10 1 2230 r1.relays.test.`,
		`_ng._udp.relays.test. 1 IN SRV 10 1 2231 r2.relays.test.`,
	)...)
	m := openMediaDNSLinger(t, s.Addr, 1500*time.Millisecond, config.MediaRelay{Address: "relays.test"})
	rs := m.md.Relays()
	r1, r2 := "127.0.7.1:2230", "127.0.7.2:2231"
	x2 := rs.Relay(netip.MustParseAddrPort(r2))
	x2.Calls.Store(3)
	m.dns.start()
	t.Cleanup(m.dns.stop)
	s.Set(t, relayRecords(`_ng._udp.relays.test. 1 IN SRV 10 1 2230 r1.relays.test.`)...)
	waitSet(t, rs, "with r2 at weight 0", func(s *pipeline.BackendSet) bool {
		return len(s.Backends) == 2 && s.Backends[1].Addr.String() == r2 && s.Backends[1].Weight == 0
	})
	wantShares(t, callShares(rs, 10000), map[string]float64{r1: 1})
	var found bool
	for _, r := range m.relays() {
		if r.Address == r2 {
			found = r.Calls == 3 && r.Weight == 0
		}
	}
	if !found || rs.Relay(netip.MustParseAddrPort(r2)) != x2 {
		t.Errorf("lingering r2 not reported with its 3 calls at weight 0: %+v", m.relays())
	}
	waitSet(t, rs, "without r2 after linger", func(s *pipeline.BackendSet) bool { return len(s.Backends) == 1 })
	if rs.Relay(netip.MustParseAddrPort(r2)) != nil {
		t.Error("r2 still a relay after linger")
	}
}
