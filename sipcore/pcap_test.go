package sipcore

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"testing"

	"github.com/google/gopacket"
	"github.com/google/gopacket/layers"
	"github.com/google/gopacket/pcapgo"

	"sipedge/sipcore/shareddata"
)

// pcapWant is, per capture, the SIP messages tshark counts (README of
// ../shared/pcaps): requests by method, responses by status code,
// retransmissions included.
var pcapWant = map[string]map[string]int{
	"call-g729-rtp-freeswitch.pcap":              {"INVITE": 1, "ACK": 1, "BYE": 1, "100": 1, "200": 2},
	"call-linphone-p2p-pcmu.pcapng":              {"INVITE": 1, "ACK": 1, "BYE": 1, "100": 1, "180": 1, "200": 2},
	"register-digest-unregister-asterisk.pcapng": {"REGISTER": 4, "401": 2, "200": 2},
	"register-digest-qop-cisco-cme.pcapng":       {"REGISTER": 3, "100": 3, "401": 1, "200": 2},
	"options-invite-401-488-freepbx.pcapng":      {"OPTIONS": 3, "INVITE": 2, "ACK": 2, "200": 3, "401": 1, "100": 1, "488": 1},
	"aaa-register-401-invite-407-cancel.pcap": {"REGISTER": 18, "INVITE": 11, "CANCEL": 11, "ACK": 7,
		"401": 14, "100": 7, "403": 3, "407": 3, "200": 3, "408": 2, "183": 1, "480": 1},
	"ipv6-frag-proxy-prack-update.pcap": {"INVITE": 2, "PRACK": 4, "UPDATE": 4, "ACK": 2, "BYE": 2,
		"100": 1, "183": 4, "200": 13},
}

// TestCaptures parses every SIP datagram of every shared capture and checks
// the per-file tally against the README's table.
func TestCaptures(t *testing.T) {
	dir := shareddata.Dir(t, "pcaps")
	files, err := filepath.Glob(filepath.Join(dir, "*.pcap*"))
	if err != nil {
		t.Fatal(err)
	}
	if len(files) == 0 {
		t.Fatalf("no capture in %s", dir)
	}
	for _, path := range files {
		name := filepath.Base(path)
		t.Run(name, func(t *testing.T) {
			want, ok := pcapWant[name]
			if !ok {
				t.Fatalf("capture %s has no expected tally in pcapWant (add it from the README)", name)
			}
			got := map[string]int{}
			forEachUDPPayload(t, path, func(p []byte) {
				if !looksLikeSIP(p) {
					return
				}
				buf := append([]byte(nil), p...)
				var m Msg
				if err := Parse(buf, &m); err != nil {
					t.Errorf("Parse: %v\n%s", err, firstLine(p))
					return
				}
				if m.IsRequest {
					got[string(m.B(m.MethodSpan))]++
				} else {
					got[strconv.Itoa(int(m.StatusCode))]++
				}
			})
			if fmt.Sprint(sorted(got)) != fmt.Sprint(sorted(want)) {
				t.Errorf("SIP messages = %v, want %v", sorted(got), sorted(want))
			}
		})
	}
}

func sorted(m map[string]int) []string {
	var s []string
	for k, v := range m {
		s = append(s, k+"="+strconv.Itoa(v))
	}
	sort.Strings(s)
	return s
}

func firstLine(p []byte) []byte {
	if i := bytes.IndexByte(p, '\n'); i >= 0 {
		return p[:i]
	}
	return p
}

// looksLikeSIP tells SIP from RTP and other UDP: a status line or a first
// line ending in the SIP version.
func looksLikeSIP(p []byte) bool {
	l := bytes.TrimRight(firstLine(p), "\r")
	return bytes.HasPrefix(l, []byte("SIP/2.0 ")) || bytes.HasSuffix(l, []byte(" SIP/2.0"))
}

type packetSource interface {
	ReadPacketData() ([]byte, gopacket.CaptureInfo, error)
}

// forEachUDPPayload calls fn with every UDP payload of a pcap or pcapng
// file (Ethernet or Linux SLL, IPv4 or IPv6), reassembling IPv6 fragments
// by concatenating them in offset order once the last one has arrived.
func forEachUDPPayload(t *testing.T, path string, fn func([]byte)) {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var magic [4]byte
	if _, err := io.ReadFull(f, magic[:]); err != nil {
		t.Fatal(err)
	}
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		t.Fatal(err)
	}
	var src packetSource
	var link layers.LinkType
	if magic == [4]byte{0x0a, 0x0d, 0x0d, 0x0a} {
		r, err := pcapgo.NewNgReader(f, pcapgo.DefaultNgReaderOptions)
		if err != nil {
			t.Fatal(err)
		}
		src, link = r, r.LinkType()
	} else {
		r, err := pcapgo.NewReader(f)
		if err != nil {
			t.Fatal(err)
		}
		src, link = r, r.LinkType()
	}
	type frag struct {
		off  int
		data []byte
	}
	frags := map[string][]frag{}
	for n := 0; n < 100000; n++ {
		data, _, err := src.ReadPacketData()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		pkt := gopacket.NewPacket(data, link, gopacket.Default)
		if fl := pkt.Layer(layers.LayerTypeIPv6Fragment); fl != nil {
			fr := fl.(*layers.IPv6Fragment)
			ip6 := pkt.Layer(layers.LayerTypeIPv6).(*layers.IPv6)
			key := ip6.SrcIP.String() + ip6.DstIP.String() + strconv.Itoa(int(fr.Identification))
			frags[key] = append(frags[key], frag{int(fr.FragmentOffset) * 8, append([]byte(nil), fr.Payload...)})
			if fr.MoreFragments {
				continue
			}
			parts := frags[key]
			delete(frags, key)
			sort.Slice(parts, func(i, j int) bool { return parts[i].off < parts[j].off })
			var whole []byte
			for _, p := range parts {
				if p.off != len(whole) {
					t.Fatalf("IPv6 fragment gap in %s at %d", key, len(whole))
				}
				whole = append(whole, p.data...)
			}
			if fr.NextHeader != layers.IPProtocolUDP || len(whole) < 8 {
				continue
			}
			fn(whole[8:])
			continue
		}
		if u := pkt.Layer(layers.LayerTypeUDP); u != nil {
			fn(u.(*layers.UDP).Payload)
		}
	}
	if len(frags) != 0 {
		t.Errorf("%d IPv6 datagrams left incomplete", len(frags))
	}
}
