package sipcore

import (
	"bytes"
	"errors"
	"net/netip"
	"os"
	"strings"
	"testing"
)

var (
	testKey     = NewKey([]byte("test cluster secret, 32 bytes!!!"))
	testSrc     = netip.MustParseAddrPort("203.0.113.9:40001")
	testForward = &ForwardOptions{
		Key:         &testKey,
		SentBy:      []byte("192.0.2.1:5060"),
		RecordRoute: []byte("sip:192.0.2.1:5060;lr"),
		IsLocal: func(buf []byte, u *URI) bool {
			return string(buf[u.Host.Off:u.Host.End()]) == "192.0.2.1"
		},
	}
)

func mustParseStr(t testing.TB, s string) *Msg {
	t.Helper()
	var m Msg
	if err := Parse([]byte(s), &m); err != nil {
		t.Fatalf("parse: %v\n%s", err, s)
	}
	return &m
}

func benchMessage(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile("testdata/bench/" + name)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func forward(t testing.TB, m *Msg, ruri []byte) *Msg {
	t.Helper()
	out := make([]byte, 4096)
	n, err := BuildForward(out, m, testForward, testSrc, ruri)
	if err != nil {
		t.Fatalf("BuildForward: %v", err)
	}
	return mustParseStr(t, string(out[:n]))
}

const simpleInvite = "INVITE sip:bob@example.com SIP/2.0\r\n" +
	"Via: SIP/2.0/UDP pc33.example.com;branch=z9hG4bK776asdhds;rport\r\n" +
	"Max-Forwards: 70\r\n" +
	"Route: <sip:192.0.2.1;lr>, <sip:proxy.example.net;lr>\r\n" +
	"To: Bob <sip:bob@example.com>\r\n" +
	"From: Alice <sip:alice@example.com>;tag=1928301774\r\n" +
	"Call-ID: a84b4c76e66710@pc33.example.com\r\n" +
	"CSeq: 314159 INVITE\r\n" +
	"X-Unknown: kept as is\r\n" +
	"Contact: <sip:alice@pc33.example.com>\r\n" +
	"Content-Type: application/sdp\r\n" +
	"Content-Length: 4\r\n" +
	"\r\n" +
	"v=0\n"

func TestForwardRequest(t *testing.T) {
	in := mustParseStr(t, simpleInvite)
	out := forward(t, in, nil)
	if out.NVia != 2 {
		t.Fatalf("Vias = %d, want 2", out.NVia)
	}
	top, prev := &out.Vias[0], &out.Vias[1]
	if !testKey.IsOwnBranch(out.B(top.Branch)) {
		t.Errorf("top Via branch %q is not ours", out.B(top.Branch))
	}
	if got := string(out.B(top.Host)); got != "192.0.2.1" || top.Port != 5060 {
		t.Errorf("top Via sent-by = %s:%d", got, top.Port)
	}
	if got := string(out.B(prev.Received)); got != "203.0.113.9" {
		t.Errorf("received = %q, want the source address", got)
	}
	if got := string(out.B(prev.RPort)); got != "40001" {
		t.Errorf("rport = %q, want the source port", got)
	}
	if out.MaxForwards != 69 {
		t.Errorf("Max-Forwards = %d, want 69", out.MaxForwards)
	}
	if out.NRoute != 1 || !strings.Contains(string(out.B(out.Routes[0].Value)), "proxy.example.net") {
		t.Errorf("Routes = %d, want only the next hop's", out.NRoute)
	}
	if out.NRecordRoute != 1 || out.ParseAddress(&out.RecordRoutes[0]) != nil ||
		string(out.B(out.RecordRoutes[0].URI.Raw)) != "sip:192.0.2.1:5060;lr" {
		t.Errorf("Record-Route not added")
	}
	if string(out.B(out.Body)) != "v=0\n" || out.ContentLength != 4 {
		t.Errorf("body = %q (Content-Length %d)", out.B(out.Body), out.ContentLength)
	}
	if !bytes.Contains(out.Buf(), []byte("X-Unknown: kept as is\r\n")) {
		t.Error("unknown header not forwarded unchanged")
	}
	if string(out.B(out.CallID)) != "a84b4c76e66710@pc33.example.com" || out.CSeq != 314159 {
		t.Error("Call-ID or CSeq changed")
	}
}

func TestForwardBranchStable(t *testing.T) {
	a := forward(t, mustParseStr(t, simpleInvite), nil)
	b := forward(t, mustParseStr(t, simpleInvite), nil)
	if !bytes.Equal(a.B(a.Vias[0].Branch), b.B(b.Vias[0].Branch)) {
		t.Error("a retransmission got a different branch")
	}
	// CANCEL carries the INVITE's branch: ours must match too (RFC 3261 16.11).
	cancel := strings.Replace(strings.Replace(simpleInvite, "INVITE sip:", "CANCEL sip:", 1), "314159 INVITE", "314159 CANCEL", 1)
	c := forward(t, mustParseStr(t, cancel), nil)
	if !bytes.Equal(a.B(a.Vias[0].Branch), c.B(c.Vias[0].Branch)) {
		t.Error("CANCEL got a different branch from its INVITE")
	}
	// Another transaction gets another branch.
	other := strings.Replace(simpleInvite, "z9hG4bK776asdhds", "z9hG4bK776asdhdt", 1)
	o := forward(t, mustParseStr(t, other), nil)
	if bytes.Equal(a.B(a.Vias[0].Branch), o.B(o.Vias[0].Branch)) {
		t.Error("two transactions share a branch")
	}
	// Another key does not recognise the branch.
	k2 := NewKey([]byte("another cluster"))
	if k2.IsOwnBranch(a.B(a.Vias[0].Branch)) {
		t.Error("a branch made with one key passes another key's check")
	}
}

func TestForwardRFC2543Branch(t *testing.T) {
	old := "INVITE sip:bob@example.com SIP/2.0\r\nVia: SIP/2.0/UDP 192.0.2.5\r\n" +
		"From: <sip:a@example.com>\r\nTo: <sip:bob@example.com>\r\nCall-ID: 1@x\r\nCSeq: 1 INVITE\r\n\r\n"
	a := forward(t, mustParseStr(t, old), nil)
	b := forward(t, mustParseStr(t, old), nil)
	if !bytes.Equal(a.B(a.Vias[0].Branch), b.B(b.Vias[0].Branch)) {
		t.Error("RFC 2543 request: retransmission got a different branch")
	}
	if a.MaxForwards != 70 {
		t.Errorf("absent Max-Forwards: got %d, want 70 inserted", a.MaxForwards)
	}
	if a.ContentLength != 0 {
		t.Errorf("absent Content-Length: got %d, want 0 inserted", a.ContentLength)
	}
	// received= is added because the sent-by is not the source; no rport asked.
	if got := string(a.B(a.Vias[1].Received)); got != "203.0.113.9" {
		t.Errorf("received = %q", got)
	}
}

func TestForwardMaxForwardsAndLoops(t *testing.T) {
	zero := strings.Replace(simpleInvite, "Max-Forwards: 70", "Max-Forwards: 0", 1)
	_, err := BuildForward(make([]byte, 4096), mustParseStr(t, zero), testForward, testSrc, nil)
	if !errors.Is(err, ErrTooManyHops) || ErrTooManyHops.Status != 483 {
		t.Fatalf("Max-Forwards 0: err = %v, want 483", err)
	}
	once := forward(t, mustParseStr(t, simpleInvite), nil)
	// The same request comes back (Route already consumed): a loop.
	if _, err := BuildForward(make([]byte, 4096), once, testForward, testSrc, nil); !errors.Is(err, ErrLoopDetected) {
		t.Fatalf("looped request: err = %v, want ErrLoopDetected", err)
	}
	// A spiral (new Request-URI) is not a loop.
	spiral := forward(t, mustParseStr(t, simpleInvite), []byte("sip:bob@192.0.2.77"))
	if got := string(spiral.B(spiral.RURI.Raw)); got != "sip:bob@192.0.2.77" {
		t.Fatalf("Request-URI = %q", got)
	}
	if _, err := BuildForward(make([]byte, 4096), spiral, testForward, testSrc, []byte("sip:bob@192.0.2.78")); err != nil {
		t.Fatalf("spiral: %v", err)
	}
}

func TestForwardNoRoom(t *testing.T) {
	m := mustParseStr(t, simpleInvite)
	if _, err := BuildForward(make([]byte, 100), m, testForward, testSrc, nil); !errors.Is(err, ErrNoRoom) {
		t.Fatalf("err = %v, want ErrNoRoom", err)
	}
}

func TestBuildResponse(t *testing.T) {
	in := mustParseStr(t, simpleInvite)
	out := make([]byte, 2048)
	o := &ResponseOptions{Key: &testKey, Extra: []byte("Retry-After: 30\r\n")}
	n, err := BuildResponse(out, in, 503, "Service Unavailable", testSrc, o)
	if err != nil {
		t.Fatal(err)
	}
	r := mustParseStr(t, string(out[:n]))
	if r.IsRequest || r.StatusCode != 503 || string(r.B(r.Reason)) != "Service Unavailable" {
		t.Fatalf("status line wrong:\n%s", out[:n])
	}
	if r.NVia != 1 || string(r.B(r.Vias[0].Received)) != "203.0.113.9" || string(r.B(r.Vias[0].RPort)) != "40001" {
		t.Errorf("Via not copied with received/rport:\n%s", out[:n])
	}
	if r.To.Tag.Len != toTagLen {
		t.Errorf("To tag %q not added", r.B(r.To.Tag))
	}
	if string(r.B(r.From.Tag)) != "1928301774" || r.CSeq != 314159 || r.CSeqMethod != MethodINVITE {
		t.Error("From/CSeq not copied")
	}
	if r.ContentLength != 0 || !bytes.Contains(out[:n], []byte("Retry-After: 30\r\n")) {
		t.Errorf("Content-Length/extra wrong:\n%s", out[:n])
	}
	if bytes.Contains(out[:n], []byte("X-Unknown")) || bytes.Contains(out[:n], []byte("Route")) {
		t.Errorf("response copies headers it must not:\n%s", out[:n])
	}
	// The retransmitted request gets the same To tag.
	n2, _ := BuildResponse(make([]byte, 2048), mustParseStr(t, simpleInvite), 503, "Service Unavailable", testSrc, o)
	if n2 != n {
		t.Error("retransmission got a different response")
	}
	// 100 Trying has no To tag; an existing tag is kept.
	n, _ = BuildResponse(out, in, 100, "Trying", testSrc, o)
	if r := mustParseStr(t, string(out[:n])); r.To.Tag.Len != 0 {
		t.Error("100 Trying got a To tag")
	}
	// The ACK of that response carries our tag: recognised without state.
	ack := strings.Replace(strings.Replace(simpleInvite, "INVITE sip:", "ACK sip:", 1), "314159 INVITE", "314159 ACK", 1)
	ack = strings.Replace(ack, "To: Bob <sip:bob@example.com>", "To: Bob <sip:bob@example.com>;tag="+string(r.B(r.To.Tag)), 1)
	if !testKey.IsOwnToTag(mustParseStr(t, ack)) {
		t.Error("ACK of our own response not recognised")
	}
	other := strings.Replace(ack, ";tag="+string(r.B(r.To.Tag)), ";tag=0123456789abcdef", 1)
	if testKey.IsOwnToTag(mustParseStr(t, other)) {
		t.Error("ACK with a foreign To tag taken for ours")
	}
	tagged := mustParseStr(t, strings.Replace(simpleInvite, "To: Bob <sip:bob@example.com>", "To: Bob <sip:bob@example.com>;tag=abc", 1))
	n, _ = BuildResponse(out, tagged, 481, "Call/Transaction Does Not Exist", testSrc, o)
	if r := mustParseStr(t, string(out[:n])); string(r.B(r.To.Tag)) != "abc" {
		t.Error("existing To tag changed")
	}
}

func TestResponseForward(t *testing.T) {
	fwd := forward(t, mustParseStr(t, simpleInvite), nil)
	// The backend answers the forwarded request: its response carries our Via on top.
	resp := make([]byte, 2048)
	n, err := BuildResponse(resp, fwd, 180, "Ringing", netip.MustParseAddrPort("192.0.2.1:5060"), &ResponseOptions{Key: &testKey})
	if err != nil {
		t.Fatal(err)
	}
	r := mustParseStr(t, string(resp[:n]))
	out := make([]byte, 2048)
	var hop NextHop
	n, err = BuildResponseForward(out, r, &testKey, &hop)
	if err != nil {
		t.Fatal(err)
	}
	back := mustParseStr(t, string(out[:n]))
	if back.NVia != 1 || string(back.B(back.Vias[0].Branch)) != "z9hG4bK776asdhds" {
		t.Fatalf("our Via not removed:\n%s", out[:n])
	}
	if hop.Addr != testSrc {
		t.Errorf("next hop = %v, want the original source %v (received/rport)", hop.Addr, testSrc)
	}
	// A response that is not ours is refused.
	var m Msg
	if err := Parse(out[:n], &m); err != nil {
		t.Fatal(err)
	}
	if _, err := BuildResponseForward(make([]byte, 2048), &m, &testKey, &hop); !errors.Is(err, ErrNotOurVia) {
		t.Fatalf("foreign response: err = %v, want ErrNotOurVia", err)
	}
}

func TestResponseForwardSharedViaLine(t *testing.T) {
	fwd := forward(t, mustParseStr(t, simpleInvite), nil)
	branch := string(fwd.B(fwd.Vias[0].Branch))
	resp := "SIP/2.0 200 OK\r\nVia: SIP/2.0/UDP 192.0.2.1:5060;branch=" + branch +
		", SIP/2.0/UDP 198.51.100.3:5070;branch=z9hG4bKx\r\n" +
		"From: <sip:a@example.com>;tag=1\r\nTo: <sip:b@example.com>;tag=2\r\nCall-ID: c\r\nCSeq: 1 INVITE\r\nContent-Length: 0\r\n\r\n"
	out := make([]byte, 2048)
	var hop NextHop
	n, err := BuildResponseForward(out, mustParseStr(t, resp), &testKey, &hop)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(out[:n]), "\r\nVia: SIP/2.0/UDP 198.51.100.3:5070;branch=z9hG4bKx\r\n") {
		t.Fatalf("first value of a shared Via line not removed cleanly:\n%s", out[:n])
	}
	if hop.Addr != netip.MustParseAddrPort("198.51.100.3:5070") {
		t.Errorf("next hop = %v", hop.Addr)
	}
}

func TestBuildersAllocateNothing(t *testing.T) {
	inv := benchMessage(t, "invite-sdp.sip")
	var m Msg
	out := make([]byte, 4096)
	var hop NextHop
	ro := &ResponseOptions{Key: &testKey}
	fwd := func() {
		if err := Parse(inv, &m); err != nil {
			t.Fatal(err)
		}
		if _, err := BuildForward(out, &m, testForward, testSrc, nil); err != nil {
			t.Fatal(err)
		}
	}
	if n := testing.AllocsPerRun(200, fwd); n != 0 {
		t.Errorf("parse + forward: %v allocs", n)
	}
	if n := testing.AllocsPerRun(200, func() { BuildResponse(out, &m, 486, "Busy Here", testSrc, ro) }); n != 0 {
		t.Errorf("response build: %v allocs", n)
	}
	fwdMsg := forward(t, mustParseStr(t, simpleInvite), nil)
	resp := make([]byte, 2048)
	rn, _ := BuildResponse(resp, fwdMsg, 200, "OK", testSrc, ro)
	var rm Msg
	if n := testing.AllocsPerRun(200, func() {
		if err := Parse(resp[:rn], &rm); err != nil {
			t.Fatal(err)
		}
		if _, err := BuildResponseForward(out, &rm, &testKey, &hop); err != nil {
			t.Fatal(err)
		}
	}); n != 0 {
		t.Errorf("parse + response forward: %v allocs", n)
	}
}

func BenchmarkParseForwardINVITE(b *testing.B) {
	inv := benchMessage(b, "invite-sdp.sip")
	var m Msg
	out := make([]byte, 4096)
	b.ReportAllocs()
	b.SetBytes(int64(len(inv)))
	for i := 0; i < b.N; i++ {
		if err := Parse(inv, &m); err != nil {
			b.Fatal(err)
		}
		if _, err := BuildForward(out, &m, testForward, testSrc, nil); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkParseForward200OK(b *testing.B) {
	fwd := forward(b, mustParseStr(b, string(benchMessage(b, "invite-sdp.sip"))), nil)
	// A 200 OK with SDP to the forwarded INVITE, with our Via on top.
	ok := benchMessage(b, "200ok-sdp.sip")
	resp := append([]byte(nil), ok[:bytes.Index(ok, []byte("\r\n"))+2]...)
	resp = append(resp, "Via: SIP/2.0/UDP 192.0.2.1:5060;branch="...)
	resp = append(resp, fwd.B(fwd.Vias[0].Branch)...)
	resp = append(resp, "\r\n"...)
	resp = append(resp, ok[bytes.Index(ok, []byte("\r\n"))+2:]...)
	var m Msg
	var hop NextHop
	out := make([]byte, 4096)
	b.ReportAllocs()
	b.SetBytes(int64(len(resp)))
	for i := 0; i < b.N; i++ {
		if err := Parse(resp, &m); err != nil {
			b.Fatal(err)
		}
		if _, err := BuildResponseForward(out, &m, &testKey, &hop); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkBuildResponse(b *testing.B) {
	m := mustParseStr(b, string(benchMessage(b, "invite-sdp.sip")))
	out := make([]byte, 2048)
	ro := &ResponseOptions{Key: &testKey, Extra: []byte("Retry-After: 5\r\n")}
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		if _, err := BuildResponse(out, m, 503, "Service Unavailable", testSrc, ro); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkBuildForwardINVITE(b *testing.B) {
	m := mustParseStr(b, string(benchMessage(b, "invite-sdp.sip")))
	out := make([]byte, 4096)
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		if _, err := BuildForward(out, m, testForward, testSrc, nil); err != nil {
			b.Fatal(err)
		}
	}
}

// TestViaReceivedIsObserved: received= and rport= the client wrote are
// replaced by what this node saw, so no response (forwarded or our own)
// goes to an address the client chose (reflection).
func TestViaReceivedIsObserved(t *testing.T) {
	for _, via := range []string{
		"SIP/2.0/UDP 203.0.113.9:40001;branch=z9hG4bKrefl;received=198.51.100.77;rport=9999",
		"SIP/2.0/UDP 203.0.113.9:40001;received=198.51.100.77;rport=9999;branch=z9hG4bKrefl",
		"SIP/2.0/UDP 203.0.113.9:40001;rport=9999;received=198.51.100.77;branch=z9hG4bKrefl",
		"SIP/2.0/UDP 203.0.113.9:40001;branch=z9hG4bKrefl;received=not-an-ip;rport=x",
		"SIP/2.0/UDP 203.0.113.9:40001;branch=z9hG4bKrefl;received=198.51.100.77",
		"SIP/2.0/UDP 203.0.113.9:40001;branch=z9hG4bKrefl;rport=9999",
	} {
		req := strings.Replace(simpleInvite, "SIP/2.0/UDP pc33.example.com;branch=z9hG4bK776asdhds;rport", via, 1)
		fwd := forward(t, mustParseStr(t, req), nil)
		prev := &fwd.Vias[1]
		if got := string(fwd.B(prev.Received)); got != "203.0.113.9" {
			t.Errorf("Via %q: forwarded received = %q, want the observed 203.0.113.9", via, got)
		}
		if strings.Contains(via, "rport") {
			if got := string(fwd.B(prev.RPort)); got != "40001" {
				t.Errorf("Via %q: forwarded rport = %q, want the observed 40001", via, got)
			}
		}
		// The backend's 180 comes back through us: it must go to the caller.
		resp := make([]byte, 2048)
		n, err := BuildResponse(resp, fwd, 180, "Ringing", netip.MustParseAddrPort("192.0.2.1:5060"), &ResponseOptions{Key: &testKey})
		if err != nil {
			t.Fatal(err)
		}
		var hop NextHop
		if _, err := BuildResponseForward(make([]byte, 2048), mustParseStr(t, string(resp[:n])), &testKey, &hop); err != nil {
			t.Fatal(err)
		}
		if hop.Addr.Addr() != testSrc.Addr() {
			t.Errorf("Via %q: response goes to %v, want the caller %v", via, hop.Addr, testSrc.Addr())
		}
		// Our own responses (BuildResponse) carry the observation too.
		n, err = BuildResponse(resp, mustParseStr(t, req), 503, "Service Unavailable", testSrc, &ResponseOptions{Key: &testKey})
		if err != nil {
			t.Fatal(err)
		}
		own := mustParseStr(t, string(resp[:n]))
		if got := string(own.B(own.Vias[0].Received)); got != "203.0.113.9" {
			t.Errorf("Via %q: own response received = %q", via, got)
		}
	}
}

// With MarkLateOffer, our Via of an INVITE without a body carries the
// late-offer mark, and a response copying that Via reports it; an INVITE
// with SDP, any other method, and a node without the option do not.
func TestForwardMarksLateOffer(t *testing.T) {
	mark := *testForward
	mark.MarkLateOffer = true
	noBody := strings.Replace(strings.Replace(simpleInvite, "Content-Length: 4\r\n\r\nv=0\n", "Content-Length: 0\r\n\r\n", 1),
		"Content-Type: application/sdp\r\n", "", 1)
	bye := strings.Replace(strings.Replace(noBody, "INVITE sip:", "BYE sip:", 1), "314159 INVITE", "314160 BYE", 1)
	reinvite := strings.Replace(noBody, "To: Bob <sip:bob@example.com>", "To: Bob <sip:bob@example.com>;tag=b0b", 1)
	for _, tc := range []struct {
		name          string
		msg           string
		o             *ForwardOptions
		want, initial bool
	}{
		{"INVITE without body", noBody, &mark, true, true},
		{"re-INVITE without body", reinvite, &mark, true, false},
		{"INVITE with SDP", simpleInvite, &mark, false, false},
		{"BYE", bye, &mark, false, false},
		{"option off", noBody, testForward, false, false},
	} {
		out := make([]byte, 4096)
		n, err := BuildForward(out, mustParseStr(t, tc.msg), tc.o, testSrc, nil)
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		fwd := mustParseStr(t, string(out[:n]))
		if !testKey.IsOwnBranch(fwd.B(fwd.Vias[0].Branch)) {
			t.Fatalf("%s: the mark broke our branch: %q", tc.name, fwd.B(fwd.Vias[0].Value))
		}
		// The callee's 200 copies the Vias; only the top one is read.
		resp := "SIP/2.0 200 OK\r\n" + string(fwd.B(fwd.Headers[fwd.Vias[0].Header].Line)) + string(fwd.B(fwd.Headers[fwd.Vias[1].Header].Line)) +
			"From: <sip:a@example.com>;tag=1\r\nTo: <sip:b@example.com>;tag=2\r\nCall-ID: x\r\nCSeq: 1 INVITE\r\nContent-Length: 0\r\n\r\n"
		if got, initial := mustParseStr(t, resp).LateOffer(); got != tc.want || initial != tc.initial {
			t.Errorf("%s: LateOffer() = %v, %v, want %v, %v (top Via %q)", tc.name, got, initial, tc.want, tc.initial, fwd.B(fwd.Vias[0].Value))
		}
	}
	// Only the top Via counts: a mark further down is another hop's.
	deeper := "SIP/2.0 200 OK\r\nVia: SIP/2.0/UDP 192.0.2.1:5060;branch=z9hG4bKx\r\nVia: SIP/2.0/UDP 192.0.2.9;branch=z9hG4bKy;se-lo\r\n" +
		"From: <sip:a@example.com>;tag=1\r\nTo: <sip:b@example.com>;tag=2\r\nCall-ID: x\r\nCSeq: 1 INVITE\r\nContent-Length: 0\r\n\r\n"
	dm := mustParseStr(t, deeper)
	if late, _ := dm.LateOffer(); late {
		t.Error("a mark on the second Via was taken for ours")
	}
	if a := testing.AllocsPerRun(100, func() { dm.LateOffer() }); a != 0 {
		t.Errorf("LateOffer allocates %v times", a)
	}
}
