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
	"time"

	"golang.org/x/sys/unix"
)

// Check reports what this process lacks to build a pair: root
// (CAP_NET_ADMIN, CAP_SYS_ADMIN for namespaces) and the ip and ethtool
// commands. It returns nil when nothing is missing.
func Check() error {
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
		return nil
	}
	return errors.New("vethtest: a veth pair in a network namespace needs " + strings.Join(missing, " and "))
}

// Options shape the pair. Zero values leave the kernel defaults (one queue
// each way, MTU 1500), one IPv4 address on each end and IPv6 on.
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
	// PeerV4Addrs is how many IPv4 addresses the peer end holds (0 means
	// one, at most 61), for rigs that tell senders in the
	// namespace apart by address. The subnet is the smallest that holds
	// them: a /30 for one, a /29 for up to five.
	PeerV4Addrs int
	// IPv4Only leaves out the IPv6 addresses and so the wait for
	// duplicate address detection (about a second), for rigs that use
	// IPv4 alone (the benchmarks).
	IPv4Only bool
}

// maxPeerV4 bounds Options.PeerV4Addrs: a /26.
const maxPeerV4 = 61

// Pair is a veth pair: Host in this process's namespace, Peer in NS.
// Create makes one and Close removes it; New does both for a test.
type Pair struct {
	// NS is the name of the peer's network namespace (ip netns).
	NS string
	// Host and Peer are the interface names.
	Host, Peer string
	// HostIndex is the host end's interface index.
	HostIndex int
	// HostMAC and PeerMAC are the link-layer addresses.
	HostMAC, PeerMAC net.HardwareAddr
	// Subnet4 is the IPv4 subnet of the pair, in 10.213.0.0/16. HostV4
	// is its first address; PeerV4s are the peer end's, the next ones,
	// and PeerV4 is PeerV4s[0].
	Subnet4        netip.Prefix
	HostV4, PeerV4 netip.Addr
	PeerV4s        []netip.Addr
	// HostV6 and PeerV6 share a /64 (ULA); invalid with IPv4Only.
	HostV6, PeerV6 netip.Addr

	// madeNS and madeLink say what Close has to remove.
	madeNS, madeLink bool
}

var seq atomic.Uint32

// Create builds a pair; Close removes it. Names derive from the pid and a
// counter, so parallel tests, test binaries and benchmark runs do not
// collide; addresses from the same counter, skipping subnets already on
// this host. On an error nothing of the pair is left.
func Create(opts Options) (*Pair, error) {
	peers := opts.PeerV4Addrs
	if peers == 0 {
		peers = 1
	}
	if peers < 1 || peers > maxPeerV4 {
		return nil, fmt.Errorf("vethtest: %d peer IPv4 addresses: want 1 to %d", opts.PeerV4Addrs, maxPeerV4)
	}
	if err := Check(); err != nil {
		return nil, err
	}
	n := seq.Add(1)
	pid := os.Getpid()
	p := &Pair{
		NS:   fmt.Sprintf("sipedge-%d-%d", pid, n),
		Host: fmt.Sprintf("sx%xh%x", pid, n),
		Peer: fmt.Sprintf("sx%xp%x", pid, n),
	}
	if len(p.Host) > 15 {
		return nil, fmt.Errorf("vethtest: interface name %q is longer than IFNAMSIZ-1", p.Host)
	}
	if err := p.build(opts, peers, uint32(pid), n); err != nil {
		return nil, errors.Join(err, p.Close())
	}
	return p, nil
}

func (p *Pair) build(opts Options, peers int, pid, n uint32) error {
	if err := p.claim(opts, peers, pid, n); err != nil {
		return err
	}
	if err := run("ip", "link", "set", p.Host, "up"); err != nil {
		return err
	}
	steps := [][]string{{"ip", "link", "set", "lo", "up"}}
	for _, a := range p.PeerV4s {
		steps = append(steps, []string{"ip", "addr", "add", netip.PrefixFrom(a, p.Subnet4.Bits()).String(), "dev", p.Peer})
	}
	if !opts.IPv4Only {
		steps = append(steps, []string{"ip", "-6", "addr", "add", p.PeerV6.String() + "/64", "dev", p.Peer})
	}
	steps = append(steps, []string{"ip", "link", "set", p.Peer, "up"})
	if !opts.KeepTxOffload {
		// Full checksums on the wire, so frames can be checked and
		// replies built from them without finishing CHECKSUM_PARTIAL.
		steps = append(steps, []string{"ethtool", "-K", p.Peer, "tx", "off"})
	}
	for _, s := range steps {
		if _, err := p.Run(s...); err != nil {
			return err
		}
	}

	ifi, err := net.InterfaceByName(p.Host)
	if err != nil {
		return fmt.Errorf("vethtest: %w", err)
	}
	p.HostIndex, p.HostMAC = ifi.Index, ifi.HardwareAddr
	if err := p.Do(func() error {
		pi, err := net.InterfaceByName(p.Peer)
		if err == nil {
			p.PeerMAC = pi.HardwareAddr
		}
		return err
	}); err != nil {
		return fmt.Errorf("vethtest: reading %s in %s: %w", p.Peer, p.NS, err)
	}
	if opts.IPv4Only {
		return nil
	}
	return p.awaitDAD()
}

// claim chooses the subnets and puts them on the host end, as one step
// for every process on the machine (go test runs packages in parallel,
// and the benchmarks build pairs too): another process only sees a
// subnet as taken once it is on an interface.
func (p *Pair) claim(opts Options, peers int, pid, n uint32) error {
	unlock, err := lockSubnets()
	if err != nil {
		return err
	}
	defer unlock()
	if err := p.pickSubnet(peers, pid, n); err != nil {
		return err
	}
	if opts.IPv4Only {
		p.HostV6, p.PeerV6 = netip.Addr{}, netip.Addr{} // as documented: none
	}
	if err := run("ip", "netns", "add", p.NS); err != nil {
		return err
	}
	p.madeNS = true
	args := []string{"link", "add", p.Host}
	args = append(args, queueArgs(opts.HostRxQueues, opts.HostTxQueues)...)
	args = append(args, "type", "veth", "peer", "name", p.Peer)
	args = append(args, queueArgs(opts.PeerRxQueues, opts.PeerTxQueues)...)
	args = append(args, "netns", p.NS)
	if err := run("ip", args...); err != nil {
		return err
	}
	p.madeLink = true
	if opts.MTU > 0 {
		mtu := fmt.Sprint(opts.MTU)
		if err := run("ip", "link", "set", p.Host, "mtu", mtu); err != nil {
			return err
		}
		if _, err := p.Run("ip", "link", "set", p.Peer, "mtu", mtu); err != nil {
			return err
		}
	}
	if err := run("ip", "addr", "add", netip.PrefixFrom(p.HostV4, p.Subnet4.Bits()).String(), "dev", p.Host); err != nil {
		return err
	}
	if opts.IPv4Only {
		return nil
	}
	return run("ip", "-6", "addr", "add", p.HostV6.String()+"/64", "dev", p.Host)
}

// Close removes the pair and its namespace: deleting the host end
// removes the peer too, and the namespace goes last. It goes on past an
// error, so as much as can be is removed, and a second call does nothing
// more.
func (p *Pair) Close() error {
	var errs []error
	if p.madeLink {
		if out, err := exec.Command("ip", "link", "del", p.Host).CombinedOutput(); err != nil && !bytes.Contains(out, []byte("Cannot find device")) {
			errs = append(errs, fmt.Errorf("vethtest: deleting %s: %v: %s", p.Host, err, out))
		} else {
			p.madeLink = false
		}
	}
	if p.madeNS {
		if out, err := exec.Command("ip", "netns", "del", p.NS).CombinedOutput(); err != nil {
			errs = append(errs, fmt.Errorf("vethtest: deleting netns %s: %v: %s", p.NS, err, out))
		} else {
			p.madeNS = false
		}
	}
	return errors.Join(errs...)
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
func lockSubnets() (unlock func(), err error) {
	path := filepath.Join(os.TempDir(), "sipedge-vethtest.lock")
	f, err := os.OpenFile(path, os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return nil, fmt.Errorf("vethtest: subnet lock %s: %w", path, err)
	}
	if err := unix.Flock(int(f.Fd()), unix.LOCK_EX); err != nil {
		f.Close()
		return nil, fmt.Errorf("vethtest: subnet lock %s: %w", path, err)
	}
	return func() {
		unix.Flock(int(f.Fd()), unix.LOCK_UN)
		f.Close()
	}, nil
}

// pickSubnet chooses the smallest subnet of 10.213.0.0/16 that holds the
// network, host, peers and broadcast addresses, and a /64 in
// fd5e:d9e::/48, from pid and counter, moving on while an address of this
// host is in the subnet.
func (p *Pair) pickSubnet(peers int, pid, n uint32) error {
	bits := subnetBits(peers)
	var inUse []netip.Addr
	if addrs, err := net.InterfaceAddrs(); err == nil {
		for _, a := range addrs {
			if ipn, ok := a.(*net.IPNet); ok {
				if ip, ok := netip.AddrFromSlice(ipn.IP); ok && ip.Unmap().Is4() {
					inUse = append(inUse, ip.Unmap())
				}
			}
		}
	}
	slots := uint32(1) << (bits - 16)
	idx := (pid*131 + n*7919) % slots
	for try := uint32(0); try < slots; try++ {
		off := idx << (32 - bits) // in the /16
		base := netip.AddrFrom4([4]byte{10, 213, byte(off >> 8), byte(off)})
		subnet := netip.PrefixFrom(base, bits)
		if !containsAny(subnet, inUse) {
			p.Subnet4 = subnet
			p.HostV4 = base.Next()
			a := p.HostV4
			for range peers {
				a = a.Next()
				p.PeerV4s = append(p.PeerV4s, a)
			}
			p.PeerV4 = p.PeerV4s[0]
			// The /64 is the subnet's offset in /30s: as unique as
			// the subnet.
			var v6 [16]byte
			copy(v6[:], []byte{0xfd, 0x5e, 0x0d, 0x9e, byte(off >> 10), byte(off >> 2)})
			v6[15] = 1
			p.HostV6 = netip.AddrFrom16(v6)
			v6[15] = 2
			p.PeerV6 = netip.AddrFrom16(v6)
			return nil
		}
		idx = (idx + 1) % slots
	}
	return fmt.Errorf("vethtest: every /%d of 10.213.0.0/16 is in use on this host (stale pairs: ip netns list | grep sipedge-, ip link | grep sx)", bits)
}

// subnetBits is the prefix length of the smallest IPv4 subnet that holds
// the network address, the host's, peers and the broadcast address.
func subnetBits(peers int) int {
	bits := 30
	for 1<<(32-bits) < peers+3 {
		bits--
	}
	return bits
}

func containsAny(p netip.Prefix, addrs []netip.Addr) bool {
	for _, a := range addrs {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// awaitDAD polls until neither end has a tentative IPv6 address, so users
// do not race duplicate address detection (a tentative address cannot be
// bound or used as a source). Bounded: DAD takes about a second.
func (p *Pair) awaitDAD() error {
	deadline := time.Now().Add(10 * time.Second)
	for {
		host, err := exec.Command("ip", "-6", "addr", "show", "dev", p.Host).CombinedOutput()
		if err != nil {
			return fmt.Errorf("vethtest: ip -6 addr show dev %s: %v: %s", p.Host, err, host)
		}
		peer, err := p.Command("ip", "-6", "addr", "show", "dev", p.Peer).CombinedOutput()
		if err != nil {
			return fmt.Errorf("vethtest: ip -6 addr show dev %s in %s: %v: %s", p.Peer, p.NS, err, peer)
		}
		if bytes.Contains(host, []byte("dadfailed")) || bytes.Contains(peer, []byte("dadfailed")) {
			return fmt.Errorf("vethtest: IPv6 duplicate address detection failed:\n%s\n%s", host, peer)
		}
		// Wait for the link-local addresses too: they appear once the
		// link is up and go through DAD like the others.
		if !bytes.Contains(host, []byte("tentative")) && !bytes.Contains(peer, []byte("tentative")) &&
			bytes.Contains(host, []byte("fe80::")) && bytes.Contains(peer, []byte("fe80::")) {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("vethtest: IPv6 addresses still tentative after 10s:\n%s\n%s", host, peer)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// Argv is the command line that runs args inside the namespace, for
// callers that start and supervise the process themselves.
func (p *Pair) Argv(args ...string) []string {
	return append([]string{"ip", "netns", "exec", p.NS}, args...)
}

// Command returns a command that runs args inside the namespace.
func (p *Pair) Command(args ...string) *exec.Cmd {
	argv := p.Argv(args...)
	return exec.Command(argv[0], argv[1:]...)
}

// Run runs args inside the namespace and returns the combined output; the
// error of a failed command carries that output.
func (p *Pair) Run(args ...string) (string, error) {
	out, err := p.Command(args...).CombinedOutput()
	if err != nil {
		return string(out), fmt.Errorf("vethtest: in %s: %s: %v\n%s", p.NS, strings.Join(args, " "), err, out)
	}
	return string(out), nil
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

// Listen opens a UDP socket inside the namespace bound to addr (an
// address of the peer end; port 0 for an ephemeral port). The caller
// closes it.
func (p *Pair) Listen(addr netip.AddrPort) (*net.UDPConn, error) {
	var c *net.UDPConn
	err := p.Do(func() error {
		var err error
		c, err = net.ListenUDP("udp", net.UDPAddrFromAddrPort(addr))
		return err
	})
	if err != nil {
		if c != nil {
			c.Close()
		}
		return nil, fmt.Errorf("vethtest: listening on %v in %s: %w", addr, p.NS, err)
	}
	return c, nil
}

// Resolve has the host's kernel resolve ip, an address of the peer end,
// on the host end (a UDP datagram to its discard port starts ARP or
// neighbour discovery) and waits until the neighbour table has its MAC,
// as an edge box has its neighbours resolved before traffic comes. Ping
// does not do it for every address: the kernel learns the sender of the
// request, not the other addresses of the peer.
func (p *Pair) Resolve(ip netip.Addr, within time.Duration) error {
	c, err := net.DialUDP("udp", nil, net.UDPAddrFromAddrPort(netip.AddrPortFrom(ip, 9)))
	if err != nil {
		return fmt.Errorf("vethtest: resolving %s: %w", ip, err)
	}
	defer c.Close()
	deadline := time.Now().Add(within)
	for time.Now().Before(deadline) {
		c.Write([]byte("vethtest neighbour warm-up"))
		out, err := exec.Command("ip", "neigh", "show", "to", ip.String(), "dev", p.Host).CombinedOutput()
		if err == nil && bytes.Contains(out, []byte("lladdr")) {
			return nil
		}
		time.Sleep(50 * time.Millisecond)
	}
	return fmt.Errorf("vethtest: %s on %s never got a neighbour entry within %v", ip, p.Host, within)
}

// Route routes dst on the host through via, an address of the peer end,
// so that traffic to senders the namespace stands in for goes over the
// pair. The route goes with the host end.
func (p *Pair) Route(dst netip.Prefix, via netip.Addr) error {
	return run("ip", "route", "add", dst.String(), "via", via.String(), "dev", p.Host)
}

// run runs a command in this process's namespace.
func run(name string, args ...string) error {
	if out, err := exec.Command(name, args...).CombinedOutput(); err != nil {
		return fmt.Errorf("vethtest: %s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
	return nil
}
