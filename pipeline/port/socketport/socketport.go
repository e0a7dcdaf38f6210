package socketport

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"sync/atomic"
	"syscall"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"

	"sipedge/pipeline/port"
)

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
	// BufSize is the size of each buffer, the largest datagram received or
	// sent (default 2048, at most 65535). Longer datagrams are dropped and
	// counted as truncated.
	BufSize int
	// Batch is the most datagrams one recvmmsg or sendmmsg moves (default 64).
	Batch int
	// PollInterval bounds how long Receive waits when nothing arrives
	// (default 100ms).
	PollInterval time.Duration
	// RecvBuffer is the socket receive buffer in bytes (SO_RCVBUFFORCE as
	// root, else SO_RCVBUF capped by net.core.rmem_max); 0 leaves the
	// kernel default.
	RecvBuffer int
}

// Stats are the port's counters since Open.
type Stats struct {
	Received  uint64 // datagrams delivered by Receive
	Sent      uint64 // datagrams the kernel accepted
	Unsent    uint64 // datagrams given to Transmit and not sent (bad destination, send error, full socket buffer)
	Truncated uint64 // datagrams longer than BufSize, dropped
	NoBuffer  uint64 // Receive calls that found the pool empty
	BadHandle uint64 // packets given back that were not out of this port's pool
}

// Port is a kernel UDP socket port for one worker goroutine. Only Close and
// Stats may be called from other goroutines.
type Port struct {
	conn     *net.UDPConn
	rc       syscall.RawConn
	local    netip.AddrPort
	v6       bool
	pktinfo  bool
	batch    int
	interval time.Duration
	deadline time.Time

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
	rwant  int
	rgot   int
	rerrno syscall.Errno
	recvFn func(fd uintptr) bool

	// sendmmsg state.
	smsgs  []unix.Mmsghdr
	siov   []unix.Iovec
	snames []unix.RawSockaddrInet6
	sctl   []byte
	swant  int
	ssent  int
	sendFn func(fd uintptr) bool

	closed atomic.Bool
	stats  struct {
		received, sent, unsent, truncated, noBuffer, badHandle atomic.Uint64
	}
}

var _ port.Port = (*Port)(nil)

// ctlSpace is the control buffer per message: one pktinfo of either family.
var ctlSpace = unix.CmsgSpace(unix.SizeofInet6Pktinfo)

// Open creates the socket (SO_REUSEPORT, so every worker may open one on the
// same Listen address) and preallocates everything the port uses.
func Open(cfg Config) (*Port, error) {
	if cfg.Buffers == 0 {
		cfg.Buffers = 1024
	}
	if cfg.BufSize == 0 {
		cfg.BufSize = 2048
	}
	if cfg.Batch == 0 {
		cfg.Batch = 64
	}
	if cfg.PollInterval == 0 {
		cfg.PollInterval = 100 * time.Millisecond
	}
	switch {
	case !cfg.Listen.Addr().IsValid():
		return nil, errors.New("socketport: no listen address; set [io] listen to an IP:port such as 0.0.0.0:5060")
	case cfg.BufSize < 512 || cfg.BufSize > 65535:
		return nil, fmt.Errorf("socketport: buffer size %d out of range; use 512..65535 bytes", cfg.BufSize)
	case cfg.Buffers < 1 || cfg.Batch < 1 || cfg.PollInterval < 0 || cfg.RecvBuffer < 0:
		return nil, fmt.Errorf("socketport: buffers %d, batch %d, poll interval %v, receive buffer %d: all must be positive",
			cfg.Buffers, cfg.Batch, cfg.PollInterval, cfg.RecvBuffer)
	case cfg.Buffers*cfg.BufSize > 1<<30:
		return nil, fmt.Errorf("socketport: %d buffers of %d bytes exceed 1 GiB; lower one of them", cfg.Buffers, cfg.BufSize)
	}
	addr := cfg.Listen.Addr().Unmap()
	p := &Port{
		v6:       addr.Is6(),
		pktinfo:  addr.IsUnspecified(),
		batch:    cfg.Batch,
		interval: cfg.PollInterval,
		bufSize:  cfg.BufSize,
	}
	network := "udp4"
	if p.v6 {
		network = "udp6"
	}
	var sockErr error
	lc := net.ListenConfig{Control: func(_, _ string, c syscall.RawConn) error {
		err := c.Control(func(fd uintptr) { sockErr = p.setOptions(int(fd), cfg.RecvBuffer) })
		if err != nil {
			return err
		}
		return sockErr
	}}
	laddr := netip.AddrPortFrom(addr.WithZone(cfg.Listen.Addr().Zone()), cfg.Listen.Port())
	pc, err := lc.ListenPacket(context.Background(), network, laddr.String())
	if err != nil {
		return nil, fmt.Errorf("socketport: listen on %v: %w (is the address local and the port free or opened by sipedge with SO_REUSEPORT?)", laddr, err)
	}
	p.conn = pc.(*net.UDPConn)
	p.local = p.conn.LocalAddr().(*net.UDPAddr).AddrPort()
	p.local = netip.AddrPortFrom(p.local.Addr().Unmap(), p.local.Port())
	if p.rc, err = p.conn.SyscallConn(); err != nil {
		p.conn.Close()
		return nil, fmt.Errorf("socketport: raw access to %v: %w", laddr, err)
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
	// Method values made once: passing them to RawConn costs nothing per call.
	p.recvFn = p.recv
	p.sendFn = p.send
	return p, nil
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

// Receive implements port.Port.
func (p *Port) Receive(rx []port.Packet) (int, error) {
	if p.closed.Load() {
		return 0, port.ErrClosed
	}
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
	// Refreshing the deadline only when less than half the interval is left
	// keeps the timer untouched while traffic flows; a wait still ends
	// within one interval.
	now := time.Now()
	if p.deadline.Sub(now) < p.interval/2 {
		p.deadline = now.Add(p.interval)
		if err := p.conn.SetReadDeadline(p.deadline); err != nil {
			p.giveBack(0, n)
			return 0, p.closedOr(err)
		}
	}
	p.rwant, p.rgot, p.rerrno = n, 0, 0
	err := p.rc.Read(p.recvFn)
	got := p.rgot
	if err == nil && p.rerrno != 0 {
		err = p.rerrno
	}
	out := 0
	for k := range got {
		m := &p.rmsgs[k]
		if m.Hdr.Flags&unix.MSG_TRUNC != 0 {
			p.stats.truncated.Add(1)
			p.put(uint64(p.rbuf[k]) + 1)
			continue
		}
		pk := &rx[out]
		pk.Payload = p.buf(p.rbuf[k])[:m.Len]
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
	p.stats.received.Add(uint64(out))
	if err != nil {
		if errors.Is(err, os.ErrDeadlineExceeded) {
			return out, nil
		}
		return out, p.closedOr(err)
	}
	return out, nil
}

func (p *Port) giveBack(from, to int) {
	for k := from; k < to; k++ {
		p.put(uint64(p.rbuf[k]) + 1)
	}
}

func (p *Port) closedOr(err error) error {
	if p.closed.Load() || errors.Is(err, net.ErrClosed) {
		return port.ErrClosed
	}
	return fmt.Errorf("socketport %v: %w", p.local, err)
}

// recv runs under RawConn.Read; returning false asks the netpoller to wait
// for readability (or the deadline).
func (p *Port) recv(fd uintptr) bool {
	for {
		r, _, e := unix.Syscall6(unix.SYS_RECVMMSG, fd, uintptr(unsafe.Pointer(&p.rmsgs[0])),
			uintptr(p.rwant), unix.MSG_DONTWAIT, 0, 0)
		switch e {
		case 0:
			p.rgot = int(r)
			return true
		case unix.EINTR:
			continue
		case unix.EAGAIN:
			return false
		}
		p.rerrno = e
		return true
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
	if p.closed.Load() {
		for k := range tx {
			p.put(tx[k].Handle)
		}
		p.stats.unsent.Add(uint64(len(tx)))
		return 0, port.ErrClosed
	}
	sent, unsent := 0, 0
	var lastErr error
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
			p.swant, p.ssent = m, 0
			if err := p.rc.Write(p.sendFn); err != nil {
				lastErr = err
				p.ssent = 0
			}
			sent += p.ssent
			unsent += m - p.ssent
		}
		for k := range chunk {
			p.put(chunk[k].Handle)
			chunk[k].Payload = nil
		}
	}
	p.stats.sent.Add(uint64(sent))
	p.stats.unsent.Add(uint64(unsent))
	if lastErr != nil {
		return sent, p.closedOr(lastErr)
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

// send runs under RawConn.Write. It never asks the netpoller to wait: a
// worker must not stall on a full socket buffer. A datagram the kernel
// refuses (EMSGSIZE, an unreachable destination) is skipped so that it does
// not block the rest of the batch.
func (p *Port) send(fd uintptr) bool {
	off := 0
	for off < p.swant {
		r, _, e := unix.Syscall6(unix.SYS_SENDMMSG, fd, uintptr(unsafe.Pointer(&p.smsgs[off])),
			uintptr(p.swant-off), unix.MSG_DONTWAIT, 0, 0)
		switch e {
		case 0:
			if r == 0 {
				return true
			}
			p.ssent += int(r)
			off += int(r)
		case unix.EINTR:
		case unix.EAGAIN:
			return true
		default:
			// Skip the refused datagram; it counts as unsent.
			off++
		}
	}
	return true
}

// Close implements port.Port: it closes the socket, which wakes a Receive
// blocked in another goroutine with ErrClosed. Buffers still held by the
// worker stay valid memory until it drops them.
func (p *Port) Close() error {
	if p.closed.Swap(true) {
		return nil
	}
	return p.conn.Close()
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
