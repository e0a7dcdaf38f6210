package resolve_test

import (
	"context"
	"errors"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"

	"sipedge/appliance/resolve"
	"sipedge/appliance/resolve/dnstest"
)

func newResolver(t *testing.T, s *dnstest.Server) *resolve.Resolver {
	t.Helper()
	r, err := resolve.New(resolve.Config{Servers: []string{s.Addr}, Timeout: 300 * time.Millisecond,
		TTLFloor: 100 * time.Millisecond, TTLCeiling: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func mustName(t *testing.T, s string) resolve.Name {
	t.Helper()
	n, err := resolve.ParseName(s)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

func TestParseName(t *testing.T) {
	for _, c := range []struct {
		in        string
		host      string
		ip        bool
		port      uint16
		transport string
	}{
		{"example.test", "example.test", false, 0, ""},
		{"Example.TEST.", "example.test", false, 0, ""},
		{"pbx.example.test:5080", "pbx.example.test", false, 5080, ""},
		{"10.0.0.1", "10.0.0.1", true, 0, ""},
		{"10.0.0.1:5080", "10.0.0.1", true, 5080, ""},
		{"[2001:db8::1]:5070", "2001:db8::1", true, 5070, ""},
		{"2001:db8::1", "2001:db8::1", true, 0, ""},
		{"sip:example.test", "example.test", false, 0, ""},
		{"sip:pbx.example.test:5090;transport=UDP", "pbx.example.test", false, 5090, "udp"},
		{"SIP:user@example.test;lr", "example.test", false, 0, ""},
		{"sip:[2001:db8::2]", "2001:db8::2", true, 0, ""},
		{"_sip._udp.example.test", "_sip._udp.example.test", false, 0, ""},
	} {
		n, err := resolve.ParseName(c.in)
		if err != nil {
			t.Errorf("%q: %v", c.in, err)
			continue
		}
		if n.Host != c.host || n.Static() != c.ip || n.Port != c.port || n.Transport != c.transport {
			t.Errorf("%q: got host %q ip %v port %d transport %q", c.in, n.Host, n.Static(), n.Port, c.transport)
		}
	}
	for _, c := range []struct{ in, want string }{
		{"", "empty"},
		{"sips:example.test", "TLS"},
		{"sip:example.test;transport=tcp", "UDP only"},
		{"sip:example.test;maddr=10.0.0.1", "maddr"},
		{"example.test:0", "port"},
		{"example.test:99999", "port"},
		{"exa mple.test", "neither"},
		{"[2001:db8::1", "unclosed"},
		{"a/b", "not a host"},
		{"fe80::1%eth0", "zone"},
	} {
		_, err := resolve.ParseName(c.in)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%q: error %v, want one saying %q", c.in, err, c.want)
		}
	}
}

// The RFC 3263 chain: NAPTR picks the UDP service (ignoring TCP and TLS
// rules and preferring the lower order), SRV gives priority, weight and
// port, A and AAAA the addresses; the TTL is the smallest seen.
func TestResolveNAPTRSRV(t *testing.T) {
	s := dnstest.Start(t,
		`example.test. 60 IN NAPTR 10 50 "s" "SIP+D2T" "" _sip._tcp.example.test.`,
		`example.test. 60 IN NAPTR 20 10 "s" "SIP+D2U" "" _other._udp.example.test.`,
		`example.test. 60 IN NAPTR 15 50 "s" "SIP+D2U" "" _sip._udp.example.test.`,
		`_sip._udp.example.test. 30 IN SRV 10 60 5080 pbx1.example.test.`,
		`_sip._udp.example.test. 30 IN SRV 10 40 5081 pbx2.example.test.`,
		`_sip._udp.example.test. 30 IN SRV 20 0 5082 standby.example.test.`,
		`_other._udp.example.test. 30 IN SRV 10 1 5999 wrong.example.test.`,
		`pbx1.example.test. 7 IN A 127.0.1.1`,
		`pbx2.example.test. 60 IN A 127.0.1.2`,
		`pbx2.example.test. 60 IN AAAA 2001:db8::2`,
		`standby.example.test. 60 IN A 127.0.1.3`,
	)
	res, err := newResolver(t, s).Resolve(context.Background(), mustName(t, "sip:example.test"))
	if err != nil {
		t.Fatal(err)
	}
	want := []resolve.Target{
		{Addr: netip.MustParseAddrPort("127.0.1.1:5080"), Priority: 10, Weight: 60, FromSRV: true, Host: "pbx1.example.test"},
		{Addr: netip.MustParseAddrPort("127.0.1.2:5081"), Priority: 10, Weight: 40, FromSRV: true, Host: "pbx2.example.test"},
		{Addr: netip.MustParseAddrPort("[2001:db8::2]:5081"), Priority: 10, Weight: 40, FromSRV: true, Host: "pbx2.example.test"},
		{Addr: netip.MustParseAddrPort("127.0.1.3:5082"), Priority: 20, Weight: 0, FromSRV: true, Host: "standby.example.test"},
	}
	if !slices.Equal(res.Targets, want) {
		t.Errorf("targets\n got %+v\nwant %+v", res.Targets, want)
	}
	if res.TTL != 7*time.Second {
		t.Errorf("TTL %v, want 7s (the smallest record TTL)", res.TTL)
	}
	if s.Queries(dns.TypeNAPTR) != 1 {
		t.Errorf("%d NAPTR queries, want 1", s.Queries(dns.TypeNAPTR))
	}
}

// What RFC 3263 says to skip is skipped: a numeric host asks nothing, an
// explicit port asks A/AAAA only, a transport parameter skips NAPTR; with
// no NAPTR the SRV of _sip._udp is asked, with no SRV the host on 5060.
func TestResolveSkipsAndFallbacks(t *testing.T) {
	s := dnstest.Start(t,
		`_sip._udp.srv.test. 60 IN SRV 0 1 5070 alias.srv.test.`,
		`alias.srv.test. 60 IN CNAME host.srv.test.`,
		`host.srv.test. 60 IN A 127.0.2.1`,
		`loop.test. 60 IN CNAME loop.test.`,
		`srv.test. 60 IN A 127.0.2.9`,
		`plain.test. 3600 IN A 127.0.2.2`,
	)
	r := newResolver(t, s)
	ctx := context.Background()
	check := func(name string, want string, queries map[uint16]int) {
		t.Helper()
		before := map[uint16]int{}
		for _, q := range []uint16{dns.TypeNAPTR, dns.TypeSRV, dns.TypeA, dns.TypeAAAA} {
			before[q] = s.Queries(q)
		}
		res, err := r.Resolve(ctx, mustName(t, name))
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if len(res.Targets) != 1 || res.Targets[0].Addr.String() != want {
			t.Errorf("%s: targets %+v, want %s", name, res.Targets, want)
		}
		for q, n := range queries {
			if got := s.Queries(q) - before[q]; got != n {
				t.Errorf("%s: %d %s queries, want %d", name, got, dns.TypeToString[q], n)
			}
		}
	}
	check("127.0.0.9", "127.0.0.9:5060", map[uint16]int{dns.TypeNAPTR: 0, dns.TypeSRV: 0, dns.TypeA: 0, dns.TypeAAAA: 0})
	check("sip:127.0.0.9:5099", "127.0.0.9:5099", map[uint16]int{dns.TypeNAPTR: 0, dns.TypeSRV: 0, dns.TypeA: 0})
	check("srv.test:5090", "127.0.2.9:5090", map[uint16]int{dns.TypeNAPTR: 0, dns.TypeSRV: 0, dns.TypeA: 1, dns.TypeAAAA: 1})
	check("sip:srv.test;transport=udp", "127.0.2.1:5070", map[uint16]int{dns.TypeNAPTR: 0, dns.TypeSRV: 1})
	check("srv.test", "127.0.2.1:5070", map[uint16]int{dns.TypeNAPTR: 1, dns.TypeSRV: 1})
	check("_sip._udp.srv.test", "127.0.2.1:5070", map[uint16]int{dns.TypeNAPTR: 0, dns.TypeSRV: 1})
	check("plain.test", "127.0.2.2:5060", map[uint16]int{dns.TypeNAPTR: 1, dns.TypeSRV: 1, dns.TypeA: 1})
	if _, err := r.Resolve(ctx, mustName(t, "loop.test:5060")); err == nil || !strings.Contains(err.Error(), "CNAMEs in a row") {
		t.Errorf("a CNAME loop: %v, want an error saying so", err)
	}
	res, _ := r.Resolve(ctx, mustName(t, "plain.test"))
	if res.TTL != time.Minute {
		t.Errorf("a 3600s TTL gave %v, want the 1m ceiling", res.TTL)
	}
}

func TestResolveEmptyAndDown(t *testing.T) {
	s := dnstest.Start(t,
		`_sip._udp.gone.test. 60 IN SRV 0 0 0 .`,
		`nohost.test. 60 IN TXT "nothing for SIP"`,
	)
	r := newResolver(t, s)
	ctx := context.Background()
	for _, name := range []string{"gone.test", "nohost.test", "missing.test"} {
		if _, err := r.Resolve(ctx, mustName(t, name)); !errors.Is(err, resolve.ErrNoTargets) {
			t.Errorf("%s: error %v, want ErrNoTargets", name, err)
		}
	}
	s.SetDown(true)
	_, err := r.Resolve(ctx, mustName(t, "nohost.test"))
	if err == nil || errors.Is(err, resolve.ErrNoTargets) || !strings.Contains(err.Error(), s.Addr) {
		t.Errorf("server down: error %v, want a failure naming the server", err)
	}
}

func TestNewRefusesBadConfig(t *testing.T) {
	if _, err := resolve.New(resolve.Config{Servers: []string{"dns.example"}}); err == nil || !strings.Contains(err.Error(), "IP") {
		t.Errorf("a server by name: %v, want an error asking for an IP", err)
	}
	if _, err := resolve.New(resolve.Config{Servers: []string{"127.0.0.1"}, TTLFloor: time.Minute, TTLCeiling: time.Second}); err == nil {
		t.Error("a ceiling below the floor was accepted")
	}
}

// A node that sends from IPv4 asks only A records and keeps only IPv4
// targets (an IPv6 backend would be unreachable from its socket); IPv6
// the other way round.
func TestResolveFamily(t *testing.T) {
	s := dnstest.Start(t, `dual.test. 60 IN A 127.0.8.1`, `dual.test. 60 IN AAAA 2001:db8::8`)
	for _, c := range []struct {
		fam  resolve.Family
		want string
		asks uint16
	}{{resolve.IPv4, "127.0.8.1:5060", dns.TypeA}, {resolve.IPv6, "[2001:db8::8]:5060", dns.TypeAAAA}} {
		r, err := resolve.New(resolve.Config{Servers: []string{s.Addr}, Family: c.fam})
		if err != nil {
			t.Fatal(err)
		}
		a, aaaa := s.Queries(dns.TypeA), s.Queries(dns.TypeAAAA)
		res, err := r.Resolve(context.Background(), mustName(t, "dual.test:5060"))
		if err != nil || len(res.Targets) != 1 || res.Targets[0].Addr.String() != c.want {
			t.Errorf("family %d: %+v %v, want only %s", c.fam, res.Targets, err, c.want)
		}
		if got := s.Queries(dns.TypeA) - a + s.Queries(dns.TypeAAAA) - aaaa; got != 1 || s.Queries(c.asks) == 0 {
			t.Errorf("family %d: %d address queries, want one %s", c.fam, got, dns.TypeToString[c.asks])
		}
	}
	if resolve.FamilyOf(netip.MustParseAddr("::ffff:10.0.0.1")) != resolve.IPv4 || resolve.FamilyOf(netip.Addr{}) != resolve.AnyFamily {
		t.Error("FamilyOf: a v4-mapped address is IPv4, none is any")
	}
}

// With the NGUDP service a domain is looked up as _ng._udp SRV (a SIP
// NAPTR record beside it is not followed: it names SIP servers), and a
// host without SRV records is its A record on 2223; a numeric host
// without a port is on 2223 too.
func TestResolveNGService(t *testing.T) {
	s := dnstest.Start(t,
		`relays.test. 1 IN NAPTR 10 10 "s" "SIP+D2U" "" _sip._udp.relays.test.`,
		`_sip._udp.relays.test. 1 IN SRV 10 1 5060 sip.relays.test.`,
		`_ng._udp.relays.test. 1 IN SRV 10 2 2230 r1.relays.test.`,
		`_ng._udp.relays.test. 1 IN SRV 20 1 2231 r2.relays.test.`,
		`sip.relays.test. 1 IN A 127.0.8.9`,
		`r1.relays.test. 1 IN A 127.0.8.1`,
		`r2.relays.test. 1 IN A 127.0.8.2`,
		`plain.test. 1 IN A 127.0.8.3`,
	)
	r, err := resolve.New(resolve.Config{Servers: []string{s.Addr}, Timeout: 300 * time.Millisecond, Service: resolve.NGUDP})
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct{ in, want string }{
		{"relays.test", "127.0.8.1:2230/10/2 127.0.8.2:2231/20/1"},
		{"sip:relays.test", "127.0.8.1:2230/10/2 127.0.8.2:2231/20/1"},
		{"plain.test", "127.0.8.3:2223/0/0"},
		{"plain.test:2300", "127.0.8.3:2300/0/0"},
		{"127.0.8.4", "127.0.8.4:2223/0/0"},
	} {
		res, err := r.Resolve(context.Background(), mustName(t, c.in))
		if err != nil {
			t.Errorf("%s: %v", c.in, err)
			continue
		}
		var got []string
		for _, tg := range res.Targets {
			got = append(got, tg.Addr.String()+"/"+itoa(tg.Priority)+"/"+itoa(tg.Weight))
		}
		if g := strings.Join(got, " "); g != c.want {
			t.Errorf("%s resolved to %s, want %s", c.in, g, c.want)
		}
	}
	if s.Queries(dns.TypeNAPTR) != 0 {
		t.Errorf("%d NAPTR queries for ng relays: ng has no NAPTR service", s.Queries(dns.TypeNAPTR))
	}
}

func itoa(v uint16) string { return strconv.Itoa(int(v)) }
