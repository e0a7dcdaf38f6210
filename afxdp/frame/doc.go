// Package frame decodes and encodes Ethernet / 802.1Q / IPv4 / IPv6 / UDP
// frames in place, without copying and without allocating.
//
// It owns: Decode (a frame into offsets, addresses and a payload slice that
// aliases the frame), DecodeIP (the same from the IP header on, for captures
// without an Ethernet header), Encode (the headers written in front of a
// payload already placed at Headroom, with the IPv4 header checksum and a full
// UDP checksum computed, never copied from a received frame) and the Internet
// checksum itself.
//
// Decode does not verify checksums: frames from veth and from captures taken
// on the sending host often carry an unfinished (offloaded) UDP checksum.
//
// frame must not import anything of this module (pipeline, sipcore,
// appliance, the rest of afxdp): it is a leaf that the afxdp port, the pcap
// port and the tools share.
package frame
