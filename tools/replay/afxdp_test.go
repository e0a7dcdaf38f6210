package replay

import (
	"net"
	"net/netip"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"sipedge/afxdp/vethtest"
	"sipedge/tools/sipgen"
)

// TestReplayAFXDPIntoVeth replays a sipgen capture through AF_XDP on the
// host end of a veth pair, paced (veth's ring is 256 entries), into a UDP
// socket in the peer's namespace: at least 99% must arrive, intact.
func TestReplayAFXDPIntoVeth(t *testing.T) {
	pair := vethtest.New(t, vethtest.Options{})
	rx := pair.ListenUDP(t, netip.AddrPortFrom(pair.PeerV4, 0))
	if rc, err := rx.SyscallConn(); err == nil {
		rc.Control(func(fd uintptr) { unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_RCVBUFFORCE, 16<<20) })
	}
	to := rx.LocalAddr().(*net.UDPAddr).AddrPort()

	c := sipgen.DefaultConfig()
	c.Calls, c.Registers, c.Options, c.Callers = 300, 20, 20, 2
	c.Responses = true
	// Ports no SIP service on this machine uses: the slow path binds its
	// sockets to the source ports.
	c.ClientPort, c.Backend = 25060, netip.MustParseAddrPort("192.0.2.20:25061")
	path, frames := writeCapture(t, c)

	// The peer pings the host, so the host knows the peer's MAC before
	// the first datagram: every one goes through the ring.
	if err := pair.Ping(pair.HostV4, 2*time.Second); err != nil {
		t.Fatalf("ping %v from %s: %v", pair.HostV4, pair.NS, err)
	}
	var maps []Mapping
	for _, a := range []string{"10.1.0.1", "10.1.0.2", "192.0.2.20"} {
		maps = append(maps, Mapping{From: netip.AddrPortFrom(netip.MustParseAddr(a), 0), To: netip.AddrPortFrom(pair.HostV4, 0)})
	}
	mapDst := []Mapping{{From: netip.AddrPortFrom(c.Proxy.Addr(), 0), To: to}}

	type result struct {
		n, sip uint64
	}
	got := make(chan result, 1)
	go func() {
		var r result
		buf := make([]byte, 70000)
		for r.n < frames {
			// Long enough for the sink's setup, short enough to end a
			// run that lost datagrams.
			rx.SetReadDeadline(time.Now().Add(5 * time.Second))
			k, err := rx.Read(buf)
			if err != nil {
				break
			}
			r.n++
			if LooksSIP(buf[:k]) {
				r.sip++
			}
		}
		got <- r
	}()
	s, err := Run(Options{Inputs: []string{path}, Into: "afxdp:" + pair.Host, Rate: 20000,
		MapSrc: maps, MapDst: mapDst, SIPPorts: []uint16{5060}})
	if err != nil {
		t.Fatal(err)
	}
	r := <-got
	a := s.AFXDP
	t.Logf("%d datagrams replayed, %d sent (ring %d, slow path %d, dropped %d), %d received (%.2f%%) in %.3fs",
		s.SIP, s.Sent, a.Ring, a.SlowPath, a.Dropped, r.n, 100*float64(r.n)/float64(frames), s.Seconds)
	if s.SIP != frames || s.Sent+s.SendErrors != frames {
		t.Fatalf("%d SIP datagrams, %d sent, %d errors; want %d", s.SIP, s.Sent, s.SendErrors, frames)
	}
	if r.n*100 < frames*99 || r.sip != r.n {
		t.Fatalf("%d of %d datagrams arrived (%d look like SIP): want at least 99%%", r.n, frames, r.sip)
	}
	if a.Ring < frames*99/100 {
		t.Fatalf("only %d of %d went through the AF_XDP ring (slow path %d)", a.Ring, frames, a.SlowPath)
	}
}
