package appliance_test

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/google/gopacket"
	"github.com/google/gopacket/layers"
	"github.com/google/gopacket/pcapgo"

	"sipedge/appliance"
	"sipedge/appliance/config"
	"sipedge/pipeline"
	"sipedge/pipeline/chain"
	"sipedge/pipeline/port/pcapport"
	"sipedge/pipeline/stages/auth"
	"sipedge/pipeline/stages/auth/authtest"
	"sipedge/pipeline/stages/guard"
	"sipedge/sipcore"
)

var (
	edge     = netip.MustParseAddrPort("192.0.2.1:5060")
	caller   = netip.MustParseAddrPort("203.0.113.9:5062")
	backendA = netip.MustParseAddrPort("10.0.0.1:5060")
	backendB = netip.MustParseAddrPort("10.0.0.2:5060")
)

type dgram struct {
	src, dst netip.AddrPort
	payload  string
}

// writeCapture writes datagrams as Ethernet/IPv4/UDP frames into a pcap.
func writeCapture(t testing.TB, ds []dgram) []byte {
	t.Helper()
	var buf bytes.Buffer
	w := pcapgo.NewWriter(&buf)
	if err := w.WriteFileHeader(65535, layers.LinkTypeEthernet); err != nil {
		t.Fatal(err)
	}
	ts := time.Unix(1700000000, 0)
	for i, d := range ds {
		eth := &layers.Ethernet{SrcMAC: net.HardwareAddr{2, 0, 0, 0, 0, 1}, DstMAC: net.HardwareAddr{2, 0, 0, 0, 0, 2}, EthernetType: layers.EthernetTypeIPv4}
		ip := &layers.IPv4{Version: 4, TTL: 64, Protocol: layers.IPProtocolUDP, SrcIP: d.src.Addr().AsSlice(), DstIP: d.dst.Addr().AsSlice()}
		udp := &layers.UDP{SrcPort: layers.UDPPort(d.src.Port()), DstPort: layers.UDPPort(d.dst.Port())}
		udp.SetNetworkLayerForChecksum(ip)
		sb := gopacket.NewSerializeBuffer()
		if err := gopacket.SerializeLayers(sb, gopacket.SerializeOptions{FixLengths: true, ComputeChecksums: true}, eth, ip, udp, gopacket.Payload(d.payload)); err != nil {
			t.Fatal(err)
		}
		b := sb.Bytes()
		if err := w.WritePacket(gopacket.CaptureInfo{Timestamp: ts.Add(time.Duration(i) * time.Millisecond), CaptureLength: len(b), Length: len(b)}, b); err != nil {
			t.Fatal(err)
		}
	}
	return buf.Bytes()
}

// readCapture returns the UDP datagrams of a pcap the appliance wrote.
func readCapture(t testing.TB, path string) []dgram {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	r, err := pcapgo.NewReader(f)
	if err != nil {
		t.Fatal(err)
	}
	var out []dgram
	for {
		data, _, err := r.ReadPacketData()
		if err != nil {
			break
		}
		p := gopacket.NewPacket(data, r.LinkType(), gopacket.Default)
		ip, _ := p.Layer(layers.LayerTypeIPv4).(*layers.IPv4)
		udp, _ := p.Layer(layers.LayerTypeUDP).(*layers.UDP)
		if ip == nil || udp == nil {
			t.Fatalf("the appliance wrote a frame that is not UDP/IPv4: %v", p)
		}
		s, _ := netip.AddrFromSlice(ip.SrcIP)
		d, _ := netip.AddrFromSlice(ip.DstIP)
		out = append(out, dgram{netip.AddrPortFrom(s, uint16(udp.SrcPort)), netip.AddrPortFrom(d, uint16(udp.DstPort)), string(udp.Payload)})
	}
	return out
}

func pcapConfig(t testing.TB, in, out string) *config.Config {
	t.Helper()
	text := fmt.Sprintf(`[node]
addresses = ["192.0.2.1"]
secret = "offline test secret, 32 bytes.."
[io]
port = "pcap"
listen = "192.0.2.1:5060"
input = %q
output = %q
[admin]
listen = ""
[[dispatcher.backends]]
address = "10.0.0.1:5060"
[[dispatcher.backends]]
address = "10.0.0.2:5060"
`, in, out)
	cfg, _, err := config.Check([]byte(text), "offline test", nil)
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

// replay runs the daemon in pcap mode over ds and returns what it wrote.
func replay(t *testing.T, ds []dgram) []dgram {
	t.Helper()
	dir := t.TempDir()
	in, out := filepath.Join(dir, "in.pcap"), filepath.Join(dir, "out.pcap")
	if err := os.WriteFile(in, writeCapture(t, ds), 0o600); err != nil {
		t.Fatal(err)
	}
	d, err := appliance.New(pcapConfig(t, in, out), appliance.Options{})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := d.Run(ctx); err != nil {
		t.Fatal(err)
	}
	if ctx.Err() != nil {
		t.Fatal("the pcap replay did not finish within 30s")
	}
	return readCapture(t, out)
}

func request(method, callID, branch string, cseq int, toTag string, extra ...string) string {
	ruri := "sip:bob@example.com"
	to := "<sip:bob@example.com>"
	if toTag != "" {
		to += ";tag=" + toTag
	}
	return method + " " + ruri + " SIP/2.0\r\n" +
		"Via: SIP/2.0/UDP 203.0.113.9:5062;branch=z9hG4bK" + branch + "\r\n" +
		"Max-Forwards: 70\r\n" +
		"From: <sip:alice@example.org>;tag=a1\r\n" +
		"To: " + to + "\r\n" +
		"Call-ID: " + callID + "\r\n" +
		"CSeq: " + fmt.Sprint(cseq) + " " + method + "\r\n" +
		strings.Join(extra, "") +
		"Content-Length: 0\r\n\r\n"
}

var topVia = regexp.MustCompile(`(?m)^Via: (SIP/2.0/UDP [^;\r\n]+);branch=([^;\r\n]+)`)

func header(msg, name string) string {
	for _, l := range strings.Split(msg, "\r\n") {
		if k, v, ok := strings.Cut(l, ":"); ok && strings.EqualFold(k, name) {
			return strings.TrimSpace(v)
		}
	}
	return ""
}

// The daemon's stage list over a capture: Via pushed and popped, the
// branch stable across a retransmission, Max-Forwards, Record-Route,
// Call-ID stickiness, answers to malformed requests, 483 and OPTIONS to us.
func TestOfflineThroughStages(t *testing.T) {
	inv := request("INVITE", "call-1@x", "inv1", 1, "")
	var in []dgram
	in = append(in, dgram{caller, edge, inv}, dgram{caller, edge, inv}) // and its retransmission
	in = append(in, dgram{caller, edge, request("BYE", "call-1@x", "bye1", 2, "b1")})
	for i := 0; i < 40; i++ {
		in = append(in, dgram{caller, edge, request("INVITE", fmt.Sprintf("spread-%d@x", i), fmt.Sprintf("s%d", i), 1, "")})
	}
	bad := strings.Replace(request("INVITE", "bad@x", "bad1", 1, ""), "CSeq: 1 INVITE", "CSeq: one INVITE", 1)
	in = append(in, dgram{caller, edge, bad})
	in = append(in, dgram{caller, edge, strings.Replace(request("INVITE", "mf@x", "mf1", 1, ""), "Max-Forwards: 70", "Max-Forwards: 0", 1)})
	in = append(in, dgram{caller, edge, strings.Replace(request("OPTIONS", "opt@x", "opt1", 1, ""), "sip:bob@example.com SIP/2.0", "sip:192.0.2.1 SIP/2.0", 1)})
	out := replay(t, in)
	if len(out) != len(in) {
		t.Fatalf("%d datagrams in, %d out: every one deserves a forward or an answer", len(in), len(out))
	}

	fwd, retx, bye := out[0], out[1], out[2]
	if fwd.dst != backendA && fwd.dst != backendB {
		t.Fatalf("INVITE went to %v, not a backend", fwd.dst)
	}
	m := topVia.FindStringSubmatch(fwd.payload)
	if m == nil || m[1] != "SIP/2.0/UDP 192.0.2.1:5060" {
		t.Fatalf("forwarded INVITE's top Via is %q, want ours (192.0.2.1:5060):\n%s", m, fwd.payload)
	}
	if strings.Count(fwd.payload, "\r\nVia:") != 2 {
		t.Errorf("forwarded INVITE has %d Via headers, want 2", strings.Count(fwd.payload, "\r\nVia:"))
	}
	if m2 := topVia.FindStringSubmatch(retx.payload); m2 == nil || m2[2] != m[2] || retx.dst != fwd.dst {
		t.Errorf("the retransmission got branch %q to %v, want the same %q to %v", m2, retx.dst, m[2], fwd.dst)
	}
	if got := header(fwd.payload, "Max-Forwards"); got != "69" {
		t.Errorf("Max-Forwards %q, want 69", got)
	}
	if got := header(fwd.payload, "Record-Route"); !strings.HasPrefix(got, "<sip:192.0.2.1:5060;lr;se-rt=") {
		t.Errorf("Record-Route %q, want <sip:192.0.2.1:5060;lr;se-rt=TOKEN>", got)
	}
	if bye.dst != fwd.dst {
		t.Errorf("BYE went to %v, its INVITE to %v: Call-ID stickiness broken", bye.dst, fwd.dst)
	}
	if header(bye.payload, "Record-Route") != "" {
		t.Error("an in-dialog BYE was record-routed")
	}
	seen := map[netip.AddrPort]int{}
	for _, d := range out[3:43] {
		seen[d.dst]++
	}
	if seen[backendA] == 0 || seen[backendB] == 0 {
		t.Errorf("40 calls all went to one backend: %v", seen)
	}
	checkAnswer := func(d dgram, status string) {
		t.Helper()
		if d.dst != caller || !strings.HasPrefix(d.payload, "SIP/2.0 "+status) {
			t.Errorf("want %s back to %v, got to %v:\n%s", status, caller, d.dst, d.payload)
		}
	}
	checkAnswer(out[43], "400")
	checkAnswer(out[44], "483")
	checkAnswer(out[45], "200")

	// The backend's 200 comes back: our Via is popped, it goes to the caller.
	resp := "SIP/2.0 200 OK\r\n" +
		fwd.payload[strings.Index(fwd.payload, "Via:"):strings.Index(fwd.payload, "Max-Forwards:")] +
		"From: <sip:alice@example.org>;tag=a1\r\nTo: <sip:bob@example.com>;tag=b1\r\nCall-ID: call-1@x\r\nCSeq: 1 INVITE\r\nContent-Length: 0\r\n\r\n"
	back := replay(t, []dgram{{fwd.dst, edge, resp}})
	if len(back) != 1 || back[0].dst != caller {
		t.Fatalf("the response was not forwarded to the caller: %+v", back)
	}
	if strings.Count(back[0].payload, "Via:") != 1 || !strings.Contains(back[0].payload, "branch=z9hG4bKinv1") {
		t.Errorf("the response kept our Via or lost the caller's:\n%s", back[0].payload)
	}
}

// The hot path allocates nothing: 10,000+ messages through a worker running
// the daemon's full stage list (guard, sanity, response, self, auth with a
// cached user, auth-resume, route) over the pcap port in loop mode.
// fullWorker is a worker running the daemon's full stage list with the
// guard and auth on (a cached user with right credentials) over a looping
// capture of 64 calls (INVITE with credentials, BYE) from one source.
func fullWorker(t testing.TB) (*pipeline.Worker, *auth.Auth, *guard.Guard) {
	key := sipcore.NewKey([]byte("offline test secret, 32 bytes.."))
	nk := sipcore.NewNonceKey([]byte("offline test secret, 32 bytes.."))
	var in []dgram
	for i := 0; i < 64; i++ {
		// Nonces are bound to the source and the call. The loop replays
		// each INVITE as is, which the auth stage takes for a
		// retransmission (same branch, CSeq and nonce-count).
		bind := sipcore.NonceBinding{Src: caller.Addr(), CallID: fmt.Appendf(nil, "alice-%d@pc33", i)}
		nonce := string(nk.Append(nil, time.Now(), []byte(authtest.Realm), bind))
		cl := &authtest.Client{User: "alice", Password: "secret", Call: i}
		inv := cl.Request("INVITE", nonce)
		id := header(inv, "Call-ID")
		in = append(in, dgram{caller, edge, inv})
		in = append(in, dgram{caller, edge, request("BYE", id, fmt.Sprintf("b%d", i), 2, "t")})
	}
	port, err := pcapport.Open(pcapport.Config{InputReader: bytes.NewReader(writeCapture(t, in)), Loop: 1 << 30, Local: edge})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { port.Close() })
	bk, err := pipeline.NewBackends([]pipeline.BackendSpec{{Addr: backendA, Weight: 1}, {Addr: backendB, Weight: 1}})
	if err != nil {
		t.Fatal(err)
	}
	px, err := chain.Proxy(chain.ProxyConfig{Key: &key, SentBy: edge.String(), RecordRoute: "sip:192.0.2.1:5060;lr", Names: []string{"192.0.2.1"}, Backends: bk})
	if err != nil {
		t.Fatal(err)
	}
	// Limits far above this loop's rate, and every batch here is full so
	// overload shedding is pushed out of reach: every message takes the
	// guard's full path (shape, signatures, buckets) and passes.
	huge := guard.Limit{Rate: 1e9, Burst: 1 << 20}
	g, err := guard.New(guard.Config{All: huge, Invite: huge, Register: huge, OverloadBatches: 100000})
	if err != nil {
		t.Fatal(err)
	}
	entry := authtest.Entry(t, "alice", "secret")
	users := auth.NewFileStore(auth.Users{authtest.Realm: {"alice": &entry}})
	a, err := auth.New(auth.Config{Realm: authtest.Realm, NonceKey: nk, Store: users, Workers: 1, WorkerFailures: []auth.FailureSink{g.WorkerSink(0)}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(a.Close)
	makers, err := chain.Default.Makers(append(px, g, a)...)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, m := range makers {
		names = append(names, m.Def().Name)
	}
	if got := strings.Join(names, " "); got != "guard sanity response self auth route" {
		t.Fatalf("stage order %q", got)
	}
	w, err := pipeline.NewWorker(port, pipeline.Config{Core: -1, Batch: 64, Key: &key}, makers)
	if err != nil {
		t.Fatal(err)
	}
	return w, a, g
}

func TestStagesAllocateNothing(t *testing.T) {
	w, a, g := fullWorker(t)
	poll := func() {
		if _, err := w.Poll(); err != nil {
			t.Fatal(err)
		}
	}
	for i := 0; i < 20; i++ {
		poll()
	}
	before, am0, gs0 := w.Stats(), a.Metrics(), g.Stats()
	allocs := testing.AllocsPerRun(160, poll) // 160 x 64 = 10,240 messages
	poll()                                    // publishes the counters of the last batch
	after, am1, gs1 := w.Stats(), a.Metrics(), g.Stats()
	msgs := after.Rx - before.Rx
	if msgs < 10000 {
		t.Fatalf("only %d messages went through", msgs)
	}
	if allocs != 0 {
		t.Fatalf("%v allocations per batch of 64 messages, want 0", allocs)
	}
	if fw := after.Tx - before.Tx; fw != msgs {
		t.Fatalf("%d messages in, %d out (drops %v)", msgs, fw, after.Drops)
	}
	if ok := am1.Successes - am0.Successes; ok < msgs/2-64 {
		t.Errorf("auth verified %d INVITEs of about %d: the loop did not exercise the cached-user path", ok, msgs/2)
	}
	if p := gs1.Passed - gs0.Passed; p < msgs-64 {
		t.Errorf("the guard passed %d of %d messages", p, msgs)
	}
}

// BenchmarkFullStages is the cost per message of the daemon's full stage
// list (guard, parse, auth with a cached user, route, build) over the pcap
// port; an op is one batch of 64 messages.
func BenchmarkFullStages(b *testing.B) {
	w, _, _ := fullWorker(b)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := w.Poll(); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(w.Stats().Rx), "ns/msg")
}
