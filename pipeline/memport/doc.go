// Package memport is an in-memory port.Port: datagrams to receive come from
// a slice, transmitted ones go to a callback or are captured. It drives a
// pipeline worker in tests and benchmarks without sockets or privileges,
// with port-owned frames like a real port (so leaks and double releases
// show).
//
// memport must not import sipcore, afxdp, appliance or any other port
// implementation: it moves bytes and knows nothing of SIP.
package memport
