// Package echo is the echo benchmark of the ports (issue 3): a sender in a
// network namespace sends UDP datagrams over a veth pair to a receiver that
// answers every one through a port.Port, the AF_XDP port (xdpport) and the
// kernel socket port (socketport) in the same run. It reports packets/s
// and the receiving thread's CPU time per packet, with the I/O modes.
//
// It owns the paced sender, the echo worker and the markdown table; the
// veth pair is afxdp/vethtest's (Create and Close outside go test). It
// imports the ports; nothing imports it but bench/cmd/echo.
package echo
