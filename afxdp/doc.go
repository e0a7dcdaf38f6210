// Package afxdp owns the kernel fast path: AF_XDP sockets and their UMEM,
// the XDP program (assembled at start-up with cilium/ebpf's asm package, no
// clang, no committed objects) with its maps (SIP ports, banned sources,
// XSKMAP, per-CPU counters), the socket port's ban filter (SocketBans: an
// eBPF socket filter over a banned map of the same form), L2/L3/L4 frame
// decode/encode and next-hop neighbour lookup. Bans drop SIP-port traffic
// only, in LRU maps pruned on expiry (PruneBans).
//
// afxdp must not import pipeline, sipcore or appliance: it moves frames and
// knows nothing of SIP. The pipeline's afxdp port adapts it.
//
// # What comes from where
//
// The XDP program (xdpprog.go) is written here as asm and loaded and
// attached with github.com/cilium/ebpf: maps, program load, and
// link.AttachXDP, a BPF link, so the program goes away with the process.
//
// The AF_XDP socket (socket.go, ring.go) is owned entirely here on
// golang.org/x/sys/unix (XDPUmemReg, SockaddrXDP, XDPMmapOffsets, raw
// get/setsockopt). From github.com/asavie/xdp v0.3.3 it takes the sound
// part: the ring descriptor type (Desc, struct xdp_desc). The rest of that
// library is what this package must do differently — it does not unmap its
// rings on Close (the queue stays busy until exit), reads ring indexes with
// plain loads, allocates per Receive, scans all frames per call, panics on
// sendto errors, has no XDP_USE_NEED_WAKEUP, and its program redirects ARP
// too and is attached by netlink, so it outlives the process.
//
// # Concurrency
//
// A Socket belongs to one worker goroutine: no locks, no allocation per
// call, ring indexes read and written with sync/atomic. Program's Ban,
// Unban, Bans, Counters and SetPorts are safe from any goroutine while
// traffic flows (each map update is one bpf syscall; the kernel side reads
// the maps under RCU).
//
// The program assumes a little- or big-endian host alike: network-order
// fields are compared against constants computed for the host's byte order.
//
// Frame encode/decode lives in afxdp/frame and neighbour lookup in
// afxdp/neigh; the veth test rig in afxdp/vethtest.
package afxdp
