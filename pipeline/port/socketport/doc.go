// Package socketport is the kernel UDP socket Port: the embedded default and
// the fallback on machines without XDP. Each worker opens its own socket on
// the same listen address with SO_REUSEPORT, and moves datagrams in batches
// with recvmmsg/sendmmsg. With Config.Steer a reuseport BPF program spreads
// sources, not flows, across the workers: one source address (an IPv6 /64)
// always lands on one worker (steer.go). Buffers are sized from the
// largest message served (Config.MaxMessage, plus headroom); a longer
// datagram is handed up cut and marked Truncated, for the stages to answer
// 513.
//
// It owns: the socket and its options, a fixed pool of preallocated buffers
// (one contiguous arena) that Receive, Alloc, Release and Transmit recycle,
// the mmsghdr/iovec/sockaddr/control arrays reused by every batch, and the
// port's counters. The socket is made with socket(2) and never enters Go's
// netpoller: Receive is one non-blocking recvmmsg, Wait sleeps the calling
// thread in ppoll on the socket and an eventfd that Close writes, so the
// kernel wakes the worker's own thread. Nothing is allocated per packet
// after Open.
//
// socketport must not import sipcore, appliance, afxdp or the other ports:
// it moves datagrams and knows nothing of SIP.
package socketport
