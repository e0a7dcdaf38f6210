package pcapport

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"os"
	"sync/atomic"
	"time"

	"sipedge/afxdp/frame"
	"sipedge/pipeline/port"
	"sipedge/pipeline/port/capture"
)

// Config says where a pcap port reads and writes.
type Config struct {
	// Input is the capture to read (pcap or pcapng, told apart by magic).
	// InputReader, when set, is used instead of opening Input.
	Input       string
	InputReader io.Reader
	// Output receives a pcap (Ethernet link type) of every transmitted
	// datagram; nil discards them after building the frames (benchmarks).
	Output io.Writer
	// Loop, when > 0, loads the capture into memory once and replays it
	// Loop times before io.EOF, without I/O or allocation per packet.
	Loop int
	// Buffers is the number of receive and of transmit buffers (default 64
	// each); received packets not yet released hold one.
	Buffers int
	// Local is the source of transmitted datagrams whose Packet.Src is zero.
	Local netip.AddrPort
	// SrcMAC and DstMAC go into transmitted frames; a non-zero Packet.HW
	// overrides DstMAC.
	SrcMAC, DstMAC [6]byte
}

// Stats are the port's counters.
type Stats struct {
	Frames      uint64 // capture records read (once per record, even in loop mode)
	Received    uint64 // UDP datagrams delivered by Receive
	Skipped     uint64 // records that are not UDP over IP (ARP, TCP, ICMP, ...) or not decodable, and datagrams lost in reassembly (capture.Stats Skipped + Lost)
	Fragments   uint64 // IP fragments taken in by reassembly
	Reassembled uint64 // datagrams rebuilt from fragments
	Sent        uint64 // datagrams written to the output
	Unsent      uint64 // datagrams Transmit could not build or write
	BadHandle   uint64 // packets given back that were not out of this port's pools
}

// record is a datagram kept in the loop arena.
type record struct {
	off, n   uint32
	src, dst netip.AddrPort
	hw       [6]byte
	ts       int64
}

// Port is a capture-file Port for one worker goroutine.
type Port struct {
	name   string
	closer io.Closer

	// Streaming input (and, in loop mode, the loader).
	in  *capture.Reader
	eof bool

	// Loop input.
	loop    bool
	rounds  int
	arena   []byte
	records []record
	pos     int

	rxSize int
	rxBufs []byte
	rxFree []uint32
	rxUsed []bool

	txSize  int
	txBufs  []byte
	txFree  []uint32
	txUsed  []bool
	w       *capture.Writer
	local   netip.AddrPort
	srcMAC  [6]byte
	dstMAC  [6]byte
	lastTS  int64
	closed  atomic.Bool
	stats   Stats
	readErr error
}

var _ port.Port = (*Port)(nil)

// txHeadroom is where a transmit payload starts in its buffer: room for
// the largest header Encode writes (IPv6, no VLAN).
var txHeadroom = frame.Headroom(true, false)

// Open opens the capture and, with Loop, loads it whole.
func Open(cfg Config) (*Port, error) {
	if cfg.Buffers == 0 {
		cfg.Buffers = 64
	}
	if cfg.Buffers < 0 || cfg.Loop < 0 {
		return nil, fmt.Errorf("pcapport: buffers %d and loop %d must not be negative", cfg.Buffers, cfg.Loop)
	}
	p := &Port{local: cfg.Local, srcMAC: cfg.SrcMAC, dstMAC: cfg.DstMAC, rxSize: capture.MaxDatagram}
	in := cfg.InputReader
	p.name = "pcap reader"
	if in == nil {
		f, err := os.Open(cfg.Input)
		if err != nil {
			return nil, fmt.Errorf("pcapport: open capture: %w (set [io] files to a readable pcap or pcapng file)", err)
		}
		p.closer, in, p.name = f, f, "pcap "+cfg.Input
	}
	r, err := capture.NewReader(in, p.name)
	if err != nil {
		p.Close()
		return nil, fmt.Errorf("pcapport: %w", err)
	}
	p.in = r
	if cfg.Loop > 0 {
		if err := p.load(); err != nil {
			p.Close()
			return nil, fmt.Errorf("pcapport: %s: %w", p.name, err)
		}
		p.loop, p.rounds = true, cfg.Loop
		p.name += fmt.Sprintf(" (loop %d from memory, %d datagrams)", cfg.Loop, len(p.records))
	}
	p.rxBufs = make([]byte, cfg.Buffers*p.rxSize)
	p.rxFree, p.rxUsed = pool(cfg.Buffers)
	p.txSize = txHeadroom + frame.MaxUDPPayload
	p.txBufs = make([]byte, cfg.Buffers*p.txSize)
	p.txFree, p.txUsed = pool(cfg.Buffers)
	out := cfg.Output
	if out == nil {
		out = io.Discard
	}
	if p.w, err = capture.NewWriter(out); err != nil {
		p.Close()
		return nil, fmt.Errorf("pcapport: output: %w", err)
	}
	return p, nil
}

func pool(n int) ([]uint32, []bool) {
	free := make([]uint32, n)
	for i := range free {
		free[i] = uint32(n - 1 - i)
	}
	return free, make([]bool, n)
}

// read returns the next UDP datagram of the capture, skipping (and
// counting) everything else.
func (p *Port) read(d *capture.Datagram) error {
	err := p.in.Next(d)
	if err != nil && err != io.EOF {
		return fmt.Errorf("pcapport: %w", err)
	}
	return err
}

// load reads the whole capture into one contiguous arena.
func (p *Port) load() error {
	var d capture.Datagram
	var buf bytes.Buffer
	for {
		err := p.read(&d)
		if err == io.EOF {
			break
		}
		if err != nil {
			return err
		}
		p.records = append(p.records, record{off: uint32(buf.Len()), n: uint32(len(d.Payload)),
			src: d.Src, dst: d.Dst, hw: d.SrcMAC, ts: d.TS.UnixNano()})
		buf.Write(d.Payload)
	}
	if len(p.records) == 0 {
		return errors.New("no UDP datagram to loop over")
	}
	p.arena = buf.Bytes()
	return nil
}

// Name implements port.Port.
func (p *Port) Name() string { return p.name }

// Stats returns the counters. Call it from the worker's goroutine or after
// the worker stopped: the pcap port is a test and tool port, its counters
// are plain fields.
func (p *Port) Stats() Stats {
	s := p.stats
	rs := p.in.Stats()
	s.Frames, s.Skipped = rs.Records, rs.Skipped+rs.Lost
	s.Fragments, s.Reassembled = rs.Fragments, rs.Reassembled
	return s
}

// Wait implements port.Port: a capture always has its next datagram or its
// end, so there is nothing to wait for.
func (p *Port) Wait(time.Duration, int) error {
	if p.closed.Load() {
		return port.ErrClosed
	}
	return nil
}

// Receive implements port.Port. It never waits: a capture has its data or
// its end (io.EOF).
func (p *Port) Receive(rx []port.Packet) (int, error) {
	if p.closed.Load() {
		return 0, port.ErrClosed
	}
	if p.readErr != nil {
		return 0, p.readErr
	}
	n := 0
	for n < len(rx) && len(p.rxFree) > 0 {
		var d capture.Datagram
		var ts int64
		if p.loop {
			if p.pos == len(p.records) {
				p.rounds--
				if p.rounds == 0 {
					break
				}
				p.pos = 0
			}
			r := &p.records[p.pos]
			p.pos++
			d = capture.Datagram{Payload: p.arena[r.off : r.off+r.n], Src: r.src, Dst: r.dst, SrcMAC: r.hw}
			ts = r.ts
		} else {
			if p.eof {
				break
			}
			if err := p.read(&d); err != nil {
				if err != io.EOF {
					p.readErr = err
				}
				p.eof = true
				break
			}
			ts = d.TS.UnixNano()
		}
		i := p.rxFree[len(p.rxFree)-1]
		p.rxFree = p.rxFree[:len(p.rxFree)-1]
		p.rxUsed[i] = true
		// A copy keeps the capture (and the loop arena) intact whatever a
		// stage writes into a received payload, as real ports allow.
		b := p.rxBufs[int(i)*p.rxSize : int(i)*p.rxSize+len(d.Payload)]
		copy(b, d.Payload)
		// Handles are index+1: a zero Packet never frees buffer 0.
		rx[n] = port.Packet{Payload: b, Src: d.Src, Dst: d.Dst, HW: d.SrcMAC, Handle: uint64(i) + 1}
		if ts > p.lastTS {
			p.lastTS = ts
		}
		n++
	}
	p.stats.Received += uint64(n)
	if n == 0 {
		if p.readErr != nil {
			return 0, p.readErr
		}
		if p.eof || (p.loop && p.rounds == 0) {
			return 0, io.EOF
		}
	}
	return n, nil
}

// Release implements port.Port.
func (p *Port) Release(rx []port.Packet) {
	for k := range rx {
		h := rx[k].Handle - 1
		if rx[k].Handle == 0 || h >= uint64(len(p.rxUsed)) || !p.rxUsed[h] {
			p.stats.BadHandle++
			continue
		}
		p.rxUsed[h] = false
		p.rxFree = append(p.rxFree, uint32(h))
		rx[k].Payload = nil
	}
}

// Alloc implements port.Port. Payload capacity is the largest UDP payload.
func (p *Port) Alloc(tx []port.Packet) int {
	for k := range tx {
		if len(p.txFree) == 0 {
			return k
		}
		i := p.txFree[len(p.txFree)-1]
		p.txFree = p.txFree[:len(p.txFree)-1]
		p.txUsed[i] = true
		start := int(i)*p.txSize + txHeadroom
		tx[k] = port.Packet{Payload: p.txBufs[start : start : (int(i)+1)*p.txSize], Handle: uint64(i) + 1}
	}
	return len(tx)
}

// Transmit implements port.Port: each datagram becomes an Ethernet frame in
// the output capture, stamped with the time of the latest received packet
// (plus 1µs per frame, so that the output stays in order).
func (p *Port) Transmit(tx []port.Packet) (int, error) {
	sent := 0
	var werr error
	for k := range tx {
		pk := &tx[k]
		h := pk.Handle - 1
		if pk.Handle == 0 || h >= uint64(len(p.txUsed)) || !p.txUsed[h] {
			p.stats.BadHandle++
			p.stats.Unsent++
			continue
		}
		if !p.closed.Load() && werr == nil {
			ok, err := p.write(int(h), pk)
			if ok {
				sent++
			} else {
				p.stats.Unsent++
			}
			werr = err
		} else {
			p.stats.Unsent++
		}
		p.txUsed[h] = false
		p.txFree = append(p.txFree, uint32(h))
		pk.Payload = nil
	}
	p.stats.Sent += uint64(sent)
	if p.closed.Load() {
		return sent, port.ErrClosed
	}
	if werr != nil {
		return sent, fmt.Errorf("pcapport: write output capture: %w", werr)
	}
	return sent, nil
}

// write builds pk's frame and writes it. ok is false for a datagram that
// cannot be built (no address, mixed families, too long): counted, not an
// error. err is an output error, which stops the port.
func (p *Port) write(i int, pk *port.Packet) (ok bool, err error) {
	buf := p.txBufs[i*p.txSize : (i+1)*p.txSize]
	src := pk.Src
	if !src.Addr().IsValid() {
		src = p.local
	}
	h := frame.Header{SrcMAC: p.srcMAC, DstMAC: p.dstMAC, Src: src, Dst: pk.Dst}
	if pk.HW != ([6]byte{}) {
		h.DstMAC = pk.HW
	}
	hr := frame.Headroom(pk.Dst.Addr().Unmap().Is6(), false)
	// The builder wrote into the buffer from Alloc; anything else is copied
	// into place.
	if len(pk.Payload) > len(buf)-txHeadroom {
		return false, nil
	}
	payload := buf[txHeadroom : txHeadroom+len(pk.Payload)]
	if len(pk.Payload) > 0 && &pk.Payload[0] != &buf[txHeadroom] {
		copy(payload, pk.Payload)
	}
	n, err := frame.Encode(buf[txHeadroom-hr:], &h, len(pk.Payload))
	if err != nil {
		return false, nil
	}
	if p.lastTS == 0 {
		p.lastTS = 1
	}
	p.lastTS += int64(time.Microsecond)
	if err := p.w.WriteFrame(time.Unix(0, p.lastTS), buf[txHeadroom-hr:txHeadroom-hr+n]); err != nil {
		return false, err
	}
	return true, nil
}

// Close implements port.Port: it flushes the output and closes the input.
// Receive never blocks, so there is no worker to wake: call Close after the
// worker's last Transmit, or the output may miss its last frames.
func (p *Port) Close() error {
	if p.closed.Swap(true) {
		return nil
	}
	var err error
	if p.w != nil {
		err = p.w.Flush()
	}
	if p.closer != nil {
		if cerr := p.closer.Close(); err == nil {
			err = cerr
		}
	}
	return err
}
