package sipcore

import (
	"encoding/binary"
	"testing"
)

// The reference vectors of SipHash-2-4 (the paper's Appendix A): key
// 00 01 .. 0f, message 00 01 .. (n-1).
func TestSipHashVectors(t *testing.T) {
	var key [16]byte
	for i := range key {
		key[i] = byte(i)
	}
	k0, k1 := binary.LittleEndian.Uint64(key[:8]), binary.LittleEndian.Uint64(key[8:])
	msg := make([]byte, 64)
	for i := range msg {
		msg[i] = byte(i)
	}
	want := map[int]uint64{0: 0x726fdb47dd0e0e31, 15: 0xa129ca6149be45e5}
	for n, w := range want {
		var h sipHash
		h.init(k0, k1)
		h.write(msg[:n])
		if got := h.sum64(); got != w {
			t.Errorf("siphash(%d bytes) = %#x, want %#x", n, got, w)
		}
	}
	// Streaming in pieces gives the same sum as one write.
	for n := 0; n <= 64; n++ {
		var a, b sipHash
		a.init(k0, k1)
		a.write(msg[:n])
		b.init(k0, k1)
		for i := 0; i < n; i += 3 {
			b.write(msg[i:min(i+3, n)])
		}
		if a.sum64() != b.sum64() {
			t.Fatalf("streaming differs at %d bytes", n)
		}
	}
}

// sipHash2 is the two-word special case of the stream.
func TestSipHash2(t *testing.T) {
	for _, c := range [][4]uint64{{1, 2, 3, 4}, {0, 0, 0, 0}, {^uint64(0), 7, 1 << 63, 42}} {
		var h sipHash
		h.init(c[0], c[1])
		h.writeUint64(c[2])
		h.writeUint64(c[3])
		if got, want := sipHash2(c[0], c[1], c[2], c[3]), h.sum64(); got != want {
			t.Errorf("sipHash2%v = %#x, stream gives %#x", c, got, want)
		}
	}
}
