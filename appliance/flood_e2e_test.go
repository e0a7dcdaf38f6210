package appliance_test

import (
	"fmt"
	"net"
	"net/netip"
	"os"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"sipedge/afxdp/vethtest"
	"sipedge/appliance"
)

// A steady caller at 15 calls/s, within its limits, beside a one-source
// INVITE flood as fast as one process can send: no legitimate call fails,
// the flooder is banned. On the socket port and on afxdp (where the ban
// ends in the XDP program). The figures are logged (go test -v).

// floodGuard bans a source over a limit for half a second; the other
// limits are the defaults (INVITE 20/s, burst 50: the caller's 15/s is
// within them). Until the ban, the whole flood reaches the worker, which
// on this 2-core box cannot read 90,000 datagrams a second: the kernel
// then drops from the full socket buffer (or RX ring) legitimate
// datagrams too, and a transaction whose every retransmission falls in
// that window fails. Half a second leaves the later retransmissions after
// the ban; with ban_after = "2s", 2 to 4 of the 150 calls failed here.
const floodGuard = "[guard]\nban_after = \"500ms\"\nban_ttl = \"10m\"\n"

const (
	steadyRate  = 15
	steadyCalls = 150 // 10 s
	floodFor    = 6 * time.Second
	floodMax    = 5_000_000
)

// floodFrom sends INVITEs on c to dst as fast as it can, for at most
// floodFor or floodMax datagrams, or until stop is set; it returns how
// many it sent.
func floodFrom(c *net.UDPConn, dst netip.AddrPort, stop *atomic.Bool) int {
	src := c.LocalAddr().(*net.UDPAddr).AddrPort()
	msg := []byte(invite("flood-1", src.String(), "", "sip:bob@"+dst.String()))
	n := 0
	for end := time.Now().Add(floodFor); n < floodMax && !stop.Load(); n++ {
		c.WriteToUDPAddrPort(msg, dst) // refused (ICMP) or not, the flood goes on
		if n%1024 == 0 && time.Now().After(end) {
			break
		}
	}
	return n
}

// floodFigures checks and logs what the appliance counted for the flood.
func floodFigures(t *testing.T, a *app, mode string, flooder netip.Addr, sent int, took time.Duration, uacStats map[string]int, dir string) {
	t.Helper()
	var m string
	a.get(t, "/metrics", &m)
	bans := a.bans(t)
	b, banned := bans[flooder.String()]
	t.Logf("%s: flood %d INVITEs in %v (%.0f/s) from %v; caller %d/%d calls ok, %d failed; ban %+v; guard: rejected rate-invite %v, dropped rate-invite %v, dropped banned %v, overload rejects %v, shed spared %v",
		mode, sent, took.Round(time.Millisecond), float64(sent)/took.Seconds(), flooder, uacStats["SuccessfulCall(C)"], steadyCalls, uacStats["FailedCall(C)"], b,
		metric(t, m, `sipedge_guard_rejected_total{reason="rate-invite"}`), metric(t, m, `sipedge_guard_dropped_total{reason="rate-invite"}`),
		metric(t, m, `sipedge_guard_dropped_total{reason="banned"}`), metric(t, m, `sipedge_guard_rejected_total{reason="overload"}`),
		metric(t, m, "sipedge_guard_shed_spared_total"))
	t.Logf("%s: the sockets' ban filter dropped %v datagrams (socket port only)", mode, sumMetric(m, "sipedge_socket_filter_dropped_banned_total"))
	// Before the defences a few percent of the caller's calls failed
	// (503s from shedding). Now none do, but on a 2-core box where the
	// flooder, both sipps and the appliance share the cores, one call in
	// 150 was lost once in about fifteen runs: its BYE's 200 timed out in
	// the flood's first half second, before the ban, with the host's UDP
	// receive buffers overflowing (60,000 kernel drops). One is allowed;
	// two would be a regression the shedding or the ban caused.
	if failed := steadyCalls - uacStats["SuccessfulCall(C)"]; failed > 1 {
		t.Errorf("%s: the steady caller had %d successful and %d failed calls, want %d, or one short at most\n%s", mode, uacStats["SuccessfulCall(C)"], uacStats["FailedCall(C)"], steadyCalls, errorsLog(dir, "steady"))
	} else if failed == 1 {
		t.Logf("%s: one call of %d failed (allowed: see the comment)\n%s", mode, steadyCalls, errorsLog(dir, "steady"))
	}
	if !banned || (b.Reason != "rate-invite" && b.Reason != "rate-all") {
		t.Errorf("%s: the flooder %v is not banned for its INVITE rate: %+v", mode, flooder, bans)
	}
	if len(bans) != 1 {
		t.Errorf("%s: bans %+v, want only the flooder", mode, bans)
	}
}

func TestE2EFloodBesideCallerSocket(t *testing.T) {
	const floodIP = "127.0.0.6"
	r := newLoopRigWith(t, 1, floodGuard)
	uac := sipp(t, r.dir, nil, "steady", "-sn", "uac", "-i", uacIP, "-p", portOf(freeUDP(t, uacIP)),
		"-r", fmt.Sprint(steadyRate), "-m", fmt.Sprint(steadyCalls), "-recv_timeout", "4s", "-timeout", "60s", "-timeout_error", r.sip)
	fc := listenUDP(t, floodIP)
	var stop atomic.Bool
	rb0 := udpRcvbufErrors(t)
	start := time.Now()
	sent := floodFrom(fc, addrPort(t, r.sip), &stop)
	took := time.Since(start)
	t.Logf("kernel UDP receive-buffer drops during the flood (whole host): %d", udpRcvbufErrors(t)-rb0)
	uac.wait(t, 60*time.Second)
	floodFigures(t, r.app, "socket", netip.MustParseAddr(floodIP), sent, took, sippStats(t, r.dir, "steady"), r.dir)
}

func TestE2EFloodBesideCallerAFXDP(t *testing.T) {
	requireSipp(t)
	vethtest.Require(t)
	pair := vethtest.New(t, vethtest.Options{})
	b := pair.PeerV4.As4()
	uacAddr := netip.AddrFrom4([4]byte{198, 18, b[2], b[3]})
	floodAddr := netip.AddrFrom4([4]byte{198, 19, b[2], b[3]})
	for _, a := range []netip.Addr{uacAddr, floodAddr} {
		pair.Exec(t, "ip", "addr", "add", a.String()+"/32", "dev", pair.Peer)
		hostRoute(t, a, pair.Host)
	}
	dir := t.TempDir()
	ns := []string{"ip", "netns", "exec", pair.NS}
	sip := netip.AddrPortFrom(pair.HostV4, 5060)
	admin := freeTCP(t, "127.0.0.1")
	uasAddr := pair.PeerV4.String() + ":5080"
	sipp(t, dir, ns, "uas0", "-sf", uasScenario(t), "-i", pair.PeerV4.String(), "-p", "5080", "-recv_timeout", "4s")
	cfg := afxdpConfig(pair, sip.String(), admin, uasAddr) + floodGuard
	a := startApp(t, dir, nil, cfg, 1)
	a.admin = admin
	a.waitBackends(t, "backend probed up", 10*time.Second, func(m map[string]appliance.BackendJSON) bool {
		return m[uasAddr].State == "up" && m[uasAddr].ProbesOK > 0
	})
	uac := sipp(t, dir, ns, "steady", "-sn", "uac", "-i", uacAddr.String(), "-p", "5070", "-r", fmt.Sprint(steadyRate), "-m", fmt.Sprint(steadyCalls),
		"-recv_timeout", "4s", "-timeout", "60s", "-timeout_error", sip.String())
	fc := pair.ListenUDP(t, netip.AddrPortFrom(floodAddr, 0))
	var stop atomic.Bool
	var m0 string
	a.get(t, "/metrics", &m0)
	start := time.Now()
	sent := floodFrom(fc, sip, &stop)
	took := time.Since(start)
	uac.wait(t, 60*time.Second)
	floodFigures(t, a, "afxdp", floodAddr, sent, took, sippStats(t, dir, "steady"), dir)
	var m string
	a.get(t, "/metrics", &m)
	xdrop := metric(t, m, `sipedge_xdp_packets_total{verdict="dropped-banned"}`) - metric(t, m0, `sipedge_xdp_packets_total{verdict="dropped-banned"}`)
	t.Logf("afxdp: XDP dropped %v flood datagrams as banned (%.1f%% of the flood); redirected %v",
		xdrop, 100*xdrop/float64(max(sent, 1)), metric(t, m, `sipedge_xdp_packets_total{verdict="redirected"}`))
	if xdrop == 0 || !strings.Contains(m, "sipedge_xdp_packets_total") {
		t.Errorf("the XDP program dropped no banned flood datagram (sipedge_xdp_packets_total)")
	}
}

// udpRcvbufErrors is the host's count of UDP datagrams dropped for a full
// socket receive buffer (/proc/net/snmp).
func udpRcvbufErrors(t *testing.T) uint64 {
	t.Helper()
	b, err := os.ReadFile("/proc/net/snmp")
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.Fields(line)
		if len(f) == 0 || f[0] != "Udp:" {
			continue
		}
		if names == nil {
			names = f
			continue
		}
		for i, n := range names {
			if n == "RcvbufErrors" && i < len(f) {
				v, _ := strconv.ParseUint(f[i], 10, 64)
				return v
			}
		}
	}
	return 0
}

// afxdpConfig is the afxdp-mode configuration of the e2e tests: the
// appliance on the host end of pair, one queue, probes every 200 ms.
func afxdpConfig(pair *vethtest.Pair, sip, admin string, backends ...string) string {
	var b strings.Builder
	fmt.Fprintf(&b, `[node]
addresses = [%q]
secret = "afxdp e2e test secret, 32 bytes."
[io]
port = "afxdp"
interface = %q
queues = [0]
cores = [0]
listen = %q
# 4 MiB of UMEM: fits the default 8 MiB RLIMIT_MEMLOCK of containers.
frame_size = 2048
frame_count = 2048
fill_ring = 1024
comp_ring = 1024
rx_ring = 1024
tx_ring = 512
[admin]
listen = %q
`, pair.HostV4.String(), pair.Host, sip, admin)
	for _, be := range backends {
		fmt.Fprintf(&b, "[[dispatcher.backends]]\naddress = %q\n", be)
	}
	b.WriteString("[dispatcher.probe]\ninterval = \"200ms\"\ntimeout = \"100ms\"\ndown_after = 2\nup_after = 1\n")
	return b.String()
}
