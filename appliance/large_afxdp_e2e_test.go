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
// kernel, which reassembles them for the port's slow-path socket. The 3.5
// KB one fits a 4096-byte UMEM frame and goes through both ways (the
// kernel fragments the forward); the 7.5 KB one does not fit a frame and
// is answered 513 rather than lost (see pipeline/port/xdpport's doc).
func TestE2ELargeInviteAFXDP(t *testing.T) {
	pair, uacAddr := largePeer(t)
	dir := t.TempDir()
	ns := []string{"ip", "netns", "exec", pair.NS}
	sip := netip.AddrPortFrom(pair.HostV4, 5060)
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
	largeInvites(t, conn, net.UDPAddrFromAddrPort(sip), 4000, func() string {
		var m string
		a.get(t, "/metrics", &m)
		return m + "\n" + errorsLog(dir, "uas0") + "\n" + a.log.String()
	})
}

// largePeer is a veth pair whose peer namespace also holds a /32 of its
// own for the UAC, routed by the host, so that the appliance does not take
// the UAC for a backend.
func largePeer(t *testing.T) (*vethtest.Pair, netip.Addr) {
	t.Helper()
	requireSipp(t)
	vethtest.Require(t)
	pair := vethtest.New(t, vethtest.Options{})
	b := pair.PeerV4.As4()
	uacAddr := netip.AddrFrom4([4]byte{198, 18, b[2], b[3]})
	pair.Exec(t, "ip", "addr", "add", uacAddr.String()+"/32", "dev", pair.Peer)
	if out, err := pair.Command("ip", "route", "get", pair.HostV4.String()).CombinedOutput(); err != nil {
		t.Fatalf("peer route to the host: %v %s", err, out)
	}
	hostRoute(t, uacAddr, pair.Host)
	return pair, uacAddr
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
