package pcapport

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"io"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/gopacket"
	"github.com/google/gopacket/layers"
	"github.com/google/gopacket/pcapgo"

	"sipedge/afxdp/frame"
	"sipedge/pipeline/port"
)

// TestTransmitRoundTrip writes datagrams of both families through Transmit,
// reads the capture back with the port itself and with gopacket.
func TestTransmitRoundTrip(t *testing.T) {
	src := writeCapture(t, 1, nil) // an empty input
	out := filepath.Join(t.TempDir(), "out.pcap")
	f, err := os.Create(out)
	if err != nil {
		t.Fatal(err)
	}
	p, err := Open(Config{InputReader: bytes.NewReader(src), Output: f, Buffers: 8,
		Local: netip.MustParseAddrPort("192.0.2.1:5060"), SrcMAC: [6]byte{2, 0, 0, 0, 0, 1}, DstMAC: [6]byte{2, 0, 0, 0, 0, 2}})
	if err != nil {
		t.Fatal(err)
	}
	if n, err := p.Receive(make([]port.Packet, 4)); n != 0 || err != io.EOF {
		t.Fatalf("Receive on an empty capture = %d, %v; want 0, io.EOF", n, err)
	}
	const n = 100
	type sent struct {
		src, dst netip.AddrPort
		hw       [6]byte
		payload  string
	}
	var want []sent
	tx := make([]port.Packet, 5)
	for i := 0; i < n; i += len(tx) {
		k := p.Alloc(tx)
		if k != len(tx) {
			t.Fatalf("Alloc = %d", k)
		}
		for j := range k {
			s := sent{dst: netip.MustParseAddrPort(fmt.Sprintf("198.51.100.%d:%d", i+j, 5000+i+j)), src: p.local,
				payload: fmt.Sprintf("SIP/2.0 200 OK\r\nCSeq: %d INVITE\r\n%s", i+j, strings.Repeat("x", i+j))}
			if (i+j)%3 == 0 {
				s.src = netip.MustParseAddrPort("[2001:db8::1]:5060")
				s.dst = netip.MustParseAddrPort(fmt.Sprintf("[2001:db8::%x]:5062", i+j+2))
				s.hw = [6]byte{2, 9, 9, 9, 9, byte(i + j)}
				tx[j].Src, tx[j].HW = s.src, s.hw
			}
			tx[j].Dst = s.dst
			if (i+j)%7 == 0 {
				tx[j].Payload = []byte(s.payload) // not the Alloc buffer: copied
			} else {
				tx[j].Payload = append(tx[j].Payload, s.payload...)
			}
			want = append(want, s)
		}
		if m, err := p.Transmit(tx[:k]); m != k || err != nil {
			t.Fatalf("Transmit = %d, %v", m, err)
		}
	}
	if err := p.Close(); err != nil {
		t.Fatal(err)
	}
	f.Close()

	back, err := Open(Config{Input: out})
	if err != nil {
		t.Fatal(err)
	}
	defer back.Close()
	got := drain(t, back)
	if len(got) != n {
		t.Fatalf("read back %d datagrams, want %d", len(got), n)
	}
	for i, g := range got {
		w := want[i]
		if string(g.Payload) != w.payload || g.Src != w.src || g.Dst != w.dst {
			t.Fatalf("datagram %d: %v -> %v %q, want %v -> %v %q", i, g.Src, g.Dst, g.Payload, w.src, w.dst, w.payload)
		}
	}
	// gopacket agrees, and the checksums Encode wrote are verified by it.
	udp, _ := gopacketUDP(t, out)
	if udp != n {
		t.Fatalf("gopacket reads %d UDP datagrams, want %d", udp, n)
	}
	r, _ := os.Open(out)
	defer r.Close()
	pr, err := pcapgo.NewReader(r)
	if err != nil {
		t.Fatal(err)
	}
	var last time.Time
	for i := range n {
		data, ci, err := pr.ReadPacketData()
		if err != nil {
			t.Fatal(err)
		}
		if !ci.Timestamp.After(last) {
			t.Fatalf("frame %d timestamp %v not after %v", i, ci.Timestamp, last)
		}
		last = ci.Timestamp
		pkt := gopacket.NewPacket(data, layers.LinkTypeEthernet, gopacket.Default)
		eth := pkt.Layer(layers.LayerTypeEthernet).(*layers.Ethernet)
		wantHW := [6]byte{2, 0, 0, 0, 0, 2}
		if want[i].hw != ([6]byte{}) {
			wantHW = want[i].hw
		}
		if [6]byte(eth.DstMAC) != wantHW || [6]byte(eth.SrcMAC) != [6]byte{2, 0, 0, 0, 0, 1} {
			t.Fatalf("frame %d MACs %v -> %v", i, eth.SrcMAC, eth.DstMAC)
		}
		u := pkt.Layer(layers.LayerTypeUDP).(*layers.UDP)
		nl := pkt.NetworkLayer()
		if err := u.SetNetworkLayerForChecksum(nl); err != nil {
			t.Fatal(err)
		}
		// Re-serialise with checksums computed and compare with ours.
		sb := gopacket.NewSerializeBuffer()
		cs := u.Checksum
		if err := gopacket.SerializeLayers(sb, gopacket.SerializeOptions{ComputeChecksums: true}, u, gopacket.Payload(u.Payload)); err != nil {
			t.Fatal(err)
		}
		if binary.BigEndian.Uint16(sb.Bytes()[6:8]) != cs {
			t.Fatalf("frame %d UDP checksum %#x, gopacket computes %#x", i, cs, binary.BigEndian.Uint16(sb.Bytes()[6:8]))
		}
	}
}

// writeCapture makes a pcap of the given link type from raw records.
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

// TestLinkTypes feeds the same datagrams under every link type the port
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
		p, err := Open(Config{InputReader: bytes.NewReader(writeCapture(t, tc.lt, tc.records))})
		if err != nil {
			t.Fatalf("link type %d: %v", tc.lt, err)
		}
		got := drain(t, p)
		if len(got) != 2 || p.Stats().Skipped != 2 {
			t.Fatalf("link type %d: %d datagrams, %d skipped; want 2 and 2", tc.lt, len(got), p.Stats().Skipped)
		}
		for _, g := range got {
			v6 := strings.HasSuffix(string(g.Payload), "v6")
			want := "192.0.2.2:5070"
			if v6 {
				want = "[2001:db8::2]:5070"
			}
			if g.Dst.String() != want || g.HW != tc.hw {
				t.Fatalf("link type %d: %q to %v hw %x, want %s hw %x", tc.lt, g.Payload, g.Dst, g.HW, want, tc.hw)
			}
		}
		p.Close()
	}
	// An unknown link type is read and skipped, not fatal.
	p, err := Open(Config{InputReader: bytes.NewReader(writeCapture(t, 147, [][]byte{v4}))})
	if err != nil {
		t.Fatal(err)
	}
	if got := drain(t, p); len(got) != 0 || p.Stats().Skipped != 1 {
		t.Fatalf("unknown link type: %d datagrams, %+v", len(got), p.Stats())
	}
}

// TestIPv4Reassembly splits a datagram into three fragments, out of order.
func TestIPv4Reassembly(t *testing.T) {
	payload := strings.Repeat("INVITE-body-", 300) // 3600 bytes
	whole := udpFrame(t, "192.0.2.1:5060", "192.0.2.2:5060", payload)
	ip := whole[14:]
	udp := ip[20:]
	frag := func(off, end int, more bool) []byte {
		b := append([]byte{}, whole[:14+20]...)
		b = append(b, udp[off:end]...)
		h := b[14:]
		binary.BigEndian.PutUint16(h[2:4], uint16(20+end-off))
		binary.BigEndian.PutUint16(h[4:6], 0x1234)
		fo := uint16(off / 8)
		if more {
			fo |= 0x2000
		}
		binary.BigEndian.PutUint16(h[6:8], fo)
		return b
	}
	other := udpFrame(t, "192.0.2.9:5060", "192.0.2.2:5060", "between")
	recs := [][]byte{frag(1480, 2960, true), other, frag(0, 1480, true), frag(2960, len(udp), false)}
	p, err := Open(Config{InputReader: bytes.NewReader(writeCapture(t, 1, recs))})
	if err != nil {
		t.Fatal(err)
	}
	got := drain(t, p)
	if len(got) != 2 || string(got[0].Payload) != "between" || string(got[1].Payload) != payload {
		t.Fatalf("got %d datagrams (%+v)", len(got), p.Stats())
	}
	if s := p.Stats(); s.Fragments != 3 || s.Reassembled != 1 || s.Skipped != 0 {
		t.Fatalf("stats %+v", s)
	}
	// A datagram missing its last fragment is counted at the end.
	p, _ = Open(Config{InputReader: bytes.NewReader(writeCapture(t, 1, recs[:3]))})
	if got := drain(t, p); len(got) != 1 || p.Stats().Skipped != 1 {
		t.Fatalf("incomplete datagram: %d datagrams, %+v", len(got), p.Stats())
	}
	// A duplicated fragment loses the datagram, counted, without a panic.
	recs = [][]byte{frag(0, 1480, true), frag(0, 1480, true), frag(1480, 2960, true), frag(2960, len(udp), false)}
	p, _ = Open(Config{InputReader: bytes.NewReader(writeCapture(t, 1, recs))})
	if got := drain(t, p); len(got) != 0 || p.Stats().Skipped == 0 {
		t.Fatalf("duplicate fragment: %d datagrams, %+v", len(got), p.Stats())
	}
}

func TestBadInput(t *testing.T) {
	if _, err := Open(Config{InputReader: strings.NewReader("")}); err == nil {
		t.Fatal("empty input accepted")
	}
	if _, err := Open(Config{InputReader: strings.NewReader("this is not a capture at all")}); err == nil {
		t.Fatal("text accepted as a capture")
	}
	if _, err := Open(Config{Input: filepath.Join(t.TempDir(), "missing.pcap")}); err == nil || !strings.Contains(err.Error(), "missing.pcap") {
		t.Fatalf("missing file: %v", err)
	}
	c := writeCapture(t, 1, [][]byte{udpFrame(t, "192.0.2.1:1", "192.0.2.2:2", "one"), udpFrame(t, "192.0.2.1:1", "192.0.2.2:2", "two")})
	p, err := Open(Config{InputReader: bytes.NewReader(c[:len(c)-3])})
	if err != nil {
		t.Fatal(err)
	}
	rx := make([]port.Packet, 4)
	n, err := p.Receive(rx)
	if n != 1 || string(rx[0].Payload) != "one" || err != nil {
		t.Fatalf("first Receive of a truncated capture = %d, %v", n, err)
	}
	if n, err = p.Receive(rx); n != 0 || err == nil || err == io.EOF {
		t.Fatalf("truncated record: Receive = %d, %v; want a clear error", n, err)
	}
	// Loop over a capture without UDP is refused at Open.
	if _, err := Open(Config{InputReader: bytes.NewReader(writeCapture(t, 1, nil)), Loop: 2}); err == nil {
		t.Fatal("loop over nothing accepted")
	}
}

// TestLoop replays a capture n times and checks content and allocation.
func TestLoop(t *testing.T) {
	recs := [][]byte{
		udpFrame(t, "192.0.2.1:5060", "192.0.2.2:5060", "first"),
		udpFrame(t, "[2001:db8::1]:5060", "[2001:db8::2]:5060", "second"),
		udpFrame(t, "192.0.2.3:5060", "192.0.2.2:5060", "third"),
	}
	const loops = 1000
	p, err := Open(Config{InputReader: bytes.NewReader(writeCapture(t, 1, recs)), Loop: loops,
		Local: netip.MustParseAddrPort("192.0.2.2:5060")})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	rx := make([]port.Packet, 2) // not a divisor of 3: batches straddle rounds
	tx := make([]port.Packet, 2)
	names := []string{"first", "second", "third"}
	total := 0
	step := func() error {
		n, err := p.Receive(rx)
		if err != nil {
			return err
		}
		m := p.Alloc(tx[:n])
		for i := range m {
			if string(rx[i].Payload) != names[(total+i)%3] {
				panic(fmt.Sprintf("datagram %d = %q", total+i, rx[i].Payload))
			}
			rx[i].Payload[0] = 'X' // must not reach the arena
			tx[i].Payload = append(tx[i].Payload, rx[i].Payload...)
			tx[i].Dst, tx[i].Src = rx[i].Src, rx[i].Dst
		}
		total += n
		p.Release(rx[:n])
		if s, err := p.Transmit(tx[:m]); s != m || err != nil {
			panic(fmt.Sprintf("Transmit %d/%d: %v", s, m, err))
		}
		return nil
	}
	allocs := testing.AllocsPerRun(1000, func() {
		if err := step(); err != nil {
			panic(err)
		}
	})
	if allocs != 0 {
		t.Fatalf("loop mode allocates %v times per Receive/Alloc/Transmit/Release batch, want 0", allocs)
	}
	var err2 error
	for range 10 * loops {
		if err2 = step(); err2 != nil {
			break
		}
	}
	if err2 != io.EOF || total != 3*loops {
		t.Fatalf("after %d datagrams: %v; want io.EOF after %d", total, err2, 3*loops)
	}
	if s := p.Stats(); s.Frames != 3 || s.Sent != uint64(total) {
		t.Fatalf("stats %+v", s)
	}
}

// BenchmarkLoopReceive drives the SIP capture from memory through
// Receive/Release, the way a pipeline benchmark uses the port.
func BenchmarkLoopReceive(b *testing.B) {
	path := filepath.Join(sharedDir(b), "pcaps", "aaa-register-401-invite-407-cancel.pcap")
	p, err := Open(Config{Input: path, Loop: 1 << 30})
	if err != nil {
		b.Fatal(err)
	}
	defer p.Close()
	rx := make([]port.Packet, 64)
	b.ReportAllocs()
	n := 0
	for b.Loop() {
		k, err := p.Receive(rx)
		if err != nil {
			b.Fatal(err)
		}
		p.Release(rx[:k])
		n += k
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(n), "ns/datagram")
}
