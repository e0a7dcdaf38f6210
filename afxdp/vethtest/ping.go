package vethtest

import (
	"fmt"
	"net"
	"net/netip"
	"os"
	"time"

	"golang.org/x/net/icmp"
	"golang.org/x/net/ipv4"
	"golang.org/x/net/ipv6"
)

// Ping sends ICMP echo requests from inside the namespace to dst, one at a
// time, until a matching reply arrives or timeout passes. A reply proves
// address resolution (ARP or neighbour discovery) worked both ways too.
func (p *Pair) Ping(dst netip.Addr, timeout time.Duration) error {
	return p.Do(func() error { return ping(dst, timeout) })
}

func ping(dst netip.Addr, timeout time.Duration) error {
	network, listen, proto := "ip4:icmp", "0.0.0.0", 1
	var reqType, replyType icmp.Type = ipv4.ICMPTypeEcho, ipv4.ICMPTypeEchoReply
	if dst.Is6() {
		network, listen, proto = "ip6:ipv6-icmp", "::", 58
		reqType, replyType = ipv6.ICMPTypeEchoRequest, ipv6.ICMPTypeEchoReply
	}
	c, err := icmp.ListenPacket(network, listen)
	if err != nil {
		return fmt.Errorf("vethtest: opening an ICMP socket: %w", err)
	}
	defer c.Close()
	id := os.Getpid() & 0xffff
	deadline := time.Now().Add(timeout)
	buf := make([]byte, 1500)
	for seq := 1; time.Now().Before(deadline); seq++ {
		msg := icmp.Message{Type: reqType, Body: &icmp.Echo{ID: id, Seq: seq, Data: []byte("sipedge-ping")}}
		b, err := msg.Marshal(nil) // the kernel fills the ICMPv6 checksum
		if err != nil {
			return err
		}
		if _, err := c.WriteTo(b, &net.IPAddr{IP: dst.AsSlice()}); err != nil {
			return fmt.Errorf("vethtest: sending echo to %v: %w", dst, err)
		}
		// Wait up to 500 ms for this request's reply, skipping other
		// ICMP (a raw socket sees neighbour discovery too).
		wait := time.Now().Add(500 * time.Millisecond)
		if wait.After(deadline) {
			wait = deadline
		}
		c.SetReadDeadline(wait)
		for {
			n, from, err := c.ReadFrom(buf)
			if err != nil {
				break // timed out: send the next request
			}
			m, err := icmp.ParseMessage(proto, buf[:n])
			if err != nil || m.Type != replyType {
				continue
			}
			if e, ok := m.Body.(*icmp.Echo); ok && e.ID == id && e.Seq == seq && from.String() == dst.String() {
				return nil
			}
		}
	}
	return fmt.Errorf("vethtest: no echo reply from %v within %v", dst, timeout)
}
