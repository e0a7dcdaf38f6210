package sipcore

import (
	"encoding/binary"
	"math/bits"
)

// sipHash is a streaming SipHash-2-4 (Aumasson and Bernstein, 2012): a keyed
// 64-bit PRF that costs a few ns per call, where HMAC-SHA-256 would cost
// several hundred. Branches and To-tags are made and checked on every
// forwarded message, so the cheap PRF is the right tool; the secret key is
// what makes them unforgeable by peers. It lives on the stack: no allocation.
type sipHash struct {
	v0, v1, v2, v3 uint64
	tail           [8]byte
	ntail          int
	total          uint64
}

func (h *sipHash) init(k0, k1 uint64) {
	h.v0 = k0 ^ 0x736f6d6570736575
	h.v1 = k1 ^ 0x646f72616e646f6d
	h.v2 = k0 ^ 0x6c7967656e657261
	h.v3 = k1 ^ 0x7465646279746573
	h.ntail = 0
	h.total = 0
}

func (h *sipHash) round() {
	h.v0 += h.v1
	h.v1 = bits.RotateLeft64(h.v1, 13)
	h.v1 ^= h.v0
	h.v0 = bits.RotateLeft64(h.v0, 32)
	h.v2 += h.v3
	h.v3 = bits.RotateLeft64(h.v3, 16)
	h.v3 ^= h.v2
	h.v0 += h.v3
	h.v3 = bits.RotateLeft64(h.v3, 21)
	h.v3 ^= h.v0
	h.v2 += h.v1
	h.v1 = bits.RotateLeft64(h.v1, 17)
	h.v1 ^= h.v2
	h.v2 = bits.RotateLeft64(h.v2, 32)
}

func (h *sipHash) block(m uint64) {
	h.v3 ^= m
	h.round()
	h.round()
	h.v0 ^= m
}

func (h *sipHash) write(p []byte) {
	h.total += uint64(len(p))
	if h.ntail > 0 {
		n := copy(h.tail[h.ntail:], p)
		h.ntail += n
		p = p[n:]
		if h.ntail < 8 {
			return
		}
		h.block(binary.LittleEndian.Uint64(h.tail[:]))
		h.ntail = 0
	}
	for len(p) >= 8 {
		h.block(binary.LittleEndian.Uint64(p))
		p = p[8:]
	}
	h.ntail = copy(h.tail[:], p)
}

// writeByte feeds a separator so that adjacent fields cannot be shifted
// into one another ("ab"+"c" vs "a"+"bc").
func (h *sipHash) writeByte(c byte) {
	var b [1]byte
	b[0] = c
	h.write(b[:])
}

func (h *sipHash) writeUint64(v uint64) {
	var b [8]byte
	binary.LittleEndian.PutUint64(b[:], v)
	h.write(b[:])
}

func (h *sipHash) sum64() uint64 {
	var last [8]byte
	copy(last[:], h.tail[:h.ntail])
	last[7] = byte(h.total)
	h.block(binary.LittleEndian.Uint64(last[:]))
	h.v2 ^= 0xff
	h.round()
	h.round()
	h.round()
	h.round()
	return h.v0 ^ h.v1 ^ h.v2 ^ h.v3
}
