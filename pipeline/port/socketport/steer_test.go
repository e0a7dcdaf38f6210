package socketport

import (
	"fmt"
	"net"
	"net/netip"
	"testing"

	"sipedge/pipeline/port"
)

// With Steer, every datagram of one source address lands on one socket of
// the group, whatever its source port; different sources still spread.
func TestSteerOneSourceOneSocket(t *testing.T) {
	a := open(t, Config{Listen: netip.MustParseAddrPort("127.0.0.1:0"), Steer: 2})
	b := open(t, Config{Listen: a.LocalAddr(), Steer: 2})
	const sources, portsEach = 16, 8
	for s := 0; s < sources; s++ {
		ip := net.IPv4(127, 0, 1, byte(10+s))
		for i := 0; i < portsEach; i++ {
			c, err := net.DialUDP("udp", &net.UDPAddr{IP: ip}, net.UDPAddrFromAddrPort(a.LocalAddr()))
			if err != nil {
				t.Fatal(err)
			}
			_, err = fmt.Fprintf(c, "from %v %d", ip, i)
			c.Close()
			if err != nil {
				t.Fatal(err)
			}
		}
	}
	rx := make([]port.Packet, 64)
	got := func(p *Port) map[netip.Addr]int {
		by := map[netip.Addr]int{}
		for {
			k, err := port.ReceiveWait(p, rx, testWait)
			if err != nil {
				t.Fatal(err)
			}
			if k == 0 {
				return by
			}
			for _, pk := range rx[:k] {
				by[pk.Src.Addr()]++
			}
			p.Release(rx[:k])
		}
	}
	ga, gb := got(a), got(b)
	for src, n := range ga {
		if gb[src] != 0 {
			t.Errorf("source %v split over the two sockets: %d and %d datagrams", src, n, gb[src])
		}
	}
	total := 0
	for _, n := range ga {
		total += n
	}
	for _, n := range gb {
		total += n
	}
	if total != sources*portsEach {
		t.Fatalf("received %d datagrams, want %d", total, sources*portsEach)
	}
	if len(ga) == 0 || len(gb) == 0 {
		t.Errorf("all %d sources on one socket (%d / %d): the program does not spread sources", sources, len(ga), len(gb))
	}
}
