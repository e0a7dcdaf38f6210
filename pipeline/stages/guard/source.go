package guard

import (
	"net/netip"

	"sipedge/pipeline"
)

// sourceKey is the key of src's per-source state and bans: the address
// itself for IPv4, its prefix of Config.IPv6Prefix bits for IPv6, so that
// a host rotating through the addresses of its /64 is one source, not 2^64.
func (g *Guard) sourceKey(src netip.Addr) addrKey {
	return keyOf(pipeline.SourceKey(src, g.cfg.IPv6Prefix))
}
