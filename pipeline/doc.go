// Package pipeline owns the per-core run-to-completion worker loop, the Port
// abstraction that feeds it (afxdp, kernel UDP socket, pcap), the stages
// (guard, auth, registrar, dispatcher, media), per-core counters and
// park/resume of messages waiting on asynchronous I/O.
//
// Stages must never know which port feeds them. pipeline may import sipcore
// and afxdp (only from its afxdp port); it must not import appliance, tools
// or bench.
package pipeline
