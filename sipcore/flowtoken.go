package sipcore

import (
	"encoding/binary"
	"net/netip"
)

// Flow tokens (RFC 5626 5.2 in spirit): the user part of the Route URI a
// node of the cluster puts on a request for a contact registered behind
// NAT through another node. The other node decodes the address the
// REGISTER came from and sends the request there, from the port the NAT
// binding is open towards. The MAC (same cluster Key as branches) keeps
// the token from turning an edge into an open relay.

// FlowTokenLen is the length of every flow token: 'f', the address (32
// hex digits, IPv4 mapped into IPv6), the port (4) and a MAC (16).
const FlowTokenLen = 1 + 32 + 4 + 16

// flowSep separates flow-token MACs from branch MACs made with the same key.
const flowSep = 0x666c6f77746f6b6e // "flowtokn"

func (k *Key) flowMAC(hi, lo uint64, port uint16) uint64 {
	return sipHash2(k.k0^flowSep, k.k1^uint64(port), hi, lo)
}

// AppendFlowToken appends the token naming a to dst.
func (k *Key) AppendFlowToken(dst []byte, a netip.AddrPort) []byte {
	ip := a.Addr().As16()
	hi, lo := binary.BigEndian.Uint64(ip[:8]), binary.BigEndian.Uint64(ip[8:])
	var b [FlowTokenLen]byte
	b[0] = 'f'
	putHex(b[1:17], hi, 16)
	putHex(b[17:33], lo, 16)
	putHex(b[33:37], uint64(a.Port()), 4)
	putHex(b[37:], k.flowMAC(hi, lo, a.Port()), 16)
	return append(dst, b[:]...)
}

// ParseFlowToken returns the address a token of this key names; false
// for anything else (another cluster's token, a forgery, a user name).
func (k *Key) ParseFlowToken(b []byte) (netip.AddrPort, bool) {
	if len(b) != FlowTokenLen || b[0] != 'f' {
		return netip.AddrPort{}, false
	}
	hi, ok1 := parseHex(b[1:17])
	lo, ok2 := parseHex(b[17:33])
	port, ok3 := parseHex(b[33:37])
	mac, ok4 := parseHex(b[37:])
	if !ok1 || !ok2 || !ok3 || !ok4 || mac != k.flowMAC(hi, lo, uint16(port)) {
		return netip.AddrPort{}, false
	}
	var ip [16]byte
	binary.BigEndian.PutUint64(ip[:8], hi)
	binary.BigEndian.PutUint64(ip[8:], lo)
	return netip.AddrPortFrom(netip.AddrFrom16(ip).Unmap(), uint16(port)), true
}
