package xdpport

import (
	"errors"
	"fmt"
	"net/netip"
	"runtime"
	"sync/atomic"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"

	"sipedge/afxdp"
	"sipedge/afxdp/frame"
	"sipedge/pipeline/port"
)

// Neighbours resolves the link-layer address of the next hop towards dst.
// afxdp/neigh's Table satisfies it. Lookup is called on the worker's hot
// path: it must not block or allocate.
type Neighbours interface {
	Lookup(dst netip.Addr) (mac [6]byte, ok bool)
}

// FirmNeighbours is the optional part of Neighbours that tells the next
// hops the kernel holds firmly (reachable, permanent, no-ARP): those win
// over a MAC learnt from frames, which anyone on the link can forge.
type FirmNeighbours interface {
	Firm(dst netip.Addr) (mac [6]byte, ok bool)
}

// Config configures a Group: the interface's XDP program and every queue's
// port.
type Config struct {
	// Ports are the SIP UDP ports the XDP program redirects to the
	// sockets (required). The first is the source port of packets whose
	// Src has port 0.
	Ports []uint16
	// Addr4 and Addr6 are the source addresses of packets whose Src is
	// zero. Left zero, Open takes the interface's first global address of
	// that family; a family without one can only send with an explicit Src.
	Addr4, Addr6 netip.Addr
	// XDPMode is where the program attaches (auto, native, generic).
	XDPMode afxdp.XDPMode
	// BindMode is zero-copy, copy or auto (zero-copy, else copy).
	BindMode afxdp.BindMode
	// Socket sizes each queue's UMEM and rings. A zero FrameSize means
	// afxdp.DefaultConfig; Ifindex, Queue and BindMode are set by Open.
	Socket afxdp.Config
	// Batch is the most frames one Receive or one TX burst moves (default 64).
	Batch int
	// MaxMessage is the largest datagram served ([guard]
	// max_message_size; default DefaultMaxMessage): datagrams the kernel
	// reassembled are read into buffers of MaxMessage + LargeHeadroom, and
	// AllocLarge gives transmit buffers of that size, so messages above a
	// UMEM frame go through (by the slow-path sockets).
	MaxMessage int
	// IPv6BanPrefix is afxdp.ProgramConfig's: an IPv6 ban covers the
	// source's prefix of this many bits (the guard's ipv6_source_prefix).
	IPv6BanPrefix int
	// LargeBuffers is how many such buffers each way (receive, transmit)
	// a port holds (default 32).
	LargeBuffers int
	// BusyPoll asks the kernel for preferred busy polling on each AF_XDP
	// socket (SO_PREFER_BUSY_POLL, SO_BUSY_POLL, SO_BUSY_POLL_BUDGET; Linux
	// 5.11+): the worker's own receive calls then run the NIC queue's NAPI
	// instead of interrupts and softirq on another context. Where the kernel
	// refuses, the port falls back to interrupts and says so (BusyPolling,
	// Name).
	BusyPoll bool
	// BusyPollUsecs is SO_BUSY_POLL: how long one busy-poll may spin in the
	// kernel, in microseconds (default 20).
	BusyPollUsecs int
	// VLAN, when non-zero, is the 802.1Q id this port sends with and
	// expects on receive (frames of other VLANs are dropped and counted).
	VLAN uint16
	// Neighbours resolves next hops for packets sent without Packet.HW
	// that the port has not learnt from received frames. Nil means only
	// learnt peers and replies (HW set) go through the ring; other packets
	// take the slow path.
	Neighbours Neighbours
	// LearnEntries bounds the per-port table of (source IP -> source MAC)
	// learnt from received frames (default 4096, rounded up to a power of
	// two, at most 1<<20); negative turns learning off.
	LearnEntries int
	// LearnTTL is how long a learnt MAC is used without a new frame from
	// that IP (default 5m); after it the Neighbours table decides again.
	LearnTTL time.Duration
	// ForeignSources are trusted sources (backends, trunks) that are not
	// expected on this interface: the kernel routes them through another
	// one (ForeignSources builds the list). A frame claiming one of them
	// is spoofed and dropped (DecodeDrops.ReversePath): a reverse-path
	// check of our own, since XDP redirects before the kernel's rp_filter.
	ForeignSources []netip.Prefix
}

// DecodeDrops counts received frames that were not handed up, by reason.
type DecodeDrops struct {
	Truncated, NotIP, NotUDP, Fragment, BadIHL, BadIPLength, UDPLength uint64
	// VLAN: tagged with another VLAN than the port's (or untagged/tagged
	// against its configuration).
	VLAN uint64
	// NotSIPPort: UDP to a port that is not one of the SIP ports (the
	// program should never redirect those).
	NotSIPPort uint64
	// Other: any other decode error.
	Other uint64
	// TooLarge: a datagram the kernel reassembled (delivered to the slow
	// path socket) that is larger than a large buffer (Config.MaxMessage +
	// LargeHeadroom): handed up cut and marked Truncated, so that the
	// stages answer it 513; counted here as well.
	TooLarge uint64
	// SlowPathRead: reading a slow-path socket failed (an error the
	// socket had queued); no datagram is lost by it.
	SlowPathRead uint64
	// SlowPathOverflow: datagrams the kernel dropped because a slow-path
	// socket's receive buffer was full. The kernel reports them with the
	// next datagram read from that socket, so the count can lag.
	SlowPathOverflow uint64
	// ReversePath: a source in Config.ForeignSources (a backend or trunk
	// routed through another interface) arrived on this one: spoofed.
	ReversePath uint64
}

// Total is the sum of all reasons.
func (d DecodeDrops) Total() uint64 {
	return d.Truncated + d.NotIP + d.NotUDP + d.Fragment + d.BadIHL + d.BadIPLength + d.UDPLength + d.VLAN + d.NotSIPPort + d.Other + d.TooLarge + d.SlowPathRead + d.SlowPathOverflow + d.ReversePath
}

// TxDrops counts packets given to Transmit that did not go out, by reason.
type TxDrops struct {
	// NoDestination: Dst missing, port 0 or of a family the port has no
	// source address for; or Src and Dst of different families.
	NoDestination uint64
	// BadBuffer: a handle not from Alloc, or a payload larger than the frame.
	BadBuffer uint64
	// RingFull: the TX ring had no room (the kernel is not keeping up).
	RingFull uint64
	// SlowPathFailed: the kernel socket refused the datagram (no route,
	// full socket buffer, no socket for that source port or family).
	SlowPathFailed uint64
	// Closed: given to Transmit after Close.
	Closed uint64
}

// Total is the sum of all reasons.
func (d TxDrops) Total() uint64 {
	return d.NoDestination + d.BadBuffer + d.RingFull + d.SlowPathFailed + d.Closed
}

// Stats are a port's counters since Open.
type Stats struct {
	// Received is datagrams handed up by Receive, from both paths.
	Received uint64
	// SlowPathReceived is the part of Received read from the kernel UDP
	// sockets: SIP above the MTU, reassembled by the kernel.
	SlowPathReceived uint64
	// Drops are received frames released at once, by reason.
	Drops DecodeDrops
	// Transmitted is frames queued on the TX ring.
	Transmitted uint64
	// SlowPath is datagrams sent through the kernel UDP socket because the
	// next hop's MAC was unknown or the datagram exceeded the MTU, or to
	// keep order (SlowPathHeld).
	SlowPath uint64
	// SlowPathHeld is the part of SlowPath whose MAC was known but which
	// followed an earlier datagram to the same destination that the
	// kernel may still be holding (resolving its neighbour): sent through
	// the ring it could have overtaken it.
	SlowPathHeld uint64
	// Learnt is the part of Transmitted sent without Packet.HW to a MAC
	// learnt from the destination's own frames (not from Neighbours).
	Learnt uint64
	// LargeReceived is the part of SlowPathReceived longer than a UMEM
	// frame's payload room: messages only the large buffers carry.
	LargeReceived uint64
	// LargeSent is the part of SlowPath built in a large buffer
	// (AllocLarge): messages larger than a frame.
	LargeSent uint64
	// LargeNoBuffer counts AllocLarge calls that found the transmit pool
	// empty, and receive calls that left slow-path datagrams queued in the
	// kernel (read on a later call) for want of a free receive buffer.
	LargeNoBuffer uint64
	// TxDrops are datagrams not sent, by reason.
	TxDrops TxDrops
}

// decode drop reasons, indexes into Port.drops.
const (
	dropTruncated = iota
	dropNotIP
	dropNotUDP
	dropFragment
	dropBadIHL
	dropBadIPLength
	dropUDPLength
	dropVLAN
	dropNotSIPPort
	dropOther
	dropTooLarge
	dropSlowRead
	dropSlowOverflow
	dropReversePath
	dropCount
)

// tx drop reasons, indexes into Port.txDrops.
const (
	txNoDestination = iota
	txBadBuffer
	txRingFull
	txSlowFailed
	txClosed
	txDropCount
)

// Port life cycle (Port.state). The worker's calls move 0<->1; Close moves
// 0->2 or 1->3; the worker, leaving a call in 3 or entering one in 2, frees
// the port once it holds no frame (4). freeing (5) is Close freeing an idle
// port itself.
const (
	stOpen int32 = iota
	stBusy
	stClosing
	stClosingBusy
	stFreed
	stFreeing
)

// Port is the AF_XDP port of one queue, used by one worker goroutine. Only
// Close, Name and Stats may be called from other goroutines.
type Port struct {
	sock      *afxdp.Socket
	group     *Group
	queue     int
	name      string
	mac       [6]byte
	vlan      uint16
	tagged    bool
	mtu       int
	addr4     netip.Addr
	addr6     netip.Addr
	ports     []uint16
	neigh     Neighbours
	firm      FirmNeighbours                 // neigh, when it tells firm entries
	foreign   atomic.Pointer[[]netip.Prefix] // Config.ForeignSources; SetForeignSources replaces it, loaded once per receive
	busyPoll  bool
	headroom  int
	frameMask uint64

	rxd   []afxdp.Desc
	txd   []afxdp.Desc
	addrs []uint64
	// pfd polls the AF_XDP socket, the eventfd, then slow.rx in order, and
	// the worker's bell in its last slot.
	pfd  []unix.PollFd
	efd  int
	slow *slowPath
	// Slow-path reads: the socket to start at (round robin), whether a
	// socket was left unread for lack of room, and a call count that
	// makes a busy worker look at the sockets every slowEvery calls.
	slowNext    int
	slowPending bool
	calls       uint32

	// learn is the IP -> MAC table learnt from received frames; nil when
	// learning is off. epoch is the origin of clock().
	learn *learnTable
	epoch time.Time
	// largeIn and largeOut are the large buffers (large.go): slow-path
	// reads, and AllocLarge.
	largeIn, largeOut *largePool
	// tc is the state of the Transmit call in progress (worker only).
	tc txCall

	state atomic.Int32
	// Counters: written by the worker once per batch, read by Stats.
	received, slowReceived atomic.Uint64
	transmitted, slowSent  atomic.Uint64
	slowHeld, learnt       atomic.Uint64
	largeRx, largeTxd      atomic.Uint64
	largeNoBuf             atomic.Uint64
	drops                  [dropCount]atomic.Uint64
	txDrops                [txDropCount]atomic.Uint64
}

var _ port.Port = (*Port)(nil)

// Name says interface, queue, bind mode and XDP mode.
func (p *Port) Name() string { return p.name }

// BusyPolling reports whether the kernel granted preferred busy polling
// (Config.BusyPoll); Name says why not when it did not.
func (p *Port) BusyPolling() bool { return p.busyPoll }

// Queue is the NIC queue the port serves.
func (p *Port) Queue() int { return p.queue }

// BindMode is the mode the kernel granted the socket (copy or zerocopy).
func (p *Port) BindMode() afxdp.BindMode { return p.sock.BindMode() }

// Stats returns the counters; safe from any goroutine.
func (p *Port) Stats() Stats {
	d := func(i int) uint64 { return p.drops[i].Load() }
	t := func(i int) uint64 { return p.txDrops[i].Load() }
	return Stats{
		Received:         p.received.Load(),
		SlowPathReceived: p.slowReceived.Load(),
		Transmitted:      p.transmitted.Load(),
		SlowPath:         p.slowSent.Load(),
		SlowPathHeld:     p.slowHeld.Load(),
		Learnt:           p.learnt.Load(),
		LargeReceived:    p.largeRx.Load(),
		LargeSent:        p.largeTxd.Load(),
		LargeNoBuffer:    p.largeNoBuf.Load(),
		Drops: DecodeDrops{
			Truncated: d(dropTruncated), NotIP: d(dropNotIP), NotUDP: d(dropNotUDP), Fragment: d(dropFragment),
			BadIHL: d(dropBadIHL), BadIPLength: d(dropBadIPLength), UDPLength: d(dropUDPLength),
			VLAN: d(dropVLAN), NotSIPPort: d(dropNotSIPPort), Other: d(dropOther),
			TooLarge: d(dropTooLarge), SlowPathRead: d(dropSlowRead), SlowPathOverflow: d(dropSlowOverflow),
			ReversePath: d(dropReversePath),
		},
		TxDrops: TxDrops{NoDestination: t(txNoDestination), BadBuffer: t(txBadBuffer), RingFull: t(txRingFull), SlowPathFailed: t(txSlowFailed), Closed: t(txClosed)},
	}
}

// enter starts a worker call: true when the port is open; false when it is
// closing (the call then does its closed-port behaviour and calls exit) or
// already freed (the call does nothing and must not call exit).
func (p *Port) enter() (open, freed bool) {
	for {
		if p.state.CompareAndSwap(stOpen, stBusy) {
			return true, false
		}
		if p.state.CompareAndSwap(stClosing, stClosingBusy) {
			return false, false
		}
		switch p.state.Load() {
		case stFreed:
			return false, true
		case stFreeing:
			// Close is unmapping an idle port: microseconds.
			runtime.Gosched()
		}
	}
}

// exit ends a worker call. If Close came meanwhile, the port is freed once
// the worker holds no frame: memory it still holds must stay mapped.
func (p *Port) exit() {
	if p.state.CompareAndSwap(stBusy, stOpen) {
		return
	}
	if p.held() == 0 {
		p.free()
		p.state.Store(stFreed)
		return
	}
	p.state.Store(stClosing)
}

// held is the number of frames the worker holds (received or allocated).
func (p *Port) held() int {
	return p.sock.Frames() - p.sock.FreeFrames() - p.sock.KernelFrames()
}

// Close stops the port: its queue's traffic goes back to the kernel and a
// Receive blocked in another goroutine returns ErrClosed at once. The
// UMEM stays mapped while the worker holds frames (their payloads alias
// it); the port is freed when the worker has released them, or by
// Group.Close.
func (p *Port) Close() error {
	p.group.unregister(p.queue)
	for {
		switch s := p.state.Load(); s {
		case stOpen:
			if !p.state.CompareAndSwap(stOpen, stFreeing) {
				continue
			}
			// No call in progress, so the worker's counts are stable.
			if p.held() == 0 {
				p.free()
				p.state.Store(stFreed)
			} else {
				p.state.Store(stClosing)
			}
			p.wake()
			return nil
		case stBusy:
			if !p.state.CompareAndSwap(stBusy, stClosingBusy) {
				continue
			}
			p.wake()
			return nil
		default:
			return nil
		}
	}
}

// wake makes a poll in Receive return. The eventfd stays open until
// Group.Close, so a late wake never writes to a reused descriptor.
func (p *Port) wake() {
	one := [8]byte{1}
	unix.Write(p.efd, one[:])
}

// free closes the socket and the slow-path sockets and unmaps the UMEM.
func (p *Port) free() error {
	return errors.Join(p.sock.Close(), p.slow.close())
}

// forceFree frees a port whose worker has stopped, even if it still holds
// frames (Group.Close). It reports whether the port is freed.
func (p *Port) forceFree() bool {
	for {
		switch s := p.state.Load(); s {
		case stFreed:
			return true
		case stOpen, stClosing:
			if p.state.CompareAndSwap(s, stFreeing) {
				p.free()
				p.state.Store(stFreed)
				return true
			}
		default:
			return false
		}
	}
}

// Receive implements port.Port: it waits up to the poll interval for
// datagrams, decodes frames in place and hands up the UDP datagrams to a
// SIP port; other frames go straight back to the fill ring, counted by
// reason. It also reads the slow-path sockets, where the kernel delivers
// SIP it reassembled from IP fragments, into free frames.
func (p *Port) Receive(rx []port.Packet) (int, error) {
	open, freed := p.enter()
	if freed {
		return 0, port.ErrClosed
	}
	if !open {
		p.exit()
		return 0, port.ErrClosed
	}
	n, err := p.receive(rx)
	p.exit()
	return n, err
}

// slowEvery is how often (in Receive calls) a worker that never reaches
// poll, because the ring always has frames, reads the slow-path sockets
// anyway: each look costs a recvmsg per socket, so not every batch.
const slowEvery = 16

func (p *Port) receive(rx []port.Packet) (int, error) {
	want := min(len(rx), len(p.rxd))
	if want == 0 {
		return 0, nil
	}
	s := p.sock
	s.Complete()
	s.Fill()
	var drops [dropCount]uint32
	out, slow := 0, 0
	p.calls++
	if p.slowPending || p.calls%slowEvery == 0 {
		// A quarter of the batch at most, so a flood of fragments cannot
		// starve the ring.
		slow = p.drainSlow(rx[:max(1, want/4)], &drops)
		out = slow
	}
	out += p.receiveRing(rx[out:want], &drops)
	if out == 0 && p.busyPoll {
		// Preferred busy polling: this recvfrom runs the queue's NAPI in
		// the worker's context, which is how frames reach the ring when
		// interrupts are deferred.
		p.sock.BusyPoll()
		out = p.receiveRing(rx[:want], &drops)
	}
	p.count(&drops, out, slow)
	return out, nil
}

// Wait implements port.Port: ppoll on the AF_XDP socket (which also wakes
// the kernel's RX and TX processing where need_wakeup asks for it), the
// close eventfd, the slow-path sockets and bell, on the calling thread.
func (p *Port) Wait(timeout time.Duration, bell int) error {
	open, freed := p.enter()
	if freed {
		return port.ErrClosed
	}
	if !open {
		p.exit()
		return port.ErrClosed
	}
	defer p.exit()
	if p.sock.TxPending() > 0 {
		p.sock.Kick()
	}
	fds := p.pfd[:len(p.pfd)-1]
	if bell >= 0 {
		p.pfd[len(p.pfd)-1] = unix.PollFd{Fd: int32(bell), Events: unix.POLLIN}
		fds = p.pfd
	}
	if _, err := port.Sleep(fds, timeout); err != nil {
		return fmt.Errorf("xdpport %s: waiting for frames: %w", p.name, err)
	}
	for i := 2; i < len(p.pfd)-1; i++ {
		if p.pfd[i].Revents != 0 {
			p.slowPending = true
			break
		}
	}
	return nil
}

// count publishes one call's counters: once per batch, not per packet,
// because they are atomics that Stats reads from other goroutines.
func (p *Port) count(drops *[dropCount]uint32, received, slow int) {
	dropped := false
	for r, c := range drops {
		if c > 0 {
			p.drops[r].Add(uint64(c))
			dropped = true
		}
	}
	if dropped {
		p.sock.Fill()
	}
	if received > 0 {
		p.received.Add(uint64(received))
	}
	if slow > 0 {
		p.slowReceived.Add(uint64(slow))
	}
}

// receiveRing takes up to len(rx) frames off the RX ring and hands up the
// SIP datagrams among them; the others are released and counted in drops.
func (p *Port) receiveRing(rx []port.Packet, drops *[dropCount]uint32) int {
	if len(rx) == 0 {
		return 0
	}
	s := p.sock
	k := s.Receive(p.rxd[:len(rx)])
	if k == 0 {
		return 0
	}
	var foreign []netip.Prefix
	if f := p.foreign.Load(); f != nil {
		foreign = *f
	}
	out := 0
	for i := 0; i < k; i++ {
		d := p.rxd[i]
		r := p.decode(s.Frame(d), &rx[out])
		if r < 0 && len(foreign) > 0 && foreignSource(foreign, rx[out].Src.Addr()) {
			r = dropReversePath
		}
		if r >= 0 {
			drops[r]++
			s.ReleaseAddr(d.Addr)
			continue
		}
		rx[out].Handle, rx[out].Truncated = d.Addr, false
		rx[out].Passed = false
		out++
	}
	return out
}

// drainSlow reads up to len(rx) datagrams from the slow-path sockets, each
// into a large buffer (or a free frame when the port has none: see
// slowBuffer), Handle the buffer so Release frees it like a received
// frame, and returns how many it handed up. A socket left unread (no room
// in rx, no free buffer) is read first next call.
func (p *Port) drainSlow(rx []port.Packet, drops *[dropCount]uint32) int {
	socks := len(p.slow.rx)
	out, large := 0, 0
	p.slowPending = false
	// Published once per call, like the other counters.
	defer func() {
		if large > 0 {
			p.largeRx.Add(uint64(large))
		}
	}()
	for k := 0; k < socks; k++ {
		i := (p.slowNext + k) % socks
	read:
		for {
			if out == len(rx) {
				p.slowPending, p.slowNext = true, i
				return out
			}
			a, buf, ok := p.slowBuffer()
			if !ok {
				p.slowPending, p.slowNext = true, i
				p.largeNoBuf.Add(1)
				return out
			}
			res, lost := p.slow.recv(i, buf, &rx[out])
			drops[dropSlowOverflow] += lost
			switch res {
			case recvOK:
				rx[out].Handle, rx[out].HW = a, [6]byte{}
				if a&largeBit != 0 && len(rx[out].Payload) > int(p.frameMask)+1-p.headroom {
					large++
				}
				out++
				continue
			case recvTooLarge:
				// Handed up cut, marked: the stages answer 513 when
				// they can read its Via, and the count says why.
				drops[dropTooLarge]++
				rx[out].Handle, rx[out].HW = a, [6]byte{}
				out++
				continue
			case recvFailed:
				// Move on: the error is reported once and cleared, and
				// the next call reads this socket again.
				drops[dropSlowRead]++
			}
			p.release(a)
			break read
		}
	}
	// Every socket is empty: start at the next one next time, so no
	// socket is always read last.
	if socks > 0 {
		p.slowNext = (p.slowNext + 1) % socks
	}
	return out
}

// decode fills pk from frame b and returns -1, or the drop reason.
func (p *Port) decode(b []byte, pk *port.Packet) int {
	var f frame.Frame
	if err := frame.Decode(b, &f); err != nil {
		return dropReason(err)
	}
	if f.Tagged != p.tagged || f.VLAN != p.vlan {
		return dropVLAN
	}
	sip := false
	for _, sp := range p.ports {
		if f.DstPort == sp {
			sip = true
			break
		}
	}
	if !sip {
		return dropNotSIPPort
	}
	pk.Payload = f.Payload
	pk.Src = f.SrcAddrPort()
	pk.Dst = f.DstAddrPort()
	pk.HW = f.SrcMAC
	return -1
}

// foreignSource reports whether src is a trusted source the kernel routes
// through another interface (Config.ForeignSources): spoofed here.
func foreignSource(foreign []netip.Prefix, src netip.Addr) bool {
	for _, fp := range foreign {
		if fp.Contains(src.Unmap()) {
			return true
		}
	}
	return false
}

func dropReason(err error) int {
	switch err {
	case frame.ErrTruncated:
		return dropTruncated
	case frame.ErrNotIP:
		return dropNotIP
	case frame.ErrNotUDP:
		return dropNotUDP
	case frame.ErrFragment:
		return dropFragment
	case frame.ErrBadIHL:
		return dropBadIHL
	case frame.ErrBadIPLength:
		return dropBadIPLength
	case frame.ErrUDPLength:
		return dropUDPLength
	}
	return dropOther
}

// Release implements port.Port: the frames go back to the fill ring.
func (p *Port) Release(rx []port.Packet) {
	open, freed := p.enter()
	if freed {
		return
	}
	now := p.clock()
	for i := range rx {
		if p.learn != nil && rx[i].Passed {
			// Only what the chain forwarded (it passed the bans, limits
			// and relay rules), and every such frame, not only the
			// first: the newest observation wins, so a peer that moved
			// is followed at its next frame.
			p.learn.observe(rx[i].Src.Addr(), rx[i].HW, now)
		}
		p.release(rx[i].Handle)
		rx[i].Payload = nil
	}
	if open {
		p.sock.Fill()
	}
	p.exit()
}

// Alloc implements port.Port. Payload starts after the largest header set
// (Ethernet, 802.1Q, IPv6, UDP), so Transmit writes any packet's headers
// just before it without moving the payload.
func (p *Port) Alloc(tx []port.Packet) int {
	open, freed := p.enter()
	if freed {
		return 0
	}
	if !open {
		p.exit()
		return 0
	}
	s := p.sock
	done := 0
	for done < len(tx) {
		k := s.Alloc(p.addrs[:min(len(tx)-done, len(p.addrs))])
		for i := 0; i < k; i++ {
			buf := s.Buffer(p.addrs[i])
			tx[done+i] = port.Packet{Payload: buf[p.headroom:p.headroom], Handle: p.addrs[i]}
		}
		done += k
		if k < len(p.addrs) {
			break
		}
	}
	p.exit()
	return done
}

// Transmit implements port.Port. Each packet goes to Packet.HW when set
// (a reply to its sender), else to the MAC learnt from the destination's
// own frames, else to its next hop's MAC from Neighbours; when that is
// unknown, or the datagram exceeds the MTU, it goes through the port's
// kernel UDP socket (the kernel resolves the neighbour and fragments).
// Datagrams to a destination keep their order across the two paths (see
// the package doc). Every buffer goes back to the port, sent or not.
func (p *Port) Transmit(tx []port.Packet) (int, error) {
	open, freed := p.enter()
	if freed {
		return 0, port.ErrClosed
	}
	if !open {
		for i := range tx {
			p.release(tx[i].Handle)
			tx[i].Payload = nil
		}
		p.txDrops[txClosed].Add(uint64(len(tx)))
		p.exit()
		return 0, port.ErrClosed
	}
	n, err := p.transmit(tx)
	p.exit()
	return n, err
}

// txCall is one Transmit call's state, kept in the Port so that prepare,
// flush and slowSend share it without a closure.
type txCall struct {
	now   int64
	m     int // descriptors in p.txd not yet handed to the ring
	sent  int
	slow  int
	held  uint32
	learn uint32
	large uint32
	drops [txDropCount]uint32
	err   error
	// outq caches whether the slow-path sockets hold unsent datagrams:
	// outqUnknown until asked, and again after each slow-path send.
	outq int8
}

const (
	outqUnknown int8 = iota
	outqIdle
	outqBusy
)

// clock is the port's monotonic time in ns, never 0 (0 marks an empty
// learn slot).
func (p *Port) clock() int64 {
	return int64(time.Since(p.epoch)) + 1
}

func (p *Port) transmit(tx []port.Packet) (int, error) {
	s := p.sock
	s.Complete()
	p.tc = txCall{now: p.clock()}
	tc := &p.tc
	for i := range tx {
		pk := &tx[i]
		var d afxdp.Desc
		r := 0
		if pk.Handle&largeBit != 0 {
			r = p.prepareLarge(pk)
		} else {
			d, r = p.prepare(pk)
		}
		switch r {
		case -1:
			p.txd[tc.m] = d
			tc.m++
			if tc.m == len(p.txd) {
				p.flush()
			}
		case -2:
			tc.slow++
			p.release(pk.Handle)
		default:
			tc.drops[r]++
			p.release(pk.Handle)
		}
		pk.Payload = nil
	}
	p.flush()
	for r, c := range tc.drops {
		if c > 0 {
			p.txDrops[r].Add(uint64(c))
		}
	}
	if tc.sent > 0 {
		p.transmitted.Add(uint64(tc.sent))
	}
	if tc.slow > 0 {
		p.slowSent.Add(uint64(tc.slow))
	}
	if tc.held > 0 {
		p.slowHeld.Add(uint64(tc.held))
	}
	if tc.learn > 0 {
		p.learnt.Add(uint64(tc.learn))
	}
	if tc.large > 0 {
		p.largeTxd.Add(uint64(tc.large))
	}
	err := tc.err
	tc.err = nil
	return tc.sent + tc.slow, err
}

// flush hands the descriptors prepared so far to the TX ring (and kicks
// the kernel).
func (p *Port) flush() {
	tc := &p.tc
	if tc.m == 0 {
		return
	}
	q, err := p.sock.Transmit(p.txd[:tc.m])
	tc.sent += q
	tc.drops[txRingFull] += uint32(tc.m - q)
	if err != nil && tc.err == nil {
		tc.err = fmt.Errorf("xdpport %s: %w", p.name, err)
	}
	tc.m = 0
}

// prepare writes pk's headers in front of its payload and returns the TX
// descriptor and -1; -2 when it went out through the slow path; else the
// drop reason.
func (p *Port) prepare(pk *port.Packet) (afxdp.Desc, int) {
	base := pk.Handle &^ p.frameMask
	if base >= uint64(p.sock.Frames())*(p.frameMask+1) {
		return afxdp.Desc{}, txBadBuffer
	}
	buf := p.sock.Buffer(base)
	room := len(buf) - p.headroom
	pl := len(pk.Payload)
	if pl > room {
		return afxdp.Desc{}, txBadBuffer
	}
	if pl > 0 && unsafe.SliceData(pk.Payload) != &buf[p.headroom] {
		// The worker built the payload elsewhere (or appended past the
		// frame): bring it home.
		copy(buf[p.headroom:], pk.Payload)
	}
	srcAP, dstAP, r := p.endpoints(pk)
	if r >= 0 {
		return afxdp.Desc{}, r
	}
	dst, v6 := dstAP.Addr(), dstAP.Addr().Is6()
	payload := buf[p.headroom : p.headroom+pl]
	hr := frame.Headroom(v6, p.tagged)
	var e *learnEntry
	key := dst.As16()
	if p.learn != nil {
		e = p.learn.find(&key, p.tc.now)
	}
	mac := pk.HW
	fromLearn := false
	if mac == ([6]byte{}) {
		ok := false
		if p.firm != nil {
			// The kernel's confirmed or static entry wins over anything
			// learnt from frames.
			mac, ok = p.firm.Firm(dst)
		}
		switch {
		case ok:
		case e != nil && e.hasMAC && p.tc.now-e.seen < p.learn.ttl:
			// A MAC seen on the wire from dst within the TTL wins over
			// the rest of the neighbour snapshot (stale, probing): it is
			// at least as new.
			mac, ok, fromLearn = e.mac, true, true
		case p.neigh != nil:
			mac, ok = p.neigh.Lookup(dst)
		}
		if !ok {
			return afxdp.Desc{}, p.slowSend(e, &key, srcAP, dstAP, payload)
		}
	}
	// The MTU counts the IP packet, not the Ethernet (and VLAN) header.
	l2 := 14
	if p.tagged {
		l2 = 18
	}
	if hr-l2+pl > p.mtu {
		return afxdp.Desc{}, p.slowSend(e, &key, srcAP, dstAP, payload)
	}
	if e != nil && e.pending {
		if p.tc.now-e.slowAt < slowHold && p.slowBusy(dst) {
			p.tc.held++
			return afxdp.Desc{}, p.slowSend(e, &key, srcAP, dstAP, payload)
		}
		e.pending = false
	}
	h := frame.Header{DstMAC: mac, SrcMAC: p.mac, VLAN: p.vlan, Tagged: p.tagged, Src: srcAP, Dst: dstAP}
	off := p.headroom - hr
	n, err := frame.Encode(buf[off:], &h, pl)
	if err != nil {
		return afxdp.Desc{}, txBadBuffer
	}
	if fromLearn {
		p.tc.learn++
	}
	return afxdp.Desc{Addr: base + uint64(off), Len: uint32(n)}, -1
}

// endpoints are pk's source and destination as sent: the port's own
// address and first SIP port where pk leaves them zero; r is -1, or the
// drop reason.
func (p *Port) endpoints(pk *port.Packet) (src, dst netip.AddrPort, r int) {
	da := pk.Dst.Addr().Unmap()
	if !da.IsValid() || pk.Dst.Port() == 0 {
		return src, dst, txNoDestination
	}
	v6 := da.Is6()
	sa := pk.Src.Addr().Unmap()
	if !sa.IsValid() || sa.IsUnspecified() {
		sa = p.addr4
		if v6 {
			sa = p.addr6
		}
		if !sa.IsValid() {
			return src, dst, txNoDestination
		}
	}
	if sa.Is6() != v6 {
		return src, dst, txNoDestination
	}
	sport := pk.Src.Port()
	if sport == 0 {
		sport = p.ports[0]
	}
	return netip.AddrPortFrom(sa, sport), netip.AddrPortFrom(da, pk.Dst.Port()), -1
}

// slowBuffer is a buffer to read a slow-path datagram into: a large one
// when the port has them, else a free frame (payload at offset 0).
func (p *Port) slowBuffer() (uint64, []byte, bool) {
	if p.largeIn != nil {
		return p.largeIn.get()
	}
	if p.sock.Alloc(p.addrs[:1]) == 0 {
		return 0, nil, false
	}
	return p.addrs[0], p.sock.Buffer(p.addrs[0]), true
}

// slowBusy reports whether a datagram to dst sent through the ring now
// could overtake one the slow path sent earlier: the kernel still holds
// datagrams from the slow-path sockets (queued behind a neighbour
// resolution, or not yet transmitted) and dst's neighbour is not known to
// be resolved. The socket check is one ioctl per socket, made at most once
// per slow-path send in a Transmit call and only for marked destinations.
func (p *Port) slowBusy(dst netip.Addr) bool {
	if p.tc.outq == outqUnknown {
		p.tc.outq = outqIdle
		if p.slow.queued() {
			p.tc.outq = outqBusy
		}
	}
	if p.tc.outq == outqIdle {
		return false
	}
	// A neighbour the kernel has resolved does not hold datagrams back:
	// what is queued went to the device already (or is another
	// destination's).
	if p.neigh != nil {
		if _, ok := p.neigh.Lookup(dst); ok {
			return false
		}
	}
	return true
}

// slowSend sends through the kernel socket, after the ring datagrams
// prepared before it (so it does not overtake them), and marks dst so that
// later datagrams to it do not overtake it: -2 when it went, else the drop
// reason.
func (p *Port) slowSend(e *learnEntry, key *[16]byte, src, dst netip.AddrPort, payload []byte) int {
	p.flush()
	if !p.slow.send(src, dst, payload) {
		return txSlowFailed
	}
	p.tc.outq = outqUnknown
	if p.learn != nil {
		if e == nil {
			e = p.learn.slot(key, p.tc.now)
		}
		e.pending, e.slowAt = true, p.tc.now
	}
	return -2
}

// Frames reports the UMEM's frames: on the free list, held by the kernel
// (fill, RX, TX and completion rings) and in all. Worker goroutine only.
func (p *Port) Frames() (free, kernel, total int) {
	return p.sock.FreeFrames(), p.sock.KernelFrames(), p.sock.Frames()
}
