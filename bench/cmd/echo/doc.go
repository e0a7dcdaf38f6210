// Command echo runs the port echo benchmark over a veth pair it creates
// (root, iproute2 and ethtool needed) and prints a markdown table: for each
// port, packets/s and the receiving thread's CPU time per packet, with the
// port's I/O modes.
//
//	go run ./cmd/echo -packets 200000 -payload 600 -ports afxdp,socket
package main
