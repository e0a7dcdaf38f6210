// Package xdpport is the AF_XDP Port: one port per NIC queue, each over one
// AF_XDP socket (afxdp.Socket) with its own UMEM, fed by the XDP program that
// a Group loads and attaches once per interface.
//
// It owns: the Group (program attach, SIP ports, one socket per queue and
// its XSK map entry, orderly teardown), frame decode on receive (in place:
// payloads alias the UMEM) with drops counted by reason, transmit buffers
// carved from free UMEM frames with a fixed headroom so headers are written
// just before the payload, destination MAC choice, the slow path through a
// kernel UDP socket when no MAC is known (which also makes the kernel
// resolve it), the order of datagrams across the two paths, and the port's
// counters. Nothing is allocated and no lock is taken per packet.
//
// Destination MAC, in order: Packet.HW (a reply to the frame's sender);
// else a next hop the kernel holds firmly (reachable, permanent or
// no-ARP: FirmNeighbours, afxdp/neigh); else the MAC learnt from the
// destination's own frames; else Neighbours (the kernel's other entries);
// else the slow path. Learning: a frame teaches the port (source IP ->
// source MAC) only once the chain has forwarded it (Packet.Passed, set by
// the worker before Release): it passed the bans, limits and relay rules,
// so a datagram anyone can send (a forged source the guard drops or the
// dispatcher refuses) teaches nothing. That MAC is a valid next hop for
// that IP on this interface: the peer itself when on-link, or the router
// the frame came through (symmetric routing, the normal case at an edge).
// The table is per port (one worker, no lock), fixed size
// (Config.LearnEntries, default 4096) with open addressing over a window
// of 8 slots from a seeded hash; a full window gives up its least
// recently touched entry, one holding a slow-path mark (below) last. An
// entry is used for Config.LearnTTL (default 5m) after the last frame
// from that IP, then Neighbours decides again. Against a stale or probing
// kernel entry the newest observation wins (a peer that moves is followed
// at its first forwarded frame from the new MAC); against a firm one the
// kernel wins, so a host on the link forging a source IP cannot re-point
// a confirmed or static neighbour (a backend) to itself.
//
// Order per destination. A datagram given to the slow path may wait in the
// kernel (while it resolves the neighbour: up to seconds), so a later one
// to the same destination through the ring could overtake it (a UAC seeing
// 200 before 180 aborts the call). So: ring frames prepared before a
// slow-path send are handed to the ring first; and a slow-path send marks
// its destination in the learn table, and while marked, later datagrams to
// it take the slow path too, behind it in the same kernel queue. The mark
// is checked, not just timed: it is dropped as soon as the slow-path
// sockets hold nothing unsent (SIOCOUTQ, one ioctl at most per slow send
// in a Transmit call), or Neighbours says the kernel has resolved the
// destination, or after 3 s (the kernel has sent or dropped what it held
// by then). This is chosen over "slow for the rest of the batch" because
// the kernel's queue outlives the batch: the next batch's reply would still
// overtake. Held datagrams are counted in Stats.SlowPathHeld. Limits: in
// zero-copy mode the NIC sends ring frames from its own queue, so frames
// already handed to the NIC and a later slow-path datagram can still
// cross by microseconds; with learning off (LearnEntries < 0) there is no
// mark; and a destination whose entry was evicted (a flood larger than the
// table within 3 s) loses its mark.
//
// SIP above the MTU arrives as IP fragments, which the XDP program passes to
// the kernel; the kernel reassembles them and delivers the datagram to the
// port's slow-path socket for that SIP port and family. Receive reads those
// sockets too (when poll says they are readable, or every 16th call on a
// busy queue), each datagram into one of the port's large buffers
// (large.go): Go memory of Config.MaxMessage ([guard] max_message_size)
// plus LargeHeadroom, in a fixed pool per port, handed up and released like
// a frame (HW is zero: the reply takes a neighbour lookup or the slow
// path). A datagram longer than a large buffer is handed up cut, marked
// Truncated, and counted as DecodeDrops.TooLarge: the stages answer it 513
// (Message Too Large) when its Via is in what was read. A message to send
// that may not fit a frame (the worker asks when the message it answers,
// plus the stages' slack, exceeds a frame: pipeline.TxSlack) is built in a
// large transmit buffer (AllocLarge, port.LargeAllocator) and Transmit
// sends it through the slow-path socket, which fragments it; messages
// built in frames that exceed the MTU take that socket too. So UMEM frames
// (at most a page; AF_XDP multi-buffer frames are not used) bound only the
// ring path, and the port serves SIP up to max_message_size like the socket
// port. The large path is counted (Stats.LargeReceived, LargeSent,
// LargeNoBuffer); its two pools (receive, transmit) are separate so a burst
// of large requests cannot take the buffers their forwards need, and an
// empty receive pool leaves datagrams queued in the kernel for a later
// call. Config.MaxMessage < 0 turns the large buffers off: slow-path
// datagrams are then read into free frames and bounded by one. Those the
// kernel drops for a full socket buffer (1 MiB) are counted as
// DecodeDrops.SlowPathOverflow when it reports them.
//
// xdpport may import afxdp, afxdp/frame, afxdp/neigh and pipeline/port; it must not import
// sipcore, appliance, the other ports or bench.
package xdpport
