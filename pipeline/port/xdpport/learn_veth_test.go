package xdpport

import (
	"bytes"
	"fmt"
	"net"
	"net/netip"
	"os/exec"
	"strings"
	"testing"
	"time"

	"sipedge/afxdp/vethtest"
	"sipedge/pipeline/port"
)

// hostNeigh runs ip neigh with args on the host end and returns its output.
func hostNeigh(t *testing.T, args ...string) string {
	t.Helper()
	out, err := exec.Command("ip", append([]string{"neigh"}, args...)...).CombinedOutput()
	if err != nil {
		t.Fatalf("ip neigh %s: %v: %s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

// kernelKnows reports whether the host's neighbour table has a MAC for a.
func kernelKnows(t *testing.T, dev string, a netip.Addr) bool {
	return strings.Contains(hostNeigh(t, "show", "dev", dev, "to", a.String()), "lladdr")
}

// forward sends payload to dst without HW, as a forwarded datagram is
// (the pipeline knows the address, not the MAC).
func forward(t *testing.T, p *Port, dst netip.AddrPort, payload []byte) {
	t.Helper()
	tx := make([]port.Packet, 1)
	if p.Alloc(tx) != 1 {
		t.Fatal("Alloc gave no buffer")
	}
	tx[0].Payload = append(tx[0].Payload, payload...)
	tx[0].Dst = dst
	if n, err := p.Transmit(tx); n != 1 || err != nil {
		t.Fatalf("Transmit = %d, %v; stats %+v", n, err, p.Stats())
	}
}

// TestLearntPeerUsesRing: a peer that has only sent us frames, with no
// entry in the host's neighbour table and no Neighbours at all, gets a
// forwarded datagram (no HW) through the ring on the MAC its frames came
// from, and the kernel is not asked (still no neighbour entry after).
func TestLearntPeerUsesRing(t *testing.T) {
	r := newRig(t, vethtest.Options{}, 1, Config{})
	p := r.g.Ports()[0]
	for _, v6 := range []bool{false, true} {
		t.Run(map[bool]string{false: "ipv4", true: "ipv6"}[v6], func(t *testing.T) {
			c := r.pair.ListenUDP(t, netip.AddrPortFrom(r.peerAddr(v6), 0))
			target := r.pair.ListenUDP(t, netip.AddrPortFrom(r.peerAddr(v6), 0))
			dst := netip.AddrPortFrom(r.hostAddr(v6), sipPort)
			// The first datagram makes the peer resolve us, which teaches
			// the host kernel the peer's MAC too: forget it, and learn
			// only from the next frame.
			p.Release([]port.Packet{awaitPacket(t, p, c, dst, []byte("hello"))})
			hostNeigh(t, "flush", "dev", r.pair.Host)
			if kernelKnows(t, r.pair.Host, r.peerAddr(v6)) {
				t.Fatalf("the host still has a neighbour entry for %v after the flush", r.peerAddr(v6))
			}
			// A frame the chain did not forward (dropped, refused)
			// teaches nothing: the datagram to the peer goes slow.
			p.Release([]port.Packet{awaitPacket(t, p, c, dst, []byte("dropped"))})
			if _, ok := lookupMAC(p.learn, r.peerAddr(v6), p.clock()); ok {
				t.Fatalf("learnt %v's MAC from a frame the chain did not forward", r.peerAddr(v6))
			}
			hostNeigh(t, "flush", "dev", r.pair.Host)
			pk := awaitPacket(t, p, c, dst, []byte("again"))
			pk.Passed = true // the chain forwarded it
			p.Release([]port.Packet{pk})

			before := p.Stats()
			to := target.LocalAddr().(*net.UDPAddr).AddrPort()
			forward(t, p, to, []byte("forwarded 180 Ringing"))
			got, from := readReply(t, target)
			if string(got) != "forwarded 180 Ringing" || from != dst {
				t.Fatalf("peer got %q from %v", got, from)
			}
			st := p.Stats()
			if st.Transmitted-before.Transmitted != 1 || st.Learnt-before.Learnt != 1 || st.SlowPath != before.SlowPath {
				t.Fatalf("ring %d, learnt %d, slow path %d; want 1, 1, 0 (stats %+v)",
					st.Transmitted-before.Transmitted, st.Learnt-before.Learnt, st.SlowPath-before.SlowPath, st)
			}
			if kernelKnows(t, r.pair.Host, r.peerAddr(v6)) {
				t.Errorf("the host resolved %v: the datagram went through the kernel", r.peerAddr(v6))
			}
		})
	}
}

// TestOrderAcrossPaths: replies (HW set, the ring) interleaved with
// forwarded datagrams (no HW, to a peer nobody knows: the slow path) reach
// the peer in the order they were given to Transmit, over several batches.
// For IPv4 the peer first ignores ARP, so the host kernel holds the
// forwarded datagrams until its next ARP retry (up to a second): a reply
// sent through the ring meanwhile would arrive first.
func TestOrderAcrossPaths(t *testing.T) {
	r := newRig(t, vethtest.Options{}, 1, Config{Batch: 16})
	p := r.g.Ports()[0]
	for _, v6 := range []bool{false, true} {
		t.Run(map[bool]string{false: "ipv4", true: "ipv6"}[v6], func(t *testing.T) {
			c := r.pair.ListenUDP(t, netip.AddrPortFrom(r.peerAddr(v6), 0))
			to := c.LocalAddr().(*net.UDPAddr).AddrPort()
			hostNeigh(t, "flush", "dev", r.pair.Host)
			if !v6 {
				r.pair.Exec(t, "sysctl", "-qw", "net.ipv4.conf."+r.pair.Peer+".arp_ignore=8")
			}
			before := p.Stats()
			const batches, per = 3, 16
			tx := make([]port.Packet, per)
			for b := 0; b < batches; b++ {
				if p.Alloc(tx) != per {
					t.Fatal("Alloc gave too few buffers")
				}
				for i := range tx {
					seq := b*per + i
					tx[i].Payload = append(tx[i].Payload, fmt.Sprintf("seq %02d", seq)...)
					tx[i].Dst = to
					if seq%2 == 1 {
						tx[i].HW = [6]byte(r.pair.PeerMAC) // a reply to its sender
					}
				}
				if n, err := p.Transmit(tx); n != per || err != nil {
					t.Fatalf("batch %d: Transmit = %d, %v; stats %+v", b, n, err, p.Stats())
				}
			}
			if !v6 {
				// Let the peer answer once the host has asked (its entry
				// is INCOMPLETE): the next retry resolves it.
				for deadline := time.Now().Add(5 * time.Second); !strings.Contains(hostNeigh(t, "show", "dev", r.pair.Host, "to", to.Addr().String()), "INCOMPLETE"); {
					if time.Now().After(deadline) {
						t.Fatalf("the host never tried to resolve %v: %s", to.Addr(), hostNeigh(t, "show", "dev", r.pair.Host))
					}
					time.Sleep(5 * time.Millisecond)
				}
				r.pair.Exec(t, "sysctl", "-qw", "net.ipv4.conf."+r.pair.Peer+".arp_ignore=0")
			}
			var got []string
			for len(got) < batches*per {
				b, _ := readReply(t, c)
				got = append(got, string(b))
			}
			for i, g := range got {
				if want := fmt.Sprintf("seq %02d", i); g != want {
					t.Fatalf("datagram %d is %q, want %q: order lost\nall: %q\nstats %+v", i, g, want, got, p.Stats())
				}
			}
			st := p.Stats()
			t.Logf("slow path %d (held for order %d), ring %d", st.SlowPath-before.SlowPath, st.SlowPathHeld-before.SlowPathHeld, st.Transmitted-before.Transmitted)
			if st.SlowPath == before.SlowPath {
				t.Fatalf("nothing took the slow path: the peer's MAC was known, the test proves nothing (stats %+v)", st)
			}
			if !v6 && st.SlowPathHeld == before.SlowPathHeld {
				t.Fatalf("no reply was held back while ARP was pending (stats %+v)", st)
			}
		})
	}
}

// TestLearnForwardZeroAllocs: receiving (and so learning) and forwarding
// without HW to the learnt peer allocates nothing, including datagrams
// above the MTU (the slow path, which marks the destination) and the
// order check that follows them.
func TestLearnForwardZeroAllocs(t *testing.T) {
	r := newRig(t, vethtest.Options{}, 1, Config{Batch: 16})
	p := r.g.Ports()[0]
	c := r.pair.ListenUDP(t, netip.AddrPortFrom(r.pair.PeerV4, 0))
	target := r.pair.ListenUDP(t, netip.AddrPortFrom(r.pair.PeerV4, 0))
	to := target.LocalAddr().(*net.UDPAddr).AddrPort()
	dst := netip.AddrPortFrom(r.pair.HostV4, sipPort)
	p.Release([]port.Packet{awaitPacket(t, p, c, dst, []byte("warm-up"))})
	for i := 0; i < 400; i++ {
		c.WriteToUDPAddrPort([]byte("SIP/2.0 180 Ringing\r\n\r\n"), dst)
	}
	big := bytes.Repeat([]byte("b"), 1800)
	rx := make([]port.Packet, 16)
	tx := make([]port.Packet, 17)
	before := p.Stats()
	round := 0
	allocs := testing.AllocsPerRun(100, func() {
		round++
		n, _ := port.ReceiveWait(p, rx, testWait)
		m := p.Alloc(tx[:n+1])
		for i := 0; i < m; i++ {
			pl := rx[min(i, max(n-1, 0))].Payload
			if i == n || n == 0 {
				pl = []byte("ping")
				if round%8 == 0 {
					pl = big
				}
			}
			tx[i].Payload = append(tx[i].Payload, pl...)
			tx[i].Dst = to
		}
		for i := range rx[:n] {
			rx[i].Passed = true // as if the chain forwarded each
		}
		p.Release(rx[:n])
		p.Transmit(tx[:m])
	})
	if allocs != 0 {
		t.Fatalf("receive+forward allocates %.1f times per round", allocs)
	}
	st := p.Stats()
	if st.Learnt-before.Learnt < 100 || st.SlowPath == before.SlowPath {
		t.Fatalf("learnt %d, slow path %d: the measured rounds did not use the learnt MAC or the slow path (%+v)", st.Learnt-before.Learnt, st.SlowPath-before.SlowPath, st)
	}
	t.Logf("learnt %d, slow path %d, held %d", st.Learnt-before.Learnt, st.SlowPath-before.SlowPath, st.SlowPathHeld-before.SlowPathHeld)
}
