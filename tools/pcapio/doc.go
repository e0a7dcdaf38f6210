// Package pcapio reads and writes the captures the operator tools work on.
//
// It owns: a streaming reader that turns a pcap or pcapng file (Ethernet,
// Linux cooked SLL and SLL2, raw IPv4/IPv6 link types) into its UDP
// datagrams with their capture timestamps, reassembling IPv4 and IPv6
// fragments in bounded memory; and a pcap writer of Ethernet frames.
//
// The pipeline's pcap port (pipeline/port/pcapport) reads the same formats
// but hides timestamps and belongs to the product; the tools need the
// timestamps to replay at the capture's pace, hence this reader.
//
// pcapio may import afxdp/frame (a leaf) and gopacket's pcapgo; it must not
// import sipcore, pipeline or appliance.
package pcapio
