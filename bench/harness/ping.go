package harness

import (
	"fmt"
	"net"
	"net/netip"
	"runtime"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// listenUDP opens a UDP socket on addr, inside namespace ns when ns is not
// empty (a socket keeps the namespace it was made in).
func listenUDP(ns string, addr netip.AddrPort) (*net.UDPConn, error) {
	if ns == "" {
		return net.ListenUDP("udp", net.UDPAddrFromAddrPort(addr))
	}
	type res struct {
		c   *net.UDPConn
		err error
	}
	ch := make(chan res, 1)
	go func() {
		runtime.LockOSThread()
		back, err := unix.Open("/proc/thread-self/ns/net", unix.O_RDONLY|unix.O_CLOEXEC, 0)
		if err != nil {
			runtime.UnlockOSThread()
			ch <- res{nil, fmt.Errorf("harness: this thread's netns: %w", err)}
			return
		}
		defer unix.Close(back)
		fd, err := unix.Open("/var/run/netns/"+ns, unix.O_RDONLY|unix.O_CLOEXEC, 0)
		if err != nil {
			runtime.UnlockOSThread()
			ch <- res{nil, fmt.Errorf("harness: opening netns %s: %w", ns, err)}
			return
		}
		defer unix.Close(fd)
		if err := unix.Setns(fd, unix.CLONE_NEWNET); err != nil {
			runtime.UnlockOSThread()
			ch <- res{nil, fmt.Errorf("harness: entering netns %s: %w", ns, err)}
			return
		}
		c, err := net.ListenUDP("udp", net.UDPAddrFromAddrPort(addr))
		// The socket keeps its namespace; the thread goes back to the
		// host's, or, if it cannot, stays locked so the runtime retires
		// it instead of running other goroutines in the wrong namespace.
		if unix.Setns(back, unix.CLONE_NEWNET) == nil {
			runtime.UnlockOSThread()
		}
		ch <- res{c, err}
	}()
	r := <-ch
	return r.c, r.err
}

// pingSIP sends OPTIONS from (ns, from) to the proxy at to until any SIP
// response comes back or within passes: the proxy is up and, for a
// proxy that forwards OPTIONS (Kamailio), so is a backend.
func pingSIP(ns string, from netip.Addr, to netip.AddrPort, within time.Duration) error {
	c, err := listenUDP(ns, netip.AddrPortFrom(from, 0))
	if err != nil {
		return fmt.Errorf("harness: probe socket on %s: %w", from, err)
	}
	defer c.Close()
	local := c.LocalAddr().(*net.UDPAddr).AddrPort()
	deadline := time.Now().Add(within)
	buf := make([]byte, 4096)
	for i := 0; time.Now().Before(deadline); i++ {
		msg := fmt.Sprintf("OPTIONS sip:%s SIP/2.0\r\n"+
			"Via: SIP/2.0/UDP %s;branch=z9hG4bK-harness-ping-%d\r\n"+
			"Max-Forwards: 70\r\n"+
			"From: <sip:harness@%s>;tag=ping%d\r\n"+
			"To: <sip:%s>\r\n"+
			"Call-ID: harness-ping-%d-%d@%s\r\n"+
			"CSeq: %d OPTIONS\r\n"+
			"Content-Length: 0\r\n\r\n",
			to, local, i, local.Addr(), i, to, time.Now().UnixNano(), i, local.Addr(), i+1)
		if _, err := c.WriteToUDPAddrPort([]byte(msg), to); err != nil {
			return fmt.Errorf("harness: probing %s: %w", to, err)
		}
		c.SetReadDeadline(time.Now().Add(250 * time.Millisecond))
		n, _, err := c.ReadFromUDPAddrPort(buf)
		if err == nil && strings.HasPrefix(string(buf[:n]), "SIP/2.0 ") {
			return nil
		}
	}
	return fmt.Errorf("harness: %s never answered OPTIONS within %v", to, within)
}

// freeUDPPort returns a UDP port free on ip right now.
func freeUDPPort(ip netip.Addr) (int, error) {
	c, err := net.ListenUDP("udp", net.UDPAddrFromAddrPort(netip.AddrPortFrom(ip, 0)))
	if err != nil {
		return 0, fmt.Errorf("harness: finding a free UDP port on %s: %w", ip, err)
	}
	defer c.Close()
	return c.LocalAddr().(*net.UDPAddr).Port, nil
}

// freeWildcardUDPPort returns a UDP port free on 0.0.0.0 right now: the
// afxdp port's slow-path socket binds its listen port on every address of
// the interface, which fails while any other program holds that port on
// any address (another 5060 on this shared machine).
func freeWildcardUDPPort() (uint16, error) {
	p, err := freeUDPPort(netip.IPv4Unspecified())
	return uint16(p), err
}

// freeTCPAddr returns a TCP ip:port free right now.
func freeTCPAddr(ip string) (string, error) {
	l, err := net.Listen("tcp", ip+":0")
	if err != nil {
		return "", fmt.Errorf("harness: finding a free TCP port on %s: %w", ip, err)
	}
	defer l.Close()
	return l.Addr().String(), nil
}
