package harness

import (
	"fmt"
	"net"
	"net/netip"
	"strings"
	"time"

	"sipedge/afxdp/vethtest"
)

// listenUDP opens a UDP socket on addr, inside in's namespace when in is
// not nil.
func listenUDP(in *vethtest.Pair, addr netip.AddrPort) (*net.UDPConn, error) {
	if in == nil {
		return net.ListenUDP("udp", net.UDPAddrFromAddrPort(addr))
	}
	return in.Listen(addr)
}

// pingSIP sends OPTIONS from (in, from) to the proxy at to until any SIP
// response comes back or within passes: the proxy is up and, for a
// proxy that forwards OPTIONS (Kamailio), so is a backend.
func pingSIP(in *vethtest.Pair, from netip.Addr, to netip.AddrPort, within time.Duration) error {
	c, err := listenUDP(in, netip.AddrPortFrom(from, 0))
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
