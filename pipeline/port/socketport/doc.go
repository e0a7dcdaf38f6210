// Package socketport is the kernel UDP socket Port: the embedded default and
// the fallback on machines without XDP. Each worker opens its own socket on
// the same listen address with SO_REUSEPORT, so the kernel spreads flows
// across workers, and moves datagrams in batches with recvmmsg/sendmmsg.
//
// It owns: the socket and its options, a fixed pool of preallocated buffers
// (one contiguous arena) that Receive, Alloc, Release and Transmit recycle,
// the mmsghdr/iovec/sockaddr/control arrays reused by every batch, and the
// port's counters. Waiting goes through Go's netpoller (syscall.RawConn), so
// a deadline bounds each Receive and Close from another goroutine wakes it
// safely. Nothing is allocated per packet after Open.
//
// socketport must not import sipcore, appliance, afxdp or the other ports:
// it moves datagrams and knows nothing of SIP.
package socketport
