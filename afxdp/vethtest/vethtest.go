package vethtest

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// Require skips the test, or fails it when CI=true, unless the process can
// build the rig: root (CAP_NET_ADMIN, CAP_SYS_ADMIN for namespaces) and the
// ip and ethtool commands.
func Require(t testing.TB) {
	t.Helper()
	var missing []string
	if os.Geteuid() != 0 {
		missing = append(missing, "root (CAP_NET_ADMIN and CAP_SYS_ADMIN to create veth pairs and network namespaces)")
	}
	for _, cmd := range []string{"ip", "ethtool"} {
		if _, err := exec.LookPath(cmd); err != nil {
			missing = append(missing, fmt.Sprintf("the %s command (Debian package %s)", cmd, map[string]string{"ip": "iproute2", "ethtool": "ethtool"}[cmd]))
		}
	}
	if len(missing) == 0 {
		return
	}
	msg := "vethtest: this test needs " + strings.Join(missing, " and ")
	if os.Getenv("CI") == "true" {
		t.Fatal(msg)
	}
	t.Skip(msg)
}

// Options shape the pair. Zero values leave the kernel defaults (one queue
// each way, MTU 1500).
type Options struct {
	// HostRxQueues and HostTxQueues set the host end's queue counts.
	HostRxQueues, HostTxQueues int
	// PeerRxQueues and PeerTxQueues set the peer end's. With native XDP
	// on the host end, the peer's TX queue picks the host's RX queue, so
	// PeerTxQueues must not exceed HostRxQueues.
	PeerRxQueues, PeerTxQueues int
	// MTU of both ends (native XDP on veth refuses MTUs above ~3500).
	MTU int
	// KeepTxOffload leaves the peer's TX checksum offload on, so its
	// frames arrive with partial UDP checksums, as from a real sender
	// on the same host.
	KeepTxOffload bool
}

// Pair is a veth pair: Host in this process's namespace, Peer in NS.
type Pair struct {
	// NS is the name of the peer's network namespace (ip netns).
	NS string
	// Host and Peer are the interface names.
	Host, Peer string
	// HostIndex is the host end's interface index.
	HostIndex int
	// HostMAC and PeerMAC are the link-layer addresses.
	HostMAC, PeerMAC net.HardwareAddr
	// HostV4/PeerV4 share a /30, HostV6/PeerV6 a /64 (ULA).
	HostV4, PeerV4, HostV6, PeerV6 netip.Addr
}

var seq atomic.Uint32

// New builds a pair for t and removes it (and the namespace) when t ends.
// Names derive from the pid and a counter, so parallel tests and parallel
// test binaries do not collide; addresses from the same counter, skipping
// subnets already present on this host.
func New(t testing.TB, opts Options) *Pair {
	t.Helper()
	Require(t)
	n := seq.Add(1)
	pid := os.Getpid()
	p := &Pair{
		NS:   fmt.Sprintf("sipedge-%d-%d", pid, n),
		Host: fmt.Sprintf("sx%xh%x", pid, n),
		Peer: fmt.Sprintf("sx%xp%x", pid, n),
	}
	if len(p.Host) > 15 {
		t.Fatalf("vethtest: interface name %q is longer than IFNAMSIZ-1", p.Host)
	}
	// Choosing a subnet and putting it on the host end is one step for
	// every test process on the machine (go test runs packages in
	// parallel): another process only sees a subnet as taken once it is
	// on an interface.
	unlock := lockSubnets(t)
	locked := true
	defer func() {
		if locked {
			unlock()
		}
	}()
	p.HostV4, p.PeerV4, p.HostV6, p.PeerV6 = pickSubnet(t, uint32(pid), n)

	run(t, "ip", "netns", "add", p.NS)
	t.Cleanup(func() {
		// Deleting the host end removes the peer too; the namespace
		// goes last. Errors are reported, not fatal: cleanup must run
		// to the end.
		if out, err := exec.Command("ip", "link", "del", p.Host).CombinedOutput(); err != nil && !bytes.Contains(out, []byte("Cannot find device")) {
			t.Logf("vethtest: deleting %s: %v: %s", p.Host, err, out)
		}
		if out, err := exec.Command("ip", "netns", "del", p.NS).CombinedOutput(); err != nil {
			t.Logf("vethtest: deleting netns %s: %v: %s", p.NS, err, out)
		}
	})
	args := []string{"link", "add", p.Host}
	args = append(args, queueArgs(opts.HostRxQueues, opts.HostTxQueues)...)
	args = append(args, "type", "veth", "peer", "name", p.Peer)
	args = append(args, queueArgs(opts.PeerRxQueues, opts.PeerTxQueues)...)
	args = append(args, "netns", p.NS)
	run(t, "ip", args...)
	if opts.MTU > 0 {
		mtu := fmt.Sprint(opts.MTU)
		run(t, "ip", "link", "set", p.Host, "mtu", mtu)
		p.Exec(t, "ip", "link", "set", p.Peer, "mtu", mtu)
	}
	run(t, "ip", "addr", "add", p.HostV4.String()+"/30", "dev", p.Host)
	run(t, "ip", "-6", "addr", "add", p.HostV6.String()+"/64", "dev", p.Host)
	unlock()
	locked = false
	run(t, "ip", "link", "set", p.Host, "up")
	p.Exec(t, "ip", "link", "set", "lo", "up")
	p.Exec(t, "ip", "addr", "add", p.PeerV4.String()+"/30", "dev", p.Peer)
	p.Exec(t, "ip", "-6", "addr", "add", p.PeerV6.String()+"/64", "dev", p.Peer)
	p.Exec(t, "ip", "link", "set", p.Peer, "up")
	if !opts.KeepTxOffload {
		// Full checksums on the wire, so frames can be checked and
		// replies built from them without finishing CHECKSUM_PARTIAL.
		p.Exec(t, "ethtool", "-K", p.Peer, "tx", "off")
	}

	ifi, err := net.InterfaceByName(p.Host)
	if err != nil {
		t.Fatalf("vethtest: %v", err)
	}
	p.HostIndex, p.HostMAC = ifi.Index, ifi.HardwareAddr
	if err := p.Do(func() error {
		pi, err := net.InterfaceByName(p.Peer)
		if err == nil {
			p.PeerMAC = pi.HardwareAddr
		}
		return err
	}); err != nil {
		t.Fatalf("vethtest: reading %s in %s: %v", p.Peer, p.NS, err)
	}
	p.awaitDAD(t)
	return p
}

func queueArgs(rx, tx int) []string {
	var a []string
	if tx > 0 {
		a = append(a, "numtxqueues", fmt.Sprint(tx))
	}
	if rx > 0 {
		a = append(a, "numrxqueues", fmt.Sprint(rx))
	}
	return a
}

// lockSubnets takes a machine-wide lock (flock on a file in the temporary
// directory) for choosing and claiming a subnet.
func lockSubnets(t testing.TB) func() {
	t.Helper()
	path := filepath.Join(os.TempDir(), "sipedge-vethtest.lock")
	f, err := os.OpenFile(path, os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		t.Fatalf("vethtest: subnet lock %s: %v", path, err)
	}
	if err := unix.Flock(int(f.Fd()), unix.LOCK_EX); err != nil {
		f.Close()
		t.Fatalf("vethtest: subnet lock %s: %v", path, err)
	}
	return func() {
		unix.Flock(int(f.Fd()), unix.LOCK_UN)
		f.Close()
	}
}

// pickSubnet chooses a /30 in 10.213.0.0/16 and a /64 in fd5e:d9e::/48
// from pid and counter, moving on while the /30 is already on this host.
func pickSubnet(t testing.TB, pid, n uint32) (hv4, pv4, hv6, pv6 netip.Addr) {
	t.Helper()
	inUse := map[netip.Prefix]bool{}
	if addrs, err := net.InterfaceAddrs(); err == nil {
		for _, a := range addrs {
			if ipn, ok := a.(*net.IPNet); ok {
				if ip, ok := netip.AddrFromSlice(ipn.IP); ok && ip.Unmap().Is4() {
					inUse[netip.PrefixFrom(ip.Unmap(), 30).Masked()] = true
				}
			}
		}
	}
	idx := (pid*131 + n*7919) % 16384
	for try := 0; try < 16384; try++ {
		base := netip.AddrFrom4([4]byte{10, 213, byte(idx >> 6), byte(idx<<2) & 0xfc})
		if !inUse[netip.PrefixFrom(base, 30)] {
			hv4, pv4 = base.Next(), base.Next().Next()
			var v6 [16]byte
			copy(v6[:], []byte{0xfd, 0x5e, 0x0d, 0x9e, byte(idx >> 8), byte(idx)})
			v6[15] = 1
			hv6 = netip.AddrFrom16(v6)
			v6[15] = 2
			pv6 = netip.AddrFrom16(v6)
			return
		}
		idx = (idx + 1) % 16384
	}
	t.Fatal("vethtest: every /30 of 10.213.0.0/16 is in use on this host")
	return
}

// awaitDAD polls until neither end has a tentative IPv6 address, so tests
// do not race duplicate address detection (a tentative address cannot be
// bound or used as a source). Bounded: DAD takes about a second.
func (p *Pair) awaitDAD(t testing.TB) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		host, err := exec.Command("ip", "-6", "addr", "show", "dev", p.Host).CombinedOutput()
		if err != nil {
			t.Fatalf("vethtest: ip -6 addr show dev %s: %v: %s", p.Host, err, host)
		}
		peer, err := p.Command("ip", "-6", "addr", "show", "dev", p.Peer).CombinedOutput()
		if err != nil {
			t.Fatalf("vethtest: ip -6 addr show dev %s in %s: %v: %s", p.Peer, p.NS, err, peer)
		}
		if bytes.Contains(host, []byte("dadfailed")) || bytes.Contains(peer, []byte("dadfailed")) {
			t.Fatalf("vethtest: IPv6 duplicate address detection failed:\n%s\n%s", host, peer)
		}
		// Wait for the link-local addresses too: they appear once the
		// link is up and go through DAD like the others.
		if !bytes.Contains(host, []byte("tentative")) && !bytes.Contains(peer, []byte("tentative")) &&
			bytes.Contains(host, []byte("fe80::")) && bytes.Contains(peer, []byte("fe80::")) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("vethtest: IPv6 addresses still tentative after 10s:\n%s\n%s", host, peer)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// Command returns a command that runs args inside the namespace.
func (p *Pair) Command(args ...string) *exec.Cmd {
	return exec.Command("ip", append([]string{"netns", "exec", p.NS}, args...)...)
}

// Exec runs args inside the namespace and returns the combined output; a
// failure fails the test with that output.
func (p *Pair) Exec(t testing.TB, args ...string) string {
	t.Helper()
	out, err := p.Command(args...).CombinedOutput()
	if err != nil {
		t.Fatalf("vethtest: in %s: %s: %v\n%s", p.NS, strings.Join(args, " "), err, out)
	}
	return string(out)
}

// Do runs fn on an OS thread switched into the namespace, so sockets fn
// creates belong to it (a socket keeps the namespace it was created in).
// The thread is switched back afterwards; if that fails it is left locked
// so the runtime discards it instead of reusing it in the wrong namespace.
func (p *Pair) Do(fn func() error) error {
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		orig, err := os.Open(fmt.Sprintf("/proc/%d/task/%d/ns/net", os.Getpid(), unix.Gettid()))
		if err != nil {
			runtime.UnlockOSThread()
			errc <- fmt.Errorf("vethtest: opening this thread's netns: %w", err)
			return
		}
		defer orig.Close()
		target, err := os.Open("/var/run/netns/" + p.NS)
		if err != nil {
			runtime.UnlockOSThread()
			errc <- fmt.Errorf("vethtest: opening netns %s: %w", p.NS, err)
			return
		}
		defer target.Close()
		if err := unix.Setns(int(target.Fd()), unix.CLONE_NEWNET); err != nil {
			runtime.UnlockOSThread()
			errc <- fmt.Errorf("vethtest: entering netns %s: %w", p.NS, err)
			return
		}
		ferr := fn()
		if err := unix.Setns(int(orig.Fd()), unix.CLONE_NEWNET); err != nil {
			// Leave the thread locked: it dies with this goroutine.
			errc <- errors.Join(ferr, fmt.Errorf("vethtest: leaving netns %s: %w", p.NS, err))
			return
		}
		runtime.UnlockOSThread()
		errc <- ferr
	}()
	return <-errc
}

// ListenUDP opens a UDP socket inside the namespace bound to addr (use
// p.PeerV4 or p.PeerV6 with port 0 for an ephemeral port) and closes it
// when the test ends.
func (p *Pair) ListenUDP(t testing.TB, addr netip.AddrPort) *net.UDPConn {
	t.Helper()
	var c *net.UDPConn
	err := p.Do(func() error {
		var err error
		c, err = net.ListenUDP("udp", net.UDPAddrFromAddrPort(addr))
		return err
	})
	if err != nil {
		t.Fatalf("vethtest: listening on %v in %s: %v", addr, p.NS, err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func run(t testing.TB, name string, args ...string) {
	t.Helper()
	if out, err := exec.Command(name, args...).CombinedOutput(); err != nil {
		t.Fatalf("vethtest: %s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
}
