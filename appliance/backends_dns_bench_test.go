package appliance

import (
	"context"
	"fmt"
	"net/netip"
	"runtime"
	"sync"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"sipedge/appliance/config"
	"sipedge/appliance/resolve/dnstest"
	"sipedge/pipeline"
	"sipedge/pipeline/chain"
	"sipedge/pipeline/memport"
	"sipedge/pipeline/port"
	"sipedge/pipeline/stages/drain"
	"sipedge/sipcore"
)

// srvRecords is pbx.test's SRV set with weights that change with gen, so
// that every refresh publishes a new backend set.
func srvRecords(gen int) []string {
	out := []string{`pbx.test. 1 IN NAPTR 10 10 "s" "SIP+D2U" "" _sip._udp.pbx.test.`}
	for i := 0; i < 4; i++ {
		out = append(out, fmt.Sprintf(`_sip._udp.pbx.test. 1 IN SRV 10 %d %d b%d.pbx.test.`, 10+(gen+i)%7, 5080+i, i),
			fmt.Sprintf(`b%d.pbx.test. 1 IN A 10.0.9.%d`, i, i+1))
	}
	return out
}

// dnsWorker is one worker running the proxy chain (drain included) over a
// memport that cycles new INVITEs, routed to backends that DNS gives.
type dnsWorker struct {
	w   *pipeline.Worker
	dns *backendDNS
	srv *dnstest.Server
}

func newDNSWorker(tb testing.TB) *dnsWorker {
	tb.Helper()
	srv := dnstest.Start(tb, srvRecords(0)...)
	bk, _ := pipeline.NewBackends(nil)
	d, err := openBackendDNS(dnsConfig(srv.Addr, config.Backend{Address: "sip:pbx.test", Weight: 1}), nil, bk, netip.Addr{})
	if err != nil {
		tb.Fatal(err)
	}
	key := sipcore.NewKey([]byte("dns bench cluster secret, 32 by."))
	proxy, err := chain.Proxy(chain.ProxyConfig{Key: &key, SentBy: "192.0.2.1:5060", RecordRoute: "sip:192.0.2.1:5060;lr",
		Names: []string{"192.0.2.1"}, Backends: bk})
	if err != nil {
		tb.Fatal(err)
	}
	dr, _ := drain.New(drain.Config{State: drain.NewState(), Status: 503})
	stages, err := chain.Default.Without("auth", "guard").Makers(append(proxy, dr)...)
	if err != nil {
		tb.Fatal(err)
	}
	p := memport.New(1024, 4096)
	p.Cycle = true
	p.Sink = func(*port.Packet) {}
	caller := netip.MustParseAddrPort("203.0.113.9:5070")
	for i := 0; i < 512; i++ {
		msg := fmt.Sprintf("INVITE sip:bob@example.com SIP/2.0\r\nVia: SIP/2.0/UDP %s;branch=z9hG4bK-b%d;rport\r\nMax-Forwards: 70\r\n"+
			"To: <sip:bob@example.com>\r\nFrom: <sip:alice@example.com>;tag=a%d\r\nCall-ID: bench-%d@203.0.113.9\r\nCSeq: 1 INVITE\r\n"+
			"Contact: <sip:alice@%s>\r\nContent-Length: 0\r\n\r\n", caller, i, i, i, caller)
		p.In = append(p.In, memport.Datagram{Payload: []byte(msg), Src: caller, Dst: netip.MustParseAddrPort("192.0.2.1:5060")})
	}
	w, err := pipeline.NewWorker(p, pipeline.Config{Key: &key, Core: -1, Batch: 64}, stages)
	if err != nil {
		tb.Fatal(err)
	}
	return &dnsWorker{w: w, dns: d, srv: srv}
}

// refreshing makes the DNS records change and the watcher look them up
// again, every interval (0: as fast as it can), until stop is called; stop
// returns how many new sets were published.
func (dw *dnsWorker) refreshing(tb testing.TB, interval time.Duration) (stop func() uint64) {
	dw.dns.start()
	var wg sync.WaitGroup
	quit := make(chan struct{})
	before := dw.dns.stats().Publishes
	wg.Add(1)
	go func() {
		defer wg.Done()
		var tick <-chan time.Time
		if interval > 0 {
			t := time.NewTicker(interval)
			defer t.Stop()
			tick = t.C
		}
		for gen := 1; ; gen++ {
			dw.srv.Set(tb, srvRecords(gen)...)
			set := dw.dns.backends.Load()
			dw.dns.w.Refresh()
			select { // the swap this refresh makes, or the end
			case <-set.Changed():
			case <-quit:
				return
			}
			if tick != nil {
				select {
				case <-tick:
				case <-quit:
					return
				}
			}
		}
	}()
	return func() uint64 {
		close(quit)
		wg.Wait()
		dw.dns.stop()
		return dw.dns.stats().Publishes - before
	}
}

func (dw *dnsWorker) poll(tb testing.TB, msgs int) {
	for done := 0; done < msgs; {
		n, err := dw.w.Poll()
		if err != nil {
			tb.Fatal(err)
		}
		done += n
	}
}

// BenchmarkWorkerDNSRefresh is the worker's per-message cost (ns/op is
// per message: new INVITEs through sanity, drain, response, self, route to
// DNS-given backends) with the backend set still ("quiet") and while the
// DNS records change and the set is swapped under the worker 20 times a
// second ("refresh-20/s", far above any real TTL) or as fast as the
// resolver goroutine can ("refresh-max": its own CPU then competes with the
// worker's on a small machine). B/op and allocs/op count every goroutine:
// while refreshing they include the resolver's and the test DNS server's
// own allocations; TestWorkerAllocsAfterDNSSwaps shows the worker's are 0.
func BenchmarkWorkerDNSRefresh(b *testing.B) {
	for _, mode := range []struct {
		name     string
		refresh  bool
		interval time.Duration
	}{{"quiet", false, 0}, {"refresh-20/s", true, 50 * time.Millisecond}, {"refresh-max", true, 0}} {
		b.Run(mode.name, func(b *testing.B) {
			dw := newDNSWorker(b)
			dw.poll(b, 1024)
			var stop func() uint64
			if mode.refresh {
				stop = dw.refreshing(b, mode.interval)
			}
			// The worker's own CPU time, on its locked thread: wall time
			// on a shared machine also counts the time it was not running.
			runtime.LockOSThread()
			defer runtime.UnlockOSThread()
			b.ReportAllocs()
			b.ResetTimer()
			cpu0 := threadCPU(b)
			dw.poll(b, b.N)
			cpu := threadCPU(b) - cpu0
			b.StopTimer()
			b.ReportMetric(float64(cpu.Nanoseconds())/float64(b.N), "worker-cpu-ns/msg")
			if stop != nil {
				b.ReportMetric(float64(stop())/b.Elapsed().Seconds(), "refreshes/s")
			}
			if st := dw.w.Stats(); st.Tx != st.Rx {
				b.Fatalf("rx %d tx %d: drops %v", st.Rx, st.Tx, st.Drops)
			}
		})
	}
}

// threadCPU is the CPU time the calling OS thread has used.
func threadCPU(tb testing.TB) time.Duration {
	var ru unix.Rusage
	if err := unix.Getrusage(unix.RUSAGE_THREAD, &ru); err != nil {
		tb.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// After every DNS refresh that swaps the backend set, the worker's next
// batches (which load the new set) allocate nothing and forward every
// INVITE. The refresh runs between measurements: allocation counts are
// process-wide, and the resolver and the test's DNS server allocate on
// their own goroutines, so the test runs on one P and yields to them
// before each measurement until they are back waiting.
func TestWorkerAllocsAfterDNSSwaps(t *testing.T) {
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(1))
	dw := newDNSWorker(t)
	dw.poll(t, 1024)
	var ms runtime.MemStats
	for gen := 1; gen <= 20; gen++ {
		set := dw.dns.backends.Load()
		dw.srv.Set(t, srvRecords(gen)...)
		dw.dns.w.ResolveAll(context.Background())
		if dw.dns.backends.Load() == set {
			t.Fatalf("refresh %d did not swap the backend set", gen)
		}
		for range 3 {
			runtime.Gosched()
		}
		runtime.ReadMemStats(&ms)
		before := ms.Mallocs
		dw.poll(t, 256)
		runtime.ReadMemStats(&ms)
		if n := ms.Mallocs - before; n != 0 {
			t.Errorf("refresh %d: the worker allocated %d times in the 256 messages after the swap", gen, n)
		}
	}
	if st := dw.w.Stats(); st.Tx != st.Rx {
		t.Errorf("rx %d tx %d: drops %v", st.Rx, st.Tx, st.Drops)
	}
}
