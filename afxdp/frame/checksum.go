package frame

import (
	"encoding/binary"
	"math/bits"
)

// sum adds b to acc in ones' complement and returns the unfolded 64-bit
// accumulator, in little-endian lane order.
//
// Why it looks like this: ones' complement addition is associative and
// commutative, so summing 64-bit words with end-around carry and folding at
// the end equals summing 16-bit words (RFC 1071, section 2). Loading the
// words little-endian (no byte swap on x86 and arm64) gives the byte-swapped
// sum, which one swap after the fold puts right ("byte order independence",
// same section). One add-with-carry chain over 64 bytes per iteration keeps
// the carry in the flags; this measured twice as fast as 32-bit lanes in
// independent accumulators. b must start on an even offset of the checksummed
// data; only the last piece may have an odd length (padded with a zero byte,
// as the RFC requires).
func sum(b []byte, acc uint64) uint64 {
	var c uint64
	for len(b) >= 64 {
		acc, c = bits.Add64(acc, binary.LittleEndian.Uint64(b[0:8]), c)
		acc, c = bits.Add64(acc, binary.LittleEndian.Uint64(b[8:16]), c)
		acc, c = bits.Add64(acc, binary.LittleEndian.Uint64(b[16:24]), c)
		acc, c = bits.Add64(acc, binary.LittleEndian.Uint64(b[24:32]), c)
		acc, c = bits.Add64(acc, binary.LittleEndian.Uint64(b[32:40]), c)
		acc, c = bits.Add64(acc, binary.LittleEndian.Uint64(b[40:48]), c)
		acc, c = bits.Add64(acc, binary.LittleEndian.Uint64(b[48:56]), c)
		acc, c = bits.Add64(acc, binary.LittleEndian.Uint64(b[56:64]), c)
		b = b[64:]
	}
	for len(b) >= 8 {
		acc, c = bits.Add64(acc, binary.LittleEndian.Uint64(b), c)
		b = b[8:]
	}
	acc = addc(acc, c)
	// The 0-7 byte tail becomes one more little-endian word, each byte in the
	// lane it would have had above.
	var tail uint64
	shift := uint(0)
	if len(b) >= 4 {
		tail = uint64(binary.LittleEndian.Uint32(b))
		b, shift = b[4:], 32
	}
	if len(b) >= 2 {
		tail |= uint64(binary.LittleEndian.Uint16(b)) << shift
		b, shift = b[2:], shift+16
	}
	if len(b) == 1 {
		tail |= uint64(b[0]) << shift
	}
	return addc(acc, tail)
}

// addc adds with end-around carry, the ones' complement addition on 64 bits.
func addc(a, b uint64) uint64 {
	s, c := bits.Add64(a, b, 0)
	return s + c
}

// fold16 reduces a 64-bit ones' complement accumulator to 16 bits, keeping
// its lane order.
func fold16(acc uint64) uint16 {
	a := (acc >> 32) + (acc & 0xffffffff)
	a = (a >> 32) + (a & 0xffffffff)
	a = (a >> 16) + (a & 0xffff)
	a = (a >> 16) + (a & 0xffff)
	return uint16(a)
}

// fold reduces a little-endian-lane accumulator from sum to the 16-bit
// big-endian ones' complement sum.
func fold(acc uint64) uint16 { return bits.ReverseBytes16(fold16(acc)) }

// Checksum returns the Internet checksum (RFC 1071) of b: the ones'
// complement of the ones' complement sum of its 16-bit big-endian words.
// A buffer that already holds a correct checksum field sums to 0.
func Checksum(b []byte) uint16 {
	return ^fold(sum(b, 0))
}

// pseudoSum is the ones' complement sum of the UDP pseudo-header (RFC 768
// for IPv4, RFC 8200 section 8.1 for IPv6) over the given address bytes,
// protocol 17 and the UDP length.
func pseudoSum(src, dst []byte, udpLen int) uint64 {
	return pseudoAddrs(sum(dst, sum(src, 0)), udpLen)
}

// pseudoAddrs completes a pseudo-header sum whose addresses are already in
// acc: in both IP headers source and destination are adjacent, so Encode
// sums them as one slice.
func pseudoAddrs(acc uint64, udpLen int) uint64 {
	// Protocol and length are separate 16-bit words in both families (the
	// IPv6 32-bit length and 24 zero bits sum the same for len < 65536);
	// swapped into the little-endian lanes sum works in.
	acc = addc(acc, uint64(bits.ReverseBytes16(protoUDP)))
	return addc(acc, uint64(bits.ReverseBytes16(uint16(udpLen))))
}

// UDPChecksum computes the checksum of the UDP segment udp (header and
// payload, with its checksum field as currently set) under the pseudo-header
// of src and dst. src and dst are 4 or 16 bytes each. A segment whose
// checksum field is correct yields 0; to fill the field, zero it first and
// store the result (sending a computed 0 as 0xffff).
func UDPChecksum(src, dst, udp []byte) uint16 {
	return ^fold(sum(udp, pseudoSum(src, dst, len(udp))))
}
