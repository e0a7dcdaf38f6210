package socketport

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"sync/atomic"
	"syscall"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"

	"sipedge/pipeline/port"
)

// BufHeadroom is how much larger than the largest message served the
// buffers are by default: room for what forwarding adds.
const BufHeadroom = 1024

// Config sizes and places a socket port.
type Config struct {
	// Listen is the local address. Port 0 picks one (see LocalAddr). An
	// unspecified address (0.0.0.0 or ::) turns on IP_PKTINFO /
	// IPV6_RECVPKTINFO so that Packet.Dst tells which local address a
	// request came to and replies leave from it.
	Listen netip.AddrPort
	// Buffers is the number of datagram buffers in the pool (default 1024).
	// Received packets not yet released and allocated transmit buffers
	// both hold one.
	Buffers int
	// MaxMessage is the largest datagram the node serves ([guard]
	// max_message_size; default 8192). It sizes the buffers.
	MaxMessage int
	// BufSize is the size of each buffer, the largest datagram received or
	// sent (default MaxMessage + BufHeadroom, at most 65535, more than
	// MaxMessage). The headroom is what forwarding adds (a Via, a
	// Record-Route), and it makes a datagram over MaxMessage visible as
	// one: a longer datagram is delivered cut to BufSize (counted as
	// truncated), so that the stages see it is over the limit and answer
	// 513 when they can read its Via, instead of it vanishing here.
	BufSize int
	// Batch is the most datagrams one recvmmsg or sendmmsg moves (default 64).
	Batch int
	// Steer is the number of sockets that will share Listen (one per
	// worker): at 2 or more, a reuseport BPF program picks a datagram's
	// socket from its source address alone (an IPv6 source by its /64),
	// so that one source always lands on one worker (see steer.go). Every
	// socket of the group must be opened with the same Steer, in worker
	// order. 0 or 1 leaves the kernel's 4-tuple hash.
	Steer int
	// RecvBuffer is the socket receive buffer in bytes (SO_RCVBUFFORCE as
	// root, else SO_RCVBUF capped by net.core.rmem_max); 0 leaves the
	// kernel default.
	RecvBuffer int
	// Filter, when set, is called with the socket before it receives
	// anything: a socket filter (afxdp.SocketBans.Attach) that drops
	// banned sources in the kernel, before they fill the receive buffer.
	Filter func(fd int) error
}

// Stats are the port's counters since Open.
type Stats struct {
	Received  uint64 // datagrams delivered by Receive
	Sent      uint64 // datagrams the kernel accepted
	Unsent    uint64 // datagrams given to Transmit and not sent (bad destination, send error, full socket buffer)
	Truncated uint64 // datagrams longer than BufSize, delivered cut to BufSize
	NoBuffer  uint64 // Receive calls that found the pool empty
	BadHandle uint64 // packets given back that were not out of this port's pool
}

// Port is a kernel UDP socket port for one worker goroutine. Only Close and
// Stats may be called from other goroutines.
type Port struct {
	fd      int // the UDP socket, non-blocking, never in Go's netpoller
	efd     int // eventfd written by Close to wake a Wait
	pfd     [3]unix.PollFd
	local   netip.AddrPort
	v6      bool
	pktinfo bool
	batch   int

	bufSize int
	arena   []byte
	free    []uint32 // stack of free buffer indexes
	inUse   []bool   // guards the pool against double frees and foreign handles

	// recvmmsg state, reused by every call.
	rmsgs  []unix.Mmsghdr
	riov   []unix.Iovec
	rnames []unix.RawSockaddrInet6
	rctl   []byte
	rbuf   []uint32

	// sendmmsg state.
	smsgs  []unix.Mmsghdr
	siov   []unix.Iovec
	snames []unix.RawSockaddrInet6
	sctl   []byte

	// closed is set by Close; users counts calls in progress (the worker's
	// and Close's own wake-up write). The descriptors are closed by whoever
	// leaves last once closed is set, so a worker inside recvmmsg or ppoll
	// never sees its descriptor closed and reused under it.
	closed atomic.Bool
	users  atomic.Int32
	freed  atomic.Bool
	stats  struct {
		received, sent, unsent, truncated, noBuffer, badHandle atomic.Uint64
	}
}

var _ port.Port = (*Port)(nil)

// ctlSpace is the control buffer per message: one pktinfo of either family.
var ctlSpace = unix.CmsgSpace(unix.SizeofInet6Pktinfo)

// Open creates the socket (SO_REUSEPORT, so every worker may open one on the
// same Listen address) and preallocates everything the port uses.
//
// The socket is made with socket(2) and bind(2) directly, not with the net
// package, so that it never enters Go's netpoller: a worker sleeps on it in
// Wait, on its own thread, and the kernel wakes that thread directly.
func Open(cfg Config) (*Port, error) {
	if cfg.Buffers == 0 {
		cfg.Buffers = 1024
	}
	if cfg.MaxMessage == 0 {
		cfg.MaxMessage = 8192
	}
	if cfg.BufSize == 0 {
		cfg.BufSize = min(cfg.MaxMessage+BufHeadroom, 65535)
	}
	if cfg.Batch == 0 {
		cfg.Batch = 64
	}
	switch {
	case !cfg.Listen.Addr().IsValid():
		return nil, errors.New("socketport: no listen address; set [io] listen to an IP:port such as 0.0.0.0:5060")
	case cfg.BufSize < 512 || cfg.BufSize > 65535:
		return nil, fmt.Errorf("socketport: buffer size %d out of range; use 512..65535 bytes", cfg.BufSize)
	case cfg.MaxMessage < 0 || cfg.MaxMessage >= cfg.BufSize:
		return nil, fmt.Errorf("socketport: largest message %d with buffers of %d bytes: buffers must be larger than the largest message (leave BufSize 0 to size them from it)", cfg.MaxMessage, cfg.BufSize)
	case cfg.Buffers < 1 || cfg.Batch < 1 || cfg.RecvBuffer < 0:
		return nil, fmt.Errorf("socketport: buffers %d, batch %d, receive buffer %d: all must be positive",
			cfg.Buffers, cfg.Batch, cfg.RecvBuffer)
	case cfg.Buffers*cfg.BufSize > 1<<30:
		return nil, fmt.Errorf("socketport: %d buffers of %d bytes exceed 1 GiB; lower one of them", cfg.Buffers, cfg.BufSize)
	}
	addr := cfg.Listen.Addr().Unmap()
	p := &Port{
		fd:      -1,
		efd:     -1,
		v6:      addr.Is6(),
		pktinfo: addr.IsUnspecified(),
		batch:   cfg.Batch,
		bufSize: cfg.BufSize,
	}
	laddr := netip.AddrPortFrom(addr.WithZone(cfg.Listen.Addr().Zone()), cfg.Listen.Port())
	if err := p.open(laddr, cfg.RecvBuffer); err != nil {
		p.closeFDs()
		return nil, err
	}
	if cfg.Steer > 1 {
		if err := steer(p.fd, cfg.Steer); err != nil {
			p.closeFDs()
			return nil, fmt.Errorf("socketport: %v: steering one source to one worker: %w", laddr, err)
		}
	}
	if cfg.Filter != nil {
		if err := cfg.Filter(p.fd); err != nil {
			p.closeFDs()
			return nil, fmt.Errorf("socketport: %v: %w", laddr, err)
		}
	}

	p.arena = make([]byte, cfg.Buffers*cfg.BufSize)
	p.free = make([]uint32, cfg.Buffers)
	p.inUse = make([]bool, cfg.Buffers)
	for i := range p.free {
		p.free[i] = uint32(cfg.Buffers - 1 - i)
	}
	p.rmsgs = make([]unix.Mmsghdr, cfg.Batch)
	p.riov = make([]unix.Iovec, cfg.Batch)
	p.rnames = make([]unix.RawSockaddrInet6, cfg.Batch)
	p.rbuf = make([]uint32, cfg.Batch)
	p.smsgs = make([]unix.Mmsghdr, cfg.Batch)
	p.siov = make([]unix.Iovec, cfg.Batch)
	p.snames = make([]unix.RawSockaddrInet6, cfg.Batch)
	if p.pktinfo {
		p.rctl = make([]byte, cfg.Batch*ctlSpace)
		p.sctl = make([]byte, cfg.Batch*ctlSpace)
	}
	for i := range cfg.Batch {
		h := &p.rmsgs[i].Hdr
		h.Name = (*byte)(unsafe.Pointer(&p.rnames[i]))
		h.Iov = &p.riov[i]
		h.Iovlen = 1
		h = &p.smsgs[i].Hdr
		h.Name = (*byte)(unsafe.Pointer(&p.snames[i]))
		h.Iov = &p.siov[i]
		h.Iovlen = 1
	}
	p.pfd[0] = unix.PollFd{Fd: int32(p.fd), Events: unix.POLLIN}
	p.pfd[1] = unix.PollFd{Fd: int32(p.efd), Events: unix.POLLIN}
	return p, nil
}

// open makes the socket, sets its options, binds it and makes the eventfd.
func (p *Port) open(laddr netip.AddrPort, rcvbuf int) error {
	family := unix.AF_INET
	if p.v6 {
		family = unix.AF_INET6
	}
	fd, err := unix.Socket(family, unix.SOCK_DGRAM|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, unix.IPPROTO_UDP)
	if err != nil {
		return fmt.Errorf("socketport: socket for %v: %w", laddr, err)
	}
	p.fd = fd
	if err := p.setOptions(fd, rcvbuf); err != nil {
		return fmt.Errorf("socketport: %v: %w", laddr, err)
	}
	var sa unix.Sockaddr
	if p.v6 {
		s6 := &unix.SockaddrInet6{Port: int(laddr.Port()), Addr: laddr.Addr().As16()}
		if z := laddr.Addr().Zone(); z != "" {
			ifi, err := netInterfaceIndex(z)
			if err != nil {
				return fmt.Errorf("socketport: listen on %v: zone %q: %w", laddr, z, err)
			}
			s6.ZoneId = uint32(ifi)
		}
		sa = s6
	} else {
		sa = &unix.SockaddrInet4{Port: int(laddr.Port()), Addr: laddr.Addr().Unmap().As4()}
	}
	if err := unix.Bind(fd, sa); err != nil {
		return fmt.Errorf("socketport: listen on %v: %w (is the address local and the port free or opened by sipedge with SO_REUSEPORT?)", laddr, err)
	}
	got, err := unix.Getsockname(fd)
	if err != nil {
		return fmt.Errorf("socketport: local address of %v: %w", laddr, err)
	}
	switch a := got.(type) {
	case *unix.SockaddrInet4:
		p.local = netip.AddrPortFrom(netip.AddrFrom4(a.Addr), uint16(a.Port))
	case *unix.SockaddrInet6:
		p.local = netip.AddrPortFrom(netip.AddrFrom16(a.Addr).Unmap(), uint16(a.Port))
	}
	if p.efd, err = unix.Eventfd(0, unix.EFD_NONBLOCK|unix.EFD_CLOEXEC); err != nil {
		return fmt.Errorf("socketport: eventfd for %v: %w", laddr, err)
	}
	return nil
}

func (p *Port) closeFDs() {
	if p.fd >= 0 {
		unix.Close(p.fd)
	}
	if p.efd >= 0 {
		unix.Close(p.efd)
	}
}

func (p *Port) setOptions(fd, rcvbuf int) error {
	if err := unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_REUSEPORT, 1); err != nil {
		return fmt.Errorf("SO_REUSEPORT: %w", err)
	}
	if rcvbuf > 0 {
		if unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_RCVBUFFORCE, rcvbuf) != nil {
			if err := unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_RCVBUF, rcvbuf); err != nil {
				return fmt.Errorf("SO_RCVBUF %d: %w", rcvbuf, err)
			}
		}
	}
	if !p.pktinfo {
		return nil
	}
	if p.v6 {
		if err := unix.SetsockoptInt(fd, unix.IPPROTO_IPV6, unix.IPV6_RECVPKTINFO, 1); err != nil {
			return fmt.Errorf("IPV6_RECVPKTINFO: %w", err)
		}
		return nil
	}
	if err := unix.SetsockoptInt(fd, unix.IPPROTO_IP, unix.IP_PKTINFO, 1); err != nil {
		return fmt.Errorf("IP_PKTINFO: %w", err)
	}
	return nil
}

// Name describes the port for logs.
func (p *Port) Name() string {
	mode := "bound"
	if p.pktinfo {
		mode = "wildcard, pktinfo"
	}
	return fmt.Sprintf("socket udp %v (recvmmsg/sendmmsg, batch %d, %s)", p.local, p.batch, mode)
}

// LocalAddr is the address the socket is bound to (with the port the kernel
// chose when Listen had port 0).
func (p *Port) LocalAddr() netip.AddrPort { return p.local }

// Stats returns the counters; safe from any goroutine.
func (p *Port) Stats() Stats {
	return Stats{
		Received:  p.stats.received.Load(),
		Sent:      p.stats.sent.Load(),
		Unsent:    p.stats.unsent.Load(),
		Truncated: p.stats.truncated.Load(),
		NoBuffer:  p.stats.noBuffer.Load(),
		BadHandle: p.stats.badHandle.Load(),
	}
}

func (p *Port) buf(i uint32) []byte {
	off := int(i) * p.bufSize
	return p.arena[off : off+p.bufSize : off+p.bufSize]
}

func (p *Port) take() (uint32, bool) {
	n := len(p.free)
	if n == 0 {
		return 0, false
	}
	i := p.free[n-1]
	p.free = p.free[:n-1]
	p.inUse[i] = true
	return i, true
}

// put gives back the buffer of handle h. Handles are the buffer index plus
// one, so that a zero Packet never returns buffer 0 by mistake.
func (p *Port) put(h uint64) {
	i := h - 1
	if h == 0 || i >= uint64(len(p.inUse)) || !p.inUse[i] {
		p.stats.badHandle.Add(1)
		return
	}
	p.inUse[i] = false
	p.free = append(p.free, uint32(i)) // never grows: capacity is the pool size
}

// enter starts a call that uses the descriptors: false once the port is
// closed (the call must then not touch them).
func (p *Port) enter() bool {
	p.users.Add(1)
	if p.closed.Load() {
		p.exit()
		return false
	}
	return true
}

// exit ends a call; the last one out of a closed port closes the descriptors.
func (p *Port) exit() {
	if p.users.Add(-1) == 0 && p.closed.Load() && p.freed.CompareAndSwap(false, true) {
		p.closeFDs()
	}
}

// Receive implements port.Port: one non-blocking recvmmsg.
func (p *Port) Receive(rx []port.Packet) (int, error) {
	if !p.enter() {
		return 0, port.ErrClosed
	}
	defer p.exit()
	want := min(len(rx), p.batch)
	n := 0
	for n < want {
		i, ok := p.take()
		if !ok {
			break
		}
		p.rbuf[n] = i
		b := p.buf(i)
		p.riov[n].Base = &b[0]
		p.riov[n].SetLen(len(b))
		h := &p.rmsgs[n].Hdr
		h.Namelen = unix.SizeofSockaddrInet6
		h.Flags = 0
		if p.pktinfo {
			h.Control = &p.rctl[n*ctlSpace]
			h.SetControllen(ctlSpace)
		}
		n++
	}
	if n == 0 {
		if want > 0 {
			p.stats.noBuffer.Add(1)
		}
		return 0, nil
	}
	got, errno := p.recv(n)
	out := 0
	for k := range got {
		m := &p.rmsgs[k]
		n := int(m.Len)
		if m.Hdr.Flags&unix.MSG_TRUNC != 0 {
			// Delivered cut, longer than any message served: the stages
			// answer 513 or count the drop.
			p.stats.truncated.Add(1)
			n = p.bufSize
		}
		rx[out].Truncated = m.Hdr.Flags&unix.MSG_TRUNC != 0
		pk := &rx[out]
		pk.Payload = p.buf(p.rbuf[k])[:min(n, p.bufSize)]
		pk.Src = sockaddrToAddrPort(&p.rnames[k])
		pk.Dst = p.local
		if p.pktinfo {
			pk.Dst = netip.AddrPortFrom(p.pktinfoDst(k, &m.Hdr), p.local.Port())
		}
		pk.HW = [6]byte{}
		pk.Handle = uint64(p.rbuf[k]) + 1
		out++
	}
	p.giveBack(got, n)
	if out > 0 {
		p.stats.received.Add(uint64(out))
	}
	if errno != 0 {
		if transient(errno) {
			return out, fmt.Errorf("socketport %v: recvmmsg: %w (%w)", p.local, errno, port.ErrTransient)
		}
		return out, fmt.Errorf("socketport %v: recvmmsg: %w", p.local, errno)
	}
	return out, nil
}

// transient reports whether errno leaves the socket usable: everything but
// a socket that is gone or a call that is wrong.
func transient(errno unix.Errno) bool {
	switch errno {
	case unix.EBADF, unix.ENOTSOCK, unix.EINVAL, unix.EFAULT, unix.EOPNOTSUPP:
		return false
	}
	return true
}

// Wait implements port.Port: ppoll on the socket and the close eventfd
// (and bell) on the calling thread (see port.Sleep).
func (p *Port) Wait(timeout time.Duration, bell int) error {
	if !p.enter() {
		return port.ErrClosed
	}
	defer p.exit()
	fds := p.pfd[:2]
	if bell >= 0 {
		p.pfd[2] = unix.PollFd{Fd: int32(bell), Events: unix.POLLIN}
		fds = p.pfd[:3]
	}
	if _, err := port.Sleep(fds, timeout); err != nil {
		return fmt.Errorf("socketport %v: waiting for datagrams: %w", p.local, err)
	}
	return nil
}

func (p *Port) giveBack(from, to int) {
	for k := from; k < to; k++ {
		p.put(uint64(p.rbuf[k]) + 1)
	}
}

// recv is one non-blocking recvmmsg of up to want datagrams. It is a raw
// syscall: it never blocks, so the scheduler need not know about it, and
// that saves the runtime's syscall bookkeeping on every batch. EAGAIN is
// zero datagrams, not an error.
func (p *Port) recv(want int) (int, syscall.Errno) {
	for {
		r, _, e := unix.RawSyscall6(unix.SYS_RECVMMSG, uintptr(p.fd), uintptr(unsafe.Pointer(&p.rmsgs[0])),
			uintptr(want), unix.MSG_DONTWAIT, 0, 0)
		switch e {
		case 0:
			return int(r), 0
		case unix.EINTR:
			continue
		case unix.EAGAIN:
			return 0, 0
		}
		return 0, e
	}
}

// pktinfoDst returns the destination address of received message k from its
// IP_PKTINFO / IPV6_PKTINFO control message.
func (p *Port) pktinfoDst(k int, h *unix.Msghdr) netip.Addr {
	ctl := p.rctl[k*ctlSpace : (k+1)*ctlSpace]
	ctl = ctl[:min(int(h.Controllen), len(ctl))]
	for len(ctl) >= unix.SizeofCmsghdr {
		c := (*unix.Cmsghdr)(unsafe.Pointer(&ctl[0]))
		l := int(c.Len)
		if l < unix.SizeofCmsghdr || l > len(ctl) {
			break
		}
		data := ctl[unix.CmsgLen(0):l]
		switch {
		case c.Level == unix.IPPROTO_IP && c.Type == unix.IP_PKTINFO && len(data) >= unix.SizeofInet4Pktinfo:
			pi := (*unix.Inet4Pktinfo)(unsafe.Pointer(&data[0]))
			return netip.AddrFrom4(pi.Addr)
		case c.Level == unix.IPPROTO_IPV6 && c.Type == unix.IPV6_PKTINFO && len(data) >= unix.SizeofInet6Pktinfo:
			pi := (*unix.Inet6Pktinfo)(unsafe.Pointer(&data[0]))
			return netip.AddrFrom16(pi.Addr)
		}
		sp := unix.CmsgSpace(l - unix.CmsgLen(0))
		if sp > len(ctl) {
			break
		}
		ctl = ctl[sp:]
	}
	return p.local.Addr()
}

// Release implements port.Port.
func (p *Port) Release(rx []port.Packet) {
	for k := range rx {
		p.put(rx[k].Handle)
		rx[k].Payload = nil
	}
}

// Alloc implements port.Port.
func (p *Port) Alloc(tx []port.Packet) int {
	for k := range tx {
		i, ok := p.take()
		if !ok {
			return k
		}
		tx[k] = port.Packet{Payload: p.buf(i)[:0], Handle: uint64(i) + 1}
	}
	return len(tx)
}

// Transmit implements port.Port. It never waits: a full socket buffer drops
// the rest of the batch (counted as Unsent), as a full NIC ring would.
func (p *Port) Transmit(tx []port.Packet) (int, error) {
	if !p.enter() {
		for k := range tx {
			p.put(tx[k].Handle)
		}
		p.stats.unsent.Add(uint64(len(tx)))
		return 0, port.ErrClosed
	}
	defer p.exit()
	sent, unsent := 0, 0
	for start := 0; start < len(tx); start += p.batch {
		chunk := tx[start:min(start+p.batch, len(tx))]
		m := 0
		for k := range chunk {
			if p.fillSend(m, &chunk[k]) {
				m++
			} else {
				unsent++
			}
		}
		if m > 0 {
			s := p.send(m)
			sent += s
			unsent += m - s
		}
		for k := range chunk {
			p.put(chunk[k].Handle)
			chunk[k].Payload = nil
		}
	}
	if sent > 0 {
		p.stats.sent.Add(uint64(sent))
	}
	if unsent > 0 {
		p.stats.unsent.Add(uint64(unsent))
	}
	return sent, nil
}

// fillSend prepares sendmmsg slot m for pk; false means pk cannot be sent
// from this socket (no or wrong-family destination).
func (p *Port) fillSend(m int, pk *port.Packet) bool {
	dst := pk.Dst.Addr()
	if !p.v6 {
		dst = dst.Unmap()
	}
	if !dst.IsValid() || dst.Is6() != p.v6 || pk.Dst.Port() == 0 {
		return false
	}
	n := &p.snames[m]
	if p.v6 {
		*n = unix.RawSockaddrInet6{Family: unix.AF_INET6, Addr: dst.As16()}
		putPort(&n.Port, pk.Dst.Port())
	} else {
		n4 := (*unix.RawSockaddrInet4)(unsafe.Pointer(n))
		*n4 = unix.RawSockaddrInet4{Family: unix.AF_INET, Addr: dst.As4()}
		putPort(&n4.Port, pk.Dst.Port())
	}
	h := &p.smsgs[m].Hdr
	h.Namelen = unix.SizeofSockaddrInet4
	if p.v6 {
		h.Namelen = unix.SizeofSockaddrInet6
	}
	if len(pk.Payload) > 0 {
		p.siov[m].Base = &pk.Payload[0]
	} else {
		p.siov[m].Base = &p.arena[0] // a valid pointer for a zero-length datagram
	}
	p.siov[m].SetLen(len(pk.Payload))
	h.Control = nil
	h.SetControllen(0)
	if src := pk.Src.Addr(); p.pktinfo && src.IsValid() && !src.IsUnspecified() {
		p.putPktinfo(m, h, src)
	}
	return true
}

// putPktinfo makes the datagram leave from src (the address the request came
// to), which a wildcard-bound socket cannot otherwise choose.
func (p *Port) putPktinfo(m int, h *unix.Msghdr, src netip.Addr) {
	ctl := p.sctl[m*ctlSpace : (m+1)*ctlSpace]
	clear(ctl)
	c := (*unix.Cmsghdr)(unsafe.Pointer(&ctl[0]))
	data := unsafe.Pointer(&ctl[unix.CmsgLen(0)])
	if p.v6 {
		c.Level, c.Type = unix.IPPROTO_IPV6, unix.IPV6_PKTINFO
		c.SetLen(unix.CmsgLen(unix.SizeofInet6Pktinfo))
		(*unix.Inet6Pktinfo)(data).Addr = src.As16()
		h.SetControllen(unix.CmsgSpace(unix.SizeofInet6Pktinfo))
	} else {
		src = src.Unmap()
		if !src.Is4() {
			return
		}
		c.Level, c.Type = unix.IPPROTO_IP, unix.IP_PKTINFO
		c.SetLen(unix.CmsgLen(unix.SizeofInet4Pktinfo))
		(*unix.Inet4Pktinfo)(data).Spec_dst = src.As4()
		h.SetControllen(unix.CmsgSpace(unix.SizeofInet4Pktinfo))
	}
	h.Control = &ctl[0]
}

// send is sendmmsg of the first m prepared datagrams, non-blocking (a raw
// syscall, as recv). It never waits: a worker must not stall on a full
// socket buffer. A datagram the kernel refuses (EMSGSIZE, an unreachable
// destination) is skipped so that it does not block the rest of the batch.
func (p *Port) send(m int) int {
	off, sent := 0, 0
	for off < m {
		r, _, e := unix.RawSyscall6(unix.SYS_SENDMMSG, uintptr(p.fd), uintptr(unsafe.Pointer(&p.smsgs[off])),
			uintptr(m-off), unix.MSG_DONTWAIT, 0, 0)
		switch e {
		case 0:
			if r == 0 {
				return sent
			}
			sent += int(r)
			off += int(r)
		case unix.EINTR:
		case unix.EAGAIN:
			return sent
		default:
			// Skip the refused datagram; it counts as unsent.
			off++
		}
	}
	return sent
}

// Close implements port.Port: a Wait in progress returns at once and the
// next call reports ErrClosed. The descriptors are closed when no call is
// in progress any more. Buffers still held by the worker stay valid memory
// until it drops them.
func (p *Port) Close() error {
	if p.closed.Swap(true) {
		return nil
	}
	p.users.Add(1)
	one := [8]byte{1}
	unix.Write(p.efd, one[:])
	p.exit()
	return nil
}

func putPort(dst *uint16, port uint16) {
	b := (*[2]byte)(unsafe.Pointer(dst))
	b[0], b[1] = byte(port>>8), byte(port)
}

func sockaddrToAddrPort(sa *unix.RawSockaddrInet6) netip.AddrPort {
	switch sa.Family {
	case unix.AF_INET:
		s4 := (*unix.RawSockaddrInet4)(unsafe.Pointer(sa))
		b := (*[2]byte)(unsafe.Pointer(&s4.Port))
		return netip.AddrPortFrom(netip.AddrFrom4(s4.Addr), uint16(b[0])<<8|uint16(b[1]))
	case unix.AF_INET6:
		b := (*[2]byte)(unsafe.Pointer(&sa.Port))
		return netip.AddrPortFrom(netip.AddrFrom16(sa.Addr), uint16(b[0])<<8|uint16(b[1]))
	}
	return netip.AddrPort{}
}

func netInterfaceIndex(name string) (int, error) {
	ifi, err := net.InterfaceByName(name)
	if err != nil {
		return 0, err
	}
	return ifi.Index, nil
}
