package vethtest

import (
	"net"
	"net/netip"
	"os"
	"testing"
	"time"
)

// TestPair checks the rig itself: both address families reach the peer, a
// Go socket opened in the namespace receives, and cleanup removes it all.
func TestPair(t *testing.T) {
	Require(t)
	var p *Pair
	t.Run("build", func(t *testing.T) {
		p = New(t, Options{})
		for _, a := range []netip.Addr{p.HostV4, p.HostV6} {
			if err := p.Ping(a, 5*time.Second); err != nil {
				t.Fatal(err)
			}
		}
		c := p.ListenUDP(t, netip.AddrPortFrom(p.PeerV4, 0))
		s, err := net.DialUDP("udp", nil, net.UDPAddrFromAddrPort(c.LocalAddr().(*net.UDPAddr).AddrPort()))
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		if _, err := s.Write([]byte("hello")); err != nil {
			t.Fatal(err)
		}
		c.SetReadDeadline(time.Now().Add(5 * time.Second))
		buf := make([]byte, 16)
		n, from, err := c.ReadFromUDPAddrPort(buf)
		if err != nil || string(buf[:n]) != "hello" || from.Addr() != p.HostV4 {
			t.Fatalf("peer got %q from %v, err %v; want hello from %v", buf[:n], from, err, p.HostV4)
		}
	})
	if p == nil {
		return
	}
	if _, err := net.InterfaceByName(p.Host); err == nil {
		t.Errorf("%s still exists after cleanup", p.Host)
	}
	if _, err := os.Stat("/var/run/netns/" + p.NS); !os.IsNotExist(err) {
		t.Errorf("netns %s still exists after cleanup (stat: %v)", p.NS, err)
	}
}
