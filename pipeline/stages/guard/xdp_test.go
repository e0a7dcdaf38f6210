package guard_test

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"sipedge/afxdp"
	"sipedge/afxdp/vethtest"
	"sipedge/pipeline"
	"sipedge/pipeline/port/socketport"
	"sipedge/pipeline/stages/guard"
)

// rigSIPPort is the veth rig's SIP port: not 5060, which the afxdp port's
// slow-path socket of other packages' tests holds on the wildcard address
// (bound to their device, which still conflicts with an unbound socket)
// while go test runs packages in parallel; nor afxdp's 25063 and sipreplay's 25060, and
// below the ephemeral range free-port pickers use.
const rigSIPPort = 25062

// countStage stands for the rest of the pipeline: it counts what the guard
// let through and ends the run.
type countStage struct{ n atomic.Int64 }

func (s *countStage) Process(c *pipeline.Ctx) pipeline.Verdict {
	s.n.Add(1)
	return c.Drop(pipeline.DropNone)
}

// xdpRig is a veth pair with the XDP program on the host end, no AF_XDP
// socket (SIP UDP falls through to the kernel), and a worker on a kernel
// socket running the guard: the socket port, with the XDP map as the
// guard's Banner.
type xdpRig struct {
	pair  *vethtest.Pair
	prog  *afxdp.Program
	g     *guard.Guard
	w     *pipeline.Worker
	count *countStage
	dst   netip.AddrPort
	peer  *net.UDPConn
	sb    *afxdp.SocketBans // "sockfilter" only
}

func newXDPRig(t testing.TB, gc guard.Config, useBanner bool) *xdpRig {
	return newBanRig(t, gc, map[bool]string{true: "xdp", false: "worker"}[useBanner])
}

// newBanRig is newXDPRig with the bans enforced below the worker by
// where: "xdp" (the XDP program), "sockfilter" (afxdp.SocketBans on the
// worker's socket) or "worker" (nowhere below it).
func newBanRig(t testing.TB, gc guard.Config, where string) *xdpRig {
	t.Helper()
	vethtest.Require(t)
	r := &xdpRig{pair: vethtest.New(t, vethtest.Options{}), count: &countStage{}}
	var err error
	r.prog, err = afxdp.LoadProgram(afxdp.ProgramConfig{Ifindex: r.pair.HostIndex, Mode: afxdp.XDPAuto, Ports: []uint16{rigSIPPort}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.prog.Close() })
	var filter func(int) error
	switch where {
	case "xdp":
		gc.Banner = r.prog
	case "sockfilter":
		sb, err := afxdp.NewSocketBans(0, 64)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { sb.Close() })
		gc.Banner, filter, r.sb = sb, sb.Attach, sb
	}
	if r.g, err = guard.New(gc); err != nil {
		t.Fatal(err)
	}
	r.dst = netip.AddrPortFrom(r.pair.HostV4, rigSIPPort)
	p, err := socketport.Open(socketport.Config{Listen: r.dst, RecvBuffer: 4 << 20, Filter: filter})
	if err != nil {
		t.Fatal(err)
	}
	key := testKey
	r.w, err = pipeline.NewWorker(p, pipeline.Config{Key: &key, Core: -1}, []pipeline.StageMaker{r.g, pipeline.StageOf("count", r.count)})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Add(2)
	go func() { defer wg.Done(); r.g.Run(ctx) }()
	go func() {
		defer wg.Done()
		if err := r.w.Run(ctx); err != nil {
			t.Error(err)
		}
	}()
	t.Cleanup(func() { cancel(); p.Close(); wg.Wait() })
	r.peer = r.pair.ListenUDP(t, netip.AddrPortFrom(r.pair.PeerV4, 0))
	return r
}

func (r *xdpRig) send(t testing.TB, n int) {
	t.Helper()
	msg := registerFrom(r.peer.LocalAddr().(*net.UDPAddr).AddrPort(), 1, "Grandstream").Payload
	for i := 0; i < n; i++ {
		if _, err := r.peer.WriteToUDPAddrPort(msg, r.dst); err != nil {
			t.Fatalf("sending to %v: %v", r.dst, err)
		}
	}
}

func (r *xdpRig) counters(t testing.TB) afxdp.Counters {
	t.Helper()
	c, err := r.prog.Counters()
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// await sends one message every 20 ms until cond holds, for at most d.
func (r *xdpRig) await(t testing.TB, d time.Duration, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(d); !cond(); {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %v (guard %+v, xdp %+v)", what, d, r.g.Stats(), r.counters(t))
		}
		r.send(t, 1)
		time.Sleep(20 * time.Millisecond) // pacing the probe traffic, not synchronisation
	}
}

// TestFloodBannedInXDP: a REGISTER flood from the namespace is banned by
// the guard, the ban reaches the XDP map through the ban goroutine, later
// packets are dropped by the XDP program (its counter) and never reach
// userspace, and when the TTL lapses traffic flows again.
func TestFloodBannedInXDP(t *testing.T) {
	const ttl = 2 * time.Second
	r := newXDPRig(t, guard.Config{OverLimit: guard.Silent, Register: guard.Limit{Rate: 10, Burst: 10}, BanAfter: -1, BanTTL: ttl}, true)
	peer := r.pair.PeerV4
	// The flood: well past the burst.
	r.send(t, 50)
	r.await(t, 10*time.Second, "flood banned in the XDP map", func() bool { return r.counters(t).DroppedBanned > 0 })
	st := r.g.Stats()
	if st.Bans[guard.ReasonRateRegister] != 1 || st.XDPBans != 1 || st.XDPErrors != 0 {
		t.Fatalf("guard stats after the flood: %+v", st)
	}
	bans, err := r.prog.Bans()
	if err != nil || len(bans) != 1 || bans[0].Addr != peer {
		t.Fatalf("XDP bans %+v, %v; want %v", bans, err, peer)
	}
	// From now on the XDP program drops; userspace sees nothing. Judged by
	// the program's own counters: the worker's receive count lags while it
	// drains what was redirected before the ban (CI saw 30 of the flood
	// counted after this point).
	x0 := r.counters(t)
	const more = 500
	r.send(t, more)
	// The program counts synchronously on veth's receive path, but let the
	// last packets land: poll the counter, bounded.
	for deadline := time.Now().Add(5 * time.Second); r.counters(t).DroppedBanned < x0.DroppedBanned+more && time.Now().Before(deadline); {
		time.Sleep(10 * time.Millisecond)
	}
	x1 := r.counters(t)
	if got := x1.DroppedBanned - x0.DroppedBanned; got != more {
		t.Fatalf("XDP dropped %d of %d banned packets", got, more)
	}
	if x1.Redirected != x0.Redirected || x1.NoSocket != x0.NoSocket {
		t.Fatalf("the program handed %d banned packets to the AF_XDP socket and %d to the kernel's", x1.Redirected-x0.Redirected, x1.NoSocket-x0.NoSocket)
	}
	// The ban lapses in the program by itself after its TTL.
	passed := r.count.n.Load()
	r.await(t, ttl+10*time.Second, "traffic flowing after the ban's TTL", func() bool { return r.count.n.Load() > passed })
	if x2 := r.counters(t); x2.NoSocket+x2.Passed <= x1.NoSocket+x1.Passed {
		t.Fatalf("after the TTL the program passed nothing: %+v", x2)
	}
}

// filterDropped is what the socket filter dropped (0 without one).
func (r *xdpRig) filterDropped(t testing.TB) uint64 {
	if r.sb == nil {
		return 0
	}
	n, err := r.sb.Dropped()
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// BenchmarkVethBannedDrop compares where a banned source's packets die:
// in the XDP program (xdp), in the socket filter (sockfilter) or in the
// guard behind a kernel socket (worker). It reports the rate the sender
// achieved, the share of sent packets each counter saw and the CPU per
// datagram.
func BenchmarkVethBannedDrop(b *testing.B) {
	for _, mode := range []string{"xdp", "sockfilter", "worker"} {
		b.Run(mode, func(b *testing.B) {
			r := newBanRig(b, guard.Config{BanTTL: time.Hour}, mode)
			if err := r.g.Ban(r.pair.PeerV4, time.Hour); err != nil {
				b.Fatal(err)
			}
			// The operator ban reaches the worker at its next batch.
			r.await(b, 5*time.Second, "ban enforced", func() bool {
				st := r.g.Stats()
				return st.Drops[guard.ReasonBanned] > 0 || r.counters(b).DroppedBanned > 0 || r.filterDropped(b) > 0
			})
			x0, g0, f0 := r.counters(b), r.g.Stats().Drops[guard.ReasonBanned], r.filterDropped(b)
			sys0, self0 := busyJiffies(b), selfCPU(b)
			b.ResetTimer()
			start := time.Now()
			r.send(b, b.N)
			el := time.Since(start)
			b.StopTimer()
			// Let the worker drain what is queued in its socket: wait
			// until every sent packet is counted somewhere, bounded.
			for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
				if d := (r.counters(b).DroppedBanned - x0.DroppedBanned) + (r.g.Stats().Drops[guard.ReasonBanned] - g0) + (r.filterDropped(b) - f0); d >= uint64(b.N) {
					break
				}
			}
			sys1, self1 := busyJiffies(b), selfCPU(b)
			// CPU per flood datagram, sender included (the same in both
			// modes): the whole machine's busy time (softirq, where XDP
			// and the kernel's UDP receive run, included), and this
			// process's (sender and worker).
			b.ReportMetric(float64(sys1-sys0)*1e9/float64(clkTck)/float64(b.N), "sys-cpu-ns/op")
			b.ReportMetric(float64(self1-self0)/float64(b.N), "proc-cpu-ns/op")
			x1, g1 := r.counters(b), r.g.Stats().Drops[guard.ReasonBanned]
			b.ReportMetric(float64(b.N)/el.Seconds(), "sent-pps")
			b.ReportMetric(float64(x1.DroppedBanned-x0.DroppedBanned)/float64(b.N), "xdp-dropped/op")
			b.ReportMetric(float64(g1-g0)/float64(b.N), "guard-dropped/op")
			b.ReportMetric(float64(r.filterDropped(b)-f0)/float64(b.N), "filter-dropped/op")
			if testing.Verbose() {
				fmt.Printf("%s: %d sent in %v, xdp dropped %d, guard dropped %d\n", mode, b.N, el, x1.DroppedBanned-x0.DroppedBanned, g1-g0)
			}
		})
	}
}
