// Package capture reads and writes the capture files of the offline port
// and of the operator tools: one reader and one writer for the whole tree.
//
// It owns: a streaming reader that turns a pcap or pcapng file (Ethernet,
// Linux cooked SLL and SLL2, raw IPv4/IPv6 link types) into its UDP
// datagrams with their capture timestamps and source MAC, reassembling IPv4
// and IPv6 fragments in bounded memory (orphan, duplicate and overlapping
// fragments are counted, never kept); and a pcap writer of Ethernet frames.
//
// It lives on the product side because the pcap port (pipeline/port/pcapport)
// is built on it; tools (sipreplay, sipgen) use it too, since the product
// must never import tools.
//
// capture may import afxdp/frame (a leaf) and gopacket's pcapgo; it must not
// import sipcore, pipeline, the ports, appliance or tools.
package capture
