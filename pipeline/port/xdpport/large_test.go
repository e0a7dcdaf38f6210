package xdpport

import (
	"bytes"
	"net/netip"
	"testing"
	"time"

	"sipedge/afxdp/vethtest"
	"sipedge/pipeline/port"
)

// TestLargeEcho: with 2048-byte frames, a 7500-byte datagram (a large
// INVITE) arrives whole through the kernel's reassembly, is counted as
// large, is answered from a large buffer (AllocLarge) through the slow
// path (the kernel fragments it) and reaches the peer whole; both pools
// and the frames are whole again afterwards.
func TestLargeEcho(t *testing.T) {
	r := newRig(t, vethtest.Options{}, 1, Config{})
	p := r.g.Ports()[0]
	if room := int(p.sock.FrameSize()) - p.headroom; room >= 7500 {
		t.Fatalf("frames of %d bytes: the test needs frames smaller than its datagram", room)
	}
	free0, kern0 := settled(p)
	for _, v6 := range []bool{false, true} {
		c := r.pair.ListenUDP(t, netip.AddrPortFrom(r.peerAddr(v6), 0))
		dst := netip.AddrPortFrom(r.hostAddr(v6), sipPort)
		payload := fragPayload(7500, "large")
		before := p.Stats()
		pk := awaitPacket(t, p, c, dst, payload)
		if pk.Truncated || pk.Handle&largeBit == 0 {
			t.Fatalf("handed up with Truncated %v, handle %#x: want whole, in a large buffer", pk.Truncated, pk.Handle)
		}
		var out [1]port.Packet
		if !p.AllocLarge(&out[0], len(payload)) || cap(out[0].Payload) < len(payload) {
			t.Fatalf("AllocLarge(%d) refused or gave %d bytes", len(payload), cap(out[0].Payload))
		}
		out[0].Payload = append(out[0].Payload, pk.Payload...)
		out[0].Dst, out[0].Src = pk.Src, pk.Dst
		p.Release([]port.Packet{pk})
		if n, err := p.Transmit(out[:]); n != 1 || err != nil {
			t.Fatalf("Transmit: %d, %v; stats %+v", n, err, p.Stats())
		}
		buf := make([]byte, 65535)
		c.SetReadDeadline(time.Now().Add(5 * time.Second))
		n, src, err := c.ReadFromUDPAddrPort(buf)
		if err != nil {
			t.Fatalf("peer: no answer: %v", err)
		}
		got := buf[:n]
		src = netip.AddrPortFrom(src.Addr().Unmap(), src.Port())
		if !bytes.Equal(got, payload) || src != dst {
			t.Fatalf("peer got %d bytes from %v; want the %d sent, from %v", len(got), src, len(payload), dst)
		}
		st := p.Stats()
		if st.LargeReceived == before.LargeReceived || st.LargeSent != before.LargeSent+1 || st.TxDrops.Total() != 0 || st.Drops.Total() != 0 {
			t.Fatalf("stats %+v (before %+v): want large received, one large sent, no drops", st, before)
		}
	}
	drain(t, p)
	if free, kern := settled(p); free != free0 || kern != kern0 || p.held() != 0 {
		t.Fatalf("frames: free %d (was %d), kernel %d (was %d), held %d", free, free0, kern, kern0, p.held())
	}
	for _, l := range []*largePool{p.largeIn, p.largeOut} {
		if len(l.free) != cap(l.free) {
			t.Fatalf("%d large buffers (tag %#x) not returned", cap(l.free)-len(l.free), l.tag)
		}
	}
}

// TestLargeAllocBounds: AllocLarge refuses more than a large buffer holds
// and an empty pool (counted); a refused or foreign handle given back is
// counted as a bad buffer, never handed out twice.
func TestLargeAllocBounds(t *testing.T) {
	r := newRig(t, vethtest.Options{}, 1, Config{MaxMessage: 1000, LargeBuffers: 2})
	p := r.g.Ports()[0]
	var pk [3]port.Packet
	// A buffer is MaxMessage + LargeHeadroom, or a frame if that is more.
	if size := max(1000+LargeHeadroom, int(p.sock.FrameSize())); p.largeOut.size != size || p.AllocLarge(&pk[0], size+1) {
		t.Fatalf("AllocLarge gave a buffer larger than its %d bytes", p.largeOut.size)
	}
	if !p.AllocLarge(&pk[0], 2000) || !p.AllocLarge(&pk[1], 2000) {
		t.Fatal("AllocLarge refused with buffers free")
	}
	if p.AllocLarge(&pk[2], 10) {
		t.Fatal("AllocLarge gave a third buffer from a pool of two")
	}
	if st := p.Stats(); st.LargeNoBuffer != 1 {
		t.Fatalf("LargeNoBuffer %d, want 1", st.LargeNoBuffer)
	}
	// No destination: dropped, buffer back.
	if n, _ := p.Transmit(pk[:1]); n != 0 {
		t.Fatalf("a packet without destination went out")
	}
	if !p.AllocLarge(&pk[0], 10) {
		t.Fatal("the dropped packet's buffer did not come back")
	}
	bad := p.Stats().TxDrops.BadBuffer
	p.Release([]port.Packet{{Handle: largeBit | largeTx | 7}})
	if got := p.Stats().TxDrops.BadBuffer; got != bad+1 {
		t.Fatalf("a foreign large handle was not counted (%d bad buffers, was %d)", got, bad)
	}
	p.Release(pk[:2])
	if len(p.largeOut.free) != 2 {
		t.Fatalf("%d buffers free after releasing both, want 2", len(p.largeOut.free))
	}
}

// TestLargeZeroAllocs: receiving a large datagram and answering it from a
// large buffer allocates nothing.
func TestLargeZeroAllocs(t *testing.T) {
	r := newRig(t, vethtest.Options{}, 1, Config{Batch: 16})
	p := r.g.Ports()[0]
	c := r.pair.ListenUDP(t, netip.AddrPortFrom(r.pair.PeerV4, 0))
	dst := netip.AddrPortFrom(r.pair.HostV4, sipPort)
	payload := fragPayload(7500, "zero")
	pk := awaitPacket(t, p, c, dst, payload)
	p.Release([]port.Packet{pk})
	for i := 0; i < 200; i++ {
		c.WriteToUDPAddrPort(payload, dst)
	}
	rx := make([]port.Packet, 16)
	var tx [1]port.Packet
	got := 0
	allocs := testing.AllocsPerRun(50, func() {
		n, _ := port.ReceiveWait(p, rx, testWait)
		for i := 0; i < n; i++ {
			if p.AllocLarge(&tx[0], len(rx[i].Payload)) {
				tx[0].Payload = append(tx[0].Payload, rx[i].Payload...)
				tx[0].Dst, tx[0].Src = rx[i].Src, rx[i].Dst
				p.Transmit(tx[:])
			}
		}
		got += n
		p.Release(rx[:n])
	})
	if allocs != 0 {
		t.Fatalf("large receive+answer allocates %.1f times per round", allocs)
	}
	if st := p.Stats(); got < 20 || st.LargeSent < 20 {
		t.Fatalf("the measured rounds received %d and sent %d large datagrams: the path was not exercised", got, st.LargeSent)
	}
}
