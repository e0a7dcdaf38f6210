package afxdp

import (
	"encoding/binary"
	"errors"
	"net"
	"net/netip"
	"testing"
	"time"

	"sipedge/afxdp/vethtest"
)

// sipPort is the rigs' SIP port: not 5060, which the afxdp port's slow-path
// socket of other packages' tests holds on the wildcard address (bound to
// their device, which still conflicts with an unbound socket) while go test
// runs packages in parallel (tools/replay's slow path takes 25060, the
// guard's rig 25062), and below the ephemeral range that free-port pickers
// use.
const sipPort = 25063

// rig is a veth pair with the program attached to its host end and one
// socket per queue registered.
type rig struct {
	pair  *vethtest.Pair
	prog  *Program
	socks []*Socket
}

// newRig makes the rig; tweak, when given, edits the program's config.
func newRig(t testing.TB, opts vethtest.Options, mode XDPMode, queues int, tweak ...func(*ProgramConfig)) *rig {
	t.Helper()
	vethtest.Require(t)
	r := &rig{pair: vethtest.New(t, opts)}
	pc := ProgramConfig{Ifindex: r.pair.HostIndex, Mode: mode, Ports: []uint16{sipPort}, Queues: 8}
	for _, f := range tweak {
		f(&pc)
	}
	var err error
	r.prog, err = LoadProgram(pc)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.prog.Close() })
	for q := 0; q < queues; q++ {
		cfg := DefaultConfig(r.pair.HostIndex, q)
		cfg.FrameCount, cfg.FillRingSize, cfg.CompRingSize, cfg.RxRingSize, cfg.TxRingSize = 1024, 512, 512, 512, 256
		s, err := Open(cfg)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close() })
		if err := r.prog.Register(q, s); err != nil {
			t.Fatal(err)
		}
		r.socks = append(r.socks, s)
	}
	return r
}

// peerConn opens a UDP socket in the namespace on the peer's address of
// dst's family.
func (r *rig) peerConn(t testing.TB, v6 bool) *net.UDPConn {
	a := r.pair.PeerV4
	if v6 {
		a = r.pair.PeerV6
	}
	return r.pair.ListenUDP(t, netip.AddrPortFrom(a, 0))
}

func (r *rig) hostAddr(v6 bool, port uint16) netip.AddrPort {
	if v6 {
		return netip.AddrPortFrom(r.pair.HostV6, port)
	}
	return netip.AddrPortFrom(r.pair.HostV4, port)
}

// awaitFrame sends payload from c to dst and polls s, resending every
// 100 ms, until a frame carrying payload arrives or the deadline passes.
// Frames of other payloads are released.
func awaitFrame(t testing.TB, s *Socket, c *net.UDPConn, dst netip.AddrPort, payload []byte, within time.Duration) (Desc, bool) {
	t.Helper()
	descs := make([]Desc, 16)
	deadline := time.Now().Add(within)
	for time.Now().Before(deadline) {
		if _, err := c.WriteToUDPAddrPort(payload, dst); err != nil {
			t.Fatalf("sending to %v: %v", dst, err)
		}
		tick := time.Now().Add(100 * time.Millisecond)
		for time.Now().Before(tick) {
			if _, err := s.Poll(20 * time.Millisecond); err != nil {
				t.Fatal(err)
			}
			n := s.Receive(descs)
			for i := 0; i < n; i++ {
				if f, ok := parseUDP(s.Frame(descs[i])); ok && string(f.payload) == string(payload) {
					s.Release(descs[i+1 : n])
					s.Fill()
					return descs[i], true
				}
				s.Release(descs[i : i+1])
			}
			s.Fill()
		}
	}
	return Desc{}, false
}

// udpFrame is a parsed Ethernet/IP/UDP frame (test-only: the frame package
// owns production decoding).
type udpFrame struct {
	v6             bool
	l3, l4         int // offsets
	src, dst       netip.AddrPort
	payload        []byte
	ipv4HeaderSize int
}

func parseUDP(b []byte) (udpFrame, bool) {
	var f udpFrame
	if len(b) < 14 {
		return f, false
	}
	f.l3 = 14
	switch binary.BigEndian.Uint16(b[12:]) {
	case 0x0800:
		if len(b) < f.l3+20 || b[f.l3+9] != 17 {
			return f, false
		}
		ihl := int(b[f.l3]&0xf) * 4
		f.ipv4HeaderSize = ihl
		f.l4 = f.l3 + ihl
		s, _ := netip.AddrFromSlice(b[f.l3+12 : f.l3+16])
		d, _ := netip.AddrFromSlice(b[f.l3+16 : f.l3+20])
		f.src, f.dst = netip.AddrPortFrom(s, 0), netip.AddrPortFrom(d, 0)
	case 0x86dd:
		if len(b) < f.l3+40 || b[f.l3+6] != 17 {
			return f, false
		}
		f.v6 = true
		f.l4 = f.l3 + 40
		s, _ := netip.AddrFromSlice(b[f.l3+8 : f.l3+24])
		d, _ := netip.AddrFromSlice(b[f.l3+24 : f.l3+40])
		f.src, f.dst = netip.AddrPortFrom(s, 0), netip.AddrPortFrom(d, 0)
	default:
		return f, false
	}
	if len(b) < f.l4+8 {
		return f, false
	}
	ulen := int(binary.BigEndian.Uint16(b[f.l4+4:]))
	if ulen < 8 || f.l4+ulen > len(b) {
		return f, false
	}
	f.src = netip.AddrPortFrom(f.src.Addr(), binary.BigEndian.Uint16(b[f.l4:]))
	f.dst = netip.AddrPortFrom(f.dst.Addr(), binary.BigEndian.Uint16(b[f.l4+2:]))
	f.payload = b[f.l4+8 : f.l4+ulen]
	return f, true
}

// buildReply turns the received UDP frame in buf[:n] into a reply in place:
// MACs, addresses and ports swapped, payload replaced, lengths and both
// checksums recomputed in full (a received frame may carry a partial
// checksum). It returns the reply's length.
func buildReply(buf []byte, n int, payload []byte) (int, error) {
	f, ok := parseUDP(buf[:n])
	if !ok {
		return 0, errors.New("not an Ethernet/IP/UDP frame")
	}
	total := f.l4 + 8 + len(payload)
	if total > cap(buf) {
		return 0, errors.New("reply does not fit the frame")
	}
	b := buf[:total]
	var mac [6]byte
	copy(mac[:], b[0:6])
	copy(b[0:6], b[6:12])
	copy(b[6:12], mac[:])
	sp, dp := b[f.l4:f.l4+2], b[f.l4+2:f.l4+4]
	sp[0], sp[1], dp[0], dp[1] = dp[0], dp[1], sp[0], sp[1]
	copy(b[f.l4+8:], payload)
	ulen := 8 + len(payload)
	binary.BigEndian.PutUint16(b[f.l4+4:], uint16(ulen))
	var pseudo uint32
	if f.v6 {
		var a [16]byte
		copy(a[:], b[f.l3+8:f.l3+24])
		copy(b[f.l3+8:f.l3+24], b[f.l3+24:f.l3+40])
		copy(b[f.l3+24:f.l3+40], a[:])
		binary.BigEndian.PutUint16(b[f.l3+4:], uint16(ulen))
		b[f.l3+7] = 64
		pseudo = sum16(b[f.l3+8:f.l3+40], 0) + uint32(ulen) + 17
	} else {
		var a [4]byte
		copy(a[:], b[f.l3+12:f.l3+16])
		copy(b[f.l3+12:f.l3+16], b[f.l3+16:f.l3+20])
		copy(b[f.l3+16:f.l3+20], a[:])
		binary.BigEndian.PutUint16(b[f.l3+2:], uint16(f.ipv4HeaderSize+ulen))
		b[f.l3+8] = 64
		b[f.l3+10], b[f.l3+11] = 0, 0
		binary.BigEndian.PutUint16(b[f.l3+10:], fold(sum16(b[f.l3:f.l4], 0)))
		pseudo = sum16(b[f.l3+12:f.l3+20], 0) + uint32(ulen) + 17
	}
	b[f.l4+6], b[f.l4+7] = 0, 0
	c := fold(sum16(b[f.l4:total], pseudo))
	if c == 0 {
		c = 0xffff // RFC 768: a computed zero is sent as all ones
	}
	binary.BigEndian.PutUint16(b[f.l4+6:], c)
	return total, nil
}

// sum16 adds b as big-endian 16-bit words (RFC 1071) onto acc.
func sum16(b []byte, acc uint32) uint32 {
	for len(b) >= 2 {
		acc += uint32(b[0])<<8 | uint32(b[1])
		b = b[2:]
	}
	if len(b) == 1 {
		acc += uint32(b[0]) << 8
	}
	return acc
}

// fold returns the ones' complement of the folded sum.
func fold(acc uint32) uint16 {
	for acc>>16 != 0 {
		acc = acc&0xffff + acc>>16
	}
	return ^uint16(acc)
}
