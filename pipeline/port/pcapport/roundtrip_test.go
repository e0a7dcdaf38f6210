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
	"sipedge/pipeline/port/capture"
	"sipedge/sipcore/shareddata"
)

// TestTransmitRoundTrip writes datagrams of both families through Transmit,
// reads the capture back with the port itself and with gopacket.
func TestTransmitRoundTrip(t *testing.T) {
	src := captureOf(t) // an empty input
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

// dg is one datagram of a test capture.
type dg struct{ src, dst, payload string }

// captureOf writes a pcap of Ethernet frames, 1µs apart, with the writer
// the port itself writes through.
func captureOf(t testing.TB, ds ...dg) []byte {
	var b bytes.Buffer
	w, err := capture.NewWriter(&b)
	if err != nil {
		t.Fatal(err)
	}
	for i, d := range ds {
		h := frame.Header{Src: netip.MustParseAddrPort(d.src), Dst: netip.MustParseAddrPort(d.dst), SrcMAC: [6]byte{2, 1, 1, 1, 1, 1}}
		if err := w.WriteDatagram(time.Unix(1700000000, int64(i)*1000), &h, []byte(d.payload)); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Flush(); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// TestLostFragmentSkipped checks the port's accounting of what the reader
// reassembles: an orphan fragment is a fragment taken in and a datagram
// lost, which the port counts as skipped.
func TestLostFragmentSkipped(t *testing.T) {
	c := captureOf(t, dg{"192.0.2.1:5060", "192.0.2.2:5060", "INVITE"}, dg{"192.0.2.1:5060", "192.0.2.2:5060", "ACK"})
	c[24+16+14+6] |= 0x20 // the first datagram's IPv4 More Fragments flag: an orphan fragment
	p, err := Open(Config{InputReader: bytes.NewReader(c)})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	got := drain(t, p)
	if s := p.Stats(); len(got) != 1 || string(got[0].Payload) != "ACK" || got[0].HW != [6]byte{2, 1, 1, 1, 1, 1} ||
		s.Frames != 2 || s.Fragments != 1 || s.Reassembled != 0 || s.Skipped != 1 || s.Received != 1 {
		t.Fatalf("%d datagrams, stats %+v; want ACK alone, one fragment, one skipped", len(got), s)
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
	c := captureOf(t, dg{"192.0.2.1:1", "192.0.2.2:2", "one"}, dg{"192.0.2.1:1", "192.0.2.2:2", "two"})
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
	if _, err := Open(Config{InputReader: bytes.NewReader(captureOf(t)), Loop: 2}); err == nil {
		t.Fatal("loop over nothing accepted")
	}
}

// TestLoop replays a capture n times and checks content and allocation.
func TestLoop(t *testing.T) {
	c := captureOf(t,
		dg{"192.0.2.1:5060", "192.0.2.2:5060", "first"},
		dg{"[2001:db8::1]:5060", "[2001:db8::2]:5060", "second"},
		dg{"192.0.2.3:5060", "192.0.2.2:5060", "third"},
	)
	const loops = 1000
	p, err := Open(Config{InputReader: bytes.NewReader(c), Loop: loops,
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
	path := filepath.Join(shareddata.Dir(b, "pcaps"), "aaa-register-401-invite-407-cancel.pcap")
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
