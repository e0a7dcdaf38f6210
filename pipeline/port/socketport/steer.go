package socketport

import (
	"fmt"
	"unsafe"

	"golang.org/x/net/bpf"
	"golang.org/x/sys/unix"
)

// One source, one worker. SO_REUSEPORT alone picks a group's socket by a
// hash of the 4-tuple, so one source sending from many ports (a NAT, an
// attacker) is spread over every worker, and every per-worker limit (the
// guard's buckets, auth's parked lookups, the digest nonce-counts) is
// multiplied by the number of workers. steerProgram is a classic BPF
// program for SO_ATTACH_REUSEPORT_CBPF that picks the socket from the
// source address only: the IPv4 address, or the /64 of an IPv6 one (the
// unit the guard counts by default). Chosen over one socket with software
// steering between workers: the kernel does it before queueing, with no
// hand-off between threads, at the cost of a few BPF instructions per
// datagram.
//
// The program runs with the UDP payload at offset 0; the IP header is
// read through the negative SKF_NET_OFF offsets. Its return value is the
// index of the socket in the group, in the order they were bound; an index
// out of range makes the kernel fall back to its own hash.
func steerProgram(group int) ([]bpf.RawInstruction, error) {
	const net = uint32(0xfff00000) // SKF_NET_OFF (-0x100000) as the kernel reads the offset
	// Each family ends in its own copy of the hash, so that no
	// instruction depends on which way the program came.
	hash := []bpf.Instruction{
		bpf.ALUOpConstant{Op: bpf.ALUOpMul, Val: 0x9e3779b1},
		bpf.TAX{},
		bpf.ALUOpConstant{Op: bpf.ALUOpShiftRight, Val: 16},
		bpf.ALUOpX{Op: bpf.ALUOpXor},
		bpf.ALUOpConstant{Op: bpf.ALUOpMod, Val: uint32(group)},
		bpf.RetA{},
	}
	v4 := append([]bpf.Instruction{bpf.LoadAbsolute{Off: net + 12, Size: 4}}, hash...) // saddr
	// IPv6: the /64 of saddr, its first two words.
	v6 := append([]bpf.Instruction{
		bpf.LoadAbsolute{Off: net + 8, Size: 4},
		bpf.TAX{},
		bpf.LoadAbsolute{Off: net + 12, Size: 4},
		bpf.ALUOpX{Op: bpf.ALUOpXor},
	}, hash...)
	prog := []bpf.Instruction{
		bpf.LoadAbsolute{Off: net, Size: 1}, // version and IHL
		bpf.ALUOpConstant{Op: bpf.ALUOpShiftRight, Val: 4},
		bpf.JumpIf{Cond: bpf.JumpEqual, Val: 4, SkipFalse: uint8(len(v4))},
	}
	prog = append(prog, v4...)
	prog = append(prog, v6...)
	return bpf.Assemble(prog)
}

// steer attaches the program for a group of n sockets to fd's reuseport
// group (one attachment serves the whole group; attaching again replaces
// it with the same program).
func steer(fd, n int) error {
	raw, err := steerProgram(n)
	if err != nil {
		return err
	}
	fprog := unix.SockFprog{Len: uint16(len(raw)), Filter: (*unix.SockFilter)(unsafe.Pointer(&raw[0]))}
	if err := unix.SetsockoptSockFprog(fd, unix.SOL_SOCKET, unix.SO_ATTACH_REUSEPORT_CBPF, &fprog); err != nil {
		return fmt.Errorf("SO_ATTACH_REUSEPORT_CBPF: %w", err)
	}
	return nil
}
