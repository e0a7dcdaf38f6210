package capture

import (
	"encoding/binary"
	"testing"
)

// FuzzDecodeRecord feeds arbitrary records, under every link type, through
// link stripping, decoding and fragment reassembly: never a panic, and every
// record is accounted for.
func FuzzDecodeRecord(f *testing.F) {
	v4 := udpFrame(f, "192.0.2.1:5060", "192.0.2.2:5060", "OPTIONS sip:x SIP/2.0\r\n\r\n")
	frag := append([]byte{}, v4...)
	binary.BigEndian.PutUint16(frag[14+6:], 0x2000)
	v6 := udpFrame(f, "[2001:db8::1]:5060", "[2001:db8::2]:5060", "x")
	f6 := append(append(append([]byte{}, v6[14:54]...), 17, 0, 0, 1, 0, 0, 0, 7), v6[54:]...)
	f6[6] = 44
	binary.BigEndian.PutUint16(f6[4:6], uint16(len(f6)-40))
	for _, seed := range [][]byte{v4, frag, v6, v4[14:], f6} {
		f.Add(uint8(0), seed)
		f.Add(uint8(3), seed)
	}
	lts := []int{linkEthernet, linkSLL, linkSLL2, linkRaw, linkRawBSD, linkIPv4, linkIPv6, 147}
	f.Fuzz(func(t *testing.T, which uint8, b []byte) {
		r := &Reader{}
		var d Datagram
		for i := range 3 { // repeated, so that fragments meet their twins
			before := r.stats
			ok := r.decode(lts[int(which)%len(lts)], b, &d)
			if ok && len(d.Payload) > len(b)+MaxDatagram {
				t.Fatalf("payload of %d bytes from a %d-byte record", len(d.Payload), len(b))
			}
			if !ok && r.stats == before {
				t.Fatalf("round %d: record neither delivered nor counted", i)
			}
		}
	})
}
