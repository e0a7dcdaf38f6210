package appliance_test

import (
	"fmt"
	"net/netip"
	"testing"
	"time"

	"sipedge/appliance/resolve/dnstest"
	"sipedge/pipeline/stages/media/mediatest"
)

// [media] relays names a DNS name of the test's own server: SRV
// _ng._udp.relays.test gives a real rtpengine at priority 10 and, at
// priority 20, a standby address nobody listens on. /relays lists both as
// resolved, and sipp calls are anchored on the rtpengine: both sides' SDP
// name its media ports (the scenarios fail the call otherwise) and BYE
// deletes the calls there.
func TestE2EMediaRelayFromDNS(t *testing.T) {
	relay := mediatest.Start(t)
	standby := netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), relay.NG.Port()+1) // a dead relay: never picked while the first is up
	dns := dnstest.Start(t,
		fmt.Sprintf(`_ng._udp.relays.test. 1 IN SRV 10 1 %d rtp.relays.test.`, relay.NG.Port()),
		fmt.Sprintf(`_ng._udp.relays.test. 1 IN SRV 20 1 %d rtp.relays.test.`, standby.Port()),
		`rtp.relays.test. 1 IN A 127.0.0.1`)
	extra := fmt.Sprintf("[dispatcher.dns]\nservers = [%q]\ntimeout = \"200ms\"\nttl_floor = \"200ms\"\nttl_ceiling = \"1m\"\n", dns.Addr)
	r := newMediaRigConf(t, answer200, `{ address = "relays.test" }`, extra, relay)
	rs := r.relaysJSON(t)
	if len(rs) != 2 || rs[relay.NG.String()].Priority != 10 || rs[standby.String()].Priority != 20 || rs[relay.NG.String()].Weight != 1 {
		t.Fatalf("/relays %+v, want %v (priority 10, weight 1) and %v (priority 20) resolved from relays.test", rs, relay.NG, standby)
	}
	const calls = 3
	uac := r.uac(t, "uac", portRE(relay), 3, calls, 500*time.Millisecond, false)
	r.checkUAC(t, uac, "uac", calls)
	waitRelayCalls(t, "after BYE", 0, relay)
	var m string
	r.app.get(t, "/metrics", &m)
	if got := metric(t, m, `sipedge_media_ng_requests_total{command="offer"}`); got != calls {
		t.Errorf("%v offers sent to relays, want %d", got, calls)
	}
	if got := metric(t, m, `sipedge_media_dns_lookups_total{result="ok"}`); got < 1 {
		t.Errorf("sipedge_media_dns_lookups_total{result=\"ok\"} = %v, want at least the first lookup", got)
	}
	if q := dns.Total(); q == 0 {
		t.Error("the DNS server was never asked")
	}
}
