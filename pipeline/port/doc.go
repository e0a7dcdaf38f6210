// Package port defines how datagrams enter and leave a pipeline worker. One
// Port feeds one worker; the worker never knows which implementation it has
// (afxdp, kernel socket or pcap), only this interface.
//
// port must not import any implementation (afxdp, sockets, pcap), sipcore or
// appliance.
package port
