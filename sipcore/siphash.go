package sipcore

import (
	"encoding/binary"
	"math/bits"
)

// sipHash is a streaming SipHash-2-4 (Aumasson and Bernstein, 2012): a keyed
// 64-bit PRF that costs a few ns per call, where HMAC-SHA-256 would cost
// several hundred. Branches and To-tags are made and checked on every
// forwarded message, so the cheap PRF is the right tool; the secret key is
// what makes them unforgeable by peers.
//
// Callers feed many short fields; those are gathered in buf and compressed
// 8 bytes at a time with the state in registers, so a field costs a copy,
// not a call per block. It lives on the stack: no allocation.
type sipHash struct {
	v0, v1, v2, v3 uint64
	buf            [256]byte
	n              int // bytes pending in buf
	total          uint64
}

func (h *sipHash) init(k0, k1 uint64) {
	h.v0 = k0 ^ 0x736f6d6570736575
	h.v1 = k1 ^ 0x646f72616e646f6d
	h.v2 = k0 ^ 0x6c7967656e657261
	h.v3 = k1 ^ 0x7465646279746573
	h.n = 0
	h.total = 0
}

// sipRound is one SipRound; small enough to be inlined, so the four words
// stay in registers.
func sipRound(v0, v1, v2, v3 uint64) (uint64, uint64, uint64, uint64) {
	v0 += v1
	v1 = bits.RotateLeft64(v1, 13)
	v1 ^= v0
	v0 = bits.RotateLeft64(v0, 32)
	v2 += v3
	v3 = bits.RotateLeft64(v3, 16)
	v3 ^= v2
	v0 += v3
	v3 = bits.RotateLeft64(v3, 21)
	v3 ^= v0
	v2 += v1
	v1 = bits.RotateLeft64(v1, 17)
	v1 ^= v2
	v2 = bits.RotateLeft64(v2, 32)
	return v0, v1, v2, v3
}

// compress absorbs the whole 8-byte blocks of p and returns how many bytes
// it consumed.
func (h *sipHash) compress(p []byte) int {
	v0, v1, v2, v3 := h.v0, h.v1, h.v2, h.v3
	n := 0
	for ; len(p)-n >= 8; n += 8 {
		m := binary.LittleEndian.Uint64(p[n:])
		v3 ^= m
		v0, v1, v2, v3 = sipRound(v0, v1, v2, v3)
		v0, v1, v2, v3 = sipRound(v0, v1, v2, v3)
		v0 ^= m
	}
	h.v0, h.v1, h.v2, h.v3 = v0, v1, v2, v3
	return n
}

// flush compresses the whole blocks pending in buf, keeping the tail.
func (h *sipHash) flush() {
	done := h.compress(h.buf[:h.n])
	h.n = copy(h.buf[:], h.buf[done:h.n])
}

func (h *sipHash) write(p []byte) {
	h.total += uint64(len(p))
	for len(p) > 0 {
		c := copy(h.buf[h.n:], p)
		h.n += c
		p = p[c:]
		if h.n == len(h.buf) {
			h.flush()
		}
	}
}

// writeByte feeds a separator so that adjacent fields cannot be shifted
// into one another ("ab"+"c" vs "a"+"bc").
func (h *sipHash) writeByte(c byte) {
	if h.n == len(h.buf) {
		h.flush()
	}
	h.buf[h.n] = c
	h.n++
	h.total++
}

func (h *sipHash) writeUint64(v uint64) {
	if h.n+8 > len(h.buf) {
		h.flush()
	}
	binary.LittleEndian.PutUint64(h.buf[h.n:], v)
	h.n += 8
	h.total += 8
}

func (h *sipHash) sum64() uint64 {
	h.flush()
	var last [8]byte
	copy(last[:], h.buf[:h.n])
	last[7] = byte(h.total)
	m := binary.LittleEndian.Uint64(last[:])
	v0, v1, v2, v3 := h.v0, h.v1, h.v2, h.v3
	v3 ^= m
	v0, v1, v2, v3 = sipRound(v0, v1, v2, v3)
	v0, v1, v2, v3 = sipRound(v0, v1, v2, v3)
	v0 ^= m
	v2 ^= 0xff
	v0, v1, v2, v3 = sipRound(v0, v1, v2, v3)
	v0, v1, v2, v3 = sipRound(v0, v1, v2, v3)
	v0, v1, v2, v3 = sipRound(v0, v1, v2, v3)
	v0, v1, v2, v3 = sipRound(v0, v1, v2, v3)
	return v0 ^ v1 ^ v2 ^ v3
}

// sipHash2 is SipHash-2-4 of exactly two 64-bit words (16 bytes, as
// writeUint64 twice would give), entirely in registers: the branch MAC is
// computed on every forward and every response, and the buffered stream
// costs several times more for so little input.
func sipHash2(k0, k1, a, b uint64) uint64 {
	v0 := k0 ^ 0x736f6d6570736575
	v1 := k1 ^ 0x646f72616e646f6d
	v2 := k0 ^ 0x6c7967656e657261
	v3 := k1 ^ 0x7465646279746573
	for _, m := range [3]uint64{a, b, 16 << 56} {
		v3 ^= m
		v0, v1, v2, v3 = sipRound(v0, v1, v2, v3)
		v0, v1, v2, v3 = sipRound(v0, v1, v2, v3)
		v0 ^= m
	}
	v2 ^= 0xff
	v0, v1, v2, v3 = sipRound(v0, v1, v2, v3)
	v0, v1, v2, v3 = sipRound(v0, v1, v2, v3)
	v0, v1, v2, v3 = sipRound(v0, v1, v2, v3)
	v0, v1, v2, v3 = sipRound(v0, v1, v2, v3)
	return v0 ^ v1 ^ v2 ^ v3
}
