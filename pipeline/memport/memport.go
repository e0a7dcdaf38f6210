package memport

import (
	"fmt"
	"io"
	"net/netip"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"

	"sipedge/pipeline/port"
)

// Datagram is one captured transmission.
type Datagram struct {
	Payload  []byte
	Src, Dst netip.AddrPort
	HW       [6]byte
}

// Port is an in-memory port.Port for one worker goroutine. Fill In (and
// the options) before the worker starts; read Sent after it stopped.
type Port struct {
	// In are the datagrams Receive delivers, in order, each copied into a
	// port frame (Payload, Src, Dst, HW are used).
	In []Datagram
	// Cycle restarts In from the beginning when it is exhausted; otherwise
	// Receive returns io.EOF.
	Cycle bool
	// PerReceive caps the datagrams one Receive returns (0: len(rx)).
	PerReceive int
	// Sink, when set, sees every transmitted datagram (valid during the call
	// only) instead of it being appended to Sent.
	Sink func(p *port.Packet)
	// Sent captures transmitted datagrams (copies) when Sink is nil.
	Sent []Datagram
	// Unsent counts transmit buffers without a destination.
	Unsent int

	frames [][]byte
	free   []uint64
	pos    int
	closed atomic.Bool
}

// New returns a port with frames frames of frameSize bytes shared by
// receive and transmit.
func New(frames, frameSize int) *Port {
	p := &Port{frames: make([][]byte, frames), free: make([]uint64, 0, frames)}
	mem := make([]byte, frames*frameSize)
	for i := range p.frames {
		p.frames[i] = mem[i*frameSize : (i+1)*frameSize : (i+1)*frameSize]
		p.free = append(p.free, uint64(i))
	}
	return p
}

// Name implements port.Port.
func (p *Port) Name() string { return "memport" }

func (p *Port) take() (uint64, bool) {
	n := len(p.free)
	if n == 0 {
		return 0, false
	}
	h := p.free[n-1]
	p.free = p.free[:n-1]
	return h, true
}

func (p *Port) give(h uint64) {
	if h >= uint64(len(p.frames)) || len(p.free) == cap(p.free) {
		panic(fmt.Sprintf("memport: frame %d given back twice or unknown", h))
	}
	p.free = append(p.free, h)
}

// Receive implements port.Port.
func (p *Port) Receive(rx []port.Packet) (int, error) {
	if p.closed.Load() {
		return 0, port.ErrClosed
	}
	max := len(rx)
	if p.PerReceive > 0 && p.PerReceive < max {
		max = p.PerReceive
	}
	n := 0
	for n < max {
		if p.pos == len(p.In) {
			if !p.Cycle || len(p.In) == 0 {
				break
			}
			p.pos = 0
		}
		h, ok := p.take()
		if !ok {
			break
		}
		d := &p.In[p.pos]
		p.pos++
		f := p.frames[h]
		rx[n] = port.Packet{Payload: f[:copy(f, d.Payload)], Src: d.Src, Dst: d.Dst, HW: d.HW, Handle: h}
		n++
	}
	if n == 0 && p.pos == len(p.In) && !p.Cycle {
		return 0, io.EOF
	}
	return n, nil
}

// Wait implements port.Port: it returns at once while In has datagrams to
// deliver, else it sleeps on bell (if any) for at most timeout.
func (p *Port) Wait(timeout time.Duration, bell int) error {
	if p.closed.Load() {
		return port.ErrClosed
	}
	if p.pos < len(p.In) || (p.Cycle && len(p.In) > 0) {
		return nil
	}
	var fds [1]unix.PollFd
	n := 0
	if bell >= 0 {
		fds[0] = unix.PollFd{Fd: int32(bell), Events: unix.POLLIN}
		n = 1
	}
	_, err := port.Sleep(fds[:n], timeout)
	return err
}

// Release implements port.Port.
func (p *Port) Release(rx []port.Packet) {
	for i := range rx {
		p.give(rx[i].Handle)
	}
}

// Alloc implements port.Port.
func (p *Port) Alloc(tx []port.Packet) int {
	for i := range tx {
		h, ok := p.take()
		if !ok {
			return i
		}
		tx[i] = port.Packet{Payload: p.frames[h][:0], Handle: h}
	}
	return len(tx)
}

// Transmit implements port.Port.
func (p *Port) Transmit(tx []port.Packet) (int, error) {
	sent := 0
	for i := range tx {
		t := &tx[i]
		if t.Dst.IsValid() && len(t.Payload) > 0 {
			if p.Sink != nil {
				p.Sink(t)
			} else {
				p.Sent = append(p.Sent, Datagram{Payload: append([]byte(nil), t.Payload...), Src: t.Src, Dst: t.Dst, HW: t.HW})
			}
			sent++
		} else {
			p.Unsent++
		}
		p.give(t.Handle)
	}
	if p.closed.Load() {
		return sent, port.ErrClosed
	}
	return sent, nil
}

// Close implements port.Port.
func (p *Port) Close() error {
	p.closed.Store(true)
	return nil
}

// FramesInUse reports frames neither free nor released: after a worker
// stopped, anything above the one spare transmit buffer it may hold is a
// leak.
func (p *Port) FramesInUse() int { return len(p.frames) - len(p.free) }
