package afxdp

import (
	"encoding/binary"
	"net"
	"runtime"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"sipedge/afxdp/vethtest"
)

// paced sends total datagrams of payload from c to dst, waiting after each
// burst until the receiver (which signals on progress) has caught up to
// within window, or 2 ms have passed (then the veth ring dropped some):
// veth's 256-entry ring drops silently under unpaced bursts.
func paced(c *net.UDPConn, dst *net.UDPAddr, payload []byte, total int, received *atomic.Int64, progress <-chan struct{}) int {
	const burst, window = 32, 128
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	sent := 0
	for sent < total {
		for i := 0; i < burst && sent < total; i++ {
			if _, err := c.WriteToUDP(payload, dst); err == nil {
				sent++
			}
		}
		for received.Load() < int64(sent-window) {
			timer.Reset(2 * time.Millisecond)
			select {
			case <-progress:
				continue
			case <-timer.C:
			}
			break
		}
	}
	return sent
}

// echoLoop receives on s until stop is closed, sends every other frame back
// out unchanged (exercising TX and completion) and releases the rest.
func echoLoop(s *Socket, stop <-chan struct{}, received *atomic.Int64, progress chan<- struct{}) {
	descs := make([]Desc, 64)
	tx := make([]Desc, 64)
	for {
		select {
		case <-stop:
			return
		default:
		}
		s.Complete()
		if ok, _ := s.Poll(5 * time.Millisecond); !ok {
			continue
		}
		n := s.Receive(descs)
		ntx := 0
		for i := 0; i < n; i++ {
			if i%2 == 0 {
				tx[ntx] = descs[i]
				ntx++
			} else {
				s.Release(descs[i : i+1])
			}
		}
		s.Transmit(tx[:ntx])
		s.Fill()
		received.Add(int64(n))
		select {
		case progress <- struct{}{}:
		default:
		}
	}
}

// TestNoFrameLeak: after 100,000 datagrams, half echoed and half released,
// every frame is back on the free list or in the fill ring.
func TestNoFrameLeak(t *testing.T) {
	r := newRig(t, vethtest.Options{}, XDPNative, 1)
	s := r.socks[0]
	freeBefore, kernBefore := s.FreeFrames(), s.KernelFrames()
	if freeBefore+kernBefore != s.Frames() {
		t.Fatalf("before: free %d + kernel %d != %d frames", freeBefore, kernBefore, s.Frames())
	}
	c := r.peerConn(t, false)
	var received atomic.Int64
	progress := make(chan struct{}, 1)
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() { defer close(done); echoLoop(s, stop, &received, progress) }()
	const total = 100000
	sent := paced(c, net.UDPAddrFromAddrPort(r.hostAddr(false, sipPort)), make([]byte, 200), total, &received, progress)
	// Wait for the receiver to go quiet: everything delivered, or no
	// progress for 300 ms (the rest was dropped on the way).
	last, quiet := received.Load(), time.Now()
	for deadline := time.Now().Add(20 * time.Second); received.Load() < int64(sent) && time.Since(quiet) < 300*time.Millisecond && time.Now().Before(deadline); {
		select {
		case <-progress:
		case <-time.After(50 * time.Millisecond):
		}
		if n := received.Load(); n != last {
			last, quiet = n, time.Now()
		}
	}
	close(stop)
	<-done
	// Collect the last completions and refill.
	for deadline := time.Now().Add(5 * time.Second); ; {
		s.Complete()
		s.Kick()
		s.Fill()
		if s.KernelFrames() == kernBefore {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("kernel still holds %d frames (want %d in the fill ring), %d TX pending", s.KernelFrames(), kernBefore, s.TxPending())
		}
		runtime.Gosched()
	}
	st, _ := s.Stats()
	t.Logf("sent %d, received %d on the socket; stats %+v", sent, received.Load(), st)
	if received.Load() == 0 {
		t.Fatal("nothing received")
	}
	if s.FreeFrames() != freeBefore || s.FreeFrames()+s.KernelFrames() != s.Frames() {
		t.Fatalf("frames leaked: free %d (was %d), kernel %d, total %d", s.FreeFrames(), freeBefore, s.KernelFrames(), s.Frames())
	}
	if st.BadRelease != 0 || st.TxBadDesc != 0 {
		t.Fatalf("ownership errors: %+v", st)
	}
}

// TestHotPathAllocs: receive, release, fill, alloc, transmit, complete and
// poll allocate nothing.
func TestHotPathAllocs(t *testing.T) {
	r := newRig(t, vethtest.Options{}, XDPNative, 1)
	s := r.socks[0]
	c := r.peerConn(t, false)
	d, ok := awaitFrame(t, s, c, r.hostAddr(false, sipPort), []byte("template"), 5*time.Second)
	if !ok {
		t.Fatal("no frame to build the template from")
	}
	n, err := buildReply(s.Frame(d), int(d.Len), []byte("SIP/2.0 200 OK"))
	if err != nil {
		t.Fatal(err)
	}
	template := append([]byte(nil), s.Frame(d)[:n]...)
	s.Release([]Desc{d})
	dst := net.UDPAddrFromAddrPort(r.hostAddr(false, sipPort))
	for i := 0; i < 300; i++ {
		c.WriteToUDP([]byte("load"), dst)
	}
	descs := make([]Desc, 16)
	addrs := make([]uint64, 1)
	tx := make([]Desc, 1)
	got := 0
	allocs := testing.AllocsPerRun(500, func() {
		s.Complete()
		s.Poll(0)
		k := s.Receive(descs)
		got += k
		s.Release(descs[:k])
		s.Fill()
		if s.Alloc(addrs) == 1 {
			copy(s.Buffer(addrs[0]), template)
			tx[0] = Desc{Addr: addrs[0], Len: uint32(len(template))}
			s.Transmit(tx)
		}
	})
	if allocs != 0 {
		t.Fatalf("hot path allocates %.1f times per round", allocs)
	}
	if got == 0 {
		t.Fatal("the measured rounds received nothing: Receive was not exercised")
	}
}

// BenchmarkXSKRxTx echoes datagrams over veth (copy mode, native XDP):
// the peer sends b.N datagrams of 600 bytes, the receiving thread swaps
// addresses and ports in place and transmits them back. Reported: pkts/s
// delivered to the socket and rx-cpu-ns/pkt, the receiving thread's CPU
// time (user+system) per packet.
func BenchmarkXSKRxTx(b *testing.B) {
	if unix.Geteuid() != 0 {
		b.Skip("needs root to attach XDP and open AF_XDP sockets")
	}
	// echo: receive, swap, transmit (in copy mode the sendto runs the
	// veth transmit, and with it the peer's receive, on this thread).
	// rx: receive and release only.
	b.Run("echo", func(b *testing.B) { benchXSK(b, true) })
	b.Run("rx", func(b *testing.B) { benchXSK(b, false) })
}

func benchXSK(b *testing.B, echo bool) {
	r := newRig(b, vethtest.Options{}, XDPNative, 1)
	s := r.socks[0]
	c := r.peerConn(b, false)
	var received atomic.Int64
	progress := make(chan struct{}, 1)
	stop := make(chan struct{})
	type result struct {
		cpu  time.Duration
		wall time.Duration
	}
	res := make(chan result, 1)
	go func() {
		runtime.LockOSThread()
		defer runtime.UnlockOSThread()
		var ru0, ru1 unix.Rusage
		unix.Getrusage(unix.RUSAGE_THREAD, &ru0)
		start := time.Now()
		descs := make([]Desc, 64)
		for {
			select {
			case <-stop:
				unix.Getrusage(unix.RUSAGE_THREAD, &ru1)
				cpu := time.Duration(ru1.Utime.Nano()+ru1.Stime.Nano()-ru0.Utime.Nano()-ru0.Stime.Nano()) * time.Nanosecond
				res <- result{cpu, time.Since(start)}
				return
			default:
			}
			s.Complete()
			if ok, _ := s.Poll(2 * time.Millisecond); !ok {
				continue
			}
			n := s.Receive(descs)
			if echo {
				for i := 0; i < n; i++ {
					swapInPlace(s.Frame(descs[i]))
				}
				s.Transmit(descs[:n])
			} else {
				s.Release(descs[:n])
			}
			s.Fill()
			received.Add(int64(n))
			select {
			case progress <- struct{}{}:
			default:
			}
		}
	}()
	b.ReportAllocs()
	b.ResetTimer()
	sent := paced(c, net.UDPAddrFromAddrPort(r.hostAddr(false, sipPort)), make([]byte, 600), b.N, &received, progress)
	for deadline := time.Now().Add(2 * time.Second); received.Load() < int64(sent) && time.Now().Before(deadline); {
		select {
		case <-progress:
		case <-time.After(20 * time.Millisecond):
		}
	}
	b.StopTimer()
	close(stop)
	rs := <-res
	got := received.Load()
	if got > 0 {
		b.ReportMetric(float64(rs.cpu.Nanoseconds())/float64(got), "rx-cpu-ns/pkt")
		b.ReportMetric(float64(got)/rs.wall.Seconds(), "pkts/s")
		b.ReportMetric(float64(got)/float64(sent), "delivered")
	}
}

// swapInPlace turns a received IPv4 or IPv6 UDP frame into its echo:
// swapping both endpoints leaves every checksum valid.
func swapInPlace(b []byte) {
	if len(b) < 14 {
		return
	}
	var mac [6]byte
	copy(mac[:], b[0:6])
	copy(b[0:6], b[6:12])
	copy(b[6:12], mac[:])
	var l4 int
	switch binary.BigEndian.Uint16(b[12:]) {
	case 0x0800:
		if len(b) < 34 {
			return
		}
		var a [4]byte
		copy(a[:], b[26:30])
		copy(b[26:30], b[30:34])
		copy(b[30:34], a[:])
		l4 = 14 + int(b[14]&0xf)*4
	case 0x86dd:
		if len(b) < 54 {
			return
		}
		var a [16]byte
		copy(a[:], b[22:38])
		copy(b[22:38], b[38:54])
		copy(b[38:54], a[:])
		l4 = 54
	default:
		return
	}
	if len(b) < l4+4 {
		return
	}
	b[l4], b[l4+1], b[l4+2], b[l4+3] = b[l4+2], b[l4+3], b[l4], b[l4+1]
}
