package harness

import (
	"net/netip"

	"sipedge/afxdp/vethtest"
)

// newPair builds the veth pair of the afxdp runs: the host end carries the
// appliance (AF_XDP on its queue 0), the peer end sits in a namespace of
// its own and holds both the sipp UAC address (uacOf) and the sipp UAS
// address (uasOf), in a /29. They must differ: the appliance tells a
// backend's in-dialog request from a caller's by source address. IPv4
// only, with the peer's TX checksum offload off: full checksums on the
// wire, as a remote sender gives, so the AF_XDP port sees the frames as
// the peer built them. Close removes it all.
func newPair() (*vethtest.Pair, error) {
	return vethtest.Create(vethtest.Options{PeerV4Addrs: 2, IPv4Only: true})
}

// uacOf is the sipp UAC's address in a pair from newPair.
func uacOf(p *vethtest.Pair) netip.Addr { return p.PeerV4s[0] }

// uasOf is the sipp UAS's address in a pair from newPair.
func uasOf(p *vethtest.Pair) netip.Addr { return p.PeerV4s[1] }
