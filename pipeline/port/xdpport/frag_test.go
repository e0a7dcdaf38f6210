package xdpport

import (
	"bytes"
	"fmt"
	"net"
	"net/netip"
	"testing"
	"time"

	"sipedge/afxdp"
	"sipedge/afxdp/vethtest"
	"sipedge/pipeline/port"
)

// bigFrames is a 2 MiB UMEM of 4096-byte frames (the appliance's default
// frame size), so a 3000-byte datagram fits one frame.
func bigFrames() afxdp.Config {
	c := afxdp.DefaultConfig(0, 0)
	c.FrameSize, c.FrameCount = 4096, 512
	c.FillRingSize, c.CompRingSize, c.RxRingSize, c.TxRingSize = 256, 256, 256, 128
	return c
}

// fragPayload is a SIP-looking datagram of size bytes whose body bytes
// depend on their offset, so a fragment reassembled in the wrong place or
// a stale frame shows as a mismatch.
func fragPayload(size int, tag string) []byte {
	b := fmt.Appendf(nil, "MESSAGE sip:%s@example.com SIP/2.0\r\nContent-Length: %d\r\n\r\n", tag, size)
	for i := len(b); i < size; i++ {
		b = append(b, 'A'+byte(i%26))
	}
	return b[:size]
}

// settled reaps completions, refills the fill ring and returns the frame
// counts, as a worker between batches would see them.
func settled(p *Port) (free, kernel int) {
	p.Transmit(nil)
	p.sock.Fill()
	free, kernel, _ = p.Frames()
	return
}

// TestFragmentedReceiveAndEcho: a 3000-byte datagram from the namespace
// leaves the peer as IP fragments, which the XDP program passes to the
// kernel; the reassembled datagram reaches the port's Receive through its
// slow-path socket with the right endpoints and every byte; the echo goes
// back through the slow path (fragmented by the kernel) and arrives whole
// in the namespace; and no frame is lost on the way.
func TestFragmentedReceiveAndEcho(t *testing.T) {
	r := newRig(t, vethtest.Options{}, 1, Config{Socket: bigFrames()})
	p := r.g.Ports()[0]
	for _, v6 := range []bool{false, true} {
		fam := map[bool]string{false: "ipv4", true: "ipv6"}[v6]
		t.Run(fam, func(t *testing.T) {
			free0, kern0 := settled(p)
			c := r.pair.ListenUDP(t, netip.AddrPortFrom(r.peerAddr(v6), 0))
			from := c.LocalAddr().(*net.UDPAddr).AddrPort()
			dst := netip.AddrPortFrom(r.hostAddr(v6), sipPort)
			payload := fragPayload(3000, fam)
			before := p.Stats()
			pk := awaitPacket(t, p, c, dst, payload)
			if pk.Src != from || pk.Dst != dst || pk.HW != ([6]byte{}) {
				t.Fatalf("received %v -> %v HW %x; want %v -> %v and no HW (the kernel socket has none)", pk.Src, pk.Dst, pk.HW, from, dst)
			}
			st := p.Stats()
			if st.SlowPathReceived == before.SlowPathReceived {
				t.Fatalf("the datagram did not come through the slow path: stats %+v", st)
			}
			tx := make([]port.Packet, 1)
			if n := echo(p, []port.Packet{pk}, tx); n != 1 {
				t.Fatalf("echo sent %d, stats %+v", n, p.Stats())
			}
			got, src := readReply(t, c)
			if !bytes.Equal(got, payload) || src != dst {
				t.Fatalf("peer got %d bytes from %v; want the %d sent, from %v", len(got), src, len(payload), dst)
			}
			st2 := p.Stats()
			if st2.SlowPath != st.SlowPath+1 || st2.TxDrops.Total() != 0 || st2.Drops.Total() != 0 {
				t.Fatalf("stats after echo %+v (before %+v): want one more slow-path send, no drops", st2, st)
			}
			if free, kern := settled(p); free != free0 || kern != kern0 || p.held() != 0 {
				t.Fatalf("frames: free %d (was %d), kernel %d (was %d), held %d", free, free0, kern, kern0, p.held())
			}
			if ss, _ := p.sock.Stats(); ss.BadRelease != 0 {
				t.Fatalf("socket counted %d bad releases", ss.BadRelease)
			}
		})
	}
}

// TestFragmentedFrameBound: a reassembled datagram of exactly one frame
// (2048 here) is handed up; one byte more is dropped as TooLarge, with its
// frame back on the free list.
func TestFragmentedFrameBound(t *testing.T) {
	r := newRig(t, vethtest.Options{}, 1, Config{})
	p := r.g.Ports()[0]
	fs := int(p.sock.FrameSize())
	c := r.pair.ListenUDP(t, netip.AddrPortFrom(r.pair.PeerV4, 0))
	dst := netip.AddrPortFrom(r.pair.HostV4, sipPort)

	fits := fragPayload(fs, "fits")
	pk := awaitPacket(t, p, c, dst, fits)
	p.Release([]port.Packet{pk})

	free0, kern0 := settled(p)
	big := fragPayload(fs+1, "big")
	rx := make([]port.Packet, 8)
	for deadline := time.Now().Add(10 * time.Second); p.Stats().Drops.TooLarge == 0; {
		if time.Now().After(deadline) {
			t.Fatalf("no TooLarge drop within 10s: %+v", p.Stats())
		}
		if _, err := c.WriteToUDPAddrPort(big, dst); err != nil {
			t.Fatal(err)
		}
		for tick := time.Now().Add(100 * time.Millisecond); time.Now().Before(tick) && p.Stats().Drops.TooLarge == 0; {
			n, err := p.Receive(rx)
			if err != nil {
				t.Fatal(err)
			}
			for i := 0; i < n; i++ {
				if len(rx[i].Payload) > fs {
					t.Fatalf("Receive handed up %d bytes, more than a %d-byte frame", len(rx[i].Payload), fs)
				}
			}
			p.Release(rx[:n])
		}
	}
	if free, kern := settled(p); free != free0 || kern != kern0 || p.held() != 0 {
		t.Fatalf("frames after the drop: free %d (was %d), kernel %d (was %d), held %d", free, free0, kern, kern0, p.held())
	}
}

// TestSlowPathWakesReceive: a Receive waiting in poll with an hour's
// interval returns for a datagram that arrives only on the slow path.
func TestSlowPathWakesReceive(t *testing.T) {
	r := newRig(t, vethtest.Options{}, 1, Config{PollInterval: time.Hour})
	p := r.g.Ports()[0]
	c := r.pair.ListenUDP(t, netip.AddrPortFrom(r.pair.PeerV6, 0))
	dst := netip.AddrPortFrom(r.pair.HostV6, sipPort)
	payload := fragPayload(2000, "wake") // above the MTU: fragments
	type result struct {
		rx  []port.Packet
		err error
	}
	done := make(chan result, 1)
	go func() {
		rx := make([]port.Packet, 4)
		for {
			// A signal (Go's preemption) can end poll early with
			// nothing: wait again.
			n, err := p.Receive(rx)
			if n > 0 || err != nil {
				done <- result{rx[:n], err}
				return
			}
		}
	}()
	// Resent until it arrives: the first copy may race the port's setup
	// (neighbour discovery, the goroutine reaching poll).
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	deadline := time.After(10 * time.Second)
	for {
		if _, err := c.WriteToUDPAddrPort(payload, dst); err != nil {
			t.Fatal(err)
		}
		select {
		case res := <-done:
			if res.err != nil || len(res.rx) == 0 || !bytes.Equal(res.rx[0].Payload, payload) {
				t.Fatalf("Receive = %d packets, %v; want the %d-byte datagram", len(res.rx), res.err, len(payload))
			}
			p.Release(res.rx)
			return
		case <-tick.C:
		case <-deadline:
			p.Close() // ends the blocked Receive
			t.Fatalf("Receive still waiting 10s after the datagram was first sent: the slow-path sockets are not in the poll set? %+v", p.Stats())
		}
	}
}
