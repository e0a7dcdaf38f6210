package vethtest

import (
	"net"
	"net/netip"
	"os"
	"os/exec"
	"strings"
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

// TestSubnetBits: the subnet grows with the peer's addresses, a /30 for
// one, as the tests have always had.
func TestSubnetBits(t *testing.T) {
	for _, c := range []struct{ peers, bits int }{{1, 30}, {2, 29}, {5, 29}, {6, 28}, {13, 28}, {14, 27}, {61, 26}} {
		if got := subnetBits(c.peers); got != c.bits {
			t.Errorf("subnetBits(%d) = %d, want %d", c.peers, got, c.bits)
		}
	}
	for _, n := range []int{-1, 62} {
		if p, err := Create(Options{PeerV4Addrs: n}); err == nil {
			p.Close()
			t.Errorf("Create with %d peer addresses: no error", n)
		}
	}
}

// TestCreate checks the error-returning rig as the benchmarks use it:
// several peer addresses in one subnet, IPv4 only, each resolved on the
// host, a route through one of them, a socket on another, and Close
// removing it all (twice is harmless).
func TestCreate(t *testing.T) {
	Require(t)
	p, err := Create(Options{PeerV4Addrs: 2, IPv4Only: true})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	if p.Subnet4.Bits() != 29 || len(p.PeerV4s) != 2 || p.PeerV4 != p.PeerV4s[0] || p.HostV6.IsValid() {
		t.Fatalf("subnet %v, host %v, peers %v (PeerV4 %v), host IPv6 %v: want a /29 with two peer addresses, no IPv6", p.Subnet4, p.HostV4, p.PeerV4s, p.PeerV4, p.HostV6)
	}
	for _, a := range append([]netip.Addr{p.HostV4}, p.PeerV4s...) {
		if !p.Subnet4.Contains(a) {
			t.Errorf("%v is outside %v", a, p.Subnet4)
		}
	}
	for _, a := range p.PeerV4s {
		if err := p.Resolve(a, 3*time.Second); err != nil {
			t.Error(err)
		}
	}
	// A destination as unique on this host as the pair's subnet.
	a := p.Subnet4.Addr().As4()
	dst := netip.PrefixFrom(netip.AddrFrom4([4]byte{198, 18, a[2], a[3]}), p.Subnet4.Bits())
	if err := p.Route(dst, p.PeerV4s[0]); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command("ip", "route", "show", dst.String()).CombinedOutput()
	if err != nil || !strings.Contains(string(out), "via "+p.PeerV4s[0].String()) {
		t.Errorf("ip route show %s: %v: %s; want a route via %v", dst, err, out, p.PeerV4s[0])
	}
	c, err := p.Listen(netip.AddrPortFrom(p.PeerV4s[1], 0))
	if err != nil {
		t.Fatal(err)
	}
	c.Close()
	if out, err := p.Run("ip", "-4", "addr", "show", "dev", p.Peer); err != nil || !strings.Contains(out, p.PeerV4s[1].String()+"/29") {
		t.Errorf("peer addresses: %v: %s; want %v/29", err, out, p.PeerV4s[1])
	}
	if _, err := p.Run("false"); err == nil {
		t.Error("Run(false): no error")
	}
	if err := p.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := net.InterfaceByName(p.Host); err == nil {
		t.Errorf("%s still exists after Close", p.Host)
	}
	if _, err := os.Stat("/var/run/netns/" + p.NS); !os.IsNotExist(err) {
		t.Errorf("netns %s still exists after Close (stat: %v)", p.NS, err)
	}
	if out, _ := exec.Command("ip", "route", "show", dst.String()).CombinedOutput(); len(strings.TrimSpace(string(out))) > 0 {
		t.Errorf("route %s still there after Close: %s", dst, out)
	}
	if err := p.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
}
