package xdpport

import "sipedge/pipeline/port"

// Large datagrams: SIP above a UMEM frame (a 7.5 KB INVITE) cannot live in
// one frame, and AF_XDP multi-buffer is not used, so such datagrams never
// touch the rings. They arrive IP-fragmented, are reassembled by the kernel
// for the slow-path sockets and are read into large buffers; a message
// built larger than a frame is built in a large buffer (AllocLarge) and
// sent through the slow-path socket, which fragments it. The buffers are
// Go memory in two fixed pools (receive and transmit, so a burst of large
// requests cannot take the buffers their forwards need), allocated at Open.

// largeBit marks a Packet.Handle as a large buffer: UMEM addresses stay far
// below it. largeTx tells the transmit pool's handles from the receive
// pool's; the low 32 bits are the buffer's index in its pool.
const (
	largeBit = 1 << 62
	largeTx  = 1 << 61
)

// DefaultMaxMessage is Config.MaxMessage's default, [guard]
// max_message_size's default.
const DefaultMaxMessage = 8192

// LargeHeadroom is how much larger than Config.MaxMessage a large buffer
// is: room for what forwarding adds (Via, Record-Route), and what makes a
// received datagram over MaxMessage visible as such (the guard answers it
// 513) rather than cut at exactly the limit.
const LargeHeadroom = 1024

// defaultLargeBuffers is each pool's default size: more than a batch's
// share of slow-path reads (a quarter of 64), and large messages are rare.
const defaultLargeBuffers = 32

// largePool is a fixed set of equal buffers with a free stack. Worker only.
type largePool struct {
	mem  []byte
	size int
	free []uint32
	tag  uint64 // largeBit, plus largeTx for the transmit pool
}

func newLargePool(n, size int, tag uint64) *largePool {
	l := &largePool{mem: make([]byte, n*size), size: size, free: make([]uint32, n), tag: tag}
	for i := range l.free {
		l.free[i] = uint32(n - 1 - i)
	}
	return l
}

// get takes a buffer: its handle and its full length, or false when none
// is free.
func (l *largePool) get() (uint64, []byte, bool) {
	if len(l.free) == 0 {
		return 0, nil, false
	}
	i := l.free[len(l.free)-1]
	l.free = l.free[:len(l.free)-1]
	return l.tag | uint64(i), l.buf(i), true
}

func (l *largePool) buf(i uint32) []byte {
	off := int(i) * l.size
	return l.mem[off : off+l.size : off+l.size]
}

// put gives buffer h back; a handle not of this pool, out of range, or a
// second release of a free buffer is refused (false) so that a bad handle
// cannot hand one buffer out twice.
func (l *largePool) put(h uint64) bool {
	i := uint32(h)
	if h&^0xffffffff != l.tag || int(i) >= cap(l.free) || len(l.free) == cap(l.free) {
		return false
	}
	l.free = append(l.free, i)
	return true
}

// lookup is the buffer of handle h, nil when h is not one of this pool's.
func (l *largePool) lookup(h uint64) []byte {
	i := uint32(h)
	if h&^0xffffffff != l.tag || int(i) >= cap(l.free) {
		return nil
	}
	return l.buf(i)
}

// AllocLarge implements port.LargeAllocator: a transmit buffer of at
// least n bytes (at most MaxMessage + LargeHeadroom) from the transmit
// pool. Transmit sends it through the slow-path socket: it is larger than
// a frame. False when n is larger, the pool is empty (counted in
// Stats.LargeNoBuffer) or the port is closed.
func (p *Port) AllocLarge(pk *port.Packet, n int) bool {
	if p.largeOut == nil || n > p.largeOut.size {
		return false
	}
	open, freed := p.enter()
	if freed {
		return false
	}
	ok := false
	if open {
		h, b, got := p.largeOut.get()
		if got {
			*pk = port.Packet{Payload: b[:0], Handle: h}
			ok = true
		} else {
			p.largeNoBuf.Add(1)
		}
	}
	p.exit()
	return ok
}

var _ port.LargeAllocator = (*Port)(nil)

// release gives back a received frame, a transmit frame or a large buffer.
func (p *Port) release(h uint64) {
	if h&largeBit == 0 {
		p.sock.ReleaseAddr(h)
		return
	}
	pool := p.largeIn
	if h&largeTx != 0 {
		pool = p.largeOut
	}
	if pool == nil || !pool.put(h) {
		p.txDrops[txBadBuffer].Add(1)
	}
}

// prepareLarge sends pk, built in a large transmit buffer, through the
// slow path (the kernel fragments it): -2 when it went, else the drop
// reason. A large buffer never goes through the ring: it is not UMEM.
func (p *Port) prepareLarge(pk *port.Packet) int {
	if p.largeOut == nil {
		return txBadBuffer
	}
	buf := p.largeOut.lookup(pk.Handle)
	pl := len(pk.Payload)
	if buf == nil || pl > len(buf) {
		return txBadBuffer
	}
	if pl > 0 && &pk.Payload[0] != &buf[0] {
		copy(buf, pk.Payload)
	}
	srcAP, dstAP, r := p.endpoints(pk)
	if r >= 0 {
		return r
	}
	var e *learnEntry
	key := dstAP.Addr().As16()
	if p.learn != nil {
		e = p.learn.find(&key, p.tc.now)
	}
	r = p.slowSend(e, &key, srcAP, dstAP, buf[:pl])
	if r == -2 {
		p.tc.large++
	}
	return r
}
