package capture

import (
	"bytes"
	"encoding/binary"
	"io"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/google/gopacket"
	"github.com/google/gopacket/layers"
	"github.com/google/gopacket/pcapgo"

	"sipedge/afxdp/frame"
)

// writeCapture makes a pcap of the given link type from raw records, with
// pcapgo rather than this package's Writer (which writes Ethernet only).
func writeCapture(t testing.TB, lt int, records [][]byte) []byte {
	var b bytes.Buffer
	w := pcapgo.NewWriter(&b)
	if err := w.WriteFileHeader(65536, layers.LinkType(lt&0xff)); err != nil {
		t.Fatal(err)
	}
	// pcapgo's LinkType is 8 bits; the file field is 32 (SLL2 is 276).
	binary.LittleEndian.PutUint32(b.Bytes()[20:24], uint32(lt))
	for i, r := range records {
		ci := gopacket.CaptureInfo{Timestamp: time.Unix(1700000000, int64(i)*1000), CaptureLength: len(r), Length: len(r)}
		if err := w.WritePacket(ci, r); err != nil {
			t.Fatal(err)
		}
	}
	return b.Bytes()
}

// udpFrame builds an Ethernet frame with frame.Encode.
func udpFrame(t testing.TB, src, dst string, payload string) []byte {
	s, d := netip.MustParseAddrPort(src), netip.MustParseAddrPort(dst)
	h := frame.Header{Src: s, Dst: d, SrcMAC: [6]byte{2, 1, 1, 1, 1, 1}}
	hr := frame.Headroom(s.Addr().Is6(), false)
	b := make([]byte, hr+len(payload))
	copy(b[hr:], payload)
	n, err := frame.Encode(b, &h, len(payload))
	if err != nil {
		t.Fatal(err)
	}
	return b[:n]
}

// readAll reads every datagram of a capture, payloads copied.
func readAll(t testing.TB, c []byte) ([]Datagram, Stats) {
	t.Helper()
	r, err := NewReader(bytes.NewReader(c), "test")
	if err != nil {
		t.Fatal(err)
	}
	var all []Datagram
	for range 1 << 20 {
		var d Datagram
		err := r.Next(&d)
		if err == io.EOF {
			return all, r.Stats()
		}
		if err != nil {
			t.Fatal(err)
		}
		d.Payload = append([]byte(nil), d.Payload...)
		all = append(all, d)
	}
	t.Fatal("capture never reached io.EOF")
	return nil, Stats{}
}

// addsUp checks the accounting every capture must satisfy once read.
func addsUp(t *testing.T, s Stats) {
	t.Helper()
	if s.Datagrams+s.Skipped+s.Fragments-s.Reassembled != s.Records {
		t.Fatalf("records do not add up: %+v", s)
	}
}

// TestLinkTypes feeds the same datagrams under every link type the reader
// reads, and non-UDP records that must be skipped.
func TestLinkTypes(t *testing.T) {
	v4 := udpFrame(t, "192.0.2.1:5060", "192.0.2.2:5070", "OPTIONS v4")
	v6 := udpFrame(t, "[2001:db8::1]:5060", "[2001:db8::2]:5070", "OPTIONS v6")
	arp := append(append([]byte{}, v4[:12]...), 0x08, 0x06, 0, 1)
	tcp := append([]byte{}, v4...)
	tcp[14+9] = 6
	sll := func(ip []byte, proto uint16) []byte {
		h := make([]byte, 16)
		binary.BigEndian.PutUint16(h[4:6], 6)
		copy(h[6:12], []byte{2, 3, 3, 3, 3, 3})
		binary.BigEndian.PutUint16(h[14:16], proto)
		return append(h, ip...)
	}
	sll2 := func(ip []byte, proto uint16) []byte {
		h := make([]byte, 20)
		binary.BigEndian.PutUint16(h[0:2], proto)
		h[11] = 6
		copy(h[12:18], []byte{2, 3, 3, 3, 3, 3})
		return append(h, ip...)
	}
	for _, tc := range []struct {
		lt      int
		records [][]byte
		hw      [6]byte
	}{
		{1, [][]byte{arp, v4, tcp, v6}, [6]byte{2, 1, 1, 1, 1, 1}},
		{113, [][]byte{sll(v4[14:], 0x0800), sll(arp[14:], 0x0806), sll(v6[14:], 0x86DD), sll(tcp[14:], 0x0800)}, [6]byte{2, 3, 3, 3, 3, 3}},
		{276, [][]byte{sll2(v4[14:], 0x0800), sll2(v6[14:], 0x86DD), sll2(arp[14:], 0x0806), sll2(tcp[14:], 0x0800)}, [6]byte{2, 3, 3, 3, 3, 3}},
		{101, [][]byte{v4[14:], tcp[14:], v6[14:], {0x50, 0}}, [6]byte{}},
		{12, [][]byte{v4[14:], tcp[14:], v6[14:], {}}, [6]byte{}},
		{228, [][]byte{v4[14:], tcp[14:], v6[14:], {1, 2, 3}}, [6]byte{}},
		{229, [][]byte{v6[14:], tcp[14:], v4[14:], {0x60}}, [6]byte{}},
	} {
		got, s := readAll(t, writeCapture(t, tc.lt, tc.records))
		if len(got) != 2 || s.Skipped != 2 || s.Datagrams != 2 {
			t.Fatalf("link type %d: %d datagrams, stats %+v; want 2 delivered and 2 skipped", tc.lt, len(got), s)
		}
		for _, g := range got {
			v6 := strings.HasSuffix(string(g.Payload), "v6")
			want := "192.0.2.2:5070"
			if v6 {
				want = "[2001:db8::2]:5070"
			}
			if g.Dst.String() != want || g.SrcMAC != tc.hw {
				t.Fatalf("link type %d: %q to %v hw %x, want %s hw %x", tc.lt, g.Payload, g.Dst, g.SrcMAC, want, tc.hw)
			}
		}
	}
	// An unknown link type is read and skipped, not fatal.
	if got, s := readAll(t, writeCapture(t, 147, [][]byte{v4})); len(got) != 0 || s.Skipped != 1 {
		t.Fatalf("unknown link type: %d datagrams, %+v", len(got), s)
	}
}

// v4Fragmenter returns the Ethernet frame of one UDP datagram cut at
// [off, end) of its IPv4 payload, with identification id.
func v4Fragmenter(t testing.TB, payload string) (frag func(off, end int, more bool, id uint16) []byte, udpLen int) {
	whole := udpFrame(t, "192.0.2.1:5060", "192.0.2.2:5060", payload)
	udp := whole[14+20:]
	return func(off, end int, more bool, id uint16) []byte {
		b := append(append([]byte{}, whole[:14+20]...), udp[off:end]...)
		h := b[14:]
		binary.BigEndian.PutUint16(h[2:4], uint16(20+end-off))
		binary.BigEndian.PutUint16(h[4:6], id)
		fo := uint16(off / 8)
		if more {
			fo |= 0x2000
		}
		binary.BigEndian.PutUint16(h[6:8], fo)
		return b
	}, len(udp)
}

// TestIPv4Reassembly splits a datagram into three fragments, out of order,
// around another datagram and an orphan fragment of a third.
func TestIPv4Reassembly(t *testing.T) {
	payload := strings.Repeat("INVITE-body-", 300) // 3600 bytes
	frag, n := v4Fragmenter(t, payload)
	other := udpFrame(t, "192.0.2.9:5060", "192.0.2.2:5060", "between")
	recs := [][]byte{frag(1480, 2960, true, 1), other, frag(0, 1480, true, 2), frag(0, 1480, true, 1), frag(2960, n, false, 1)}
	got, s := readAll(t, writeCapture(t, 1, recs))
	if len(got) != 2 || string(got[0].Payload) != "between" || string(got[1].Payload) != payload {
		t.Fatalf("got %d datagrams (%+v)", len(got), s)
	}
	if got[1].Record != 5 || !got[1].TS.Equal(time.Unix(1700000000, 4000)) || got[1].Src.String() != "192.0.2.1:5060" {
		t.Fatalf("reassembled datagram at record %d, %v, from %v; want record 5, the last fragment's time", got[1].Record, got[1].TS, got[1].Src)
	}
	// The orphan (id 2) is lost at the end of the capture, counted once.
	if s.Fragments != 4 || s.Reassembled != 1 || s.Skipped != 0 || s.Lost != 1 {
		t.Fatalf("stats %+v", s)
	}
	addsUp(t, s)
	// A duplicated fragment loses the datagram, counted, without a panic;
	// so does a second last fragment.
	for name, recs := range map[string][][]byte{
		"duplicate": {frag(0, 1480, true, 1), frag(0, 1480, true, 1), frag(1480, 2960, true, 1), frag(2960, n, false, 1)},
		"overlap":   {frag(0, 1480, true, 1), frag(1400, 2960, true, 1), frag(2960, n, false, 1)},
		"two lasts": {frag(2960, n, false, 1), frag(0, 1480, true, 1), frag(2960, n, false, 1)},
		"unaligned": {frag(0, 1481, true, 1), frag(1481, n, false, 1)},
	} {
		got, s := readAll(t, writeCapture(t, 1, recs))
		if len(got) != 0 || s.Lost == 0 || s.Reassembled != 0 {
			t.Fatalf("%s fragment: %d datagrams, %+v", name, len(got), s)
		}
		addsUp(t, s)
	}
}

// TestIPv6Reassembly cuts a datagram into two IPv6 fragments, the first
// with a hop-by-hop options header before its fragment header.
func TestIPv6Reassembly(t *testing.T) {
	payload := strings.Repeat("v6-INVITE-", 200) // 2000 bytes
	whole := udpFrame(t, "[2001:db8::1]:5060", "[2001:db8::2]:5062", payload)
	udp := whole[14+40:]
	frag := func(off, end int, more, hbh bool) []byte {
		b := append([]byte{}, whole[:14+40]...)
		next := byte(44)
		if hbh {
			b[14+6] = 0                            // hop-by-hop first
			b = append(b, 44, 0, 1, 4, 0, 0, 0, 0) // PadN: 8 bytes in all
		} else {
			b[14+6] = next
		}
		fo := uint16(off/8) << 3
		if more {
			fo |= 1
		}
		b = append(b, 17, 0, byte(fo>>8), byte(fo), 0, 0, 0x12, 0x34)
		b = append(b, udp[off:end]...)
		binary.BigEndian.PutUint16(b[14+4:], uint16(len(b)-14-40))
		return b
	}
	got, s := readAll(t, writeCapture(t, 1, [][]byte{frag(1232, len(udp), false, false), frag(0, 1232, true, true)}))
	if len(got) != 1 || string(got[0].Payload) != payload || got[0].Dst.String() != "[2001:db8::2]:5062" {
		t.Fatalf("got %d datagrams (%+v)", len(got), s)
	}
	if s.Fragments != 2 || s.Reassembled != 1 || s.Lost != 0 {
		t.Fatalf("stats %+v", s)
	}
	addsUp(t, s)
}

// TestBoundedPending sends more unfinished datagrams than the reassembler
// keeps: the oldest are evicted and counted, the rest lost at the end.
func TestBoundedPending(t *testing.T) {
	frag, _ := v4Fragmenter(t, strings.Repeat("x", 3000))
	var recs [][]byte
	for id := range maxPending + 10 {
		recs = append(recs, frag(0, 1480, true, uint16(id)))
	}
	got, s := readAll(t, writeCapture(t, 1, recs))
	if len(got) != 0 || s.Lost != uint64(len(recs)) || s.Fragments != uint64(len(recs)) {
		t.Fatalf("%d orphan fragments: %d datagrams, %+v", len(recs), len(got), s)
	}
	addsUp(t, s)
}

// TestNextAllocs checks that reading a pcap, fragments included, allocates
// nothing per datagram once the reassembler is warm.
func TestNextAllocs(t *testing.T) {
	payload := strings.Repeat("INVITE-body-", 300)
	frag, n := v4Fragmenter(t, payload)
	one := udpFrame(t, "192.0.2.9:5060", "192.0.2.2:5060", "OPTIONS")
	var recs [][]byte
	for range 300 {
		recs = append(recs, one, frag(0, 1480, true, 9), frag(1480, 2960, true, 9), frag(2960, n, false, 9))
	}
	r, err := NewReader(bytes.NewReader(writeCapture(t, 1, recs)), "allocs")
	if err != nil {
		t.Fatal(err)
	}
	var d Datagram
	for range 4 { // warm up: the reassembler's slot and output buffer
		if err := r.Next(&d); err != nil {
			t.Fatal(err)
		}
	}
	allocs := testing.AllocsPerRun(200, func() {
		if err := r.Next(&d); err != nil {
			panic(err)
		}
	})
	if allocs != 0 {
		t.Fatalf("Next allocates %v times per datagram, want 0", allocs)
	}
	if s := r.Stats(); s.Reassembled < 100 {
		t.Fatalf("the measured datagrams were not reassembled: %+v", s)
	}
}

func TestReaderErrors(t *testing.T) {
	if _, err := NewReader(bytes.NewReader(nil), "empty"); err == nil {
		t.Fatal("an empty file opened")
	}
	if _, err := NewReader(bytes.NewReader([]byte("not a capture at all, no")), "junk"); err == nil {
		t.Fatal("junk opened")
	}
	if _, err := Open("/nonexistent/missing.pcap"); err == nil || !strings.Contains(err.Error(), "missing.pcap") {
		t.Fatalf("missing file: %v", err)
	}
	var buf bytes.Buffer
	w, _ := NewWriter(&buf)
	w.WriteFrame(time.Unix(1, 0), udpFrame(t, "192.0.2.1:1", "192.0.2.2:2", "one"))
	w.WriteFrame(time.Unix(2, 0), udpFrame(t, "192.0.2.1:1", "192.0.2.2:2", "two"))
	w.Flush()
	b := buf.Bytes()[:buf.Len()-3] // truncated record
	r, err := NewReader(bytes.NewReader(b), "cut")
	if err != nil {
		t.Fatal(err)
	}
	var d Datagram
	if err := r.Next(&d); err != nil || string(d.Payload) != "one" {
		t.Fatalf("first record of a truncated capture: %q, %v", d.Payload, err)
	}
	if err := r.Next(&d); err == nil || err == io.EOF || !strings.Contains(err.Error(), "record 2") {
		t.Fatalf("truncated record: %v; want an error naming record 2", err)
	}
}

// BenchmarkNext streams a capture of SIP-sized datagrams, one in four
// rebuilt from three IPv4 fragments, from memory.
func BenchmarkNext(b *testing.B) {
	frag, n := v4Fragmenter(b, strings.Repeat("INVITE-body-", 300))
	one := udpFrame(b, "192.0.2.9:5060", "192.0.2.2:5060", strings.Repeat("OPTIONS ", 100))
	var recs [][]byte
	for range 1000 {
		recs = append(recs, one, one, one, frag(0, 1480, true, 9), frag(1480, 2960, true, 9), frag(2960, n, false, 9))
	}
	c := writeCapture(b, 1, recs)
	src := bytes.NewReader(c)
	r, err := NewReader(src, "bench")
	if err != nil {
		b.Fatal(err)
	}
	var d Datagram
	b.ReportAllocs()
	for b.Loop() {
		if err := r.Next(&d); err == io.EOF {
			b.StopTimer()
			src.Reset(c)
			if r, err = NewReader(src, "bench"); err != nil {
				b.Fatal(err)
			}
			b.StartTimer()
		} else if err != nil {
			b.Fatal(err)
		}
	}
}
