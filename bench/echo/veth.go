package echo

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"sync/atomic"

	"golang.org/x/sys/unix"
)

// Veth is a veth pair whose peer end sits in its own network namespace,
// IPv4 only, with the peer's TX checksum offload off (full checksums on
// the wire, as a remote sender would give).
type Veth struct {
	NS, Host, Peer string
	HostV4, PeerV4 netip.Addr
}

var vethSeq atomic.Uint32

// NewVeth builds a pair with names from the pid and a counter; Close
// removes it. It needs root and the ip and ethtool commands.
func NewVeth() (*Veth, error) {
	pid, n := os.Getpid(), vethSeq.Add(1)
	idx := (uint32(pid)*31 + n*977) % 16384
	base := netip.AddrFrom4([4]byte{10, 214, byte(idx >> 6), byte(idx<<2) & 0xfc})
	v := &Veth{
		NS:     fmt.Sprintf("sipedge-echo-%d-%d", pid, n),
		Host:   fmt.Sprintf("se%xh%x", pid, n),
		Peer:   fmt.Sprintf("se%xp%x", pid, n),
		HostV4: base.Next(),
		PeerV4: base.Next().Next(),
	}
	steps := [][]string{
		{"ip", "netns", "add", v.NS},
		{"ip", "link", "add", v.Host, "type", "veth", "peer", "name", v.Peer, "netns", v.NS},
		{"ip", "addr", "add", v.HostV4.String() + "/30", "dev", v.Host},
		{"ip", "link", "set", v.Host, "up"},
		{"ip", "-n", v.NS, "link", "set", "lo", "up"},
		{"ip", "-n", v.NS, "addr", "add", v.PeerV4.String() + "/30", "dev", v.Peer},
		{"ip", "-n", v.NS, "link", "set", v.Peer, "up"},
		{"ip", "netns", "exec", v.NS, "ethtool", "-K", v.Peer, "tx", "off"},
	}
	for _, s := range steps {
		if out, err := exec.Command(s[0], s[1:]...).CombinedOutput(); err != nil {
			v.Close()
			return nil, fmt.Errorf("echo: %s: %v: %s (needs root, iproute2 and ethtool)", strings.Join(s, " "), err, out)
		}
	}
	return v, nil
}

// Close removes the pair and the namespace.
func (v *Veth) Close() error {
	var errs []error
	if out, err := exec.Command("ip", "link", "del", v.Host).CombinedOutput(); err != nil && !strings.Contains(string(out), "Cannot find device") {
		errs = append(errs, fmt.Errorf("echo: deleting %s: %v: %s", v.Host, err, out))
	}
	if out, err := exec.Command("ip", "netns", "del", v.NS).CombinedOutput(); err != nil {
		errs = append(errs, fmt.Errorf("echo: deleting netns %s: %v: %s", v.NS, err, out))
	}
	return errors.Join(errs...)
}

// ListenUDP opens a UDP socket inside the namespace (a socket keeps the
// namespace it was created in, whichever thread uses it later).
func (v *Veth) ListenUDP(addr netip.AddrPort) (*net.UDPConn, error) {
	type res struct {
		c   *net.UDPConn
		err error
	}
	ch := make(chan res, 1)
	go func() {
		// The thread is switched into the namespace and never back: it
		// stays locked, so the runtime retires it with the goroutine
		// instead of reusing it in the wrong namespace.
		runtime.LockOSThread()
		fd, err := unix.Open("/var/run/netns/"+v.NS, unix.O_RDONLY|unix.O_CLOEXEC, 0)
		if err != nil {
			ch <- res{nil, fmt.Errorf("echo: opening netns %s: %w", v.NS, err)}
			return
		}
		defer unix.Close(fd)
		if err := unix.Setns(fd, unix.CLONE_NEWNET); err != nil {
			ch <- res{nil, fmt.Errorf("echo: entering netns %s: %w", v.NS, err)}
			return
		}
		c, err := net.ListenUDP("udp", net.UDPAddrFromAddrPort(addr))
		ch <- res{c, err}
	}()
	r := <-ch
	return r.c, r.err
}
