// Package xdpport is the AF_XDP Port: one port per NIC queue, each over one
// AF_XDP socket (afxdp.Socket) with its own UMEM, fed by the XDP program that
// a Group loads and attaches once per interface.
//
// It owns: the Group (program attach, SIP ports, one socket per queue and
// its XSK map entry, orderly teardown), frame decode on receive (in place:
// payloads alias the UMEM) with drops counted by reason, transmit buffers
// carved from free UMEM frames with a fixed headroom so headers are written
// just before the payload, destination MAC choice (the sender's MAC for
// replies, a neighbour lookup otherwise), the slow path through a kernel UDP
// socket when the neighbour is not resolved (which also makes the kernel
// resolve it), and the port's counters. Nothing is allocated per packet.
//
// SIP above the MTU arrives as IP fragments, which the XDP program passes to
// the kernel; the kernel reassembles them and delivers the datagram to the
// port's slow-path socket for that SIP port and family. Receive reads those
// sockets too (when poll says they are readable, or every 16th call on a
// busy queue) and copies each datagram into a free UMEM frame, so it is
// handed up and released like any other (HW is zero: the reply takes a
// neighbour lookup or the slow path). A datagram therefore has to fit one
// frame: the frame size (io.frame_size, 4096 by default in config.toml;
// afxdp.DefaultConfig's is 2048) bounds the largest reassembled datagram,
// and larger ones are dropped and counted as DecodeDrops.TooLarge; those the
// kernel drops for a full socket buffer (1 MiB) are counted as
// DecodeDrops.SlowPathOverflow when it reports them.
//
// xdpport may import afxdp, afxdp/frame and pipeline/port; it must not import
// sipcore, appliance, the other ports or bench.
package xdpport
