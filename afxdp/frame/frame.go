package frame

import (
	"encoding/binary"
	"errors"
	"net/netip"
)

const (
	ethLen     = 14
	vlanLen    = 4
	ipv4MinLen = 20
	ipv6Len    = 40
	udpLen     = 8

	etherIPv4 = 0x0800
	etherIPv6 = 0x86DD
	etherVLAN = 0x8100

	protoUDP = 17

	// MaxUDPPayload is the largest UDP payload an IPv4 datagram without
	// options can carry (65535 - 20 - 8); IPv6 allows 65527 but a builder
	// sizing buffers for both uses this.
	MaxUDPPayload = 65535 - ipv4MinLen - udpLen
)

// Decode errors. They are static values so that a drop costs no allocation;
// callers count them by identity.
var (
	ErrTruncated     = errors.New("frame: truncated (shorter than its headers say)")
	ErrNotIP         = errors.New("frame: not IPv4 or IPv6 (ethertype or IP version)")
	ErrNotUDP        = errors.New("frame: not UDP (other protocol or IPv6 extension header)")
	ErrFragment      = errors.New("frame: IPv4 fragment (reassembly belongs to the kernel)")
	ErrBadIHL        = errors.New("frame: IPv4 header length (IHL) below 5 or beyond the packet")
	ErrBadIPLength   = errors.New("frame: IP total/payload length inconsistent with the frame")
	ErrUDPLength     = errors.New("frame: UDP length does not match the IP payload length")
	ErrFamilyMixed   = errors.New("frame: encode: source and destination are of different IP families; use two IPv4 or two IPv6 addresses")
	ErrShortBuffer   = errors.New("frame: encode: buffer too small for headers and payload; size frames for Headroom + payload")
	ErrPayloadTooBig = errors.New("frame: encode: payload exceeds the 65535-byte IP/UDP length; split or drop the message")
	ErrNoAddress     = errors.New("frame: encode: source or destination address missing")
)

// Frame is a decoded UDP frame. Slices alias the decoded buffer; nothing is
// copied except the fixed-size addresses.
type Frame struct {
	// DstMAC and SrcMAC are the Ethernet addresses (zero after DecodeIP).
	DstMAC, SrcMAC [6]byte
	// VLAN is the 802.1Q VLAN id when Tagged.
	VLAN   uint16
	Tagged bool
	// IPv6 tells the IP family of Src and Dst.
	IPv6 bool
	// Src and Dst are the IP addresses (built with AddrFrom4/AddrFrom16: no
	// allocation, never a zone).
	Src, Dst netip.Addr
	// SrcPort and DstPort are the UDP ports.
	SrcPort, DstPort uint16
	// TTL is the IPv4 TTL or IPv6 hop limit; TOS the IPv4 TOS / IPv6 traffic
	// class.
	TTL, TOS uint8
	// L3 and L4 are the offsets of the IP and UDP headers in the buffer.
	L3, L4 int
	// Payload is the UDP payload, aliasing the buffer.
	Payload []byte
}

// SrcAddrPort returns the UDP source endpoint.
func (f *Frame) SrcAddrPort() netip.AddrPort { return netip.AddrPortFrom(f.Src, f.SrcPort) }

// DstAddrPort returns the UDP destination endpoint.
func (f *Frame) DstAddrPort() netip.AddrPort { return netip.AddrPortFrom(f.Dst, f.DstPort) }

// Decode decodes an Ethernet frame (one optional 802.1Q tag) carrying UDP
// over IPv4 or IPv6 into f. Bytes after the IP datagram (Ethernet padding) are
// ignored. Checksums are not verified. On error f is partly filled and must
// not be used, except f.L3, set as soon as an IP header was found (for
// ErrFragment, ErrNotUDP and the length errors).
func Decode(b []byte, f *Frame) error {
	if len(b) < ethLen {
		return ErrTruncated
	}
	copy(f.DstMAC[:], b[0:6])
	copy(f.SrcMAC[:], b[6:12])
	et := binary.BigEndian.Uint16(b[12:14])
	off := ethLen
	f.Tagged, f.VLAN = false, 0
	if et == etherVLAN {
		if len(b) < ethLen+vlanLen {
			return ErrTruncated
		}
		f.Tagged = true
		f.VLAN = binary.BigEndian.Uint16(b[14:16]) & 0x0fff
		et = binary.BigEndian.Uint16(b[16:18])
		off += vlanLen
	}
	switch et {
	case etherIPv4:
		return decodeIPv4(b, off, f)
	case etherIPv6:
		return decodeIPv6(b, off, f)
	}
	return ErrNotIP
}

// DecodeIP decodes a bare IPv4 or IPv6 packet (raw-IP and Linux cooked
// captures), choosing the family from the version nibble. The MACs and VLAN
// of f are zeroed.
func DecodeIP(b []byte, f *Frame) error {
	f.DstMAC, f.SrcMAC = [6]byte{}, [6]byte{}
	f.Tagged, f.VLAN = false, 0
	if len(b) < 1 {
		return ErrTruncated
	}
	switch b[0] >> 4 {
	case 4:
		return decodeIPv4(b, 0, f)
	case 6:
		return decodeIPv6(b, 0, f)
	}
	return ErrNotIP
}

func decodeIPv4(b []byte, off int, f *Frame) error {
	if len(b) < off+ipv4MinLen {
		return ErrTruncated
	}
	ip := b[off:]
	if ip[0]>>4 != 4 {
		return ErrNotIP
	}
	// L3 is set before the checks below so that a caller that reassembles
	// fragments or walks extension headers (the pcap port) finds the header.
	f.L3 = off
	ihl := int(ip[0]&0x0f) * 4
	if ihl < ipv4MinLen {
		return ErrBadIHL
	}
	total := int(binary.BigEndian.Uint16(ip[2:4]))
	if ihl > total {
		return ErrBadIHL
	}
	if total > len(ip) {
		return ErrTruncated
	}
	// MF set or a non-zero offset: any piece of a fragmented datagram.
	if binary.BigEndian.Uint16(ip[6:8])&0x3fff != 0 {
		return ErrFragment
	}
	if ip[9] != protoUDP {
		return ErrNotUDP
	}
	f.IPv6 = false
	f.TOS = ip[1]
	f.TTL = ip[8]
	f.Src = netip.AddrFrom4([4]byte(ip[12:16]))
	f.Dst = netip.AddrFrom4([4]byte(ip[16:20]))
	return decodeUDP(b, off+ihl, off+total, f)
}

func decodeIPv6(b []byte, off int, f *Frame) error {
	if len(b) < off+ipv6Len {
		return ErrTruncated
	}
	ip := b[off:]
	if ip[0]>>4 != 6 {
		return ErrNotIP
	}
	f.L3 = off
	plen := int(binary.BigEndian.Uint16(ip[4:6]))
	if plen == 0 {
		// A jumbogram (RFC 2675) or garbage: neither is SIP over UDP.
		return ErrBadIPLength
	}
	if ipv6Len+plen > len(ip) {
		return ErrTruncated
	}
	if ip[6] != protoUDP {
		return ErrNotUDP
	}
	f.IPv6 = true
	f.TOS = ip[0]<<4 | ip[1]>>4
	f.TTL = ip[7]
	f.Src = netip.AddrFrom16([16]byte(ip[8:24]))
	f.Dst = netip.AddrFrom16([16]byte(ip[24:40]))
	return decodeUDP(b, off+ipv6Len, off+ipv6Len+plen, f)
}

// decodeUDP decodes the UDP header at l4; end is where the IP datagram ends.
func decodeUDP(b []byte, l4, end int, f *Frame) error {
	if end-l4 < udpLen {
		return ErrTruncated
	}
	u := b[l4:end]
	ulen := int(binary.BigEndian.Uint16(u[4:6]))
	if ulen != len(u) {
		return ErrUDPLength
	}
	f.SrcPort = binary.BigEndian.Uint16(u[0:2])
	f.DstPort = binary.BigEndian.Uint16(u[2:4])
	f.L4 = l4
	f.Payload = u[udpLen:ulen:ulen]
	return nil
}

// Header is what Encode writes in front of a payload.
type Header struct {
	// DstMAC and SrcMAC are the Ethernet addresses.
	DstMAC, SrcMAC [6]byte
	// VLAN is the 802.1Q VLAN id, written when Tagged.
	VLAN   uint16
	Tagged bool
	// Src and Dst are the UDP endpoints; both IPv4 or both IPv6 (an
	// IPv4-mapped IPv6 address counts as IPv4).
	Src, Dst netip.AddrPort
	// TTL is the IPv4 TTL / IPv6 hop limit; 0 means 64.
	TTL uint8
	// TOS is the IPv4 TOS / IPv6 traffic class (DSCP and ECN).
	TOS uint8
	// ID is the IPv4 identification. Encode sets DF, so 0 is valid
	// (RFC 6864, section 4.1).
	ID uint16
}

// Headroom returns the bytes Encode writes before the payload: the payload
// of a frame to encode starts at b[Headroom(ipv6, vlan):].
func Headroom(ipv6, vlan bool) int {
	n := ethLen + ipv4MinLen + udpLen
	if ipv6 {
		n = ethLen + ipv6Len + udpLen
	}
	if vlan {
		n += vlanLen
	}
	return n
}

// Encode writes Ethernet (+802.1Q), IPv4 or IPv6 and UDP headers into
// b[:Headroom] for the payload of payloadLen bytes already at
// b[Headroom:Headroom+payloadLen], computes the IPv4 header checksum and the
// full UDP checksum, and returns the frame length.
func Encode(b []byte, h *Header, payloadLen int) (int, error) {
	src, dst := h.Src.Addr().Unmap(), h.Dst.Addr().Unmap()
	if !src.IsValid() || !dst.IsValid() {
		return 0, ErrNoAddress
	}
	v6 := src.Is6()
	if v6 != dst.Is6() {
		return 0, ErrFamilyMixed
	}
	hr := Headroom(v6, h.Tagged)
	if payloadLen < 0 || payloadLen > MaxUDPPayload {
		return 0, ErrPayloadTooBig
	}
	n := hr + payloadLen
	if len(b) < n {
		return 0, ErrShortBuffer
	}
	copy(b[0:6], h.DstMAC[:])
	copy(b[6:12], h.SrcMAC[:])
	off := 12
	if h.Tagged {
		binary.BigEndian.PutUint16(b[12:14], etherVLAN)
		binary.BigEndian.PutUint16(b[14:16], h.VLAN&0x0fff)
		off = 16
	}
	ttl := h.TTL
	if ttl == 0 {
		ttl = 64
	}
	ulen := udpLen + payloadLen
	var l4 int
	var be uint64 // big-endian-lane sum of the pseudo-header addresses
	if v6 {
		binary.BigEndian.PutUint16(b[off:], etherIPv6)
		ip := b[off+2 : off+2+ipv6Len]
		binary.BigEndian.PutUint32(ip[0:4], 6<<28|uint32(h.TOS)<<20)
		binary.BigEndian.PutUint16(ip[4:6], uint16(ulen))
		ip[6] = protoUDP
		ip[7] = ttl
		s, d := src.As16(), dst.As16()
		copy(ip[8:24], s[:])
		copy(ip[24:40], d[:])
		be = addc(addc(binary.BigEndian.Uint64(s[:8]), binary.BigEndian.Uint64(s[8:])),
			addc(binary.BigEndian.Uint64(d[:8]), binary.BigEndian.Uint64(d[8:])))
		l4 = off + 2 + ipv6Len
	} else {
		binary.BigEndian.PutUint16(b[off:], etherIPv4)
		ip := b[off+2 : off+2+ipv4MinLen]
		ip[0] = 0x45
		ip[1] = h.TOS
		binary.BigEndian.PutUint16(ip[2:4], uint16(ipv4MinLen+ulen))
		binary.BigEndian.PutUint16(ip[4:6], h.ID)
		binary.BigEndian.PutUint16(ip[6:8], 0x4000) // DF, offset 0
		ip[8] = ttl
		ip[9] = protoUDP
		s, d := src.As4(), dst.As4()
		copy(ip[12:16], s[:])
		copy(ip[16:20], d[:])
		be = uint64(binary.BigEndian.Uint32(s[:])) + uint64(binary.BigEndian.Uint32(d[:]))
		// The header checksum is summed from the values, not re-read from
		// the bytes just stored: wide loads over fresh narrow stores stall
		// on store forwarding, which cost more than the sum itself.
		hs := be + 0x4500 + uint64(h.TOS) + uint64(ipv4MinLen+ulen) + uint64(h.ID) + 0x4000 +
			uint64(ttl)<<8 + protoUDP
		binary.BigEndian.PutUint16(ip[10:12], ^fold16(hs))
		l4 = off + 2 + ipv4MinLen
	}
	u := b[l4 : l4+ulen]
	binary.BigEndian.PutUint16(u[0:2], h.Src.Port())
	binary.BigEndian.PutUint16(u[2:4], h.Dst.Port())
	binary.BigEndian.PutUint16(u[4:6], uint16(ulen))
	u[6], u[7] = 0, 0
	// Pseudo-header and UDP header from their values, the payload from
	// memory (little-endian lanes, swapped by fold).
	be += protoUDP + 2*uint64(ulen) + uint64(h.Src.Port()) + uint64(h.Dst.Port())
	cs := ^fold16(addc(be, uint64(fold(sum(u[udpLen:], 0)))))
	if cs == 0 {
		// 0 means "no checksum" in IPv4 and is forbidden in IPv6 (RFC 768,
		// RFC 8200 8.1): the ones' complement equivalent is sent instead.
		cs = 0xffff
	}
	binary.BigEndian.PutUint16(u[6:8], cs)
	return n, nil
}
