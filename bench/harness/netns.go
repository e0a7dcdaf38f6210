package harness

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"strings"
	"sync/atomic"
	"time"
)

// Netns is a veth pair for the afxdp run: the host end carries the
// appliance (AF_XDP on its queue 0), the peer end sits in a namespace the
// harness creates and holds both the sipp UAC address and the sipp UAS
// address. They must differ: the appliance tells a backend's in-dialog
// request from a caller's by source address.
type Netns struct {
	NS, Host, Peer string
	HostIP         netip.Addr // the appliance
	UACIP, UASIP   netip.Addr // in the namespace
}

var netnsSeq atomic.Uint32

// NewNetns builds the pair (names from the pid and a counter, so two runs
// never collide) on a /29 of 10.215.0.0/16. It needs root, iproute2 and
// ethtool; Close removes everything.
func NewNetns() (*Netns, error) {
	pid, n := os.Getpid(), netnsSeq.Add(1)
	var base netip.Addr
	for try := uint32(0); ; try++ {
		idx := (uint32(pid)*37 + n*1009 + try*131) % 8192
		base = netip.AddrFrom4([4]byte{10, 215, byte(idx >> 5), byte(idx<<3) & 0xf8})
		if !hostUses(netip.PrefixFrom(base, 29)) {
			break
		}
		if try == 16 {
			return nil, fmt.Errorf("harness: no free /29 in 10.215.0.0/16 for the veth pair after 16 tries: remove stale sipedge-bench-* namespaces and sb* links")
		}
	}
	v := &Netns{
		NS:     fmt.Sprintf("sipedge-bench-%d-%d", pid, n),
		Host:   fmt.Sprintf("sb%xh%x", pid, n),
		Peer:   fmt.Sprintf("sb%xp%x", pid, n),
		HostIP: base.Next(),
	}
	v.UACIP = v.HostIP.Next()
	v.UASIP = v.UACIP.Next()
	steps := [][]string{
		{"ip", "netns", "add", v.NS},
		{"ip", "link", "add", v.Host, "type", "veth", "peer", "name", v.Peer, "netns", v.NS},
		{"ip", "addr", "add", v.HostIP.String() + "/29", "dev", v.Host},
		{"ip", "link", "set", v.Host, "up"},
		{"ip", "-n", v.NS, "link", "set", "lo", "up"},
		{"ip", "-n", v.NS, "addr", "add", v.UACIP.String() + "/29", "dev", v.Peer},
		{"ip", "-n", v.NS, "addr", "add", v.UASIP.String() + "/29", "dev", v.Peer},
		{"ip", "-n", v.NS, "link", "set", v.Peer, "up"},
		// Full checksums on the wire, as a remote sender gives: the
		// AF_XDP port sees the frames as the peer built them.
		{"ip", "netns", "exec", v.NS, "ethtool", "-K", v.Peer, "tx", "off"},
	}
	for _, s := range steps {
		if out, err := exec.Command(s[0], s[1:]...).CombinedOutput(); err != nil {
			v.Close()
			return nil, fmt.Errorf("harness: %s: %v: %s (needs root, iproute2 and ethtool)", strings.Join(s, " "), err, out)
		}
	}
	return v, nil
}

// hostUses reports whether an address of the host falls in p (another
// run's pair, or anything else using the range).
func hostUses(p netip.Prefix) bool {
	addrs, err := net.InterfaceAddrs()
	if err != nil {
		return false
	}
	for _, a := range addrs {
		if ipn, ok := a.(*net.IPNet); ok {
			if ip, ok := netip.AddrFromSlice(ipn.IP); ok && p.Contains(ip.Unmap()) {
				return true
			}
		}
	}
	return false
}

// Exec is the prefix that runs a command inside the namespace.
func (v *Netns) Exec() []string { return []string{"ip", "netns", "exec", v.NS} }

// Resolve makes the host's kernel resolve ip's MAC on the host end (a UDP
// datagram to its discard port starts ARP) and waits until the neighbour
// table has it.
func (v *Netns) Resolve(ip netip.Addr, within time.Duration) error {
	c, err := net.DialUDP("udp", nil, net.UDPAddrFromAddrPort(netip.AddrPortFrom(ip, 9)))
	if err != nil {
		return fmt.Errorf("harness: resolving %s: %w", ip, err)
	}
	defer c.Close()
	deadline := time.Now().Add(within)
	for time.Now().Before(deadline) {
		c.Write([]byte("harness neighbour warm-up"))
		out, err := exec.Command("ip", "neigh", "show", "to", ip.String(), "dev", v.Host).CombinedOutput()
		if err == nil && strings.Contains(string(out), "lladdr") {
			return nil
		}
		time.Sleep(50 * time.Millisecond)
	}
	return fmt.Errorf("harness: %s on %s never got a neighbour entry within %v (is the namespace's interface up?)", ip, v.Host, within)
}

// Close removes the pair and the namespace.
func (v *Netns) Close() error {
	var errs []error
	if out, err := exec.Command("ip", "link", "del", v.Host).CombinedOutput(); err != nil && !strings.Contains(string(out), "Cannot find device") {
		errs = append(errs, fmt.Errorf("harness: deleting %s: %v: %s", v.Host, err, out))
	}
	if out, err := exec.Command("ip", "netns", "del", v.NS).CombinedOutput(); err != nil {
		errs = append(errs, fmt.Errorf("harness: deleting netns %s: %v: %s", v.NS, err, out))
	}
	return errors.Join(errs...)
}
