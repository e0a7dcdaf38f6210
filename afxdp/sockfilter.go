package afxdp

import (
	"errors"
	"fmt"
	"net/netip"
	"sync"
	"time"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/asm"
	"golang.org/x/sys/unix"
)

// SocketBans is the banned map of the socket port: an eBPF socket filter
// attached to each SIP socket drops a banned source's datagrams before
// they are queued to the socket. Without it a flood that the worker bans
// still fills the socket's receive buffer faster than the worker can
// read and drop it, and the kernel then drops legitimate datagrams with
// the flood's. Ban, Unban, Bans, PruneBans and Dropped may be called from
// any goroutine while traffic flows.
type SocketBans struct {
	mu     sync.Mutex
	banned *ebpf.Map // as Program's: LRU hash, v4-mapped key, expiry value
	stats  *ebpf.Map // PerCPUArray[1] u64: datagrams dropped
	prog   *ebpf.Program
	ncpu   int
	v6Bits int
}

// Offsets in struct __sk_buff.
const (
	skbLen      = 0
	skbProtocol = 16
	// bpfHdrStartNet is BPF_HDR_START_NET: offsets from the IP header.
	bpfHdrStartNet = 1
)

// NewSocketBans makes the map (maxBans entries, 65536 when 0) and the
// filter; an IPv6 ban covers the source's prefix of v6Bits bits (0 or 128:
// the address alone), as ProgramConfig.IPv6BanPrefix. It needs CAP_BPF
// (root); without it the socket port keeps its bans in the workers only.
func NewSocketBans(maxBans, v6Bits int) (*SocketBans, error) {
	if maxBans == 0 {
		maxBans = 65536
	}
	if maxBans < 0 || maxBans > 1<<24 {
		return nil, fmt.Errorf("afxdp: max bans %d out of range (1..16M)", maxBans)
	}
	if v6Bits < 0 || v6Bits > 128 {
		return nil, fmt.Errorf("afxdp: IPv6 ban prefix /%d out of range: give 1 to 128 (0: the address alone)", v6Bits)
	}
	if err := raiseMemlock(0); err != nil {
		return nil, err
	}
	s := &SocketBans{v6Bits: v6Bits}
	ok := false
	defer func() {
		if !ok {
			s.Close()
		}
	}()
	var err error
	if s.banned, err = newBannedMap(maxBans); err != nil {
		return nil, err
	}
	if s.stats, err = ebpf.NewMap(&ebpf.MapSpec{Name: "sip_sock_stats", Type: ebpf.PerCPUArray, KeySize: 4, ValueSize: 8, MaxEntries: 1}); err != nil {
		return nil, fmt.Errorf("afxdp: creating the socket filter's counter: %w", err)
	}
	if s.ncpu, err = ebpf.PossibleCPU(); err != nil {
		return nil, fmt.Errorf("afxdp: counting CPUs: %w", err)
	}
	s.prog, err = ebpf.NewProgram(&ebpf.ProgramSpec{
		Name:         "sipedge_sockban",
		Type:         ebpf.SocketFilter,
		License:      "Dual MIT/GPL",
		Instructions: buildSocketFilter(s.banned.FD(), s.stats.FD(), v6Bits),
	})
	if err != nil {
		var ve *ebpf.VerifierError
		if errors.As(err, &ve) {
			return nil, fmt.Errorf("afxdp: the kernel refused the socket filter: %+v", ve)
		}
		return nil, fmt.Errorf("afxdp: loading the socket filter: %w", err)
	}
	ok = true
	return s, nil
}

// buildSocketFilter assembles the filter: the source address (IPv4 as
// v4-mapped, as the XDP program builds it) is looked up in the banned map;
// a live ban drops the datagram (returns 0) and counts it, anything else
// is kept whole (returns skb->len). R6 holds the context throughout.
func buildSocketFilter(banned, stats, v6Bits int) asm.Instructions {
	p := asm.Instructions{
		asm.Mov.Reg(asm.R6, asm.R1),
		asm.LoadMem(asm.R2, asm.R6, skbProtocol, asm.Word),
		asm.JEq.Imm(asm.R2, ne16(etherTypeV4), "v4"),
		asm.JEq.Imm(asm.R2, ne16(etherTypeV6), "v6"),
		asm.Ja.Label("keep"),

		asm.StoreImm(asm.R10, stackBanKey, 0, asm.Word).WithSymbol("v4"),
		asm.StoreImm(asm.R10, stackBanKey+4, 0, asm.Word),
		asm.StoreImm(asm.R10, stackBanKey+8, ne32([4]byte{0, 0, 0xff, 0xff}), asm.Word),
		asm.StoreImm(asm.R10, stackBanKey+12, 0, asm.Word),
		asm.Mov.Reg(asm.R1, asm.R6),
		asm.Mov.Imm(asm.R2, 12), // IPv4 source address
		asm.Mov.Reg(asm.R3, asm.R10),
		asm.Add.Imm(asm.R3, stackBanKey+12),
		asm.Mov.Imm(asm.R4, 4),
		asm.Mov.Imm(asm.R5, bpfHdrStartNet),
		asm.FnSkbLoadBytesRelative.Call(),
		asm.JNE.Imm(asm.R0, 0, "keep"),
		asm.Ja.Label("lookup"),

		asm.Mov.Reg(asm.R1, asm.R6).WithSymbol("v6"),
		asm.Mov.Imm(asm.R2, 8), // IPv6 source address
		asm.Mov.Reg(asm.R3, asm.R10),
		asm.Add.Imm(asm.R3, stackBanKey),
		asm.Mov.Imm(asm.R4, 16),
		asm.Mov.Imm(asm.R5, bpfHdrStartNet),
		asm.FnSkbLoadBytesRelative.Call(),
		asm.JNE.Imm(asm.R0, 0, "keep"),
	}
	p = append(p, maskV6Key(v6Bits)...)
	// A live ban jumps to "drop", anything else falls through to "keep".
	check := banCheck(banned, "keep")
	check[0] = check[0].WithSymbol("lookup")
	p = append(p, check...)
	p = append(p,
		asm.LoadMem(asm.R0, asm.R6, skbLen, asm.Word).WithSymbol("keep"),
		asm.Return(),
	)
	return append(p, verdict(stats, "drop", 0, 0)...)
}

// Attach puts the filter on socket fd (SO_ATTACH_BPF).
func (s *SocketBans) Attach(fd int) error {
	if err := unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_ATTACH_BPF, s.prog.FD()); err != nil {
		return fmt.Errorf("afxdp: attaching the ban filter to socket %d: %w", fd, err)
	}
	return nil
}

// Ban drops addr's datagrams to the filtered sockets for ttl.
func (s *SocketBans) Ban(addr netip.Addr, ttl time.Duration) error {
	return banIn(&s.mu, s.banned, addr, ttl, s.v6Bits)
}

// Unban lifts a ban; lifting one that does not exist is not an error.
func (s *SocketBans) Unban(addr netip.Addr) error {
	return unbanIn(&s.mu, s.banned, addr, s.v6Bits)
}

// Bans lists the bans in force and deletes the lapsed ones.
func (s *SocketBans) Bans() ([]Ban, error) { return listBansIn(&s.mu, s.banned) }

// PruneBans deletes the lapsed bans and returns how many.
func (s *SocketBans) PruneBans() (int, error) {
	_, n, err := walkBansIn(&s.mu, s.banned, false)
	return n, err
}

// Dropped is how many datagrams the filter dropped, summed over CPUs.
func (s *SocketBans) Dropped() (uint64, error) {
	vals := make([]uint64, s.ncpu)
	if err := s.stats.Lookup(uint32(0), &vals); err != nil {
		return 0, fmt.Errorf("afxdp: reading the socket filter's counter: %w", err)
	}
	return sumPerCPU(vals), nil
}

// Close frees the filter and its maps; sockets it is attached to keep a
// reference to the program until they close.
func (s *SocketBans) Close() error {
	if s.prog != nil {
		s.prog.Close()
	}
	for _, m := range []*ebpf.Map{s.banned, s.stats} {
		if m != nil {
			m.Close()
		}
	}
	s.prog, s.banned, s.stats = nil, nil, nil
	return nil
}
