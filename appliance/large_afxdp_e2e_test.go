package appliance_test

import (
	"fmt"
	"net"
	"net/netip"
	"testing"
	"time"

	"sipedge/afxdp/vethtest"
	"sipedge/appliance"
)

// INVITEs of 3.5 KB and 7.5 KB from the peer's namespace, IP-fragmented
// on the veth's 1500 MTU: the XDP program passes the fragments to the
// kernel, which reassembles them for the port's slow-path socket. Both go
// through to the UAS and its answer comes back: the 3.5 KB one fits a
// 4096-byte UMEM frame, the 7.5 KB one does not and travels in the port's
// large buffers both ways (counted). One over [guard] max_message_size
// (8192) is answered 513.
func TestE2ELargeInviteAFXDP(t *testing.T) {
	requireSipp(t)
	vethtest.Require(t)
	pair, uacAddr, ns, sipStr := afxdpPeer(t)
	sip := netip.MustParseAddrPort(sipStr)
	dir := t.TempDir()
	admin := freeTCP(t, "127.0.0.1")
	uasAddr := pair.PeerV4.String() + ":5080"
	sipp(t, dir, ns, "uas0", "-sf", uasScenario(t), "-i", pair.PeerV4.String(), "-p", "5080", "-recv_timeout", "4s")
	// 4 MiB of UMEM in page-sized frames (a 3.5 KB INVITE fits one).
	umem := "frame_size = 4096\nframe_count = 1024\nfill_ring = 512\ncomp_ring = 512\nrx_ring = 512\ntx_ring = 256\n"
	cfg := largeConfig(pair, sip.String(), admin, umem, uasAddr)
	a := startApp(t, dir, nil, cfg, 1)
	a.admin = admin
	a.waitBackends(t, "probed up", 10*time.Second, func(m map[string]appliance.BackendJSON) bool {
		return m[uasAddr].State == "up" && m[uasAddr].ProbesOK > 0
	})
	conn := pair.ListenUDP(t, netip.AddrPortFrom(uacAddr, 0))
	more := func() string {
		var m string
		a.get(t, "/metrics", &m)
		return m + "\n" + errorsLog(dir, "uas0") + "\n" + a.log.String()
	}
	largeInvites(t, conn, net.UDPAddrFromAddrPort(sip), 8192, more)
	var m string
	a.get(t, "/metrics", &m)
	// The 7.5 KB INVITE and the 9 KB one are larger than a frame; the
	// 7.5 KB forward is built in a large buffer.
	if rx, tx := metric(t, m, "sipedge_afxdp_large_received_total"), metric(t, m, "sipedge_afxdp_large_sent_total"); rx < 2 || tx < 1 {
		t.Errorf("large path: %v received, %v sent; want at least 2 and 1\n%s", rx, tx, more())
	}
}

// largeConfig is the appliance on pair's host end in afxdp mode, with
// umem's [io] lines, fast probes and the given backends.
func largeConfig(pair *vethtest.Pair, sip, admin, umem string, backends ...string) string {
	cfg := fmt.Sprintf("[node]\naddresses = [%q]\nsecret = \"afxdp e2e test secret, 32 bytes.\"\n"+
		"[io]\nport = \"afxdp\"\ninterface = %q\nqueues = [0]\ncores = [0]\nlisten = %q\n%s[admin]\nlisten = %q\n",
		pair.HostV4.String(), pair.Host, sip, umem, admin)
	for _, b := range backends {
		cfg += fmt.Sprintf("[[dispatcher.backends]]\naddress = %q\n", b)
	}
	return cfg + "[dispatcher.probe]\ninterval = \"200ms\"\ntimeout = \"100ms\"\ndown_after = 2\nup_after = 1\n" + e2eGuard
}
