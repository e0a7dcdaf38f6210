package afxdp

import (
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"sipedge/afxdp/vethtest"
)

// TestPassAndRedirect: with the program attached, ARP, ICMP, neighbour
// discovery and non-SIP UDP still reach the kernel, while SIP UDP (v4 and
// v6) reaches the AF_XDP socket.
func TestPassAndRedirect(t *testing.T) {
	r := newRig(t, vethtest.Options{}, XDPNative, 1)
	if r.prog.Mode() != XDPNative {
		t.Fatalf("mode %v, want native", r.prog.Mode())
	}
	if m := r.socks[0].BindMode(); m != BindCopy {
		t.Errorf("veth bind mode %v, want copy (veth has no zero-copy)", m)
	}
	for _, a := range []netip.Addr{r.pair.HostV4, r.pair.HostV6} {
		if err := r.pair.Ping(a, 5*time.Second); err != nil {
			t.Errorf("ping through the program: %v", err)
		}
	}
	// Non-SIP UDP to a kernel socket on the host side.
	for _, v6 := range []bool{false, true} {
		k, err := net.ListenUDP("udp", net.UDPAddrFromAddrPort(r.hostAddr(v6, 0)))
		if err != nil {
			t.Fatal(err)
		}
		defer k.Close()
		c := r.peerConn(t, v6)
		if _, err := c.WriteToUDPAddrPort([]byte("to-kernel"), k.LocalAddr().(*net.UDPAddr).AddrPort()); err != nil {
			t.Fatal(err)
		}
		k.SetReadDeadline(time.Now().Add(5 * time.Second))
		buf := make([]byte, 64)
		n, _, err := k.ReadFromUDPAddrPort(buf)
		if err != nil || string(buf[:n]) != "to-kernel" {
			t.Errorf("v6=%v: kernel socket got %q, %v; want to-kernel", v6, buf[:n], err)
		}
		// SIP UDP to the AF_XDP socket, with addresses and port intact.
		payload := []byte(fmt.Sprintf("OPTIONS sip:x v6=%v", v6))
		d, ok := awaitFrame(t, r.socks[0], c, r.hostAddr(v6, sipPort), payload, 5*time.Second)
		if !ok {
			t.Fatalf("v6=%v: SIP datagram never reached the AF_XDP socket", v6)
		}
		f, _ := parseUDP(r.socks[0].Frame(d))
		if f.dst != r.hostAddr(v6, sipPort) || f.src != c.LocalAddr().(*net.UDPAddr).AddrPort() {
			t.Errorf("frame %v -> %v, want %v -> %v", f.src, f.dst, c.LocalAddr(), r.hostAddr(v6, sipPort))
		}
		r.socks[0].Release([]Desc{d})
	}
	c, err := r.prog.Counters()
	if err != nil {
		t.Fatal(err)
	}
	if c.Redirected < 2 || c.Passed == 0 || c.DroppedBanned != 0 {
		t.Errorf("counters %+v: want redirected >= 2, passed > 0, dropped 0", c)
	}
}

// TestBan: a banned source is dropped and counted, the ban lapses by itself
// after its TTL, and Unban lifts an IPv6 ban at once.
func TestBan(t *testing.T) {
	r := newRig(t, vethtest.Options{}, XDPAuto, 1)
	s := r.socks[0]
	c4 := r.peerConn(t, false)
	d, ok := awaitFrame(t, s, c4, r.hostAddr(false, sipPort), []byte("before"), 5*time.Second)
	if !ok {
		t.Fatal("no traffic before the ban")
	}
	s.Release([]Desc{d})
	if err := r.prog.Ban(r.pair.PeerV4, 300*time.Millisecond); err != nil {
		t.Fatal(err)
	}
	bans, err := r.prog.Bans()
	if err != nil || len(bans) != 1 || bans[0].Addr != r.pair.PeerV4 || bans[0].Left <= 0 || bans[0].Left > 300*time.Millisecond {
		t.Fatalf("Bans() = %v, %v; want one ban of %v with (0, 300ms] left", bans, err, r.pair.PeerV4)
	}
	// The first datagram sent during the ban is dropped and counted.
	if _, err := c4.WriteToUDPAddrPort([]byte("banned"), r.hostAddr(false, sipPort)); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		cn, err := r.prog.Counters()
		if err != nil {
			t.Fatal(err)
		}
		if cn.DroppedBanned >= 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("banned datagram not counted: %+v", cn)
		}
		time.Sleep(5 * time.Millisecond)
	}
	// The ban lapses by itself: resend until a datagram gets through.
	d, ok = awaitFrame(t, s, c4, r.hostAddr(false, sipPort), []byte("after"), 10*time.Second)
	if !ok {
		t.Fatal("traffic did not resume after the ban's TTL")
	}
	s.Release([]Desc{d})
	if bans, err := r.prog.Bans(); err != nil || len(bans) != 0 {
		t.Errorf("after lapse Bans() = %v, %v; want none (lapsed entries pruned)", bans, err)
	}

	// IPv6: ban for an hour, see a drop, unban, see traffic.
	c6 := r.peerConn(t, true)
	before, _ := r.prog.Counters()
	if err := r.prog.Ban(r.pair.PeerV6, time.Hour); err != nil {
		t.Fatal(err)
	}
	if _, err := c6.WriteToUDPAddrPort([]byte("banned6"), r.hostAddr(true, sipPort)); err != nil {
		t.Fatal(err)
	}
	r.awaitDropped(t, before, "banned IPv6 datagram not counted")
	if err := r.prog.Unban(r.pair.PeerV6); err != nil {
		t.Fatal(err)
	}
	if d, ok := awaitFrame(t, s, c6, r.hostAddr(true, sipPort), []byte("unbanned6"), 5*time.Second); !ok {
		t.Fatal("IPv6 traffic did not resume after Unban")
	} else {
		s.Release([]Desc{d})
	}
}

// TestReply: a reply built in place from a received frame is accepted by
// the sender's kernel socket, for IPv4 and IPv6.
func TestReply(t *testing.T) {
	r := newRig(t, vethtest.Options{}, XDPNative, 1)
	s := r.socks[0]
	for _, v6 := range []bool{false, true} {
		c := r.peerConn(t, v6)
		d, ok := awaitFrame(t, s, c, r.hostAddr(v6, sipPort), []byte("REGISTER sip:x"), 5*time.Second)
		if !ok {
			t.Fatalf("v6=%v: request never arrived", v6)
		}
		n, err := buildReply(s.Frame(d), int(d.Len), []byte("SIP/2.0 200 OK"))
		if err != nil {
			t.Fatal(err)
		}
		d.Len = uint32(n)
		before := s.FreeFrames()
		if q, err := s.Transmit([]Desc{d}); q != 1 || err != nil {
			t.Fatalf("Transmit = %d, %v", q, err)
		}
		c.SetReadDeadline(time.Now().Add(5 * time.Second))
		buf := make([]byte, 64)
		m, from, err := c.ReadFromUDPAddrPort(buf)
		if err != nil || string(buf[:m]) != "SIP/2.0 200 OK" || from != r.hostAddr(v6, sipPort) {
			t.Fatalf("v6=%v: peer got %q from %v, %v; want the reply from %v", v6, buf[:m], from, err, r.hostAddr(v6, sipPort))
		}
		for deadline := time.Now().Add(5 * time.Second); s.FreeFrames() == before; {
			s.Complete()
			if time.Now().After(deadline) {
				t.Fatal("sent frame never completed")
			}
		}
	}
}

// TestTwoQueues: with two RX queues and a socket on each, flows from the
// peer spread over both (native XDP on veth follows the peer's TX queue).
func TestTwoQueues(t *testing.T) {
	r := newRig(t, vethtest.Options{HostRxQueues: 2, HostTxQueues: 2, PeerRxQueues: 2, PeerTxQueues: 2}, XDPNative, 2)
	var conns []*net.UDPConn
	for i := 0; i < 32; i++ {
		conns = append(conns, r.peerConn(t, false))
	}
	got := make([]int, 2)
	descs := make([]Desc, 64)
	deadline := time.Now().Add(10 * time.Second)
	for (got[0] == 0 || got[1] == 0) && time.Now().Before(deadline) {
		for _, c := range conns {
			c.WriteToUDPAddrPort([]byte("INVITE"), r.hostAddr(false, sipPort))
		}
		for q, s := range r.socks {
			s.Poll(10 * time.Millisecond)
			n := s.Receive(descs)
			got[q] += n
			s.Release(descs[:n])
			s.Fill()
		}
	}
	if got[0] == 0 || got[1] == 0 {
		t.Fatalf("per-queue frames %v: want both queues to receive", got)
	}
	t.Logf("per-queue frames: %v", got)
}

// TestCloseRebind: a closed socket releases its queue, so a new socket can
// bind it in the same process and receive.
func TestCloseRebind(t *testing.T) {
	r := newRig(t, vethtest.Options{}, XDPNative, 1)
	c := r.peerConn(t, false)
	for round := 0; round < 3; round++ {
		s := r.socks[0]
		d, ok := awaitFrame(t, s, c, r.hostAddr(false, sipPort), []byte(fmt.Sprint("round ", round)), 5*time.Second)
		if !ok {
			t.Fatalf("round %d: nothing received", round)
		}
		s.Release([]Desc{d})
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
		if s.Receive(make([]Desc, 1)) != 0 || s.Fill() != 0 {
			t.Fatal("a closed socket still moves frames")
		}
		ns, err := Open(s.Config())
		if err != nil {
			t.Fatalf("round %d: rebind: %v", round, err)
		}
		t.Cleanup(func() { ns.Close() })
		if err := r.prog.Register(0, ns); err != nil {
			t.Fatal(err)
		}
		r.socks[0] = ns
	}
}

const childEnv = "SIPEDGE_AFXDP_CHILD_IFINDEX"

// TestMain lets the test binary act as the child of TestDetachOnExit: it
// attaches the program and exits without Close.
func TestMain(m *testing.M) {
	if v := os.Getenv(childEnv); v != "" {
		idx, _ := strconv.Atoi(v)
		p, err := LoadProgram(ProgramConfig{Ifindex: idx, Mode: XDPNative, Ports: []uint16{sipPort}})
		if err != nil {
			fmt.Println("child:", err)
			os.Exit(2)
		}
		fmt.Println("attached", p.Mode())
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// TestDetachOnExit: the BPF link dies with the process, so the program
// does not stay on the interface after a crash or exit.
func TestDetachOnExit(t *testing.T) {
	vethtest.Require(t)
	pair := vethtest.New(t, vethtest.Options{})
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), childEnv+"="+strconv.Itoa(pair.HostIndex))
	out, err := cmd.CombinedOutput()
	if err != nil || !strings.Contains(string(out), "attached native") {
		t.Fatalf("child: %v: %s", err, out)
	}
	// The link is released as the child's files close; allow the kernel
	// a bounded moment in case the release is deferred.
	deadline := time.Now().Add(3 * time.Second)
	for {
		show, err := exec.Command("ip", "link", "show", "dev", pair.Host).CombinedOutput()
		if err != nil {
			t.Fatalf("ip link show: %v: %s", err, show)
		}
		if !strings.Contains(string(show), "xdp") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("XDP still attached after the child exited:\n%s", show)
		}
		time.Sleep(20 * time.Millisecond)
	}
	// And this process can attach it again.
	p, err := LoadProgram(ProgramConfig{Ifindex: pair.HostIndex, Mode: XDPNative})
	if err != nil {
		t.Fatal(err)
	}
	show, _ := exec.Command("ip", "link", "show", "dev", pair.Host).CombinedOutput()
	if !strings.Contains(string(show), "xdp") {
		t.Errorf("ip link does not show the attached program:\n%s", show)
	}
	p.Close()
}

// TestFragmentsPass: a SIP datagram larger than the MTU arrives as IP
// fragments; the program passes them, so the kernel reassembles it and a
// kernel socket on the SIP port gets it whole, while small datagrams on
// the same port still go to the AF_XDP socket.
func TestFragmentsPass(t *testing.T) {
	r := newRig(t, vethtest.Options{}, XDPNative, 1)
	for _, v6 := range []bool{false, true} {
		k, err := net.ListenUDP("udp", net.UDPAddrFromAddrPort(r.hostAddr(v6, sipPort)))
		if err != nil {
			t.Fatal(err)
		}
		defer k.Close()
		c := r.peerConn(t, v6)
		big := make([]byte, 4000)
		for i := range big {
			big[i] = byte(i)
		}
		if _, err := c.WriteToUDPAddrPort(big, r.hostAddr(v6, sipPort)); err != nil {
			t.Fatal(err)
		}
		k.SetReadDeadline(time.Now().Add(5 * time.Second))
		buf := make([]byte, 8000)
		n, _, err := k.ReadFromUDPAddrPort(buf)
		if err != nil || n != len(big) || string(buf[:n]) != string(big) {
			t.Errorf("v6=%v: kernel socket got %d bytes, %v; want the %d-byte datagram reassembled", v6, n, err, len(big))
		}
		if d, ok := awaitFrame(t, r.socks[0], c, r.hostAddr(v6, sipPort), []byte("small"), 5*time.Second); !ok {
			t.Errorf("v6=%v: small datagram did not reach the AF_XDP socket", v6)
		} else {
			r.socks[0].Release([]Desc{d})
		}
	}
}

// TestBanSIPPortsOnly: a ban drops the source's SIP datagrams only: the
// same source still pings the host and reaches its other UDP ports, so a
// ban won by forging a victim's address cuts nothing else off. The map is
// an LRU: more bans than it holds all succeed, and lapsed ones are pruned.
func TestBanSIPPortsOnly(t *testing.T) {
	r := newRig(t, vethtest.Options{}, XDPAuto, 1)
	if err := r.prog.Ban(r.pair.PeerV4, time.Hour); err != nil {
		t.Fatal(err)
	}
	if err := r.pair.Ping(r.pair.HostV4, 5*time.Second); err != nil {
		t.Errorf("a banned source cannot ping the host: %v", err)
	}
	k, err := net.ListenUDP("udp", net.UDPAddrFromAddrPort(r.hostAddr(false, 0)))
	if err != nil {
		t.Fatal(err)
	}
	defer k.Close()
	c := r.peerConn(t, false)
	before, _ := r.prog.Counters()
	if _, err := c.WriteToUDPAddrPort([]byte("to-kernel"), k.LocalAddr().(*net.UDPAddr).AddrPort()); err != nil {
		t.Fatal(err)
	}
	k.SetReadDeadline(time.Now().Add(5 * time.Second))
	buf := make([]byte, 64)
	if n, _, err := k.ReadFromUDPAddrPort(buf); err != nil || string(buf[:n]) != "to-kernel" {
		t.Errorf("a banned source's non-SIP UDP: got %q, %v; want it delivered", buf[:n], err)
	}
	if _, err := c.WriteToUDPAddrPort([]byte("sip"), r.hostAddr(false, sipPort)); err != nil {
		t.Fatal(err)
	}
	r.awaitDropped(t, before, "the banned source's SIP datagram was not dropped")

	// LRU: 70,000 bans in a 65,536-entry map, all accepted; the ones
	// that lapsed at once are pruned.
	const n = 70000
	for i := 0; i < n; i++ {
		a := netip.AddrFrom4([4]byte{10, byte(i >> 16), byte(i >> 8), byte(i)})
		ttl := time.Hour
		if i%2 == 0 {
			ttl = time.Nanosecond
		}
		if err := r.prog.Ban(a, ttl); err != nil {
			t.Fatalf("ban %d of %d: %v", i+1, n, err)
		}
	}
	pruned, err := r.prog.PruneBans()
	if err != nil || pruned == 0 {
		t.Errorf("PruneBans = %d, %v; want the lapsed bans deleted", pruned, err)
	}
	if left, _ := r.prog.PruneBans(); left != 0 {
		t.Errorf("a second PruneBans found %d lapsed bans, want 0", left)
	}
}

// TestBanIPv6Prefix: with IPv6BanPrefix 64, banning one address drops
// another address of its /64 (a host rotating through its prefix), Bans
// names the prefix, and unbanning any address of it lifts the ban.
func TestBanIPv6Prefix(t *testing.T) {
	r := newRig(t, vethtest.Options{}, XDPAuto, 1, func(pc *ProgramConfig) { pc.IPv6BanPrefix = 64 })
	s := r.socks[0]
	b := r.pair.PeerV6.As16()
	b[15] ^= 0x40 // another host part, same /64
	other := netip.AddrFrom16(b)
	if _, err := r.pair.Run("ip", "-6", "addr", "add", other.String()+"/64", "dev", r.pair.Peer, "nodad"); err != nil {
		t.Fatal(err)
	}
	c := r.pair.ListenUDP(t, netip.AddrPortFrom(other, 0))
	d, ok := awaitFrame(t, s, c, r.hostAddr(true, sipPort), []byte("before"), 5*time.Second)
	if !ok {
		t.Fatalf("no traffic from %v before the ban", other)
	}
	s.Release([]Desc{d})
	before, _ := r.prog.Counters()
	if err := r.prog.Ban(r.pair.PeerV6, time.Hour); err != nil {
		t.Fatal(err)
	}
	prefix := netip.PrefixFrom(r.pair.PeerV6, 64).Masked().Addr()
	if bans, err := r.prog.Bans(); err != nil || len(bans) != 1 || bans[0].Addr != prefix {
		t.Fatalf("Bans() = %v, %v; want one ban of %v (the /64)", bans, err, prefix)
	}
	if _, err := c.WriteToUDPAddrPort([]byte("banned"), r.hostAddr(true, sipPort)); err != nil {
		t.Fatal(err)
	}
	r.awaitDropped(t, before, fmt.Sprintf("a datagram from %v, in the banned %v's /64, was not dropped", other, r.pair.PeerV6))
	if err := r.prog.Unban(other); err != nil {
		t.Fatal(err)
	}
	if d, ok := awaitFrame(t, s, c, r.hostAddr(true, sipPort), []byte("unbanned"), 5*time.Second); !ok {
		t.Fatal("traffic did not resume after unbanning another address of the /64")
	} else {
		s.Release([]Desc{d})
	}
}

// awaitDropped polls the program's counters (bounded: 5s) until it has
// dropped a banned datagram since before; what says which, on failure.
func (r *rig) awaitDropped(t *testing.T, before Counters, what string) {
	t.Helper()
	for deadline := time.Now().Add(5 * time.Second); ; {
		cn, _ := r.prog.Counters()
		if cn.DroppedBanned > before.DroppedBanned {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: %+v", what, cn)
		}
		time.Sleep(5 * time.Millisecond)
	}
}
