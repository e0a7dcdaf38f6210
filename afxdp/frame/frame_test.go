package frame

import (
	"bytes"
	"encoding/binary"
	"errors"
	"math/rand/v2"
	"net"
	"net/netip"
	"testing"

	"github.com/google/gopacket"
	"github.com/google/gopacket/layers"
)

// rfc1071 is the textbook checksum, 16 bits at a time, kept deliberately
// naive so that it checks the 8-byte implementation independently.
func rfc1071(b []byte) uint16 {
	var s uint32
	for i := 0; i+1 < len(b); i += 2 {
		s += uint32(b[i])<<8 | uint32(b[i+1])
	}
	if len(b)%2 == 1 {
		s += uint32(b[len(b)-1]) << 8
	}
	for s>>16 != 0 {
		s = s&0xffff + s>>16
	}
	return ^uint16(s)
}

func TestChecksumMatchesRFC1071(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	buf := make([]byte, 2000)
	for n := 0; n <= len(buf); n++ {
		b := buf[:n]
		for i := range b {
			b[i] = byte(r.Uint32())
		}
		if got, want := Checksum(b), rfc1071(b); got != want {
			t.Fatalf("len %d: Checksum %#04x, RFC 1071 %#04x", n, got, want)
		}
	}
	// All-ones data drives every carry path.
	for i := range buf {
		buf[i] = 0xff
	}
	for _, n := range []int{1, 7, 8, 9, 31, 32, 33, 1999, 2000} {
		if got, want := Checksum(buf[:n]), rfc1071(buf[:n]); got != want {
			t.Fatalf("all-ones len %d: %#04x, want %#04x", n, got, want)
		}
	}
}

type genCase struct {
	v6, vlan bool
	ipOpts   int // IPv4 option bytes, multiple of 4
	payload  int
}

func randAddr(r *rand.Rand, v6 bool) netip.Addr {
	if v6 {
		var a [16]byte
		for i := range a {
			a[i] = byte(r.Uint32())
		}
		a[0] = 0x20
		return netip.AddrFrom16(a)
	}
	return netip.AddrFrom4([4]byte{10, byte(r.Uint32()), byte(r.Uint32()), byte(r.Uint32())})
}

// build serialises a frame with gopacket, the reference encoder.
func build(t testing.TB, r *rand.Rand, c genCase) ([]byte, Header, []byte) {
	t.Helper()
	h := Header{
		SrcMAC: [6]byte{2, 0, 0, 0, byte(r.Uint32()), 1},
		DstMAC: [6]byte{2, 0, 0, 0, byte(r.Uint32()), 2},
		Src:    netip.AddrPortFrom(randAddr(r, c.v6), uint16(r.Uint32())),
		Dst:    netip.AddrPortFrom(randAddr(r, c.v6), 5060),
		TTL:    uint8(1 + r.IntN(255)),
		TOS:    uint8(r.Uint32()),
		ID:     uint16(r.Uint32()),
		VLAN:   uint16(1 + r.IntN(4094)),
		Tagged: c.vlan,
	}
	payload := make([]byte, c.payload)
	for i := range payload {
		payload[i] = byte(r.Uint32())
	}
	eth := &layers.Ethernet{SrcMAC: net.HardwareAddr(h.SrcMAC[:]), DstMAC: net.HardwareAddr(h.DstMAC[:])}
	var ls []gopacket.SerializableLayer
	ls = append(ls, eth)
	next := layers.EthernetTypeIPv4
	if c.v6 {
		next = layers.EthernetTypeIPv6
	}
	if c.vlan {
		eth.EthernetType = layers.EthernetTypeDot1Q
		ls = append(ls, &layers.Dot1Q{VLANIdentifier: h.VLAN, Type: next})
	} else {
		eth.EthernetType = next
	}
	udp := &layers.UDP{SrcPort: layers.UDPPort(h.Src.Port()), DstPort: layers.UDPPort(h.Dst.Port())}
	if c.v6 {
		ip := &layers.IPv6{Version: 6, TrafficClass: h.TOS, HopLimit: h.TTL, NextHeader: layers.IPProtocolUDP,
			SrcIP: h.Src.Addr().AsSlice(), DstIP: h.Dst.Addr().AsSlice()}
		udp.SetNetworkLayerForChecksum(ip)
		ls = append(ls, ip)
	} else {
		ip := &layers.IPv4{Version: 4, TOS: h.TOS, TTL: h.TTL, Id: h.ID, Flags: layers.IPv4DontFragment,
			Protocol: layers.IPProtocolUDP, SrcIP: h.Src.Addr().AsSlice(), DstIP: h.Dst.Addr().AsSlice()}
		if c.ipOpts > 0 {
			// A run of NOPs and an End of Options list: legal, and it
			// moves the UDP header by IHL.
			opt := make([]byte, c.ipOpts-1)
			for i := range opt {
				opt[i] = 1
			}
			ip.Options = []layers.IPv4Option{{OptionType: 1}}
			for range c.ipOpts - 1 {
				ip.Options = append(ip.Options, layers.IPv4Option{OptionType: 1})
			}
		}
		udp.SetNetworkLayerForChecksum(ip)
		ls = append(ls, ip)
	}
	ls = append(ls, udp, gopacket.Payload(payload))
	sb := gopacket.NewSerializeBuffer()
	if err := gopacket.SerializeLayers(sb, gopacket.SerializeOptions{FixLengths: true, ComputeChecksums: true}, ls...); err != nil {
		t.Fatalf("gopacket serialise: %v", err)
	}
	return sb.Bytes(), h, payload
}

func cases() []genCase {
	var cs []genCase
	for _, v6 := range []bool{false, true} {
		for _, vlan := range []bool{false, true} {
			for _, opts := range []int{0, 4, 12, 40} {
				if v6 && opts > 0 {
					continue
				}
				for _, n := range []int{0, 1, 2, 7, 8, 9, 63, 64, 65, 599, 600, 601, 1471, 8191} {
					cs = append(cs, genCase{v6, vlan, opts, n})
				}
			}
		}
	}
	return cs
}

func TestDecodeMatchesGopacket(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	for _, c := range cases() {
		for range 4 {
			b, h, payload := build(t, r, c)
			var f Frame
			if err := Decode(b, &f); err != nil {
				t.Fatalf("%+v: Decode: %v", c, err)
			}
			if f.SrcMAC != h.SrcMAC || f.DstMAC != h.DstMAC {
				t.Fatalf("%+v: MACs %x %x, want %x %x", c, f.SrcMAC, f.DstMAC, h.SrcMAC, h.DstMAC)
			}
			if f.Tagged != c.vlan || (c.vlan && f.VLAN != h.VLAN) {
				t.Fatalf("%+v: VLAN %v/%d, want %v/%d", c, f.Tagged, f.VLAN, c.vlan, h.VLAN)
			}
			if f.IPv6 != c.v6 || f.SrcAddrPort() != h.Src || f.DstAddrPort() != h.Dst {
				t.Fatalf("%+v: %v -> %v, want %v -> %v", c, f.SrcAddrPort(), f.DstAddrPort(), h.Src, h.Dst)
			}
			if f.TTL != h.TTL || f.TOS != h.TOS {
				t.Fatalf("%+v: TTL/TOS %d/%d, want %d/%d", c, f.TTL, f.TOS, h.TTL, h.TOS)
			}
			if !bytes.Equal(f.Payload, payload) {
				t.Fatalf("%+v: payload differs (%d bytes, want %d)", c, len(f.Payload), len(payload))
			}
			// The payload must alias the frame, not be a copy.
			if len(payload) > 0 && &f.Payload[0] != &b[f.L4+8] {
				t.Fatalf("%+v: payload does not alias the frame", c)
			}
			// Ethernet padding after the datagram is ignored.
			padded := append(append([]byte{}, b...), 0, 0, 0, 0, 0, 0)
			if err := Decode(padded, &f); err != nil || len(f.Payload) != len(payload) {
				t.Fatalf("%+v: padded frame: err %v, payload %d", c, err, len(f.Payload))
			}
		}
	}
}

func TestEncodeMatchesGopacket(t *testing.T) {
	r := rand.New(rand.NewPCG(5, 6))
	for _, c := range cases() {
		if c.ipOpts > 0 {
			continue // Encode never writes options.
		}
		for range 4 {
			want, h, payload := build(t, r, c)
			buf := make([]byte, 70000)
			for i := range buf {
				buf[i] = 0xa5 // garbage where the headers go
			}
			hr := Headroom(c.v6, c.vlan)
			copy(buf[hr:], payload)
			n, err := Encode(buf, &h, len(payload))
			if err != nil {
				t.Fatalf("%+v: Encode: %v", c, err)
			}
			got := buf[:n]
			// gopacket pads to the 60-byte Ethernet minimum; Encode leaves
			// that to the NIC.
			if len(want) > n && bytes.Count(want[n:], []byte{0}) == len(want)-n {
				want = want[:n]
			}
			if !bytes.Equal(got, want) {
				t.Fatalf("%+v: Encode differs from gopacket\n got %x\nwant %x", c, got[:hr], want[:min(hr, len(want))])
			}
			// Independent checks: gopacket decodes it and the checksums hold
			// under the naive RFC 1071 sum.
			pkt := gopacket.NewPacket(got, layers.LayerTypeEthernet, gopacket.Default)
			if pkt.Layer(layers.LayerTypeUDP) == nil {
				t.Fatalf("%+v: gopacket finds no UDP layer: %v", c, pkt.ErrorLayer())
			}
			var f Frame
			if err := Decode(got, &f); err != nil {
				t.Fatalf("%+v: Decode(Encode): %v", c, err)
			}
			udp := got[f.L4:]
			var ph []byte
			if c.v6 {
				s, d := h.Src.Addr().As16(), h.Dst.Addr().As16()
				ph = append(append(ph, s[:]...), d[:]...)
				ph = binary.BigEndian.AppendUint32(ph, uint32(len(udp)))
				ph = append(ph, 0, 0, 0, 17)
			} else {
				if rfc1071(got[f.L3:f.L4]) != 0 {
					t.Fatalf("%+v: IPv4 header checksum wrong", c)
				}
				s, d := h.Src.Addr().As4(), h.Dst.Addr().As4()
				ph = append(append(ph, s[:]...), d[:]...)
				ph = append(ph, 0, 17)
				ph = binary.BigEndian.AppendUint16(ph, uint16(len(udp)))
			}
			if rfc1071(append(ph, udp...)) != 0 {
				t.Fatalf("%+v: UDP checksum wrong", c)
			}
			if binary.BigEndian.Uint16(udp[6:8]) == 0 {
				t.Fatalf("%+v: UDP checksum left at 0", c)
			}
		}
	}
}

func TestEncodeErrors(t *testing.T) {
	v4 := netip.MustParseAddrPort("192.0.2.1:5060")
	v6 := netip.MustParseAddrPort("[2001:db8::1]:5060")
	buf := make([]byte, 100)
	for _, tc := range []struct {
		h    Header
		n    int
		want error
	}{
		{Header{Src: v4, Dst: v6}, 10, ErrFamilyMixed},
		{Header{Dst: v6}, 10, ErrNoAddress},
		{Header{Src: v4, Dst: v4}, 80, ErrShortBuffer},
		{Header{Src: v4, Dst: v4}, 70000, ErrPayloadTooBig},
		{Header{Src: v4, Dst: v4}, -1, ErrPayloadTooBig},
	} {
		if _, err := Encode(buf, &tc.h, tc.n); !errors.Is(err, tc.want) {
			t.Errorf("Encode(%v -> %v, %d) = %v, want %v", tc.h.Src, tc.h.Dst, tc.n, err, tc.want)
		}
	}
	// An IPv4-mapped IPv6 address is IPv4 on the wire.
	h := Header{Src: netip.AddrPortFrom(netip.MustParseAddr("::ffff:192.0.2.7"), 1), Dst: v4}
	n, err := Encode(buf, &h, 0)
	var f Frame
	if err != nil || Decode(buf[:n], &f) != nil || f.IPv6 || f.Src != netip.MustParseAddr("192.0.2.7") {
		t.Fatalf("mapped source: err %v, frame %+v", err, f)
	}
}

func TestDecodeErrors(t *testing.T) {
	r := rand.New(rand.NewPCG(7, 8))
	v4, _, _ := build(t, r, genCase{payload: 20})
	v6, _, _ := build(t, r, genCase{v6: true, payload: 20})
	mod := func(b []byte, f func(b []byte)) []byte {
		c := append([]byte{}, b...)
		f(c)
		return c
	}
	for _, tc := range []struct {
		name string
		b    []byte
		want error
	}{
		{"empty", nil, ErrTruncated},
		{"eth only", v4[:14], ErrTruncated},
		{"arp", mod(v4, func(b []byte) { b[12], b[13] = 0x08, 0x06 }), ErrNotIP},
		{"vlan truncated", mod(v4[:16], func(b []byte) { b[12], b[13] = 0x81, 0x00 }), ErrTruncated},
		{"ipv4 says 6", mod(v4, func(b []byte) { b[14] = 0x65 }), ErrNotIP},
		{"ihl 4", mod(v4, func(b []byte) { b[14] = 0x44 }), ErrBadIHL},
		{"ihl past total", mod(v4, func(b []byte) { b[14] = 0x4f; b[16], b[17] = 0, 40 }), ErrBadIHL},
		{"total past frame", mod(v4, func(b []byte) { b[16], b[17] = 0xff, 0xff }), ErrTruncated},
		{"more fragments", mod(v4, func(b []byte) { b[20] = 0x20 }), ErrFragment},
		{"last fragment", mod(v4, func(b []byte) { b[21] = 0x10 }), ErrFragment},
		{"tcp", mod(v4, func(b []byte) { b[23] = 6 }), ErrNotUDP},
		{"udp len short", mod(v4, func(b []byte) { b[38], b[39] = 0, 9 }), ErrUDPLength},
		{"udp len long", mod(v4, func(b []byte) { b[38], b[39] = 0, 200 }), ErrUDPLength},
		{"ip payload < 8", mod(v4[:14+20+4], func(b []byte) { b[16], b[17] = 0, 24 }), ErrTruncated},
		{"ipv6 truncated", v6[:50], ErrTruncated},
		{"ipv6 hop-by-hop", mod(v6, func(b []byte) { b[20] = 0 }), ErrNotUDP},
		{"ipv6 fragment header", mod(v6, func(b []byte) { b[20] = 44 }), ErrNotUDP},
		{"ipv6 jumbo", mod(v6, func(b []byte) { b[18], b[19] = 0, 0 }), ErrBadIPLength},
		{"ipv6 payload past frame", mod(v6, func(b []byte) { b[18], b[19] = 1, 0 }), ErrTruncated},
	} {
		var f Frame
		if err := Decode(tc.b, &f); err != tc.want {
			t.Errorf("%s: Decode = %v, want %v", tc.name, err, tc.want)
		}
	}
	var f Frame
	if err := DecodeIP(v6[14:], &f); err != nil || !f.IPv6 || len(f.Payload) != 20 {
		t.Errorf("DecodeIP(ipv6) = %v, %+v", err, f)
	}
	if err := DecodeIP([]byte{0x50}, &f); err != ErrNotIP {
		t.Errorf("DecodeIP(version 5) = %v, want ErrNotIP", err)
	}
}

func FuzzDecode(f *testing.F) {
	r := rand.New(rand.NewPCG(9, 10))
	for _, c := range []genCase{{payload: 30}, {v6: true, payload: 3}, {vlan: true, ipOpts: 8, payload: 11}} {
		b, _, _ := build(f, r, c)
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		var fr Frame
		if Decode(b, &fr) == nil {
			if fr.L4 >= len(b) || len(fr.Payload) > len(b) {
				t.Fatalf("offsets out of range: %+v for %d bytes", fr, len(b))
			}
			// Whatever decodes re-encodes and decodes to the same thing.
			h := Header{SrcMAC: fr.SrcMAC, DstMAC: fr.DstMAC, VLAN: fr.VLAN, Tagged: fr.Tagged,
				Src: fr.SrcAddrPort(), Dst: fr.DstAddrPort(), TTL: fr.TTL, TOS: fr.TOS}
			out := make([]byte, Headroom(fr.IPv6, fr.Tagged)+len(fr.Payload))
			copy(out[Headroom(fr.IPv6, fr.Tagged):], fr.Payload)
			n, err := Encode(out, &h, len(fr.Payload))
			var g Frame
			if err != nil || Decode(out[:n], &g) != nil || !bytes.Equal(g.Payload, fr.Payload) ||
				g.SrcAddrPort() != fr.SrcAddrPort() || g.DstAddrPort() != fr.DstAddrPort() {
				t.Fatalf("re-encode: err %v, %+v vs %+v", err, g, fr)
			}
		}
		_ = DecodeIP(b, &fr)
	})
}

// sipFrame returns an Ethernet/IPv4/UDP frame with a ~600-byte SIP payload.
func sipFrame(tb testing.TB) ([]byte, int) {
	payload := []byte("INVITE sip:bob@biloxi.example.com SIP/2.0\r\n" +
		"Via: SIP/2.0/UDP pc33.atlanta.example.com;branch=z9hG4bK776asdhds\r\n" +
		"Max-Forwards: 70\r\nTo: Bob <sip:bob@biloxi.example.com>\r\n" +
		"From: Alice <sip:alice@atlanta.example.com>;tag=1928301774\r\n" +
		"Call-ID: a84b4c76e66710@pc33.atlanta.example.com\r\nCSeq: 314159 INVITE\r\n" +
		"Contact: <sip:alice@pc33.atlanta.example.com>\r\nContent-Type: application/sdp\r\n" +
		"Content-Length: 142\r\n\r\n" +
		"v=0\r\no=alice 2890844526 2890844526 IN IP4 pc33.atlanta.example.com\r\ns=-\r\n" +
		"c=IN IP4 192.0.2.101\r\nt=0 0\r\nm=audio 49172 RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\n" +
		"a=sendrecv\r\na=ptime:20\r\n")
	h := Header{Src: netip.MustParseAddrPort("192.0.2.10:5060"), Dst: netip.MustParseAddrPort("198.51.100.7:5060")}
	b := make([]byte, 2048)
	hr := Headroom(false, false)
	copy(b[hr:], payload)
	n, err := Encode(b, &h, len(payload))
	if err != nil {
		tb.Fatal(err)
	}
	return b[:n], len(payload)
}

func TestDecodeEncodeZeroAllocs(t *testing.T) {
	rx, _ := sipFrame(t)
	tx := make([]byte, 2048)
	var f Frame
	allocs := testing.AllocsPerRun(1000, func() {
		if Decode(rx, &f) != nil {
			panic("decode")
		}
		h := Header{SrcMAC: f.DstMAC, DstMAC: f.SrcMAC, Src: f.DstAddrPort(), Dst: f.SrcAddrPort()}
		hr := Headroom(f.IPv6, f.Tagged)
		copy(tx[hr:], f.Payload)
		if _, err := Encode(tx, &h, len(f.Payload)); err != nil {
			panic(err)
		}
	})
	if allocs != 0 {
		t.Fatalf("Decode+Encode allocate %v times per packet, want 0", allocs)
	}
}

// BenchmarkDecodeEncode decodes a received ~600-byte SIP frame and encodes
// the headers of a reply whose payload is already in the TX frame (the SIP
// builder writes it there), checksum over the payload included.
func BenchmarkDecodeEncode(b *testing.B) {
	rx, plen := sipFrame(b)
	tx := make([]byte, 2048)
	copy(tx[Headroom(false, false):], rx[len(rx)-plen:])
	var f Frame
	b.SetBytes(int64(len(rx)))
	b.ReportAllocs()
	for b.Loop() {
		if Decode(rx, &f) != nil {
			b.Fatal("decode")
		}
		h := Header{SrcMAC: f.DstMAC, DstMAC: f.SrcMAC, Src: f.DstAddrPort(), Dst: f.SrcAddrPort()}
		if _, err := Encode(tx, &h, len(f.Payload)); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkChecksum600(b *testing.B) {
	buf := make([]byte, 600)
	b.SetBytes(600)
	for b.Loop() {
		_ = Checksum(buf)
	}
}
