// Package neigh answers "which MAC does a frame to this IP go to?" for the
// AF_XDP transmit path, from the kernel's routing and neighbour tables,
// without ever blocking or allocating on the hot path.
//
// It owns: Table, an immutable snapshot (destination -> next-hop MAC)
// published through an atomic pointer and read lock-free by every worker; a
// bounded, non-blocking miss queue that tells the refresher which
// destinations workers asked for; and the refresher goroutine, which asks the
// kernel for the route to each wanted destination (RTM_GETROUTE: gateway or
// direct) and reads the neighbour table (RTM_GETNEIGH dump) to build the next
// snapshot. Netlink is spoken directly over golang.org/x/sys/unix: two
// request types do not justify vishvananda/netlink, and one socket opened at
// New keeps working in the network namespace it was opened in.
//
// A miss returns ok=false: the caller sends that datagram through the kernel
// socket, which resolves ARP/ND, and the next refresh finds the entry.
//
// neigh must not import pipeline, sipcore, appliance or the rest of afxdp.
package neigh
