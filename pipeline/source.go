package pipeline

import "net/netip"

// DefaultIPv6SourcePrefix is the IPv6 prefix length per-source limits
// count as one source by default: a /64 is one site's LAN, and a single
// host on it can send from any of its 2^64 addresses.
const DefaultIPv6SourcePrefix = 64

// SourceKey returns the address per-source state (rate limits, bans,
// parked lookups) is kept under for a: an IPv4 address (mapped or not) as
// itself, an IPv6 address cut to its first v6Bits bits (1 to 128; 0 means
// DefaultIPv6SourcePrefix), so that rotating through the addresses of one
// prefix does not multiply the limits. It allocates nothing.
func SourceKey(a netip.Addr, v6Bits int) netip.Addr {
	a = a.Unmap()
	if !a.Is6() {
		return a
	}
	if v6Bits <= 0 {
		v6Bits = DefaultIPv6SourcePrefix
	}
	if v6Bits >= 128 {
		return a.WithZone("")
	}
	p, err := a.WithZone("").Prefix(v6Bits)
	if err != nil {
		return a
	}
	return p.Addr()
}
