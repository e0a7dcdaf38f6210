package echo

import (
	"testing"
	"time"

	"sipedge/afxdp/vethtest"
)

// TestCheck is the short check mode: a few thousand datagrams through each
// port, and each must echo at least 90% of what was sent (veth may drop a
// few under bursts; a port that loses frames or stops answering fails).
func TestCheck(t *testing.T) {
	v := vethtest.New(t, vethtest.Options{IPv4Only: true})
	rs, err := Run(v, Options{Packets: 3000, Payload: 600, Timeout: 30 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	if len(rs) != 2 {
		t.Fatalf("%d results, want afxdp and socket", len(rs))
	}
	for _, r := range rs {
		t.Logf("%s (%s): sent %d, echoed %d, replies %d, %.0f packets/s, %v CPU/packet", r.Port, r.Mode, r.Sent, r.Echoed, r.Replies, r.PacketsPerSecond(), r.CPUPerPacket())
		if r.Sent != 3000 || r.Echoed*10 < r.Sent*9 || r.Replies*10 < r.Sent*9 {
			t.Errorf("%s: sent %d, echoed %d, replies %d: want all sent and >= 90%% echoed and back", r.Port, r.Sent, r.Echoed, r.Replies)
		}
	}
}

// BenchmarkEcho reports, per port, packets/s and the receiving thread's
// CPU ns per packet for b.N datagrams of 600 bytes.
func BenchmarkEcho(b *testing.B) {
	v := vethtest.New(b, vethtest.Options{IPv4Only: true})
	for _, kind := range []string{AFXDP, Socket} {
		b.Run(kind, func(b *testing.B) {
			n := max(b.N, 1000)
			b.ResetTimer()
			rs, err := Run(v, Options{Packets: n, Payload: 600, Ports: []string{kind}})
			b.StopTimer()
			if err != nil {
				b.Fatal(err)
			}
			r := rs[0]
			b.ReportMetric(r.PacketsPerSecond(), "pkts/s")
			b.ReportMetric(float64(r.CPUPerPacket().Nanoseconds()), "rx-cpu-ns/pkt")
			b.ReportMetric(float64(r.Replies)/float64(r.Sent), "delivered")
			b.Logf("%s", r.Mode)
		})
	}
}
