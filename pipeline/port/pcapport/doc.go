// Package pcapport is the offline Port: it receives the UDP datagrams of a
// pcap or pcapng capture and writes what the pipeline transmits into another
// pcap file as Ethernet/IPv4|IPv6/UDP frames. It makes every stage testable
// and benchmarkable without privileges, and with Loop it replays a capture
// from memory millions of times without I/O or allocation per packet.
//
// It owns: the in-memory replay arena, the receive and transmit buffer
// pools, and the framing of transmitted datagrams. Reading and writing
// capture files (formats, link types, fragment reassembly, timestamps) is
// pipeline/port/capture's, shared with the tools. Datagrams that are not
// UDP are skipped and counted.
//
// pcapport may import afxdp/frame (a leaf) and pipeline/port/capture; it
// must not import sipcore, appliance, the afxdp sockets or the other ports.
package pcapport
