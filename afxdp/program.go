package afxdp

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"
	"sort"
	"sync"
	"time"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/link"
	"golang.org/x/sys/unix"
)

// Counter slots in the per-CPU stats map.
const (
	statRedirected    = iota // SIP UDP handed to the queue's socket
	statDroppedBanned        // source in the banned map, not lapsed
	statPassed               // everything else, given to the kernel
	statNoSocket             // SIP UDP on a queue with no socket: passed
	statCount
)

// XDP verdicts (enum xdp_action).
const (
	xdpDrop     = 1
	xdpPass     = 2
	xdpRedirect = 4
)

// ProgramConfig says where and how to attach the XDP program.
type ProgramConfig struct {
	// Ifindex is the interface to attach to.
	Ifindex int
	// Mode is auto, native or generic.
	Mode XDPMode
	// Ports are the UDP destination ports redirected to the sockets.
	Ports []uint16
	// Queues is the size of the XSK map: one more than the highest queue
	// a socket will be registered on. 0 means 64.
	Queues int
	// MaxBans bounds the banned map. 0 means 65536.
	MaxBans int
	// IPv6BanPrefix makes a ban of an IPv6 address cover its prefix of
	// this many bits (the guard's ipv6_source_prefix, 64 by default), so
	// that a host rotating through its /64 stays dropped here. 0 or 128:
	// the address alone. Ban, Unban and Bans then name the prefix's
	// first address.
	IPv6BanPrefix int
}

// Counters are the program's verdict counts, summed over CPUs.
type Counters struct {
	// Redirected is UDP to a SIP port handed to an AF_XDP socket.
	Redirected uint64
	// DroppedBanned is packets dropped because their source was banned.
	DroppedBanned uint64
	// Passed is packets handed to the kernel stack (ARP, ICMP, other
	// ports, fragments, anything not parsed).
	Passed uint64
	// NoSocket is SIP UDP that arrived on a queue without a socket and was
	// passed to the kernel (bpf_redirect_map's XDP_PASS fallback).
	NoSocket uint64
}

// Ban is one entry of the banned map.
type Ban struct {
	Addr netip.Addr
	// Left is the time until the ban lapses.
	Left time.Duration
}

// Program is the XDP program attached to one interface with its maps. Ban,
// Unban, Bans, Counters and SetPorts may be called from any goroutine while
// traffic flows: each map update is a single atomic bpf syscall, and the
// mutex only orders the admin calls among themselves.
type Program struct {
	mu      sync.Mutex
	banned  *ebpf.Map // LRU hash, key [16]byte (IPv4 as v4-mapped IPv6), value u64 expiry (CLOCK_MONOTONIC ns)
	ports   *ebpf.Map // Array[65536] u32: non-zero = redirect
	xsks    *ebpf.Map // XSKMAP: queue -> socket fd
	stats   *ebpf.Map // PerCPUArray[statCount] u64
	prog    *ebpf.Program
	link    link.Link
	mode    XDPMode
	ifindex int
	ncpu    int
	v6Bits  int // ProgramConfig.IPv6BanPrefix
}

// LoadProgram builds the program, creates its maps, fills the ports map and
// attaches it to cfg.Ifindex through a BPF link, so it is detached when the
// process exits even if Close is never called.
func LoadProgram(cfg ProgramConfig) (*Program, error) {
	if cfg.Ifindex <= 0 {
		return nil, fmt.Errorf("afxdp: interface index %d is not valid: give the index of an existing interface", cfg.Ifindex)
	}
	if cfg.Queues == 0 {
		cfg.Queues = 64
	}
	if cfg.MaxBans == 0 {
		cfg.MaxBans = 65536
	}
	if cfg.Queues < 0 || cfg.Queues > 4096 || cfg.MaxBans < 0 || cfg.MaxBans > 1<<24 {
		return nil, fmt.Errorf("afxdp: queues %d (1..4096) or max bans %d (1..16M) out of range", cfg.Queues, cfg.MaxBans)
	}
	if cfg.IPv6BanPrefix < 0 || cfg.IPv6BanPrefix > 128 {
		return nil, fmt.Errorf("afxdp: IPv6 ban prefix /%d out of range: give 1 to 128 (0: the address alone)", cfg.IPv6BanPrefix)
	}
	if err := raiseMemlock(0); err != nil {
		return nil, err
	}
	p := &Program{ifindex: cfg.Ifindex, v6Bits: cfg.IPv6BanPrefix}
	ok := false
	defer func() {
		if !ok {
			p.Close()
		}
	}()
	var err error
	if p.banned, err = newBannedMap(cfg.MaxBans); err != nil {
		return nil, err
	}
	if p.ports, err = ebpf.NewMap(&ebpf.MapSpec{Name: "sip_ports", Type: ebpf.Array, KeySize: 4, ValueSize: 4, MaxEntries: 65536}); err != nil {
		return nil, fmt.Errorf("afxdp: creating the ports map: %w", err)
	}
	if p.xsks, err = ebpf.NewMap(&ebpf.MapSpec{Name: "sip_xsks", Type: ebpf.XSKMap, KeySize: 4, ValueSize: 4, MaxEntries: uint32(cfg.Queues)}); err != nil {
		return nil, fmt.Errorf("afxdp: creating the XSK map: %w", err)
	}
	if p.stats, err = ebpf.NewMap(&ebpf.MapSpec{Name: "sip_stats", Type: ebpf.PerCPUArray, KeySize: 4, ValueSize: 8, MaxEntries: statCount}); err != nil {
		return nil, fmt.Errorf("afxdp: creating the stats map: %w", err)
	}
	if p.ncpu, err = ebpf.PossibleCPU(); err != nil {
		return nil, fmt.Errorf("afxdp: counting CPUs: %w", err)
	}
	if err := p.SetPorts(cfg.Ports); err != nil {
		return nil, err
	}
	p.prog, err = ebpf.NewProgram(&ebpf.ProgramSpec{
		Name:         "sipedge_xdp",
		Type:         ebpf.XDP,
		License:      "Dual MIT/GPL",
		Instructions: buildProgram(p.banned.FD(), p.ports.FD(), p.xsks.FD(), p.stats.FD(), cfg.IPv6BanPrefix),
	})
	if err != nil {
		var ve *ebpf.VerifierError
		if errors.As(err, &ve) {
			return nil, fmt.Errorf("afxdp: the kernel refused the XDP program: %+v", ve)
		}
		return nil, fmt.Errorf("afxdp: loading the XDP program: %w", err)
	}
	if err := p.attach(cfg.Mode); err != nil {
		return nil, err
	}
	ok = true
	return p, nil
}

func (p *Program) attach(mode XDPMode) error {
	try := func(flags link.XDPAttachFlags) (link.Link, error) {
		return link.AttachXDP(link.XDPOptions{Program: p.prog, Interface: p.ifindex, Flags: flags})
	}
	var err error
	switch mode {
	case XDPNative:
		p.link, err = try(link.XDPDriverMode)
		p.mode = XDPNative
	case XDPGeneric:
		p.link, err = try(link.XDPGenericMode)
		p.mode = XDPGeneric
	case XDPAuto:
		p.link, err = try(link.XDPDriverMode)
		p.mode = XDPNative
		if err != nil {
			native := err
			p.link, err = try(link.XDPGenericMode)
			p.mode = XDPGeneric
			if err != nil {
				err = errors.Join(native, err)
			}
		}
	default:
		return fmt.Errorf("afxdp: xdp mode %d is not auto, native or generic", int(mode))
	}
	if err != nil {
		hint := ""
		switch {
		case errors.Is(err, unix.EBUSY) || errors.Is(err, unix.EEXIST):
			hint = " (another XDP program is attached: remove it with `ip link set dev IF xdp off`)"
		case errors.Is(err, unix.ENOSPC):
			hint = " (veth: the peer has more TX queues than this end has RX queues)"
		case errors.Is(err, unix.ERANGE):
			hint = " (MTU too large for native XDP: lower it or use generic mode)"
		}
		return fmt.Errorf("afxdp: attaching XDP to ifindex %d in %s mode: %w%s", p.ifindex, mode, err, hint)
	}
	return nil
}

// Mode is the attach mode in use: XDPNative or XDPGeneric.
func (p *Program) Mode() XDPMode { return p.mode }

// Ifindex is the interface the program is attached to.
func (p *Program) Ifindex() int { return p.ifindex }

// Register directs the program's redirects for queue to s.
func (p *Program) Register(queue int, s *Socket) error {
	if err := p.xsks.Put(uint32(queue), uint32(s.FD())); err != nil {
		return fmt.Errorf("afxdp: registering the socket of queue %d in the XSK map (%d entries): %w", queue, p.xsks.MaxEntries(), err)
	}
	return nil
}

// Unregister removes the socket of queue; its traffic goes to the kernel.
func (p *Program) Unregister(queue int) error {
	if err := p.xsks.Delete(uint32(queue)); err != nil && !errors.Is(err, ebpf.ErrKeyNotExist) {
		return fmt.Errorf("afxdp: removing queue %d from the XSK map: %w", queue, err)
	}
	return nil
}

// SetPorts makes ports the set of redirected UDP destination ports. Ports
// are added before others are removed, so a port present in both the old
// and the new set never misses a packet.
func (p *Program) SetPorts(ports []uint16) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	var want [65536]bool
	for _, port := range ports {
		if port == 0 {
			return errors.New("afxdp: port 0 cannot be a SIP port")
		}
		want[port] = true
	}
	for port := range want {
		if want[port] {
			if err := p.ports.Put(uint32(port), uint32(1)); err != nil {
				return fmt.Errorf("afxdp: adding port %d: %w", port, err)
			}
		}
	}
	// Array maps cannot be listed sparsely: read all values in one batch
	// and clear the ones no longer wanted.
	cur := make([]uint32, 65536)
	keys := make([]uint32, 65536)
	var cursor ebpf.MapBatchCursor
	n, err := p.ports.BatchLookup(&cursor, keys, cur, nil)
	if err != nil && !errors.Is(err, ebpf.ErrKeyNotExist) {
		return fmt.Errorf("afxdp: reading the ports map: %w", err)
	}
	for i := 0; i < n; i++ {
		if cur[i] != 0 && !want[keys[i]] {
			if err := p.ports.Put(keys[i], uint32(0)); err != nil {
				return fmt.Errorf("afxdp: removing port %d: %w", keys[i], err)
			}
		}
	}
	return nil
}

// Ports returns the redirected ports in ascending order.
func (p *Program) Ports() ([]uint16, error) {
	cur := make([]uint32, 65536)
	keys := make([]uint32, 65536)
	var cursor ebpf.MapBatchCursor
	n, err := p.ports.BatchLookup(&cursor, keys, cur, nil)
	if err != nil && !errors.Is(err, ebpf.ErrKeyNotExist) {
		return nil, fmt.Errorf("afxdp: reading the ports map: %w", err)
	}
	var out []uint16
	for i := 0; i < n; i++ {
		if cur[i] != 0 {
			out = append(out, uint16(keys[i]))
		}
	}
	return out, nil
}

// banKey encodes addr as the banned map's key: IPv6 masked to its first
// v6Bits bits (maskV6Key does the same to a packet's source), IPv4 as its
// v4-mapped IPv6 form (::ffff:a.b.c.d), which is what the program builds
// from an IPv4 header. A v4-mapped IPv6 source is thus banned together with
// the IPv4 address, which is the same host.
func banKey(addr netip.Addr, v6Bits int) ([16]byte, error) {
	if !addr.IsValid() {
		return [16]byte{}, errors.New("afxdp: cannot ban an invalid (zero) address")
	}
	a := addr.Unmap()
	k := a.As16()
	if a.Is6() && v6Bits > 0 && v6Bits < 128 {
		m := v6Mask(v6Bits)
		for i := range k {
			k[i] &= m[i]
		}
	}
	return k, nil
}

// keyAddr decodes a banned map key.
func keyAddr(k [16]byte) netip.Addr { return netip.AddrFrom16(k).Unmap() }

func monotonicNow() (uint64, error) {
	var ts unix.Timespec
	if err := unix.ClockGettime(unix.CLOCK_MONOTONIC, &ts); err != nil {
		return 0, fmt.Errorf("afxdp: reading CLOCK_MONOTONIC: %w", err)
	}
	return uint64(ts.Nano()), nil
}

// Ban drops the SIP datagrams of addr for ttl. Banning again replaces the
// TTL. The program compares the expiry with bpf_ktime_get_ns
// (CLOCK_MONOTONIC), so a ban lapses by itself; PruneBans (and Bans)
// delete lapsed entries. The map is an LRU: when it is full the least
// recently used ban makes room, so a flood of (spoofed) sources can never
// make later bans fail.
func (p *Program) Ban(addr netip.Addr, ttl time.Duration) error {
	return banIn(&p.mu, p.banned, addr, ttl, p.v6Bits)
}

// Unban lifts a ban; lifting one that does not exist is not an error.
func (p *Program) Unban(addr netip.Addr) error { return unbanIn(&p.mu, p.banned, addr, p.v6Bits) }

// Bans lists the bans in force with the time each has left, sorted by
// address, and deletes the ones that have lapsed.
func (p *Program) Bans() ([]Ban, error) { return listBansIn(&p.mu, p.banned) }

// PruneBans deletes the bans that have lapsed and returns how many.
// Pruning keeps lapsed entries from pushing live ones out of the LRU.
func (p *Program) PruneBans() (int, error) {
	_, n, err := walkBansIn(&p.mu, p.banned, false)
	return n, err
}

// The banned map's operations, shared by the XDP program and the socket
// filter (SocketBans): mu orders the admin calls on m among themselves.

func banIn(mu *sync.Mutex, m *ebpf.Map, addr netip.Addr, ttl time.Duration, v6Bits int) error {
	key, err := banKey(addr, v6Bits)
	if err != nil {
		return err
	}
	if ttl <= 0 {
		return fmt.Errorf("afxdp: ban of %v needs a positive TTL, got %v", addr, ttl)
	}
	now, err := monotonicNow()
	if err != nil {
		return err
	}
	mu.Lock()
	defer mu.Unlock()
	if err := m.Put(key, now+uint64(ttl)); err != nil {
		return fmt.Errorf("afxdp: banning %v: %w", addr, err)
	}
	return nil
}

func unbanIn(mu *sync.Mutex, m *ebpf.Map, addr netip.Addr, v6Bits int) error {
	key, err := banKey(addr, v6Bits)
	if err != nil {
		return err
	}
	mu.Lock()
	defer mu.Unlock()
	if err := m.Delete(key); err != nil && !errors.Is(err, ebpf.ErrKeyNotExist) {
		return fmt.Errorf("afxdp: unbanning %v: %w", addr, err)
	}
	return nil
}

func listBansIn(mu *sync.Mutex, m *ebpf.Map) ([]Ban, error) {
	out, _, err := walkBansIn(mu, m, true)
	sort.Slice(out, func(i, j int) bool { return out[i].Addr.Less(out[j].Addr) })
	return out, err
}

// walkBansIn deletes the lapsed bans of m and, when list is set, returns
// the others.
func walkBansIn(mu *sync.Mutex, m *ebpf.Map, list bool) ([]Ban, int, error) {
	mu.Lock()
	defer mu.Unlock()
	now, err := monotonicNow()
	if err != nil {
		return nil, 0, err
	}
	var (
		out     []Ban
		lapsed  [][16]byte
		key     [16]byte
		expires uint64
	)
	it := m.Iterate()
	for it.Next(&key, &expires) {
		if expires <= now {
			lapsed = append(lapsed, key)
			continue
		}
		if list {
			out = append(out, Ban{Addr: keyAddr(key), Left: time.Duration(expires - now)})
		}
	}
	if err := it.Err(); err != nil {
		return nil, 0, fmt.Errorf("afxdp: listing bans: %w", err)
	}
	for i, k := range lapsed {
		// The mutex keeps a concurrent Ban from being deleted here;
		// only the program reads the map otherwise.
		if err := m.Delete(k); err != nil && !errors.Is(err, ebpf.ErrKeyNotExist) {
			return nil, i, fmt.Errorf("afxdp: deleting the lapsed ban of %v: %w", keyAddr(k), err)
		}
	}
	return out, len(lapsed), nil
}

// newBannedMap makes the banned map: an LRU hash, key [16]byte (IPv4 as
// v4-mapped IPv6), value u64 expiry (CLOCK_MONOTONIC ns).
func newBannedMap(maxBans int) (*ebpf.Map, error) {
	m, err := ebpf.NewMap(&ebpf.MapSpec{Name: "sip_banned", Type: ebpf.LRUHash, KeySize: 16, ValueSize: 8, MaxEntries: uint32(maxBans)})
	if err != nil {
		return nil, fmt.Errorf("afxdp: creating the banned map: %w", err)
	}
	return m, nil
}

// Counters sums the per-CPU verdict counters.
func (p *Program) Counters() (Counters, error) {
	var c Counters
	vals := make([]uint64, p.ncpu)
	for slot, dst := range []*uint64{&c.Redirected, &c.DroppedBanned, &c.Passed, &c.NoSocket} {
		if err := p.stats.Lookup(uint32(slot), &vals); err != nil {
			return Counters{}, fmt.Errorf("afxdp: reading counter %d: %w", slot, err)
		}
		*dst = sumPerCPU(vals)
	}
	return c, nil
}

func sumPerCPU(vals []uint64) uint64 {
	var s uint64
	for _, v := range vals {
		s += v
	}
	return s
}

// Close detaches the program and frees its maps.
func (p *Program) Close() error {
	var errs []error
	if p.link != nil {
		if err := p.link.Close(); err != nil {
			errs = append(errs, fmt.Errorf("afxdp: detaching XDP from ifindex %d: %w", p.ifindex, err))
		}
		p.link = nil
	}
	for _, c := range []interface{ Close() error }{p.prog, p.banned, p.ports, p.xsks, p.stats} {
		switch v := c.(type) {
		case *ebpf.Program:
			if v != nil {
				v.Close()
			}
		case *ebpf.Map:
			if v != nil {
				v.Close()
			}
		}
	}
	p.prog, p.banned, p.ports, p.xsks, p.stats = nil, nil, nil, nil, nil
	return errors.Join(errs...)
}

// ne16 returns the value a 16-bit load of the network-order bytes of v
// yields on this host, so comparisons need no byte swap in the program.
func ne16(v uint16) int32 {
	var b [2]byte
	binary.BigEndian.PutUint16(b[:], v)
	return int32(binary.NativeEndian.Uint16(b[:]))
}

// ne32 returns the 32-bit immediate that stores bytes b in this order.
func ne32(b [4]byte) int64 { return int64(int32(binary.NativeEndian.Uint32(b[:]))) }
