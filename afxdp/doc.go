// Package afxdp owns the kernel fast path: AF_XDP sockets and their UMEM,
// the XDP program (assembled at start-up with cilium/ebpf's asm package, no
// clang, no committed objects) with its maps (SIP ports, banned sources,
// XSKMAP, per-CPU counters), L2/L3/L4 frame decode/encode and next-hop
// neighbour lookup.
//
// afxdp must not import pipeline, sipcore or appliance: it moves frames and
// knows nothing of SIP. The pipeline's afxdp port adapts it.
package afxdp
