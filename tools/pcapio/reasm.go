package pcapio

import (
	"encoding/binary"
	"sort"
)

// IP fragment reassembly for captures (RFC 791 and RFC 8200 section 4.5).
// Overlapping fragments are refused (RFC 5722 for IPv6; for IPv4 they are
// an attack more often than an accident): the datagram is counted lost.

const (
	// maxPending bounds the datagrams being reassembled at once, so that a
	// capture full of orphan fragments cannot exhaust memory.
	maxPending = 256
	maxIPData  = 65535
)

type fragKey struct {
	v6       bool
	src, dst [16]byte
	id       uint32
	proto    uint8
}

type fragment struct {
	key  fragKey
	off  int
	more bool
	data []byte
}

type chunk struct {
	off  int
	data []byte
}

type pending struct {
	key    fragKey
	chunks []chunk
	total  int // -1 until the last fragment arrived
	seq    uint64
}

type reassembler struct {
	p   map[fragKey]*pending
	seq uint64
	out []byte
}

// parseFragment reads the fragment header of an IPv4 or IPv6 packet.
func parseFragment(ip []byte, f *fragment) bool {
	if len(ip) < 1 {
		return false
	}
	switch ip[0] >> 4 {
	case 4:
		if len(ip) < 20 {
			return false
		}
		ihl := int(ip[0]&0x0f) * 4
		total := int(binary.BigEndian.Uint16(ip[2:4]))
		if ihl < 20 || total < ihl || total > len(ip) {
			return false
		}
		fo := binary.BigEndian.Uint16(ip[6:8])
		if fo&0x3fff == 0 {
			return false // not a fragment (a non-UDP datagram)
		}
		f.key = fragKey{id: uint32(binary.BigEndian.Uint16(ip[4:6])), proto: ip[9]}
		copy(f.key.src[:4], ip[12:16])
		copy(f.key.dst[:4], ip[16:20])
		f.off = int(fo&0x1fff) * 8
		f.more = fo&0x2000 != 0
		f.data = ip[ihl:total]
		return true
	case 6:
		if len(ip) < 40 {
			return false
		}
		end := 40 + int(binary.BigEndian.Uint16(ip[4:6]))
		if end > len(ip) {
			return false
		}
		next, off := ip[6], 40
		// Walk the extension headers that may precede a Fragment header.
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
		f.key = fragKey{v6: true, id: binary.BigEndian.Uint32(fh[4:8]), proto: fh[0]}
		copy(f.key.src[:], ip[8:24])
		copy(f.key.dst[:], ip[24:40])
		f.off = int(fo>>3) * 8
		f.more = fo&1 != 0
		f.data = ip[off+8 : end]
		return true
	}
	return false
}

// add takes in one fragment. It returns the reassembled packet, rebuilt
// with a minimal IP header, when f completed one (valid until the next
// add), and how many datagrams were given up on.
func (r *reassembler) add(f *fragment) (whole []byte, lost int) {
	if r.p == nil {
		r.p = make(map[fragKey]*pending)
	}
	p := r.p[f.key]
	if p == nil {
		if len(r.p) >= maxPending {
			r.evictOldest()
			lost++
		}
		r.seq++
		p = &pending{key: f.key, total: -1, seq: r.seq}
		r.p[f.key] = p
	}
	if f.off+len(f.data) > maxIPData || (!f.more && p.total >= 0) {
		delete(r.p, f.key)
		return nil, lost + 1
	}
	p.chunks = append(p.chunks, chunk{f.off, append([]byte(nil), f.data...)})
	if !f.more {
		p.total = f.off + len(f.data)
	}
	if p.total < 0 {
		return nil, lost
	}
	sort.Slice(p.chunks, func(i, j int) bool { return p.chunks[i].off < p.chunks[j].off })
	at := 0
	for _, c := range p.chunks {
		if c.off != at {
			if c.off < at {
				delete(r.p, f.key) // overlap
				return nil, lost + 1
			}
			return nil, lost // a hole: wait for more
		}
		at += len(c.data)
	}
	if at != p.total {
		return nil, lost
	}
	delete(r.p, f.key)
	return r.build(p), lost
}

// build writes a fragment-free IP packet carrying p's data.
func (r *reassembler) build(p *pending) []byte {
	hl := 20
	if p.key.v6 {
		hl = 40
	}
	r.out = append(r.out[:0], make([]byte, hl)...)
	h := r.out
	if p.key.v6 {
		h[0] = 0x60
		binary.BigEndian.PutUint16(h[4:6], uint16(p.total))
		h[6] = p.key.proto
		h[7] = 64
		copy(h[8:24], p.key.src[:])
		copy(h[24:40], p.key.dst[:])
	} else {
		h[0] = 0x45
		binary.BigEndian.PutUint16(h[2:4], uint16(20+p.total))
		h[8] = 64
		h[9] = p.key.proto
		copy(h[12:16], p.key.src[:4])
		copy(h[16:20], p.key.dst[:4])
	}
	for _, c := range p.chunks {
		r.out = append(r.out, c.data...)
	}
	return r.out
}

func (r *reassembler) evictOldest() {
	var old *pending
	for _, p := range r.p {
		if old == nil || p.seq < old.seq {
			old = p
		}
	}
	if old != nil {
		delete(r.p, old.key)
	}
}

// drain forgets every incomplete datagram and returns how many there were.
func (r *reassembler) drain() int {
	n := len(r.p)
	clear(r.p)
	return n
}
