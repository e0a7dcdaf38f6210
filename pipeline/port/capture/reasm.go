package capture

import (
	"encoding/binary"
	"net/netip"
)

// IP fragment reassembly for captures (RFC 791, RFC 8200 section 4.5).
// Up to maxPending datagrams are reassembled at once, keyed by addresses,
// protocol and identification; a new one beyond that evicts the oldest.
// Overlapping or duplicate fragments lose their datagram (RFC 5722 for
// IPv6; in IPv4 they are an attack more often than an accident). Every loss
// is counted, never kept: memory stays bounded by maxPending slots, each
// growing only to the largest datagram it held (maxDatagram at most), and a
// warm reassembler allocates nothing.
const (
	maxPending = 256
	// MaxDatagram is the largest IP payload a reassembled datagram carries
	// (the 16-bit length field), and the largest UDP datagram read.
	MaxDatagram = 65535
	blocks      = MaxDatagram/8 + 1
)

type pending struct {
	used     bool
	v6       bool
	src, dst netip.Addr
	id       uint32
	proto    byte
	age      uint64
	header   []byte // IP header of the first fragment (offset 0), rebuilt without fragment header
	data     []byte // payload space, grown on demand up to MaxDatagram
	have     [blocks/64 + 1]uint64
	got      int  // payload bytes received
	total    int  // payload length once the last fragment arrived, -1 before
	firstHdr bool // the offset-0 fragment arrived
}

type reassembler struct {
	p     [maxPending]*pending
	clock uint64
	out   []byte // the reassembled IP datagram, valid until the next add
}

// fragment describes one fragment; payload is its part of the datagram.
type fragment struct {
	v6       bool
	src, dst netip.Addr
	id       uint32
	offset   int
	more     bool
	proto    byte   // upper-layer protocol
	header   []byte // the fixed IP header, to rebuild the datagram
	payload  []byte
}

// add records f and returns the whole IP datagram once every fragment is
// in (valid until the next call), and how many datagrams were given up on
// (evicted, overlapping, oversized).
func (r *reassembler) add(f *fragment) (datagram []byte, lost int) {
	r.clock++
	if f.offset%8 != 0 || f.offset+len(f.payload) > MaxDatagram-len(f.header) || (f.more && len(f.payload)%8 != 0) {
		return nil, 1
	}
	var e *pending
	free, oldest := -1, -1
	for i, q := range r.p {
		if q == nil || !q.used {
			if free < 0 {
				free = i
			}
			continue
		}
		if q.v6 == f.v6 && q.id == f.id && q.proto == f.proto && q.src == f.src && q.dst == f.dst {
			e = q
			break
		}
		if oldest < 0 || q.age < r.p[oldest].age {
			oldest = i
		}
	}
	if e == nil {
		i := free
		if i < 0 {
			i = oldest
			lost++ // evicting an unfinished datagram
		}
		if r.p[i] == nil {
			r.p[i] = &pending{}
		}
		e = r.p[i]
		e.have = [len(e.have)]uint64{}
		e.used, e.v6, e.src, e.dst, e.id, e.proto = true, f.v6, f.src, f.dst, f.id, f.proto
		e.got, e.total, e.firstHdr = 0, -1, false
		e.header = e.header[:0]
	}
	e.age = r.clock
	end := f.offset + len(f.payload)
	if !f.more && e.total >= 0 {
		e.used = false // a second last fragment
		return nil, lost + 1
	}
	for b := f.offset / 8; b < (end+7)/8; b++ {
		if e.have[b/64]&(1<<(b%64)) != 0 {
			e.used = false // overlap or duplicate: give up on this datagram
			return nil, lost + 1
		}
		e.have[b/64] |= 1 << (b % 64)
	}
	if end > len(e.data) {
		e.data = grow(e.data, end)
	}
	copy(e.data[f.offset:], f.payload)
	e.got += len(f.payload)
	if f.offset == 0 {
		e.header = append(e.header[:0], f.header...)
		e.firstHdr = true
	}
	if !f.more {
		e.total = end
	}
	if e.total < 0 || e.got != e.total || !e.firstHdr {
		return nil, lost
	}
	e.used = false
	n := len(e.header) + e.total
	if cap(r.out) < n {
		r.out = make([]byte, MaxDatagram+60)
	}
	out := r.out[:n]
	copy(out, e.header)
	copy(out[len(e.header):], e.data[:e.total])
	if e.v6 {
		binary.BigEndian.PutUint16(out[4:6], uint16(e.total))
		out[6] = e.proto
	} else {
		binary.BigEndian.PutUint16(out[2:4], uint16(n))
		binary.BigEndian.PutUint16(out[6:8], 0)
	}
	return out, lost
}

// grow returns b with at least n bytes, keeping its content; capacity
// doubles so that a slot settles after a few datagrams.
func grow(b []byte, n int) []byte {
	if n <= cap(b) {
		return b[:cap(b)]
	}
	c := min(max(n, 2*cap(b), 4096), MaxDatagram)
	nb := make([]byte, c)
	copy(nb, b)
	return nb
}

// drain forgets every unfinished datagram and returns how many there were.
func (r *reassembler) drain() int {
	n := 0
	for _, q := range r.p {
		if q != nil && q.used {
			q.used = false
			n++
		}
	}
	return n
}

// parseFragment reads a fragment out of an IP packet ip; ok is false when
// ip is not a fragment.
func parseFragment(ip []byte, f *fragment) bool {
	if len(ip) < 20 {
		return false
	}
	switch ip[0] >> 4 {
	case 4:
		ihl := int(ip[0]&0x0f) * 4
		total := int(binary.BigEndian.Uint16(ip[2:4]))
		if ihl < 20 || total < ihl || total > len(ip) {
			return false
		}
		fo := binary.BigEndian.Uint16(ip[6:8])
		if fo&0x3fff == 0 {
			return false // not a fragment (a datagram that is not UDP)
		}
		*f = fragment{
			src: netip.AddrFrom4([4]byte(ip[12:16])), dst: netip.AddrFrom4([4]byte(ip[16:20])),
			id: uint32(binary.BigEndian.Uint16(ip[4:6])), offset: int(fo&0x1fff) * 8, more: fo&0x2000 != 0,
			proto: ip[9], header: ip[:ihl], payload: ip[ihl:total],
		}
		return true
	case 6:
		if len(ip) < 40 {
			return false
		}
		end := 40 + int(binary.BigEndian.Uint16(ip[4:6]))
		if end > len(ip) {
			return false
		}
		// Walk the extension headers that may precede a Fragment header
		// (hop-by-hop, routing, destination options). The rebuilt datagram
		// keeps the fixed header only: what follows the fragment header is
		// the upper layer the decoder wants.
		next, off := ip[6], 40
		for next == 0 || next == 43 || next == 60 {
			if off+8 > end {
				return false
			}
			next, off = ip[off], off+8*(int(ip[off+1])+1)
		}
		if next != 44 || off+8 > end {
			return false
		}
		fh := ip[off : off+8]
		fo := binary.BigEndian.Uint16(fh[2:4])
		*f = fragment{
			v6:  true,
			src: netip.AddrFrom16([16]byte(ip[8:24])), dst: netip.AddrFrom16([16]byte(ip[24:40])),
			id: binary.BigEndian.Uint32(fh[4:8]), offset: int(fo>>3) * 8, more: fo&1 != 0,
			proto: fh[0], header: ip[:40], payload: ip[off+8 : end],
		}
		return true
	}
	return false
}
