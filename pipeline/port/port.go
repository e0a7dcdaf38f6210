package port

import (
	"errors"
	"net/netip"
	"time"
)

// ErrClosed is returned by Receive and Transmit once the port is closed.
var ErrClosed = errors.New("port: closed")

// ErrTransient wraps a receive or transmit error that does not make the
// port unusable (an ICMP error queued on a socket, a memory shortage): the
// worker counts it and goes on instead of stopping.
var ErrTransient = errors.New("transient, the port goes on")

// Packet is one UDP datagram moving through a Port. Its memory is owned by
// the port: a received packet is valid until it is released; a transmit
// buffer from Alloc belongs to the worker until it is passed to Transmit.
type Packet struct {
	// Payload is the UDP payload. On receive it aliases port memory. On
	// transmit it is a buffer from Alloc: write the datagram into
	// Payload[:cap] and reslice it to the bytes to send.
	Payload []byte
	// Src and Dst are the UDP endpoints. On receive Src is the remote peer
	// and Dst the local address it was sent to. On transmit Dst is required;
	// a zero Src lets the port choose its own address.
	Src, Dst netip.AddrPort
	// HW is the peer's link-layer address where the port has one: on
	// receive the frame's source MAC; on transmit, when non-zero, the
	// destination MAC to use (copy it from the received packet when replying
	// to its sender, so no neighbour lookup is needed).
	HW [6]byte
	// Handle is private to the port (a UMEM frame address, a buffer index).
	Handle uint64
	// Truncated (receive) says the datagram was longer than the port's
	// buffer and Payload holds only its start: the stages answer 513 when
	// they can read its Via there, instead of the datagram vanishing.
	Truncated bool
	// Passed is set by the worker on a received packet, before Release,
	// when the chain forwarded it: it passed every check (bans, limits,
	// signatures, relay rules). A port learns from such packets only
	// (xdpport: the source's MAC), never from what anyone could send.
	Passed bool
}

// Port is a batch datagram source and sink, used by exactly one worker
// goroutine. Implementations allocate nothing per packet after warm-up.
type Port interface {
	// Name says what the port is and the mode it runs in, for logs
	// ("afxdp eth0 queue 0 (copy, native)").
	Name() string
	// Receive fills rx with up to len(rx) datagrams and returns how many.
	// It never waits: 0, nil means nothing is there now (the worker then
	// spins or calls Wait, as its wait mode says). It returns io.EOF when a
	// finite source (a capture) is exhausted and ErrClosed after Close.
	Receive(rx []Packet) (int, error)
	// Wait blocks the calling thread in the kernel until Receive has
	// something to return, the descriptor bell (an eventfd of the worker;
	// -1 for none) is readable, Close is called, or timeout passes
	// (negative: no limit), whichever comes first. It must sleep on the
	// calling (pinned) thread itself, with a runtime-aware blocking
	// syscall (see Sleep), never through Go's netpoller: a netpoller wake
	// is a hand-off between OS threads per datagram. A port that always
	// has data (a capture) returns at once. Spurious returns are allowed.
	Wait(timeout time.Duration, bell int) error
	// Release gives received packets back to the port. Every received
	// packet is released exactly once, after its last use.
	Release(rx []Packet)
	// Alloc fills tx with empty transmit buffers (len 0, cap = the largest
	// payload the port can send) and returns how many it could provide.
	Alloc(tx []Packet) int
	// Transmit sends tx in order and returns how many went out. Every
	// buffer in tx goes back to the port, sent or not; unsent ones are
	// counted by the port.
	Transmit(tx []Packet) (int, error)
	// Close stops the port and releases its resources. It may be called
	// from another goroutine: a worker blocked in Wait returns at once and
	// its next Receive reports ErrClosed.
	Close() error
}

// LargeAllocator is a Port whose Alloc buffers (one frame of a ring) can
// be smaller than the largest datagram it serves. AllocLarge fills pk with
// a transmit buffer of capacity n or more from a small separate pool, for
// a message that may not fit an Alloc buffer; Transmit and the worker
// treat it like any other. False when n is more than the port carries or
// the pool is empty: the worker then keeps the Alloc buffer.
type LargeAllocator interface {
	AllocLarge(pk *Packet, n int) bool
}

// ReceiveWait is Receive that waits up to timeout for the first datagram,
// for tools and tests that read a port outside a worker.
func ReceiveWait(p Port, rx []Packet, timeout time.Duration) (int, error) {
	n, err := p.Receive(rx)
	if n > 0 || err != nil {
		return n, err
	}
	if err := p.Wait(timeout, -1); err != nil {
		return 0, err
	}
	return p.Receive(rx)
}
