// Package pcapport is the offline Port: it receives the UDP datagrams of a
// pcap or pcapng capture and writes what the pipeline transmits into another
// pcap file as Ethernet/IPv4|IPv6/UDP frames. It makes every stage testable
// and benchmarkable without privileges, and with Loop it replays a capture
// from memory millions of times without I/O or allocation per packet.
//
// It owns: capture format detection (by magic), link-layer stripping
// (Ethernet through afxdp/frame, Linux cooked SLL and SLL2, raw IPv4/IPv6),
// simple IPv4 and IPv6 fragment reassembly, the in-memory replay arena, and
// the output capture. Datagrams that are not UDP are skipped and counted.
//
// pcapport may import afxdp/frame (a leaf) and gopacket's pcapgo; it must not
// import sipcore, appliance, the afxdp sockets or the other ports.
package pcapport
