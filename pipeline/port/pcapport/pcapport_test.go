package pcapport

import (
	"bytes"
	"io"
	"os"
	"path/filepath"
	"testing"

	"github.com/google/gopacket"
	"github.com/google/gopacket/layers"
	"github.com/google/gopacket/pcapgo"

	"sipedge/pipeline/port"
	"sipedge/sipcore/shareddata"
)

// drain receives every datagram of p and returns them, payloads copied.
func drain(t testing.TB, p *Port) []port.Packet {
	t.Helper()
	var all []port.Packet
	rx := make([]port.Packet, 16)
	for range 1 << 20 {
		n, err := p.Receive(rx)
		for _, pk := range rx[:n] {
			pk.Payload = append([]byte(nil), pk.Payload...)
			all = append(all, pk)
		}
		p.Release(rx[:n])
		if err == io.EOF {
			return all
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	t.Fatal("capture never reached io.EOF")
	return nil
}

// gopacketUDP counts what gopacket decodes as UDP in a capture, and the IP
// fragments it sees: an independent reading to check the port against.
func gopacketUDP(t *testing.T, path string) (udp, frags int) {
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var src gopacket.PacketDataSource
	var lt layers.LinkType
	if filepath.Ext(path) == ".pcapng" {
		r, err := pcapgo.NewNgReader(f, pcapgo.DefaultNgReaderOptions)
		if err != nil {
			t.Fatal(err)
		}
		src, lt = r, r.LinkType()
	} else {
		r, err := pcapgo.NewReader(f)
		if err != nil {
			t.Fatal(err)
		}
		src, lt = r, r.LinkType()
	}
	for {
		data, _, err := src.ReadPacketData()
		if err == io.EOF {
			return
		}
		if err != nil {
			t.Fatal(err)
		}
		pkt := gopacket.NewPacket(data, lt, gopacket.DecodeOptions{NoCopy: true, Lazy: true})
		if pkt.Layer(layers.LayerTypeIPv6Fragment) != nil {
			frags++
			continue
		}
		if ip4, ok := pkt.Layer(layers.LayerTypeIPv4).(*layers.IPv4); ok && (ip4.Flags&layers.IPv4MoreFragments != 0 || ip4.FragOffset != 0) {
			frags++
			continue
		}
		if pkt.Layer(layers.LayerTypeUDP) != nil {
			udp++
		}
	}
}

func TestSharedCaptures(t *testing.T) {
	dir := shareddata.Dir(t, "pcaps")
	// Per capture: UDP datagrams (every record of these captures is UDP;
	// the two fragmented INVITEs of the IPv6 one count once each,
	// reassembled), and SIP messages, which are the request and response
	// totals of pcaps/README.md (tshark).
	want := map[string]struct{ udp, sip, reassembled int }{
		"aaa-register-401-invite-407-cancel.pcap":    {81, 47 + 34, 0},
		"call-g729-rtp-freeswitch.pcap":              {433, 3 + 3, 0},
		"call-linphone-p2p-pcmu.pcapng":              {24, 3 + 4, 0},
		"ipv6-frag-proxy-prack-update.pcap":          {32, 14 + 18, 2},
		"options-invite-401-488-freepbx.pcapng":      {13, 7 + 6, 0},
		"register-digest-qop-cisco-cme.pcapng":       {9, 3 + 6, 0},
		"register-digest-unregister-asterisk.pcapng": {8, 4 + 4, 0},
	}
	files, _ := filepath.Glob(filepath.Join(dir, "*.pcap*"))
	if len(files) != len(want) {
		t.Fatalf("found %d captures in %s, want the %d this test knows", len(files), dir, len(want))
	}
	for _, path := range files {
		name := filepath.Base(path)
		t.Run(name, func(t *testing.T) {
			p, err := Open(Config{Input: path})
			if err != nil {
				t.Fatal(err)
			}
			defer p.Close()
			got := drain(t, p)
			s := p.Stats()
			t.Logf("%s: %d records, %d UDP datagrams, %d skipped, %d fragments, %d reassembled",
				name, s.Frames, len(got), s.Skipped, s.Fragments, s.Reassembled)
			w := want[name]
			if len(got) == 0 || len(got) != w.udp || s.Skipped != 0 || int(s.Reassembled) != w.reassembled {
				t.Errorf("%d datagrams, %d skipped, %d reassembled; want %d, 0, %d",
					len(got), s.Skipped, s.Reassembled, w.udp, w.reassembled)
			}
			udp, frags := gopacketUDP(t, path)
			if len(got) != udp+int(s.Reassembled) || frags != int(s.Fragments) {
				t.Errorf("gopacket sees %d UDP datagrams and %d fragments; the port %d (%d reassembled) and %d",
					udp, frags, len(got), s.Reassembled, s.Fragments)
			}
			if uint64(len(got))+s.Skipped+s.Fragments-s.Reassembled != s.Frames {
				t.Errorf("records do not add up: %+v", s)
			}
			sip := 0
			for _, pk := range got {
				if !pk.Src.IsValid() || !pk.Dst.IsValid() {
					t.Fatalf("datagram without addresses: %v -> %v", pk.Src, pk.Dst)
				}
				line, _, _ := bytes.Cut(pk.Payload, []byte("\r\n"))
				if bytes.HasPrefix(line, []byte("SIP/2.0 ")) || bytes.HasSuffix(line, []byte(" SIP/2.0")) {
					sip++
				}
			}
			if sip != w.sip {
				t.Errorf("%d SIP messages among %d datagrams, want %d", sip, len(got), w.sip)
			}
		})
	}
}
