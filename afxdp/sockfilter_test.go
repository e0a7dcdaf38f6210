package afxdp

import (
	"net"
	"net/netip"
	"testing"
	"time"
)

// TestSocketBans: the socket filter drops a banned source's datagrams
// before they reach the socket, counts them, lets other sources through,
// and lets the source through again after Unban or when its ban lapses.
func TestSocketBans(t *testing.T) {
	requireRoot(t)
	sb, err := NewSocketBans(64, 64) // IPv6 by /64: the masking must pass the verifier too
	if err != nil {
		t.Fatal(err)
	}
	defer sb.Close()
	srv, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	rc, err := srv.SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	var aerr error
	rc.Control(func(fd uintptr) { aerr = sb.Attach(int(fd)) })
	if aerr != nil {
		t.Fatal(aerr)
	}
	dst := srv.LocalAddr().(*net.UDPAddr).AddrPort()
	sender := func(ip string) *net.UDPConn {
		c, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.ParseIP(ip)})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		return c
	}
	bad, good := sender("127.0.0.7"), sender("127.0.0.8")
	// got reads until payload arrives (true) or a short deadline passes.
	got := func(payload string) bool {
		srv.SetReadDeadline(time.Now().Add(300 * time.Millisecond))
		buf := make([]byte, 64)
		for {
			n, _, err := srv.ReadFromUDPAddrPort(buf)
			if err != nil {
				return false
			}
			if string(buf[:n]) == payload {
				return true
			}
		}
	}
	if err := sb.Ban(netip.MustParseAddr("127.0.0.7"), time.Hour); err != nil {
		t.Fatal(err)
	}
	bad.WriteToUDPAddrPort([]byte("banned"), dst)
	good.WriteToUDPAddrPort([]byte("clean"), dst)
	if !got("clean") {
		t.Fatal("an unbanned source's datagram did not arrive")
	}
	if got("banned") {
		t.Fatal("a banned source's datagram reached the socket")
	}
	if n, err := sb.Dropped(); err != nil || n != 1 {
		t.Fatalf("Dropped = %d, %v; want 1", n, err)
	}
	if err := sb.Unban(netip.MustParseAddr("127.0.0.7")); err != nil {
		t.Fatal(err)
	}
	bad.WriteToUDPAddrPort([]byte("unbanned"), dst)
	if !got("unbanned") {
		t.Fatal("after Unban the source is still dropped")
	}
	// A lapsed ban drops nothing and is pruned.
	sb.Ban(netip.MustParseAddr("127.0.0.7"), time.Nanosecond)
	bad.WriteToUDPAddrPort([]byte("lapsed"), dst)
	if !got("lapsed") {
		t.Fatal("a lapsed ban still drops")
	}
	if n, err := sb.PruneBans(); err != nil || n != 1 {
		t.Fatalf("PruneBans = %d, %v; want 1", n, err)
	}
}
