package xdpport

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"sync"
	"time"

	"golang.org/x/sys/unix"

	"sipedge/afxdp"
	"sipedge/afxdp/frame"
)

// Group is the AF_XDP side of one interface: the XDP program, attached
// once (it is shared by every queue), and one Port per queue registered in
// its XSK map.
type Group struct {
	mu     sync.Mutex
	prog   *afxdp.Program
	ports  []*Port
	ifname string
	closed bool // the program is closed: no more XSK map updates
	once   sync.Once
	err    error
}

// closeWait bounds how long Group.Close waits for a worker still inside a
// call to notice the close (it is woken at once; this is a safety bound).
const closeWait = 2 * time.Second

// Open loads and attaches the XDP program to ifname with cfg.Ports as the
// SIP ports, and opens one port on each of the queues 0..queues-1. Close
// the Group to undo it all.
func Open(ifname string, queues int, cfg Config) (*Group, error) {
	if len(cfg.Ports) == 0 {
		return nil, errors.New("xdpport: no SIP ports: set [io] sip ports (e.g. 5060)")
	}
	for _, p := range cfg.Ports {
		if p == 0 {
			return nil, errors.New("xdpport: port 0 cannot be a SIP port")
		}
	}
	if queues < 1 || queues > 4096 {
		return nil, fmt.Errorf("xdpport: %d queues: use 1..4096 (one port per NIC queue)", queues)
	}
	if cfg.VLAN > 4094 {
		return nil, fmt.Errorf("xdpport: VLAN %d out of range 1..4094 (0 for untagged)", cfg.VLAN)
	}
	if cfg.Batch == 0 {
		cfg.Batch = 64
	}
	if cfg.BusyPollUsecs == 0 {
		cfg.BusyPollUsecs = 20
	}
	if cfg.Batch < 1 || cfg.Batch > 4096 || cfg.BusyPollUsecs < 0 {
		return nil, fmt.Errorf("xdpport: batch %d (1..4096) or busy-poll time %d us (>= 0) out of range", cfg.Batch, cfg.BusyPollUsecs)
	}
	if cfg.LearnEntries == 0 {
		cfg.LearnEntries = defaultLearnEntries
	}
	if cfg.LearnTTL == 0 {
		cfg.LearnTTL = defaultLearnTTL
	}
	if cfg.LearnEntries > maxLearnEntries || cfg.LearnTTL < 0 {
		return nil, fmt.Errorf("xdpport: learn table of %d entries (at most %d; negative turns learning off) or learn TTL %v (> 0) out of range", cfg.LearnEntries, maxLearnEntries, cfg.LearnTTL)
	}
	if cfg.MaxMessage == 0 {
		cfg.MaxMessage = DefaultMaxMessage
	}
	if cfg.LargeBuffers == 0 {
		cfg.LargeBuffers = defaultLargeBuffers
	}
	if cfg.MaxMessage > 65535 || cfg.LargeBuffers < 1 || cfg.LargeBuffers > 4096 {
		return nil, fmt.Errorf("xdpport: max message %d (at most 65535; negative: frames only) or %d large buffers (1..4096) out of range", cfg.MaxMessage, cfg.LargeBuffers)
	}
	ifi, err := net.InterfaceByName(ifname)
	if err != nil {
		return nil, fmt.Errorf("xdpport: interface %q: %w (check [io] interface)", ifname, err)
	}
	if len(ifi.HardwareAddr) != 6 {
		return nil, fmt.Errorf("xdpport: interface %s has no Ethernet address (%v): AF_XDP here needs an Ethernet interface", ifname, ifi.HardwareAddr)
	}
	if !cfg.Addr4.IsValid() || !cfg.Addr6.IsValid() {
		a4, a6 := interfaceAddrs(ifi)
		if !cfg.Addr4.IsValid() {
			cfg.Addr4 = a4
		}
		if !cfg.Addr6.IsValid() {
			cfg.Addr6 = a6
		}
	}
	cfg.Addr4 = cfg.Addr4.Unmap()
	if cfg.Addr4.IsValid() && !cfg.Addr4.Is4() || cfg.Addr6.IsValid() && (!cfg.Addr6.Is6() || cfg.Addr6.Is4In6()) {
		return nil, fmt.Errorf("xdpport: source addresses %v / %v: Addr4 must be IPv4 and Addr6 IPv6", cfg.Addr4, cfg.Addr6)
	}
	sc := cfg.Socket
	if sc.FrameSize == 0 {
		sc = afxdp.DefaultConfig(ifi.Index, 0)
	}
	sc.Ifindex, sc.BindMode = ifi.Index, cfg.BindMode
	if int(sc.FrameSize) < frame.Headroom(true, true)+512 {
		return nil, fmt.Errorf("xdpport: frame size %d leaves no room for a datagram: use 2048 or 4096", sc.FrameSize)
	}

	g := &Group{ifname: ifname}
	ok := false
	defer func() {
		if !ok {
			g.Close()
		}
	}()
	g.prog, err = afxdp.LoadProgram(afxdp.ProgramConfig{Ifindex: ifi.Index, Mode: cfg.XDPMode, Ports: cfg.Ports, Queues: queues, IPv6BanPrefix: cfg.IPv6BanPrefix})
	if err != nil {
		return nil, err
	}
	for q := 0; q < queues; q++ {
		sc.Queue = q
		p, err := newPort(g, ifi, sc, cfg)
		if err != nil {
			return nil, err
		}
		g.ports = append(g.ports, p)
		if err := g.prog.Register(q, p.sock); err != nil {
			return nil, err
		}
	}
	ok = true
	return g, nil
}

// interfaceAddrs returns the interface's first global unicast address of
// each family (link-local ones cannot be a SIP source beyond the link).
func interfaceAddrs(ifi *net.Interface) (a4, a6 netip.Addr) {
	addrs, err := ifi.Addrs()
	if err != nil {
		return
	}
	for _, a := range addrs {
		ipn, ok := a.(*net.IPNet)
		if !ok {
			continue
		}
		ip, ok := netip.AddrFromSlice(ipn.IP)
		if !ok || !ip.IsGlobalUnicast() {
			continue
		}
		ip = ip.Unmap()
		if ip.Is4() && !a4.IsValid() {
			a4 = ip
		} else if ip.Is6() && !a6.IsValid() {
			a6 = ip
		}
	}
	return
}

func newPort(g *Group, ifi *net.Interface, sc afxdp.Config, cfg Config) (*Port, error) {
	efd, err := unix.Eventfd(0, unix.EFD_NONBLOCK|unix.EFD_CLOEXEC)
	if err != nil {
		return nil, fmt.Errorf("xdpport: eventfd for queue %d: %w", sc.Queue, err)
	}
	sock, err := afxdp.Open(sc)
	if err != nil {
		unix.Close(efd)
		return nil, err
	}
	slow, err := openSlowPath(ifi.Name, ifi.Index, cfg.Ports)
	if err != nil {
		sock.Close()
		unix.Close(efd)
		return nil, err
	}
	p := &Port{
		sock:      sock,
		group:     g,
		queue:     sc.Queue,
		vlan:      cfg.VLAN,
		tagged:    cfg.VLAN != 0,
		mtu:       ifi.MTU,
		addr4:     cfg.Addr4,
		addr6:     cfg.Addr6,
		ports:     append([]uint16(nil), cfg.Ports...),
		neigh:     cfg.Neighbours,
		firm:      firmOf(cfg.Neighbours),
		epoch:     time.Now(),
		headroom:  frame.Headroom(true, true),
		frameMask: uint64(sc.FrameSize) - 1,
		rxd:       make([]afxdp.Desc, cfg.Batch),
		txd:       make([]afxdp.Desc, cfg.Batch),
		addrs:     make([]uint64, cfg.Batch),
		efd:       efd,
		slow:      slow,
	}
	copy(p.mac[:], ifi.HardwareAddr)
	if cfg.LearnEntries > 0 {
		p.learn = newLearnTable(cfg.LearnEntries, cfg.LearnTTL)
	}
	if cfg.MaxMessage > 0 {
		size := max(cfg.MaxMessage+LargeHeadroom, int(sc.FrameSize))
		p.largeIn = newLargePool(cfg.LargeBuffers, size, largeBit)
		p.largeOut = newLargePool(cfg.LargeBuffers, size, largeBit|largeTx)
	}
	p.pfd = make([]unix.PollFd, 3+len(slow.rx)) // the last is the worker's bell
	p.pfd[0] = unix.PollFd{Fd: int32(sock.FD()), Events: unix.POLLIN}
	p.pfd[1] = unix.PollFd{Fd: int32(efd), Events: unix.POLLIN}
	for i, sk := range slow.rx {
		p.pfd[2+i] = unix.PollFd{Fd: int32(sk.fd), Events: unix.POLLIN}
	}
	busy := "interrupts"
	if cfg.BusyPoll {
		if err := sock.SetBusyPoll(cfg.BusyPollUsecs, cfg.Batch); err != nil {
			busy = "interrupts: " + err.Error()
		} else {
			p.busyPoll = true
			busy = fmt.Sprintf("preferred busy polling %d us", cfg.BusyPollUsecs)
		}
	}
	p.name = fmt.Sprintf("afxdp %s queue %d (%s, %s, %s)", ifi.Name, sc.Queue, sock.BindMode(), g.prog.Mode(), busy)
	foreign := append([]netip.Prefix(nil), cfg.ForeignSources...)
	p.foreign.Store(&foreign)
	return p, nil
}

// SetForeignSources replaces Config.ForeignSources on every port (a
// reload changed the trusted sources); each port sees the new list from
// its next receive.
func (g *Group) SetForeignSources(foreign []netip.Prefix) {
	for _, p := range g.ports {
		f := append([]netip.Prefix(nil), foreign...)
		p.foreign.Store(&f)
	}
}

// Ports returns the ports, indexed by queue.
func (g *Group) Ports() []*Port { return g.ports }

// Program is the XDP program, for bans, counters and port changes.
func (g *Group) Program() *afxdp.Program { return g.prog }

// unregister sends queue's SIP traffic back to the kernel.
func (g *Group) unregister(queue int) error {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.closed || g.prog == nil {
		return nil
	}
	return g.prog.Unregister(queue)
}

// Close unregisters every queue, closes the ports (waking workers blocked
// in Receive) and detaches the program. Call it once the workers have
// returned: a port whose worker still holds frames is freed anyway, so
// the worker must not touch them afterwards.
func (g *Group) Close() error {
	g.once.Do(func() { g.err = g.close() })
	return g.err
}

func (g *Group) close() error {
	var errs []error
	for _, p := range g.ports {
		if err := g.unregister(p.queue); err != nil {
			errs = append(errs, err)
		}
	}
	for _, p := range g.ports {
		p.Close()
	}
	for _, p := range g.ports {
		deadline := time.Now().Add(closeWait)
		for !p.forceFree() {
			if time.Now().After(deadline) {
				errs = append(errs, fmt.Errorf("xdpport: the worker of queue %d is still inside a port call after %v: its socket stays open", p.queue, closeWait))
				break
			}
			time.Sleep(time.Millisecond)
		}
		if p.state.Load() == stFreed {
			unix.Close(p.efd)
		}
	}
	g.mu.Lock()
	g.closed = true
	prog := g.prog
	g.prog = nil
	g.mu.Unlock()
	if prog != nil {
		if err := prog.Close(); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

func firmOf(n Neighbours) FirmNeighbours {
	f, _ := n.(FirmNeighbours)
	return f
}
