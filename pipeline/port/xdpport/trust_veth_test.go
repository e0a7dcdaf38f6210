package xdpport

import (
	"net"
	"net/netip"
	"testing"
	"time"

	"sipedge/afxdp/vethtest"
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
