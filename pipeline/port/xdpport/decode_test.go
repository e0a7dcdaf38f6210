package xdpport

import (
	"encoding/binary"
	"net/netip"
	"strings"
	"testing"

	"sipedge/afxdp/frame"
	"sipedge/pipeline/port"
)

// TestDecodeReasons: every frame that is not UDP to a SIP port of the
// port's VLAN is refused with its reason; a good one fills the packet.
// Needs no privileges: decode is the part of Receive after the ring.
func TestDecodeReasons(t *testing.T) {
	mk := func(tagged bool, vlan uint16, dport uint16, payload string) []byte {
		b := make([]byte, 256)
		h := frame.Header{DstMAC: [6]byte{2, 0, 0, 0, 0, 1}, SrcMAC: [6]byte{2, 0, 0, 0, 0, 2}, Tagged: tagged, VLAN: vlan,
			Src: netip.MustParseAddrPort("192.0.2.1:4000"), Dst: netip.AddrPortFrom(netip.MustParseAddr("192.0.2.2"), dport)}
		hr := frame.Headroom(false, tagged)
		copy(b[hr:], payload)
		n, err := frame.Encode(b, &h, len(payload))
		if err != nil {
			t.Fatal(err)
		}
		return b[:n]
	}
	good := mk(false, 0, sipPort, "OPTIONS")
	frag := append([]byte(nil), good...)
	binary.BigEndian.PutUint16(frag[20:], 0x2000) // MF
	tcp := append([]byte(nil), good...)
	tcp[23] = 6
	arp := append([]byte(nil), good...)
	binary.BigEndian.PutUint16(arp[12:], 0x0806)
	badLen := append([]byte(nil), good...)
	binary.BigEndian.PutUint16(badLen[38:], 7)
	cases := []struct {
		name string
		b    []byte
		want int
	}{
		{"good", good, -1},
		{"truncated", good[:20], dropTruncated},
		{"arp", arp, dropNotIP},
		{"tcp", tcp, dropNotUDP},
		{"fragment", frag, dropFragment},
		{"udp length", badLen, dropUDPLength},
		{"other port", mk(false, 0, 5080, "x"), dropNotSIPPort},
		{"tagged on an untagged port", mk(true, 7, sipPort, "x"), dropVLAN},
	}
	p := &Port{ports: []uint16{5062, sipPort}}
	for _, tc := range cases {
		var pk port.Packet
		if got := p.decode(tc.b, &pk); got != tc.want {
			t.Errorf("%s: reason %d, want %d", tc.name, got, tc.want)
		}
		if tc.want == -1 {
			if string(pk.Payload) != "OPTIONS" || pk.Src.String() != "192.0.2.1:4000" || pk.Dst.String() != "192.0.2.2:5060" || pk.HW != [6]byte{2, 0, 0, 0, 0, 2} {
				t.Errorf("good frame decoded as %+v", pk)
			}
			if &pk.Payload[0] != &tc.b[42] {
				t.Error("payload was copied, want it aliasing the frame")
			}
		}
	}
	tagged := &Port{ports: []uint16{sipPort}, tagged: true, vlan: 7}
	var pk port.Packet
	if r := tagged.decode(mk(true, 7, sipPort, "x"), &pk); r != -1 {
		t.Errorf("frame of the port's VLAN refused: %d", r)
	}
	for _, b := range [][]byte{mk(true, 8, sipPort, "x"), good} {
		if r := tagged.decode(b, &pk); r != dropVLAN {
			t.Errorf("frame of another VLAN: reason %d, want %d", r, dropVLAN)
		}
	}
}

func TestOpenRefusesBadConfig(t *testing.T) {
	for _, tc := range []struct {
		queues int
		cfg    Config
		want   string
	}{
		{1, Config{}, "no SIP ports"},
		{1, Config{Ports: []uint16{0}}, "port 0"},
		{0, Config{Ports: []uint16{5060}}, "queues"},
		{1, Config{Ports: []uint16{5060}, VLAN: 4095}, "VLAN"},
		{1, Config{Ports: []uint16{5060}, Batch: -1}, "batch"},
		{1, Config{Ports: []uint16{5060}}, "no-such-if0"},
	} {
		_, err := Open("no-such-if0", tc.queues, tc.cfg)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("Open(%d, %+v) = %v, want an error about %q", tc.queues, tc.cfg, err, tc.want)
		}
	}
}
