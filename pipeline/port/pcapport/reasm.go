package pcapport

import (
	"encoding/binary"
	"net/netip"
)

// Reassembly is deliberately simple: captures of SIP hold a few fragmented
// datagrams (large INVITEs), each usually in order. Up to maxPending
// datagrams are reassembled at once, keyed by addresses and identification;
// overlapping fragments or more than maxPending at once lose the datagram
// (counted as skipped), never memory or a panic.
const (
	maxPending  = 8
	maxDatagram = 65535
)

type pending struct {
	used     bool
	v6       bool
	src, dst netip.Addr
	id       uint32
	age      uint64
	header   []byte // IP header of the first fragment (offset 0), without the fragment header
	proto    byte   // upper-layer protocol
	data     []byte // maxDatagram bytes of payload space
	have     []bool // which 8-byte blocks arrived
	got      int    // payload bytes received
	total    int    // payload length, known once the last fragment arrived (-1 before)
	firstHdr bool
}

type reassembler struct {
	p     [maxPending]pending
	clock uint64
	out   []byte // the reassembled IP datagram, valid until the next call
}

// fragment describes one fragment; payload is its part of the datagram.
type fragment struct {
	v6       bool
	src, dst netip.Addr
	id       uint32
	offset   int
	more     bool
	proto    byte
	header   []byte // the unfragmentable header, to rebuild the datagram
	payload  []byte
}

// add records f and returns the whole IP datagram once every fragment is in,
// and whether the fragment was lost (eviction, overlap, oversize).
func (r *reassembler) add(f *fragment) (datagram []byte, lost bool) {
	r.clock++
	if f.offset%8 != 0 || f.offset+len(f.payload) > maxDatagram-len(f.header) || (f.more && len(f.payload)%8 != 0) {
		return nil, true
	}
	var e *pending
	oldest := -1
	for i := range r.p {
		q := &r.p[i]
		if q.used && q.v6 == f.v6 && q.id == f.id && q.src == f.src && q.dst == f.dst {
			e = q
			break
		}
		if oldest < 0 || !q.used || (r.p[oldest].used && q.age < r.p[oldest].age) {
			oldest = i
		}
	}
	if e == nil {
		e = &r.p[oldest]
		lost = e.used // evicting an unfinished datagram
		if e.data == nil {
			e.data = make([]byte, maxDatagram)
			e.have = make([]bool, maxDatagram/8+1)
		}
		clear(e.have)
		e.used, e.v6, e.src, e.dst, e.id = true, f.v6, f.src, f.dst, f.id
		e.got, e.total, e.firstHdr = 0, -1, false
		e.header = e.header[:0]
	}
	e.age = r.clock
	for b := f.offset / 8; b < (f.offset+len(f.payload)+7)/8; b++ {
		if e.have[b] {
			e.used = false // overlap or duplicate: give up on this datagram
			return nil, true
		}
		e.have[b] = true
	}
	copy(e.data[f.offset:], f.payload)
	e.got += len(f.payload)
	if f.offset == 0 {
		e.header = append(e.header[:0], f.header...)
		e.proto = f.proto
		e.firstHdr = true
	}
	if !f.more {
		e.total = f.offset + len(f.payload)
	}
	if e.total < 0 || e.got != e.total || !e.firstHdr {
		return nil, lost
	}
	e.used = false
	n := len(e.header) + e.total
	if cap(r.out) < n {
		r.out = make([]byte, maxDatagram+60)
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

// parseFragment reads a fragment out of an IP packet ip; ok is false when ip
// is not a fragment this reassembler handles.
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
			return false
		}
		*f = fragment{
			src: netip.AddrFrom4([4]byte(ip[12:16])), dst: netip.AddrFrom4([4]byte(ip[16:20])),
			id: uint32(binary.BigEndian.Uint16(ip[4:6])), offset: int(fo&0x1fff) * 8, more: fo&0x2000 != 0,
			proto: ip[9], header: ip[:ihl], payload: ip[ihl:total],
		}
		return true
	case 6:
		// Only a fragment header right after the fixed header: what IPv6
		// SIP captures carry.
		if len(ip) < 48 || ip[6] != 44 {
			return false
		}
		plen := int(binary.BigEndian.Uint16(ip[4:6]))
		if plen < 8 || 40+plen > len(ip) {
			return false
		}
		fh := ip[40:48]
		fo := binary.BigEndian.Uint16(fh[2:4])
		*f = fragment{
			v6:  true,
			src: netip.AddrFrom16([16]byte(ip[8:24])), dst: netip.AddrFrom16([16]byte(ip[24:40])),
			id: binary.BigEndian.Uint32(fh[4:8]), offset: int(fo>>3) * 8, more: fo&1 != 0,
			proto: fh[0], header: ip[:40], payload: ip[48 : 40+plen],
		}
		return true
	}
	return false
}
