package xdpport

import (
	"net"
	"net/netip"
	"testing"
	"time"

	"sipedge/afxdp/vethtest"
	"sipedge/pipeline/port"
)

// firmNeigh is Neighbours that holds one firm (reachable or permanent)
// kernel entry.
type firmNeigh struct{ fakeNeigh }

func (n *firmNeigh) Firm(dst netip.Addr) ([6]byte, bool) { return n.Lookup(dst) }

// TestFirmNeighbourWinsOverLearnt: a MAC learnt for the peer from a
// forged frame (another host on the link claiming the peer's address)
// diverts datagrams to the peer while the kernel's entry is not firm; a
// reachable or permanent kernel entry wins over it.
func TestFirmNeighbourWinsOverLearnt(t *testing.T) {
	forged := [6]byte{0x02, 0xde, 0xad, 0xbe, 0xef, 0x01}
	for _, firm := range []bool{false, true} {
		t.Run(map[bool]string{false: "stale", true: "firm"}[firm], func(t *testing.T) {
			var cfg Config
			vethtest.Require(t)
			pair := vethtest.New(t, vethtest.Options{})
			fn := fakeNeigh{addr: pair.PeerV4, mac: [6]byte(pair.PeerMAC)}
			if firm {
				cfg.Neighbours = &firmNeigh{fn}
			} else {
				cfg.Neighbours = &fn
			}
			r := newRigOn(t, pair, 1, cfg)
			p := r.g.Ports()[0]
			target := r.pair.ListenUDP(t, netip.AddrPortFrom(r.pair.PeerV4, 0))
			// The forged frame passed the chain and was learnt.
			p.learn.observe(r.pair.PeerV4, forged, p.clock())
			forward(t, p, target.LocalAddr().(*net.UDPAddr).AddrPort(), []byte("180 Ringing"))
			target.SetReadDeadline(time.Now().Add(500 * time.Millisecond))
			buf := make([]byte, 64)
			_, _, err := target.ReadFromUDPAddrPort(buf)
			if firm && err != nil {
				t.Errorf("with a firm kernel entry the peer got nothing: the learnt (forged) MAC won (%v)", err)
			}
			if !firm && err == nil {
				t.Errorf("the forged learnt MAC was not used over a non-firm entry: the attack this test shows did not happen")
			}
		})
	}
}

// TestReversePathCheck: a source the kernel routes through another
// interface (a backend on loopback here) is foreign to the veth; a frame
// claiming it on the veth gets through without the check (the attack),
// and is dropped and counted with it (from the start, or from a reload's
// SetForeignSources on), while the peer's own frames pass.
func TestReversePathCheck(t *testing.T) {
	vethtest.Require(t)
	pair := vethtest.New(t, vethtest.Options{})
	foreign, err := ForeignSources(pair.HostIndex, []netip.Prefix{
		netip.PrefixFrom(pair.PeerV4, 32), netip.MustParsePrefix("127.0.0.1/32")})
	if err != nil {
		t.Fatal(err)
	}
	if len(foreign) != 1 || foreign[0] != netip.MustParsePrefix("127.0.0.1/32") {
		t.Fatalf("ForeignSources = %v, want only 127.0.0.1/32 (the peer is routed through the veth)", foreign)
	}
	// The claim: a host on the veth sending as 198.18.x.y, an address the
	// configuration trusts and the kernel routes elsewhere.
	b := pair.PeerV4.As4()
	claimed := netip.AddrFrom4([4]byte{198, 18, b[2], b[3]})
	pair.Exec(t, "ip", "addr", "add", claimed.String()+"/32", "dev", pair.Peer)
	dst := netip.AddrPortFrom(pair.HostV4, sipPort)
	for _, check := range []bool{false, true} {
		t.Run(map[bool]string{false: "unchecked", true: "checked"}[check], func(t *testing.T) {
			var cfg Config
			if check {
				cfg.ForeignSources = []netip.Prefix{netip.PrefixFrom(claimed, 32)}
			}
			r := newRigOn(t, pair, 1, cfg)
			p := r.g.Ports()[0]
			honest := r.pair.ListenUDP(t, netip.AddrPortFrom(r.pair.PeerV4, 0))
			p.Release([]port.Packet{awaitPacket(t, p, honest, dst, []byte("honest"))})
			spoof := r.pair.ListenUDP(t, netip.AddrPortFrom(claimed, 0))
			if !check {
				// The attack gets through; then a reload makes the
				// claimed source foreign (SetForeignSources), checked
				// from the next receive on.
				p.Release([]port.Packet{awaitPacket(t, p, spoof, dst, []byte("claimed"))})
				r.g.SetForeignSources([]netip.Prefix{netip.PrefixFrom(claimed, 32)})
			}
			rx := make([]port.Packet, 16)
			for deadline := time.Now().Add(10 * time.Second); p.Stats().Drops.ReversePath == 0; {
				if time.Now().After(deadline) {
					t.Fatalf("no reverse-path drop: %+v", p.Stats())
				}
				spoof.WriteToUDPAddrPort([]byte("claimed"), dst)
				n, err := port.ReceiveWait(p, rx, testWait)
				if err != nil {
					t.Fatal(err)
				}
				for _, pk := range rx[:n] {
					if string(pk.Payload) == "claimed" {
						t.Fatalf("a frame claiming %v was handed up", claimed)
					}
				}
				p.Release(rx[:n])
			}
		})
	}
}
