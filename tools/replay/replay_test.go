package replay

import (
	"bytes"
	"io"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"sipedge/pipeline/port/capture"
	"sipedge/sipcore"
	"sipedge/sipcore/shareddata"
	"sipedge/tools/sipgen"
)

// receiver counts the datagrams arriving on a loopback UDP socket.
type receiver struct {
	c *net.UDPConn
}

func newReceiver(t *testing.T) *receiver {
	t.Helper()
	c, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	// As fast as possible can outrun the reader: a large buffer (forced
	// past rmem_max when root) keeps every datagram queued.
	if rc, err := c.SyscallConn(); err == nil {
		rc.Control(func(fd uintptr) {
			if unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_RCVBUFFORCE, 16<<20) != nil {
				c.SetReadBuffer(16 << 20)
			}
		})
	}
	return &receiver{c: c}
}

func (r *receiver) addr() string { return r.c.LocalAddr().String() }

// count reads until want datagrams arrived or nothing came for a second.
func (r *receiver) count(want uint64) (n uint64, payloads [][]byte) {
	buf := make([]byte, 70000)
	for n < want {
		r.c.SetReadDeadline(time.Now().Add(time.Second))
		k, err := r.c.Read(buf)
		if err != nil {
			return n, payloads
		}
		payloads = append(payloads, append([]byte(nil), buf[:k]...))
		n++
	}
	// Anything beyond want would be a bug too: look briefly.
	r.c.SetReadDeadline(time.Now().Add(50 * time.Millisecond))
	if _, err := r.c.Read(buf); err == nil {
		n++
	}
	return n, payloads
}

// SIP datagrams per capture, from the tshark counts in pcaps/README.md.
var sharedCounts = map[string]uint64{
	"aaa-register-401-invite-407-cancel.pcap":    81,
	"call-g729-rtp-freeswitch.pcap":              6,
	"call-linphone-p2p-pcmu.pcapng":              7,
	"ipv6-frag-proxy-prack-update.pcap":          32,
	"options-invite-401-488-freepbx.pcapng":      13,
	"register-digest-qop-cisco-cme.pcapng":       9,
	"register-digest-unregister-asterisk.pcapng": 8,
}

func TestReplaySharedCapturesUDP(t *testing.T) {
	dir := shareddata.Dir(t, "pcaps")
	for name, want := range sharedCounts {
		t.Run(name, func(t *testing.T) {
			rx := newReceiver(t)
			s, err := Run(Options{Inputs: []string{filepath.Join(dir, name)}, Into: "udp:" + rx.addr(), SIPPorts: []uint16{5060}})
			if err != nil {
				t.Fatal(err)
			}
			got, _ := rx.count(want)
			if s.SIP != want || s.Sent != want || got != want || s.SendErrors != 0 || s.Unparsed != 0 {
				t.Fatalf("SIP %d, sent %d, received %d, send errors %d, unparsed %d; want %d each and no errors",
					s.SIP, s.Sent, got, s.SendErrors, s.Unparsed, want)
			}
		})
	}
}

// genCapture writes a small sipgen capture with every kind of traffic and
// returns its path and frame count.
func genCapture(t *testing.T) (string, uint64) {
	t.Helper()
	c := sipgen.DefaultConfig()
	c.Calls, c.Registers, c.Options = 40, 10, 10
	c.Flood, c.Scan, c.Malformed = 12, 8, 9
	c.Responses, c.Challenges = true, true
	c.Callers = 20
	return writeCapture(t, c)
}

// writeCapture writes the capture sipgen makes from c.
func writeCapture(t *testing.T, c sipgen.Config) (string, uint64) {
	t.Helper()
	g, err := sipgen.New(c)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "gen.pcap")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	w, err := capture.NewWriter(f)
	if err != nil {
		t.Fatal(err)
	}
	for {
		fr, ts, ok := g.Next()
		if !ok {
			break
		}
		if err := w.WriteFrame(ts, fr); err != nil {
			t.Fatal(err)
		}
	}
	if g.Err() != nil || w.Flush() != nil {
		t.Fatal(g.Err())
	}
	return path, g.Frames()
}

func TestReplaySipgenUDP(t *testing.T) {
	path, frames := genCapture(t)
	rx := newReceiver(t)
	s, err := Run(Options{Inputs: []string{path}, Into: "udp:" + rx.addr(), SIPPorts: []uint16{5060}})
	if err != nil {
		t.Fatal(err)
	}
	got, _ := rx.count(frames)
	// Every frame is kept: malformed ones too, being sent to port 5060.
	if s.SIP != frames || got != frames || s.Unparsed != 9 {
		t.Fatalf("SIP %d, received %d, unparsed %d; want %d, %d, 9", s.SIP, got, s.Unparsed, frames, frames)
	}
}

// readOut returns the datagrams of a capture written by --into pcap.
func readOut(t *testing.T, path string) []capture.Datagram {
	t.Helper()
	r, err := capture.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	var out []capture.Datagram
	for {
		var d capture.Datagram
		err := r.Next(&d)
		if err == io.EOF {
			return out
		}
		if err != nil {
			t.Fatal(err)
		}
		d.Payload = append([]byte(nil), d.Payload...)
		out = append(out, d)
	}
}

func TestLoopMakesCallIDsUnique(t *testing.T) {
	path, frames := genCapture(t)
	out := filepath.Join(t.TempDir(), "out.pcap")
	s, err := Run(Options{Inputs: []string{path}, Into: "pcap:" + out, Loop: 2, SIPPorts: []uint16{5060}})
	if err != nil {
		t.Fatal(err)
	}
	ds := readOut(t, out)
	if uint64(len(ds)) != 2*frames {
		t.Fatalf("%d datagrams out, want %d", len(ds), 2*frames)
	}
	var m sipcore.Msg
	ids := [2]map[string]int{{}, {}}
	for i, d := range ds {
		loop := 0
		if uint64(i) >= frames {
			loop = 1
		}
		if sipcore.Parse(d.Payload, &m) != nil {
			continue // malformed ones stay as they were
		}
		id := string(m.B(m.CallID))
		ids[loop][id]++
		if loop == 1 {
			if !strings.HasSuffix(id, "-L1") {
				t.Fatalf("loop 2 Call-ID %q lacks the loop suffix", id)
			}
			// Same message, same body: only the Call-ID grew.
			orig := ds[uint64(i)-frames].Payload
			if len(d.Payload) != len(orig)+3 || !bytes.HasSuffix(d.Payload, orig[len(orig)-int(m.Body.Len):]) {
				t.Fatalf("loop 2 message %d differs beyond its Call-ID", i)
			}
		}
		if m.ContentLength >= 0 && m.ContentLength != int(m.Body.Len) {
			t.Fatalf("message %d: Content-Length %d, body %d", i, m.ContentLength, m.Body.Len)
		}
	}
	for id, n := range ids[0] {
		if ids[0][id] != n || ids[1][id] != 0 {
			t.Fatalf("Call-ID %q in both loops", id)
		}
		if ids[1][id+"-L1"] != n {
			t.Fatalf("call %q: %d messages in loop 1, %d in loop 2; a call must keep one Call-ID", id, n, ids[1][id+"-L1"])
		}
	}
	if s.CallIDsRewritten != uint64(len(ds)/2)-9 {
		t.Fatalf("%d Call-IDs rewritten, want %d", s.CallIDsRewritten, len(ds)/2-9)
	}
	// The second loop follows the first in time.
	if !ds[frames].TS.After(ds[frames-1].TS) {
		t.Fatalf("loop 2 starts at %v, before loop 1 ended (%v)", ds[frames].TS, ds[frames-1].TS)
	}
}

func TestRewriteAddresses(t *testing.T) {
	path, _ := genCapture(t)
	c := sipgen.DefaultConfig()
	out := filepath.Join(t.TempDir(), "out.pcap")
	ms, err := ParseMapping(c.Client.String() + "=127.0.0.9:7000")
	if err != nil {
		t.Fatal(err)
	}
	md, err := ParseMapping(c.Proxy.String() + "=127.0.0.1:5080")
	if err != nil {
		t.Fatal(err)
	}
	s, err := Run(Options{Inputs: []string{path}, Into: "pcap:" + out, MapSrc: []Mapping{ms}, MapDst: []Mapping{md}, SIPPorts: []uint16{5060}})
	if err != nil {
		t.Fatal(err)
	}
	mapped, toProxy := 0, 0
	for _, d := range readOut(t, path) {
		if d.Dst == c.Proxy {
			toProxy++
		}
	}
	for _, d := range readOut(t, out) {
		if d.Src.Addr() == c.Client || d.Dst == c.Proxy {
			t.Fatalf("datagram %v -> %v escaped the rewriting", d.Src, d.Dst)
		}
		if d.Src == netip.MustParseAddrPort("127.0.0.9:7000") {
			mapped++
		}
		if d.Dst == netip.MustParseAddrPort("127.0.0.1:5080") {
			toProxy--
		}
	}
	if mapped == 0 || toProxy != 0 || s.Rewritten == 0 {
		t.Fatalf("%d sources mapped, %d proxy destinations left unmapped, %d rewritten", mapped, toProxy, s.Rewritten)
	}
}

func TestUniquifyCallID(t *testing.T) {
	msg := "OPTIONS sip:a@b SIP/2.0\r\nVia: SIP/2.0/UDP h;branch=z9hG4bKx\r\nFrom: <sip:a@b>;tag=1\r\nTo: <sip:a@b>\r\n" +
		"i: abc@h\r\nCSeq: 1 OPTIONS\r\nContent-Length: 4\r\n\r\nbody"
	var m sipcore.Msg
	out, ok := UniquifyCallID(nil, []byte(msg), 3, &m)
	if !ok || !strings.Contains(string(out), "\r\ni: abc@h-L3\r\n") || !strings.HasSuffix(string(out), "\r\n\r\nbody") {
		t.Fatalf("got %v %q", ok, out)
	}
	if err := sipcore.Parse(out, &m); err != nil || string(m.B(m.Body)) != "body" {
		t.Fatalf("rewritten message: %v, body %q", err, m.B(m.Body))
	}
	if out, ok := UniquifyCallID(nil, []byte("garbage\r\n\r\n"), 1, &m); ok || len(out) != 0 {
		t.Fatal("an unparsable message was rewritten")
	}
}

func TestParseMappingAndLooksSIP(t *testing.T) {
	for _, bad := range []string{"1.2.3.4", "x=1.2.3.4", "1.2.3.4=::1", "1.2.3.4=1.2.3.4:99999"} {
		if _, err := ParseMapping(bad); err == nil {
			t.Errorf("ParseMapping(%q) accepted", bad)
		}
	}
	m, err := ParseMapping("[2001:db8::1]:5060=[::1]")
	if err != nil || m.To.Port() != 0 || m.From.Port() != 5060 {
		t.Fatalf("%+v %v", m, err)
	}
	for p, want := range map[string]bool{
		"SIP/2.0 200 OK\r\n":              true,
		"INVITE sip:a@b SIP/2.0\r\n":      true,
		"invite sip:a@b SIP/2.0\r\n":      false,
		"\x80\x00\x12\x34 rtp":            false,
		"GET / HTTP/1.1\r\n":              false,
		"REGISTER sip:b SIP/2.0\nVia: x ": true,
	} {
		if LooksSIP([]byte(p)) != want {
			t.Errorf("LooksSIP(%q) != %v", p, want)
		}
	}
}

func TestProgressPlainLines(t *testing.T) {
	path, frames := genCapture(t)
	var out bytes.Buffer
	clock := time.Unix(0, 0)
	now := func() time.Time { clock = clock.Add(time.Second); return clock }
	_, err := Run(Options{Inputs: []string{path}, Into: "pcap:" + filepath.Join(t.TempDir(), "o.pcap"),
		Progress: &out, Every: 10 * time.Second, Now: now, SIPPorts: []uint16{5060}})
	if err != nil {
		t.Fatal(err)
	}
	s := out.String()
	if strings.ContainsAny(s, "\r\x1b") {
		t.Fatalf("plain progress contains terminal control characters: %q", s)
	}
	lines := strings.Split(strings.TrimSuffix(s, "\n"), "\n")
	// One line per 10 ticks of the fake clock, plus the final one.
	if len(lines) < int(frames)/10-2 || len(lines) > int(frames)/5+2 {
		t.Fatalf("%d progress lines for %d datagrams", len(lines), frames)
	}
	for _, l := range lines {
		if !strings.HasPrefix(l, "sipreplay: ") || !strings.Contains(l, " sent, ") {
			t.Fatalf("progress line %q", l)
		}
	}
	if !strings.HasPrefix(lines[len(lines)-1], "sipreplay: 100.0% ") {
		t.Fatalf("last progress line %q", lines[len(lines)-1])
	}
}

func TestBadDestinations(t *testing.T) {
	path, _ := genCapture(t)
	if _, err := Run(Options{Inputs: []string{path}, Into: "pipeline:x"}); err == nil || !strings.Contains(err.Error(), "no argument") {
		t.Fatalf("pipeline with an argument: %v", err)
	}
	if _, err := Run(Options{Inputs: []string{path}, Into: "afxdp:sipedge-none0"}); err == nil || !strings.Contains(err.Error(), "sipedge-none0") {
		t.Fatalf("afxdp on a missing interface: %v", err)
	}
	if _, err := Run(Options{Inputs: []string{path}, Into: "afxdp:"}); err == nil || !strings.Contains(err.Error(), "interface name") {
		t.Fatalf("afxdp without an interface: %v", err)
	}
	if _, err := Run(Options{Inputs: []string{path}, Into: "tcp:x"}); err == nil || !strings.Contains(err.Error(), "want pipeline") {
		t.Fatalf("unknown destination: %v", err)
	}
	if _, err := Run(Options{Inputs: []string{filepath.Join(t.TempDir(), "absent.pcap")}, Into: "udp:127.0.0.1:9"}); err == nil {
		t.Fatal("a missing capture replayed")
	}
}
