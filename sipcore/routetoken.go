package sipcore

import (
	"bytes"
	"net/netip"
)

// Route tokens. A request from the backend side is relayed only when it
// carries this node's Record-Route with a token the node signed when the
// dialog was set up: the token binds the Call-ID to the address the
// caller's INVITE was observed from, and the relay goes to that address.
// Without it, anyone who can put a backend's address on a datagram (a
// spoofed source) could have the node relay anything anywhere.
//
// The token is the URI parameter ";se-rt=" followed by the caller's address
// and port in hex and a 64-bit SipHash MAC over the Call-ID and that
// address, keyed by the cluster secret so that any node of the cluster
// accepts another's tokens: "c0000209-9c41-0123456789abcdef".

// routeTokenParam is the Record-Route URI parameter's name.
const routeTokenParam = "se-rt"

// maxRouteToken is the longest token value: an IPv6 address.
const maxRouteToken = 32 + 1 + 4 + 1 + 16

// CallHash is a keyed hash of a Call-ID: the same on every node holding
// the cluster secret, unpredictable to whoever chooses Call-IDs, so a
// flood cannot aim all its calls at one backend.
func (k *Key) CallHash(callID []byte) uint64 {
	var h sipHash
	h.init(k.k0, k.k1)
	h.writeByte('C')
	h.write(callID)
	return h.sum64()
}

func (k *Key) routeMAC(callID []byte, a netip.AddrPort) uint64 {
	var h sipHash
	h.init(k.k0, k.k1)
	h.writeByte('R')
	h.write(callID)
	h.writeByte(0)
	ip := a.Addr().Unmap().As16()
	h.write(ip[:])
	h.writeUint64(uint64(a.Port()))
	return h.sum64()
}

// putRouteToken writes the token value for a dialog of callID set up by a
// caller observed at a into b (at least maxRouteToken bytes) and returns
// its length.
func (k *Key) putRouteToken(b []byte, callID []byte, a netip.AddrPort) int {
	ip := a.Addr().Unmap()
	n := 0
	if ip.Is4() {
		v := ip.As4()
		for _, c := range v {
			putHex(b[n:], uint64(c), 2)
			n += 2
		}
	} else {
		v := ip.As16()
		for _, c := range v {
			putHex(b[n:], uint64(c), 2)
			n += 2
		}
	}
	b[n] = '-'
	putHex(b[n+1:], uint64(a.Port()), 4)
	b[n+5] = '-'
	putHex(b[n+6:], k.routeMAC(callID, a), 16)
	return n + 22
}

// RouteTokenResult says what a Route URI's token is worth.
type RouteTokenResult uint8

// Route token results.
const (
	// RouteTokenOK: the token is ours and binds this Call-ID.
	RouteTokenOK RouteTokenResult = iota
	// RouteTokenMissing: the URI has no se-rt parameter.
	RouteTokenMissing
	// RouteTokenBad: malformed, or not signed with our key for this Call-ID.
	RouteTokenBad
)

// RouteTarget checks the route token in URI u (a Route header of m, whose
// buffer it points into) against the Call-ID of m and returns the caller
// address it binds.
func (k *Key) RouteTarget(m *Msg, u *URI) (netip.AddrPort, RouteTokenResult) {
	v, ok := uriParam(m.B(u.Params), routeTokenParam)
	if !ok {
		return netip.AddrPort{}, RouteTokenMissing
	}
	var ipLen int
	switch len(v) {
	case 8 + 22:
		ipLen = 4
	case 32 + 22:
		ipLen = 16
	default:
		return netip.AddrPort{}, RouteTokenBad
	}
	var ipb [16]byte
	for i := 0; i < ipLen; i++ {
		x, ok := parseHex(v[2*i : 2*i+2])
		if !ok {
			return netip.AddrPort{}, RouteTokenBad
		}
		ipb[i] = byte(x)
	}
	p := 2 * ipLen
	port, ok1 := parseHex(v[p+1 : p+5])
	mac, ok2 := parseHex(v[p+6:])
	if !ok1 || !ok2 || v[p] != '-' || v[p+5] != '-' || port == 0 {
		return netip.AddrPort{}, RouteTokenBad
	}
	var ip netip.Addr
	if ipLen == 4 {
		ip = netip.AddrFrom4([4]byte(ipb[:4]))
	} else {
		ip = netip.AddrFrom16(ipb)
	}
	a := netip.AddrPortFrom(ip, uint16(port))
	if k.routeMAC(m.B(m.CallID), a) != mac {
		return netip.AddrPort{}, RouteTokenBad
	}
	return a, RouteTokenOK
}

// uriParam finds parameter name (lower case) in params (";"-separated,
// without the leading ';') and returns its value.
func uriParam(params []byte, name string) ([]byte, bool) {
	for len(params) > 0 {
		p := params
		if i := bytes.IndexByte(params, ';'); i >= 0 {
			p, params = params[:i], params[i+1:]
		} else {
			params = nil
		}
		n, v := p, []byte(nil)
		if i := bytes.IndexByte(p, '='); i >= 0 {
			n, v = p[:i], p[i+1:]
		}
		if len(n) == len(name) && eqLower(n, name) {
			return v, true
		}
	}
	return nil, false
}
