package xdpport

import (
	"fmt"
	"net/netip"

	"sipedge/afxdp/neigh"
)

// ForeignSources returns those of trusted (backends' addresses, trunks'
// networks) that the kernel routes through another interface than
// ifindex: a frame claiming one of them cannot have come in on this
// interface honestly. It asks the kernel (RTM_GETROUTE) once per entry,
// for the prefix's first address; call it at start and reload, never per
// packet. An address with no route at all is foreign too.
func ForeignSources(ifindex int, trusted []netip.Prefix) ([]netip.Prefix, error) {
	var out []netip.Prefix
	for _, p := range trusted {
		if !p.IsValid() {
			return nil, fmt.Errorf("xdpport: reverse-path check: %v is not a valid prefix", p)
		}
		p = p.Masked()
		oif, err := neigh.OutInterface(p.Addr())
		if err != nil || oif != ifindex {
			if p.Addr().Is4In6() && p.Bits() >= 96 {
				p = netip.PrefixFrom(p.Addr().Unmap(), p.Bits()-96)
			}
			out = append(out, p)
		}
	}
	return out, nil
}
