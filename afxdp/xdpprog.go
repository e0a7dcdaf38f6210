package afxdp

import (
	"encoding/binary"

	"github.com/cilium/ebpf/asm"
)

// Offsets in struct xdp_md, the XDP program's context.
const (
	mdData         = 0
	mdDataEnd      = 4
	mdRxQueueIndex = 16
)

// Stack slots (offsets from R10, the frame pointer).
const (
	stackBanKey  = -16 // 16-byte banned-map key: the source address
	stackU32Key  = -24 // 4-byte key for the ports and stats maps
	ethHdrLen    = 14
	vlanHdrLen   = 4
	ipv4MinLen   = 20
	ipv6HdrLen   = 40
	udpHdrLen    = 8
	ipProtoUDP   = 17
	etherTypeV4  = 0x0800
	etherTypeV6  = 0x86DD
	etherType1Q  = 0x8100
	ipv4FragMask = 0x3fff // MF flag and fragment offset
)

// buildProgram assembles the XDP program. Register use throughout:
//
//	R6 ctx (struct xdp_md *), kept because helper calls clobber R1-R5
//	R7 data (start of packet), then scratch for a ban's expiry
//	R8 data_end
//	R9 the header being parsed: L3, then L4
//
// Every packet read is preceded by a check that the bytes lie before
// data_end: the verifier rejects the program otherwise, and a short or
// truncated frame must pass to the kernel, never be read past its end.
func buildProgram(banned, ports, xsks, stats, v6Bits int) asm.Instructions {
	var p asm.Instructions
	add := func(ins ...asm.Instruction) { p = append(p, ins...) }

	// --- Ethernet ---
	add(
		asm.Mov.Reg(asm.R6, asm.R1),
		asm.LoadMem(asm.R7, asm.R6, mdData, asm.Word),
		asm.LoadMem(asm.R8, asm.R6, mdDataEnd, asm.Word),
		// The 14-byte Ethernet header must be there before reading the
		// ethertype at offset 12.
		asm.Mov.Reg(asm.R9, asm.R7),
		asm.Add.Imm(asm.R9, ethHdrLen),
		asm.JGT.Reg(asm.R9, asm.R8, "pass"),
		asm.LoadMem(asm.R2, asm.R7, 12, asm.Half),
		asm.JNE.Imm(asm.R2, ne16(etherType1Q), "l3"),
		// One 802.1Q tag: 4 more bytes, the real ethertype is at 16.
		asm.Add.Imm(asm.R9, vlanHdrLen),
		asm.JGT.Reg(asm.R9, asm.R8, "pass"),
		asm.LoadMem(asm.R2, asm.R7, 16, asm.Half),
		asm.JEq.Imm(asm.R2, ne16(etherTypeV4), "ipv4").WithSymbol("l3"),
		asm.JEq.Imm(asm.R2, ne16(etherTypeV6), "ipv6"),
		// ARP, LLDP, a second tag, anything else: the kernel's business.
		asm.Ja.Label("pass"),
	)

	// --- IPv4 ---
	add(
		// The fixed 20-byte header must be there to read the source
		// address (12), protocol (9), fragment field (6) and IHL (0).
		asm.Mov.Reg(asm.R1, asm.R9).WithSymbol("ipv4"),
		asm.Add.Imm(asm.R1, ipv4MinLen),
		asm.JGT.Reg(asm.R1, asm.R8, "pass"),
		// Ban key: ::ffff:a.b.c.d, the v4-mapped form Go writes too.
		asm.StoreImm(asm.R10, stackBanKey, 0, asm.Word),
		asm.StoreImm(asm.R10, stackBanKey+4, 0, asm.Word),
		asm.StoreImm(asm.R10, stackBanKey+8, ne32([4]byte{0, 0, 0xff, 0xff}), asm.Word),
		asm.LoadMem(asm.R1, asm.R9, 12, asm.Word),
		asm.StoreMem(asm.R10, stackBanKey+12, asm.R1, asm.Word),
	)
	add(
		// Only UDP can be SIP here; ICMP, TCP (SSH, SIP over TCP) pass.
		asm.LoadMem(asm.R1, asm.R9, 9, asm.Byte),
		asm.JNE.Imm(asm.R1, ipProtoUDP, "pass"),
		// A fragment (MF set or offset non-zero) has no usable UDP
		// header or only part of the datagram: the kernel reassembles.
		asm.LoadMem(asm.R1, asm.R9, 6, asm.Half),
		asm.And.Imm(asm.R1, ne16(ipv4FragMask)),
		asm.JNE.Imm(asm.R1, 0, "pass"),
		// UDP starts after IHL*4 bytes (options included). IHL < 5 is a
		// malformed header the kernel will drop and count.
		asm.LoadMem(asm.R1, asm.R9, 0, asm.Byte),
		asm.And.Imm(asm.R1, 0x0f),
		asm.JLT.Imm(asm.R1, 5, "pass"),
		asm.LSh.Imm(asm.R1, 2),
		asm.Add.Reg(asm.R9, asm.R1),
		// The 8-byte UDP header must be there to read its ports.
		asm.Mov.Reg(asm.R1, asm.R9),
		asm.Add.Imm(asm.R1, udpHdrLen),
		asm.JGT.Reg(asm.R1, asm.R8, "pass"),
		asm.Ja.Label("udp"),
	)

	// --- IPv6 ---
	add(
		// The fixed 40-byte header holds next-header (6) and the source
		// address (8..23).
		asm.Mov.Reg(asm.R1, asm.R9).WithSymbol("ipv6"),
		asm.Add.Imm(asm.R1, ipv6HdrLen),
		asm.JGT.Reg(asm.R1, asm.R8, "pass"),
		asm.LoadMem(asm.R1, asm.R9, 8, asm.DWord),
		asm.StoreMem(asm.R10, stackBanKey, asm.R1, asm.DWord),
		asm.LoadMem(asm.R1, asm.R9, 16, asm.DWord),
		asm.StoreMem(asm.R10, stackBanKey+8, asm.R1, asm.DWord),
	)
	add(maskV6Key(v6Bits)...)
	add(
		// Only a UDP next header is parsed: extension headers (fragment,
		// hop-by-hop, routing) and ICMPv6 (neighbour discovery) pass.
		asm.LoadMem(asm.R1, asm.R9, 6, asm.Byte),
		asm.JNE.Imm(asm.R1, ipProtoUDP, "pass"),
		asm.Add.Imm(asm.R9, ipv6HdrLen),
		// The 8-byte UDP header must be there to read its ports.
		asm.Mov.Reg(asm.R1, asm.R9),
		asm.Add.Imm(asm.R1, udpHdrLen),
		asm.JGT.Reg(asm.R1, asm.R8, "pass"),
	)

	// --- UDP: R9 points at a bounds-checked UDP header ---
	add(
		// The ports map is indexed by the destination port in host order.
		asm.LoadMem(asm.R1, asm.R9, 2, asm.Half).WithSymbol("udp"),
		asm.HostTo(asm.BE, asm.R1, asm.Half),
		asm.StoreMem(asm.R10, stackU32Key, asm.R1, asm.Word),
		asm.LoadMapPtr(asm.R1, ports),
		asm.Mov.Reg(asm.R2, asm.R10),
		asm.Add.Imm(asm.R2, stackU32Key),
		asm.FnMapLookupElem.Call(),
		asm.JEq.Imm(asm.R0, 0, "pass"),
		asm.LoadMem(asm.R1, asm.R0, 0, asm.Word),
		asm.JEq.Imm(asm.R1, 0, "pass"),
	)
	// Bans apply to the SIP ports only: a ban obtained by forging a
	// victim's source address must not cut the victim off from anything
	// else on this host (SSH, DNS answers, RTP).
	add(banCheck(banned, "redirect")...)
	add(
		// To the socket of the queue the packet came in on; XDP_PASS in
		// the flags makes a queue without a socket hand the packet to the
		// kernel instead of dropping it.
		asm.LoadMapPtr(asm.R1, xsks).WithSymbol("redirect"),
		asm.LoadMem(asm.R2, asm.R6, mdRxQueueIndex, asm.Word),
		asm.Mov.Imm(asm.R3, xdpPass),
		asm.FnRedirectMap.Call(),
		asm.JNE.Imm(asm.R0, xdpRedirect, "nosocket"),
	)
	add(verdict(stats, "redirected", statRedirected, xdpRedirect)...)
	add(verdict(stats, "nosocket", statNoSocket, xdpPass)...)
	add(verdict(stats, "pass", statPassed, xdpPass)...)
	add(verdict(stats, "drop", statDroppedBanned, xdpDrop)...)
	return p
}

// maskV6Key keeps the first bits of the IPv6 source at stackBanKey and
// zeroes the rest (nothing when bits is 128): one ban then covers the
// prefix the guard counts as one source, so a host rotating through its
// /64 stays banned below userspace. banKey masks the same way. Uses R1
// and R2.
func maskV6Key(bits int) asm.Instructions {
	if bits <= 0 || bits >= 128 {
		return nil
	}
	m := v6Mask(bits)
	// The key is in network order in memory; a DWord load is native
	// order, so the mask is read from its bytes the same way.
	var out asm.Instructions
	for _, off := range []int16{0, 8} {
		out = append(out,
			asm.LoadMem(asm.R1, asm.R10, stackBanKey+off, asm.DWord),
			asm.LoadImm(asm.R2, int64(binary.NativeEndian.Uint64(m[off:off+8])), asm.DWord),
			asm.And.Reg(asm.R1, asm.R2),
			asm.StoreMem(asm.R10, stackBanKey+off, asm.R1, asm.DWord),
		)
	}
	return out
}

// v6Mask is the netmask of an IPv6 prefix of bits bits.
func v6Mask(bits int) [16]byte {
	var m [16]byte
	for i := 0; i < bits && i < 128; i++ {
		m[i/8] |= 0x80 >> (i % 8)
	}
	return m
}

// banCheck looks up the key at stackBanKey in the banned map and jumps to
// "drop" when the entry exists and has not lapsed; otherwise it continues at
// the instruction labelled allowed (which the caller places right after).
func banCheck(banned int, allowed string) asm.Instructions {
	return asm.Instructions{
		asm.LoadMapPtr(asm.R1, banned),
		asm.Mov.Reg(asm.R2, asm.R10),
		asm.Add.Imm(asm.R2, stackBanKey),
		asm.FnMapLookupElem.Call(),
		asm.JEq.Imm(asm.R0, 0, allowed),
		// The value is the expiry in CLOCK_MONOTONIC ns; a lapsed entry
		// is ignored (Go prunes it), so bans end without any timer.
		asm.LoadMem(asm.R7, asm.R0, 0, asm.DWord),
		asm.FnKtimeGetNs.Call(),
		asm.JLT.Reg(asm.R0, asm.R7, "drop"),
	}
}

// verdict counts the packet in its per-CPU slot and returns action. The
// first instruction carries label. No atomic add is needed: the slot is this
// CPU's and XDP does not nest on a CPU.
func verdict(stats int, label string, slot int32, action int32) asm.Instructions {
	done := label + "_counted"
	return asm.Instructions{
		asm.StoreImm(asm.R10, stackU32Key, int64(slot), asm.Word).WithSymbol(label),
		asm.LoadMapPtr(asm.R1, stats),
		asm.Mov.Reg(asm.R2, asm.R10),
		asm.Add.Imm(asm.R2, stackU32Key),
		asm.FnMapLookupElem.Call(),
		asm.JEq.Imm(asm.R0, 0, done),
		asm.LoadMem(asm.R1, asm.R0, 0, asm.DWord),
		asm.Add.Imm(asm.R1, 1),
		asm.StoreMem(asm.R0, 0, asm.R1, asm.DWord),
		asm.Mov.Imm(asm.R0, action).WithSymbol(done),
		asm.Return(),
	}
}
