package xdpport

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"runtime"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"sipedge/afxdp"
	"sipedge/afxdp/frame"
	"sipedge/afxdp/vethtest"
	"sipedge/pipeline/port"
)

const sipPort = 5060

// fakeNeigh is a neighbour table with at most one entry.
type fakeNeigh struct {
	addr netip.Addr
	mac  [6]byte
}

func (n *fakeNeigh) Lookup(dst netip.Addr) ([6]byte, bool) {
	if n != nil && dst == n.addr {
		return n.mac, true
	}
	return [6]byte{}, false
}

// rig is a veth pair with a Group on its host end.
type rig struct {
	pair *vethtest.Pair
	g    *Group
}

func newRig(t testing.TB, opts vethtest.Options, queues int, cfg Config) *rig {
	t.Helper()
	vethtest.Require(t)
	return newRigOn(t, vethtest.New(t, opts), queues, cfg)
}

// newRigOn is newRig on a pair already made.
func newRigOn(t testing.TB, pair *vethtest.Pair, queues int, cfg Config) *rig {
	t.Helper()
	r := &rig{pair: pair}
	if cfg.Ports == nil {
		cfg.Ports = []uint16{sipPort}
	}
	if cfg.XDPMode == afxdp.XDPAuto {
		cfg.XDPMode = afxdp.XDPNative
	}
	if cfg.Socket.FrameSize == 0 {
		// 2 MiB of UMEM per queue: several rigs fit the default memlock.
		cfg.Socket = afxdp.DefaultConfig(0, 0)
		cfg.Socket.FrameCount, cfg.Socket.FillRingSize, cfg.Socket.CompRingSize, cfg.Socket.RxRingSize, cfg.Socket.TxRingSize = 1024, 512, 512, 512, 256
	}
	var err error
	r.g, err = Open(r.pair.Host, queues, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := r.g.Close(); err != nil {
			t.Error(err)
		}
	})
	return r
}

func (r *rig) peerAddr(v6 bool) netip.Addr {
	if v6 {
		return r.pair.PeerV6
	}
	return r.pair.PeerV4
}

func (r *rig) hostAddr(v6 bool) netip.Addr {
	if v6 {
		return r.pair.HostV6
	}
	return r.pair.HostV4
}

// awaitPacket sends payload from c to dst every 100 ms until p receives a
// datagram carrying it (others are released), within a bound. The packet
// is the caller's to release.
func awaitPacket(t testing.TB, p *Port, c *net.UDPConn, dst netip.AddrPort, payload []byte) port.Packet {
	t.Helper()
	rx := make([]port.Packet, 16)
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); {
		if _, err := c.WriteToUDPAddrPort(payload, dst); err != nil {
			t.Fatalf("sending to %v: %v", dst, err)
		}
		for tick := time.Now().Add(100 * time.Millisecond); time.Now().Before(tick); {
			n, err := port.ReceiveWait(p, rx, testWait)
			if err != nil {
				t.Fatal(err)
			}
			for i := 0; i < n; i++ {
				if bytes.Equal(rx[i].Payload, payload) {
					p.Release(rx[i+1 : n])
					return rx[i]
				}
				p.Release(rx[i : i+1])
			}
		}
	}
	t.Fatalf("no datagram %q reached %s within 10s", payload, p.Name())
	return port.Packet{}
}

// readReply reads one datagram on c within 5 s.
func readReply(t testing.TB, c *net.UDPConn) ([]byte, netip.AddrPort) {
	t.Helper()
	buf := make([]byte, 4096)
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	n, from, err := c.ReadFromUDPAddrPort(buf)
	if err != nil {
		t.Fatalf("peer: no datagram: %v", err)
	}
	return buf[:n], netip.AddrPortFrom(from.Addr().Unmap(), from.Port())
}

// echo answers rx with the same payload through p, as a pipeline reply to
// the sender does: Dst = Src, Src = Dst, HW = HW. It returns how many went.
func echo(p *Port, rx, tx []port.Packet) int {
	m := p.Alloc(tx[:len(rx)])
	for i := 0; i < m; i++ {
		if len(rx[i].Payload) > cap(tx[i].Payload) {
			// Larger than a frame: a large buffer, as the worker takes.
			var big port.Packet
			if p.AllocLarge(&big, len(rx[i].Payload)) {
				p.Release(tx[i : i+1])
				tx[i] = big
			}
		}
		tx[i].Payload = append(tx[i].Payload, rx[i].Payload...)
		tx[i].Dst, tx[i].Src, tx[i].HW = rx[i].Src, rx[i].Dst, rx[i].HW
	}
	p.Release(rx)
	n, _ := p.Transmit(tx[:m])
	return n
}

// TestReceiveAndEcho: a datagram to the SIP port arrives with its
// endpoints, the sender's MAC and its payload; the echo built in a fresh
// frame reaches a kernel socket in the namespace, whose stack drops it
// if a checksum is wrong (the peer's checksum offload is off).
func TestReceiveAndEcho(t *testing.T) {
	r := newRig(t, vethtest.Options{}, 1, Config{})
	p := r.g.Ports()[0]
	if name := p.Name(); name != fmt.Sprintf("afxdp %s queue 0 (copy, native, interrupts)", r.pair.Host) {
		t.Errorf("Name() = %q", name)
	}
	for _, v6 := range []bool{false, true} {
		t.Run(map[bool]string{false: "ipv4", true: "ipv6"}[v6], func(t *testing.T) {
			c := r.pair.ListenUDP(t, netip.AddrPortFrom(r.peerAddr(v6), 0))
			from := c.LocalAddr().(*net.UDPAddr).AddrPort()
			dst := netip.AddrPortFrom(r.hostAddr(v6), sipPort)
			// An odd length exercises the checksum's padding byte.
			payload := []byte(fmt.Sprintf("OPTIONS sip:echo@%v SIP/2.0\r\nVia: x\r\n\r\n!", dst))
			pk := awaitPacket(t, p, c, dst, payload)
			if pk.Src != from || pk.Dst != dst || !bytes.Equal(pk.HW[:], r.pair.PeerMAC) {
				t.Fatalf("received %v -> %v from MAC %x; want %v -> %v from %v", pk.Src, pk.Dst, pk.HW, from, dst, r.pair.PeerMAC)
			}
			before := p.Stats()
			tx := make([]port.Packet, 1)
			if n := echo(p, []port.Packet{pk}, tx); n != 1 {
				t.Fatalf("echo sent %d, stats %+v", n, p.Stats())
			}
			got, src := readReply(t, c)
			if !bytes.Equal(got, payload) || src != dst {
				t.Fatalf("peer got %q from %v; want %q from %v", got, src, payload, dst)
			}
			st := p.Stats()
			if st.Transmitted != before.Transmitted+1 || st.SlowPath != before.SlowPath || st.TxDrops.Total() != 0 {
				t.Fatalf("stats after echo %+v (before %+v): want one more transmitted, no slow path or drops", st, before)
			}
		})
	}
}

// TestSlowPathAndNeighbours: with no HW, a destination whose neighbour is
// unknown goes out through the kernel socket (which resolves it) and still
// arrives from the SIP port; one the table knows goes through the ring; a
// datagram above the MTU goes through the kernel, which fragments it.
func TestSlowPathAndNeighbours(t *testing.T) {
	neigh := &fakeNeigh{}
	r := newRig(t, vethtest.Options{}, 1, Config{Neighbours: neigh})
	p := r.g.Ports()[0]
	send := func(t *testing.T, dst netip.AddrPort, payload []byte, elsewhere bool) {
		t.Helper()
		tx := make([]port.Packet, 1)
		if p.Alloc(tx) != 1 {
			t.Fatal("Alloc gave no buffer")
		}
		tx[0].Payload = append(tx[0].Payload, payload...)
		if elsewhere {
			// Built outside the frame: Transmit must copy it in.
			tx[0].Payload = payload
		}
		tx[0].Dst = dst // Src zero: the port's own address and first SIP port
		if n, err := p.Transmit(tx); n != 1 || err != nil {
			t.Fatalf("Transmit = %d, %v; stats %+v", n, err, p.Stats())
		}
	}
	for _, v6 := range []bool{false, true} {
		t.Run(map[bool]string{false: "ipv4", true: "ipv6"}[v6], func(t *testing.T) {
			c := r.pair.ListenUDP(t, netip.AddrPortFrom(r.peerAddr(v6), 0))
			dst := c.LocalAddr().(*net.UDPAddr).AddrPort()
			want := netip.AddrPortFrom(r.hostAddr(v6), sipPort)
			cases := []struct {
				name      string
				known     bool
				size      int
				elsewhere bool
				slow, tx  uint64
			}{
				{"unknown neighbour", false, 300, false, 1, 0},
				{"known neighbour", true, 301, false, 0, 1},
				{"payload built outside the frame", true, 302, true, 0, 1},
				{"above the MTU", true, 1900, false, 1, 0},
			}
			for _, tc := range cases {
				*neigh = fakeNeigh{}
				if tc.known {
					*neigh = fakeNeigh{addr: dst.Addr(), mac: [6]byte(r.pair.PeerMAC)}
				}
				before := p.Stats()
				payload := bytes.Repeat([]byte{'a' + byte(tc.size%26)}, tc.size)
				send(t, dst, payload, tc.elsewhere)
				got, src := readReply(t, c)
				st := p.Stats()
				if src != want || !bytes.Equal(got, payload) {
					t.Fatalf("%s: peer got %d bytes from %v, want %d from %v", tc.name, len(got), src, len(payload), want)
				}
				if st.SlowPath-before.SlowPath != tc.slow || st.Transmitted-before.Transmitted != tc.tx {
					t.Fatalf("%s: slow path %d, ring %d; want %d, %d", tc.name, st.SlowPath-before.SlowPath, st.Transmitted-before.Transmitted, tc.slow, tc.tx)
				}
			}
		})
	}
}

// TestTwoQueues: the peer hashes 64 flows over its two TX queues, which
// native XDP on veth maps to the host's two RX queues: both ports receive.
func TestTwoQueues(t *testing.T) {
	r := newRig(t, vethtest.Options{HostRxQueues: 2, HostTxQueues: 2, PeerRxQueues: 2, PeerTxQueues: 2}, 2, Config{})
	dst := netip.AddrPortFrom(r.pair.HostV4, sipPort)
	const flows = 64
	for i := 0; i < flows; i++ {
		c := r.pair.ListenUDP(t, netip.AddrPortFrom(r.pair.PeerV4, 0))
		if _, err := c.WriteToUDPAddrPort([]byte(fmt.Sprintf("flow %d", i)), dst); err != nil {
			t.Fatal(err)
		}
	}
	counts := make([]int, 2)
	rx := make([]port.Packet, 64)
	for deadline := time.Now().Add(5 * time.Second); counts[0]+counts[1] < flows && time.Now().Before(deadline); {
		for q, p := range r.g.Ports() {
			n, err := port.ReceiveWait(p, rx, testWait)
			if err != nil {
				t.Fatal(err)
			}
			counts[q] += n
			p.Release(rx[:n])
		}
	}
	if counts[0] == 0 || counts[1] == 0 || counts[0]+counts[1] != flows {
		t.Fatalf("queue 0 got %d, queue 1 got %d of %d flows: want both > 0 and all", counts[0], counts[1], flows)
	}
}

// paced sends total datagrams from c to dst in bursts, waiting after each
// until the receiver is within window of the sender or 2 ms have passed
// (then veth dropped some): veth's 256-entry ring drops unpaced bursts.
func paced(c *net.UDPConn, dst netip.AddrPort, payload []byte, total int, received *atomic.Int64, progress <-chan struct{}) int {
	const burst, window = 32, 128
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	sent := 0
	for sent < total {
		for i := 0; i < burst && sent < total; i++ {
			if _, err := c.WriteToUDPAddrPort(payload, dst); err == nil {
				sent++
			}
		}
	wait:
		for received.Load() < int64(sent-window) {
			timer.Reset(2 * time.Millisecond)
			select {
			case <-progress:
			case <-timer.C:
				break wait
			}
		}
	}
	return sent
}

// echoWorker runs the receive+echo loop until stop closes.
func echoWorker(p *Port, stop <-chan struct{}, received *atomic.Int64, progress chan<- struct{}) {
	rx := make([]port.Packet, 64)
	tx := make([]port.Packet, 64)
	for {
		select {
		case <-stop:
			return
		default:
		}
		n, err := port.ReceiveWait(p, rx, testWait)
		if err != nil {
			return
		}
		if n == 0 {
			continue
		}
		echo(p, rx[:n], tx)
		received.Add(int64(n))
		select {
		case progress <- struct{}{}:
		default:
		}
	}
}

// TestNoFrameLeak: 100,000 datagrams through Receive, Alloc, Transmit and
// Release leave every frame on the free list or in the fill ring.
func TestNoFrameLeak(t *testing.T) {
	r := newRig(t, vethtest.Options{}, 1, Config{})
	p := r.g.Ports()[0]
	free0, kern0, total := p.Frames()
	if free0+kern0 != total {
		t.Fatalf("before: free %d + kernel %d != %d", free0, kern0, total)
	}
	c := r.pair.ListenUDP(t, netip.AddrPortFrom(r.pair.PeerV4, 0))
	var received atomic.Int64
	progress := make(chan struct{}, 1)
	stop, done := make(chan struct{}), make(chan struct{})
	go func() { defer close(done); echoWorker(p, stop, &received, progress) }()
	const n = 100000
	sent := paced(c, netip.AddrPortFrom(r.pair.HostV4, sipPort), make([]byte, 200), n, &received, progress)
	last, quiet := received.Load(), time.Now()
	for deadline := time.Now().Add(20 * time.Second); received.Load() < int64(sent) && time.Since(quiet) < 300*time.Millisecond && time.Now().Before(deadline); {
		select {
		case <-progress:
		case <-time.After(50 * time.Millisecond):
		}
		if k := received.Load(); k != last {
			last, quiet = k, time.Now()
		}
	}
	close(stop)
	<-done
	// This goroutine is the worker now: reap completions and refill.
	for deadline := time.Now().Add(5 * time.Second); ; {
		p.Transmit(nil)
		p.sock.Kick()
		p.sock.Fill()
		if free, kern, _ := p.Frames(); free == free0 && kern == kern0 {
			break
		}
		if time.Now().After(deadline) {
			free, kern, _ := p.Frames()
			t.Fatalf("frames leaked: free %d (was %d), kernel %d (was %d), of %d", free, free0, kern, kern0, total)
		}
		time.Sleep(time.Millisecond)
	}
	st := p.Stats()
	ss, _ := p.sock.Stats()
	t.Logf("sent %d, received %d; port %+v; socket %+v", sent, received.Load(), st, ss)
	if received.Load() < int64(sent)*9/10 {
		t.Fatalf("received %d of %d", received.Load(), sent)
	}
	if st.Received != uint64(received.Load()) || st.Transmitted+st.TxDrops.RingFull != st.Received || ss.BadRelease != 0 || ss.TxBadDesc != 0 {
		t.Fatalf("counters disagree: received %d, port %+v, socket %+v", received.Load(), st, ss)
	}
}

// TestZeroAllocs: a receive + echo round allocates nothing, on the ring
// and on the slow path (datagrams above the MTU, reassembled by the kernel,
// read from its socket and echoed through it).
func TestZeroAllocs(t *testing.T) {
	r := newRig(t, vethtest.Options{}, 1, Config{Batch: 16})
	p := r.g.Ports()[0]
	c := r.pair.ListenUDP(t, netip.AddrPortFrom(r.pair.PeerV4, 0))
	dst := netip.AddrPortFrom(r.pair.HostV4, sipPort)
	pk := awaitPacket(t, p, c, dst, []byte("warm-up"))
	echo(p, []port.Packet{pk}, make([]port.Packet, 1))
	readReply(t, c)
	big := bytes.Repeat([]byte("x"), 1800) // fragmented, fits a 2048-byte frame
	for i := 0; i < 400; i++ {
		c.WriteToUDPAddrPort([]byte("INVITE sip:load@example.com SIP/2.0\r\n\r\n"), dst)
		if i%20 == 0 {
			c.WriteToUDPAddrPort(big, dst)
		}
	}
	slow0 := p.Stats().SlowPathReceived
	rx := make([]port.Packet, 16)
	tx := make([]port.Packet, 16)
	got := 0
	allocs := testing.AllocsPerRun(100, func() {
		n, _ := port.ReceiveWait(p, rx, testWait)
		got += n
		echo(p, rx[:n], tx)
	})
	if allocs != 0 {
		t.Fatalf("receive+echo allocates %.1f times per round", allocs)
	}
	if got < 100 {
		t.Fatalf("the measured rounds received %d datagrams: the hot path was not exercised", got)
	}
	// One call takes at most a quarter of its batch (4) from the slow
	// path, so more than 4 means the measured rounds read some.
	if d := p.Stats().SlowPathReceived - slow0; d <= 4 {
		t.Fatalf("the measured rounds read %d datagrams from the slow path: it was not exercised; %+v", d, p.Stats())
	} else {
		t.Logf("%d datagrams, %d of them from the slow path", got, d)
	}
}

// TestBusyPoll: with Config.BusyPoll the kernel grants preferred busy
// polling (root, Linux 5.11+: what this project's machines run), the name
// says so, and datagrams still arrive, driven by the worker's own receive
// calls.
func TestBusyPoll(t *testing.T) {
	r := newRig(t, vethtest.Options{}, 1, Config{BusyPoll: true, BusyPollUsecs: 10})
	p := r.g.Ports()[0]
	if !p.BusyPolling() {
		t.Fatalf("busy polling refused: %s", p.Name())
	}
	if want := "preferred busy polling 10 us"; !strings.Contains(p.Name(), want) {
		t.Errorf("Name() = %q, want it to say %q", p.Name(), want)
	}
	c := r.pair.ListenUDP(t, netip.AddrPortFrom(r.pair.PeerV4, 0))
	pk := awaitPacket(t, p, c, netip.AddrPortFrom(r.pair.HostV4, sipPort), []byte("busy"))
	p.Release([]port.Packet{pk})
}

// testWait bounds each wait of the tests for a datagram: the wait ends as
// soon as one arrives, so only a lost datagram costs it.
const testWait = 20 * time.Millisecond

// TestCloseWakesReceive: Close from another goroutine ends a Receive
// waiting with an hour's poll interval, and the port stays closed.
func TestCloseWakesReceive(t *testing.T) {
	r := newRig(t, vethtest.Options{}, 1, Config{})
	p := r.g.Ports()[0]
	errc := make(chan error, 1)
	go func() {
		rx := make([]port.Packet, 8)
		_, err := port.ReceiveWait(p, rx, time.Hour)
		errc <- err
	}()
	if err := p.Close(); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-errc:
		if !errors.Is(err, port.ErrClosed) {
			t.Fatalf("Receive after Close = %v, want port.ErrClosed", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Receive still blocked 10s after Close")
	}
	if p.state.Load() != stFreed {
		t.Fatalf("port state %d after Close with no frames held, want freed", p.state.Load())
	}
	if _, err := p.Transmit(make([]port.Packet, 1)); !errors.Is(err, port.ErrClosed) {
		t.Fatalf("Transmit after Close = %v", err)
	}
	if p.Alloc(make([]port.Packet, 1)) != 0 {
		t.Fatal("Alloc after Close gave a buffer")
	}
}

// TestMalformedCounted: a frame the program redirects (UDP to the SIP
// port) whose UDP length is wrong is dropped and counted, not handed up.
func TestMalformedCounted(t *testing.T) {
	r := newRig(t, vethtest.Options{}, 1, Config{})
	p := r.g.Ports()[0]
	b := make([]byte, 128)
	h := frame.Header{DstMAC: [6]byte(r.pair.HostMAC), SrcMAC: [6]byte(r.pair.PeerMAC),
		Src: netip.AddrPortFrom(r.pair.PeerV4, 4000), Dst: netip.AddrPortFrom(r.pair.HostV4, sipPort)}
	hr := frame.Headroom(false, false)
	copy(b[hr:], "bad length")
	n, err := frame.Encode(b, &h, 10)
	if err != nil {
		t.Fatal(err)
	}
	binary.BigEndian.PutUint16(b[hr-4:], 9) // UDP length one short of the IP payload
	rx := make([]port.Packet, 8)
	for deadline := time.Now().Add(5 * time.Second); p.Stats().Drops.UDPLength == 0; {
		if time.Now().After(deadline) {
			t.Fatalf("no UDPLength drop counted: %+v", p.Stats())
		}
		if err := sendRaw(r.pair, b[:n]); err != nil {
			t.Fatal(err)
		}
		k, err := port.ReceiveWait(p, rx, testWait)
		if err != nil {
			t.Fatal(err)
		}
		if k != 0 {
			t.Fatalf("a malformed frame was handed up: %+v", rx[0])
		}
	}
	if free, kern, total := p.Frames(); free+kern != total {
		t.Fatalf("dropped frame not returned: free %d + kernel %d of %d", free, kern, total)
	}
}

// sendRaw sends an Ethernet frame out of the peer end as it is, through a
// packet socket in the namespace.
func sendRaw(pair *vethtest.Pair, b []byte) error {
	return pair.Do(func() error {
		ifi, err := net.InterfaceByName(pair.Peer)
		if err != nil {
			return err
		}
		fd, err := unix.Socket(unix.AF_PACKET, unix.SOCK_RAW|unix.SOCK_CLOEXEC, 0)
		if err != nil {
			return fmt.Errorf("packet socket: %w", err)
		}
		defer unix.Close(fd)
		return unix.Sendto(fd, b, 0, &unix.SockaddrLinklayer{Ifindex: ifi.Index, Halen: 6, Addr: [8]byte(append(append([]byte(nil), b[:6]...), 0, 0))})
	})
}

// BenchmarkReceiveEcho: the peer sends b.N datagrams of 600 bytes (paced),
// the port receives each and answers it from a fresh frame (copy mode,
// native XDP). Reported: pkts/s and rx-cpu-ns/pkt, the worker thread's CPU
// time per packet, which in copy mode includes the veth transmit of the
// echo; allocs/op covers sender and worker.
func BenchmarkReceiveEcho(b *testing.B) {
	benchReceiveEcho(b, 600, Config{})
}

// BenchmarkReceiveEchoFragmented: as BenchmarkReceiveEcho with 3000-byte
// datagrams, which arrive as IP fragments, are reassembled by the kernel
// and read from the slow-path socket, and whose echo goes back through it
// (the kernel fragments it): the cost of SIP above the MTU.
func BenchmarkReceiveEchoFragmented(b *testing.B) {
	benchReceiveEcho(b, 3000, Config{Socket: bigFrames()})
}

// BenchmarkReceiveEchoLarge: as BenchmarkReceiveEchoFragmented with
// 7500-byte datagrams in 2048-byte frames: read into and answered from
// the large buffers (SIP above a frame).
func BenchmarkReceiveEchoLarge(b *testing.B) {
	benchReceiveEcho(b, 7500, Config{})
}

func benchReceiveEcho(b *testing.B, size int, cfg Config) {
	cfg.BindMode = afxdp.BindCopy
	r := newRig(b, vethtest.Options{}, 1, cfg)
	p := r.g.Ports()[0]
	c := r.pair.ListenUDP(b, netip.AddrPortFrom(r.pair.PeerV4, 0))
	dst := netip.AddrPortFrom(r.pair.HostV4, sipPort)
	pk := awaitPacket(b, p, c, dst, []byte("warm-up"))
	p.Release([]port.Packet{pk})
	var received atomic.Int64
	progress := make(chan struct{}, 1)
	stop := make(chan struct{})
	type result struct{ cpu, wall time.Duration }
	res := make(chan result, 1)
	go func() {
		runtime.LockOSThread()
		defer runtime.UnlockOSThread()
		var ru0, ru1 unix.Rusage
		unix.Getrusage(unix.RUSAGE_THREAD, &ru0)
		start := time.Now()
		echoWorker(p, stop, &received, progress)
		unix.Getrusage(unix.RUSAGE_THREAD, &ru1)
		res <- result{time.Duration(ru1.Utime.Nano() + ru1.Stime.Nano() - ru0.Utime.Nano() - ru0.Stime.Nano()), time.Since(start)}
	}()
	b.ReportAllocs()
	b.ResetTimer()
	sent := paced(c, dst, make([]byte, size), b.N, &received, progress)
	for deadline := time.Now().Add(2 * time.Second); received.Load() < int64(sent) && time.Now().Before(deadline); {
		select {
		case <-progress:
		case <-time.After(20 * time.Millisecond):
		}
	}
	b.StopTimer()
	close(stop)
	rs := <-res
	if got := received.Load(); got > 0 {
		b.ReportMetric(float64(rs.cpu.Nanoseconds())/float64(got), "rx-cpu-ns/pkt")
		b.ReportMetric(float64(got)/rs.wall.Seconds(), "pkts/s")
		b.ReportMetric(float64(got)/float64(sent), "delivered")
	}
}

// TestCloseWhileHolding: a port closed while its worker holds a received
// frame keeps the UMEM mapped (reading the payload would fault otherwise)
// until the frame is released, and then frees itself.
func TestCloseWhileHolding(t *testing.T) {
	r := newRig(t, vethtest.Options{}, 1, Config{})
	p := r.g.Ports()[0]
	c := r.pair.ListenUDP(t, netip.AddrPortFrom(r.pair.PeerV4, 0))
	pk := awaitPacket(t, p, c, netip.AddrPortFrom(r.pair.HostV4, sipPort), []byte("held"))
	done := make(chan error, 1)
	go func() { done <- p.Close() }()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if s := p.state.Load(); s != stClosing {
		t.Fatalf("state %d after Close with a frame held, want closing (%d)", s, stClosing)
	}
	if string(pk.Payload) != "held" {
		t.Fatalf("held payload reads %q after Close", pk.Payload)
	}
	if _, err := p.Receive(make([]port.Packet, 4)); !errors.Is(err, port.ErrClosed) {
		t.Fatalf("Receive on a closing port = %v, want ErrClosed", err)
	}
	p.Release([]port.Packet{pk})
	if s := p.state.Load(); s != stFreed {
		t.Fatalf("state %d after the last frame came back, want freed (%d)", s, stFreed)
	}
}
