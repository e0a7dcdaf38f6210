package socketport

import (
	"fmt"
	"net"
	"net/netip"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"sipedge/pipeline/port"
)

// BenchmarkSteerReceive is the price of keeping one source on one worker:
// sixteen sources send to a reuseport group of two sockets, picked by the
// kernel's 4-tuple hash (steer=off) or by the reuseport BPF program on
// the source address (steer=on). The difference per datagram is all the
// program costs; the alternative, one socket handing datagrams to the
// right worker in software, costs a cross-core hand-off and often a
// wake-up per datagram (shared/notes/wakeup-profile.md), which is far
// more than the program.
func BenchmarkSteerReceive(b *testing.B) {
	for _, steer := range []int{0, 2} {
		b.Run(fmt.Sprintf("steer=%v", steer == 2), func(b *testing.B) {
			a := open(b, Config{Listen: netip.MustParseAddrPort("127.0.0.1:0"), Steer: steer, RecvBuffer: 8 << 20})
			c := open(b, Config{Listen: a.LocalAddr(), Steer: steer, RecvBuffer: 8 << 20})
			var srcs []*net.UDPConn
			for s := 0; s < 16; s++ {
				conn, err := net.DialUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 1, byte(10+s))}, net.UDPAddrFromAddrPort(a.LocalAddr()))
				if err != nil {
					b.Fatal(err)
				}
				defer conn.Close()
				srcs = append(srcs, conn)
			}
			msg := make([]byte, 600)
			rx := make([]port.Packet, 64)
			drain := func(want int) int {
				got := 0
				deadline := time.Now().Add(2 * time.Second)
				for got < want && time.Now().Before(deadline) {
					for _, p := range []*Port{a, c} {
						k, err := p.Receive(rx)
						if err != nil {
							b.Fatal(err)
						}
						got += k
						p.Release(rx[:k])
					}
				}
				return got
			}
			var ru0, ru1 unix.Rusage
			unix.Getrusage(unix.RUSAGE_SELF, &ru0)
			sent, got := 0, 0
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				srcs[i%len(srcs)].Write(msg)
				sent++
				if sent%256 == 0 {
					got += drain(sent - got)
				}
			}
			got += drain(sent - got)
			b.StopTimer()
			unix.Getrusage(unix.RUSAGE_SELF, &ru1)
			cpu := time.Duration(ru1.Utime.Nano()-ru0.Utime.Nano()+ru1.Stime.Nano()-ru0.Stime.Nano()) * time.Nanosecond
			b.ReportMetric(float64(cpu.Nanoseconds())/float64(b.N), "cpu-ns/datagram")
			b.ReportMetric(float64(got)/float64(sent), "delivered")
		})
	}
}
