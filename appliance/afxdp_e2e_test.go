package appliance_test

import (
	"fmt"
	"math"
	"net/netip"
	"strings"
	"syscall"
	"testing"
	"time"

	"sipedge/afxdp/vethtest"
	"sipedge/appliance"
)

// The socket e2e run again with the appliance in afxdp mode on the host end
// of a veth pair, and sipp (UAC and both UAS) in the peer's namespace. The
// UAC gets its own address (a /32 on the peer, routed by the host), so the
// appliance does not take it for a backend.
func TestE2EAFXDPCalls(t *testing.T) {
	requireSipp(t)
	vethtest.Require(t)
	pair, uacAddr, ns, sip := afxdpPeer(t)
	dir := t.TempDir()
	admin := freeTCP(t, "127.0.0.1")
	uasAddrs := []string{pair.PeerV4.String() + ":5080", pair.PeerV4.String() + ":5081"}
	var uas []*proc
	for i, a := range uasAddrs {
		uas = append(uas, sipp(t, dir, ns, fmt.Sprintf("uas%d", i), "-sf", uasScenario(t), "-i", pair.PeerV4.String(), "-p", portOf(a), "-recv_timeout", "4s"))
	}
	cfg := afxdpConfig(pair, sip, admin, uasAddrs...) + e2eGuard
	a := startApp(t, dir, nil, cfg, 1)
	a.admin = admin
	if !strings.Contains(a.log.String(), "afxdp") {
		t.Fatalf("the worker does not say it runs on afxdp:\n%s", a.log.String())
	}
	a.waitBackends(t, "all probed up", 10*time.Second, func(m map[string]appliance.BackendJSON) bool {
		return m[uasAddrs[0]].State == "up" && m[uasAddrs[1]].State == "up" && m[uasAddrs[0]].ProbesOK > 0 && m[uasAddrs[1]].ProbesOK > 0
	})

	// No warm-up: the port learns the UAC's MAC from its first INVITE, so
	// forwarded responses to it take the ring like the answers to its own
	// requests, and they cannot overtake each other (a 180 after its 200
	// would make sipp abort the call, and fail the test below).
	const calls = 300
	uac := sipp(t, dir, ns, "uac", "-sn", "uac", "-i", uacAddr.String(), "-p", "5070", "-r", "50", "-m", fmt.Sprint(calls),
		"-recv_timeout", "4s", "-timeout", "60s", "-timeout_error", sip)
	if code := uac.wait(t, 60*time.Second); code != 0 {
		t.Errorf("sipp uac exit %d:\n%s\n%s\nappliance:\n%s", code, uac.log.String(), errorsLog(dir, "uac"), a.log.String())
	}
	st := sippStats(t, dir, "uac")
	if st["SuccessfulCall(C)"] != calls || st["FailedCall(C)"] != 0 {
		t.Errorf("uac: %d successful, %d failed calls, want %d and 0\n%s", st["SuccessfulCall(C)"], st["FailedCall(C)"], calls, errorsLog(dir, "uac"))
	}
	var m string
	a.get(t, "/metrics", &m)
	t.Logf("%v datagrams took the slow path", metric(t, m, "sipedge_afxdp_slow_path_total"))
	bk := a.backends(t)
	total := bk[uasAddrs[0]].Requests + bk[uasAddrs[1]].Requests
	// Binomial over the calls' Call-IDs (sipp's carry its pid, so each run
	// draws anew): 4.5 standard deviations, as in TestE2ESocketCalls. A fixed 15%
	// of 50 failed about one run in a hundred (CI saw 40.3/59.7).
	tol := 4.5 * math.Sqrt(0.25/calls)
	for _, ad := range uasAddrs {
		share := float64(bk[ad].Requests) / float64(max(total, 1))
		if math.Abs(share-0.5) > tol {
			t.Errorf("backend %s got %.1f%% of %d requests, want 50%% ± %.1f points", ad, 100*share, total, 100*tol)
		}
	}
	for i, p := range uas {
		us := stopUAS(t, p, dir, fmt.Sprintf("uas%d", i))
		if us["FailedCall(C)"]+us["OutOfCallMsgs(C)"] != 0 {
			t.Errorf("%s: %d failed calls, %d out-of-call messages, want none", uasAddrs[i], us["FailedCall(C)"], us["OutOfCallMsgs(C)"])
		}
	}
	code, ok := a.signalWait(t, syscall.SIGTERM, 5*time.Second)
	if !ok || code != 0 {
		t.Fatalf("appliance: exit %d (exited: %v) after SIGTERM, want 0 within its 2s limit\n%s", code, ok, a.log.String())
	}
	log := a.log.String()
	if !strings.Contains(log, "leaked=0") || !strings.Contains(log, "XDP program detached") {
		t.Errorf("stop did not report every frame back and the program detached:\n%s", log)
	}
}

// afxdpPeer makes the veth pair of the afxdp e2e tests: sipp runs in the
// peer's namespace (ns wraps its command), the UAC from uacAddr, and the
// appliance listens on sip on the host end.
func afxdpPeer(t *testing.T) (pair *vethtest.Pair, uacAddr netip.Addr, ns []string, sip string) {
	t.Helper()
	pair = vethtest.New(t, vethtest.Options{})
	b := pair.PeerV4.As4()
	uacAddr = netip.AddrFrom4([4]byte{198, 18, b[2], b[3]})
	pair.Exec(t, "ip", "addr", "add", uacAddr.String()+"/32", "dev", pair.Peer)
	if out, err := pair.Command("ip", "route", "get", pair.HostV4.String()).CombinedOutput(); err != nil {
		t.Fatalf("peer route to the host: %v %s", err, out)
	}
	hostRoute(t, uacAddr, pair.Host)
	return pair, uacAddr, []string{"ip", "netns", "exec", pair.NS}, netip.AddrPortFrom(pair.HostV4, 5060).String()
}

// hostRoute routes dst to dev on the host; the route goes with the veth.
func hostRoute(t *testing.T, dst netip.Addr, dev string) {
	t.Helper()
	p := start(t, "", nil, "ip", "route", "add", dst.String()+"/32", "dev", dev)
	if code := p.wait(t, 10*time.Second); code != 0 {
		t.Fatalf("ip route add %s dev %s: exit %d: %s", dst, dev, code, p.log.String())
	}
}
