// Command sipgen writes synthetic SIP traffic into a pcap file (see
// package sipedge/tools/sipgen and `sipgen -h`).
package main
