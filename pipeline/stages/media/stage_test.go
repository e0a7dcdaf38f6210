package media_test

import (
	"fmt"
	"net"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"sipedge/pipeline"
	"sipedge/pipeline/stages/media"
	"sipedge/pipeline/stages/media/mediatest"
	"sipedge/sipcore"
)

func relayConfig(relays ...*mediatest.Relay) media.Config {
	c := media.Config{
		Deadline: 500 * time.Millisecond, Retry: 100 * time.Millisecond, Helpers: 2, Jobs: 16, DeleteDelay: 0,
		Flags: media.Flags{Replace: []string{"origin", "session-connection"}, ICE: "remove", ReceivedFrom: true},
	}
	for _, r := range relays {
		c.Relays = append(c.Relays, pipeline.BackendSpec{Addr: r.NG, Weight: 1})
	}
	return c
}

// waitCalls polls the relay's list until cond holds (bounded: 5s): deletes
// are sent after the message is forwarded, without waiting.
func waitCalls(t *testing.T, r *mediatest.Relay, what string, cond func([]string) bool) {
	t.Helper()
	end := time.Now().Add(5 * time.Second)
	for {
		calls, err := r.Calls()
		if err == nil && cond(calls) {
			return
		}
		if time.Now().After(end) {
			t.Fatalf("relay %v: %s: calls %q (err %v)", r.NG, what, calls, err)
		}
	}
}

// An offer and an answer go through the relay: each side sees the relay's
// address and a port of its range; BYE deletes the call.
func TestOfferAnswerBye(t *testing.T) {
	relay := mediatest.Start(t)
	r := newRig(t, relayConfig(relay))
	const id = "call-offer-answer"
	fwd, m := r.one(caller, invite(id, sdp("127.0.0.1", 40100)))
	if fwd.Dst != backend {
		t.Fatalf("INVITE went to %v, want %v", fwd.Dst, backend)
	}
	ip, port := mediaOf(t, m)
	if ip != "127.0.0.1" || port < relay.PortMin || port > relay.PortMax || port == 40100 {
		t.Fatalf("the backend sees media at %s:%d, want the relay's 127.0.0.1:%d-%d", ip, port, relay.PortMin, relay.PortMax)
	}
	if m.ContentLength != int(m.Body.Len) {
		t.Fatalf("Content-Length %d, body %d bytes", m.ContentLength, m.Body.Len)
	}
	calls, err := relay.Calls()
	if err != nil || !slices.Contains(calls, id) {
		t.Fatalf("relay holds %q (err %v), want %s", calls, err, id)
	}

	back, rm := r.one(backend, reply(t, m, 200, sdp("127.0.0.2", 40200)))
	if back.Dst != caller {
		t.Fatalf("200 went to %v, want the caller %v", back.Dst, caller)
	}
	ip2, port2 := mediaOf(t, rm)
	if ip2 != "127.0.0.1" || port2 < relay.PortMin || port2 > relay.PortMax || port2 == port {
		t.Fatalf("the caller sees media at %s:%d, want the relay's other port", ip2, port2)
	}

	// The relay's view of the call, as the admin server asks it; RTP sent
	// to the relay's port for the callee arrives in its totals.
	rtp, err := net.DialUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)}, &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: port2})
	if err != nil {
		t.Fatal(err)
	}
	defer rtp.Close()
	pkt := append([]byte{0x80, 0, 0, 1, 0, 0, 0, 160, 1, 2, 3, 4}, make([]byte, 160)...)
	end := time.Now().Add(5 * time.Second)
	for {
		rtp.Write(pkt)
		st, err := r.md.Query(id, time.Second)
		if err != nil {
			t.Fatal(err)
		}
		if st.Relay != relay.NG || st.Created == 0 {
			t.Fatalf("query: %+v, want relay %v and a creation time", st, relay.NG)
		}
		if st.RTPPackets > 0 {
			break
		}
		if time.Now().After(end) {
			t.Fatalf("the relay counted no RTP after 5s: %+v", st)
		}
	}
	if _, bye := r.one(caller, inDialog("BYE", id, 2)); bye.Method != sipcore.MethodBYE {
		t.Fatalf("forwarded %v, want the BYE", bye.Method)
	}
	waitCalls(t, relay, "BYE must delete the call", func(c []string) bool { return !slices.Contains(c, id) })
	if _, err := r.md.Query(id, time.Second); err == nil {
		t.Error("query of a deleted call: no error")
	}
	st := r.md.Stats()
	if st.Requests[0].Load() != 1 || st.Requests[1].Load() != 1 || st.Requests[2].Load() != 1 {
		t.Errorf("ng requests offer/answer/delete = %d/%d/%d, want 1/1/1", st.Requests[0].Load(), st.Requests[1].Load(), st.Requests[2].Load())
	}
}

// CANCEL and a final failure (486) delete the call too.
func TestCancelAndFailureDelete(t *testing.T) {
	relay := mediatest.Start(t)
	r := newRig(t, relayConfig(relay))
	_, m := r.one(caller, invite("call-cancel", sdp("127.0.0.1", 40100)))
	_ = m
	cancel := "CANCEL sip:bob@127.0.0.2:5080 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:40001;branch=z9hG4bK-call-cancel\r\n" +
		"Max-Forwards: 70\r\nFrom: <sip:alice@example.com>;tag=from-call-cancel\r\nTo: <sip:bob@example.com>\r\n" +
		"Call-ID: call-cancel\r\nCSeq: 1 CANCEL\r\nContent-Length: 0\r\n\r\n"
	r.send(caller, cancel)
	waitCalls(t, relay, "CANCEL must delete the call", func(c []string) bool { return !slices.Contains(c, "call-cancel") })

	_, m = r.one(caller, invite("call-486", sdp("127.0.0.1", 40102)))
	if calls, _ := relay.Calls(); !slices.Contains(calls, "call-486") {
		t.Fatalf("relay holds %q, want call-486", calls)
	}
	if back, _ := r.one(backend, reply(t, m, 486, "")); back.Dst != caller {
		t.Fatalf("486 went to %v", back.Dst)
	}
	waitCalls(t, relay, "486 must delete the call", func(c []string) bool { return !slices.Contains(c, "call-486") })
}

// With no relay answering, the fallback applies: 503, or the SDP
// unchanged with fallback pass.
func TestFallback(t *testing.T) {
	dead := netip.MustParseAddrPort("127.0.0.1:9") // discard: nothing answers
	for _, pass := range []bool{false, true} {
		cfg := media.Config{Relays: []pipeline.BackendSpec{{Addr: dead, Weight: 1}}, Deadline: 60 * time.Millisecond,
			Retry: 20 * time.Millisecond, Helpers: 1, Jobs: 8, PassOnFailure: pass, DeleteDelay: -1}
		r := newRig(t, cfg)
		out, m := r.one(caller, invite("call-fallback", sdp("127.0.0.1", 40100)))
		if !pass {
			if out.Dst != caller || m.StatusCode != 503 {
				t.Fatalf("reject: got status %d to %v, want 503 to the caller", m.StatusCode, out.Dst)
			}
			// An ACK with SDP is never answered: it goes on unchanged.
			ack := strings.Replace(inDialog("ACK", "call-fallback", 1), "Content-Length: 0\r\n\r\n", "", 1)
			body := sdp("127.0.0.1", 40102)
			ack += "Content-Type: application/sdp\r\nContent-Length: " + strconv.Itoa(len(body)) + "\r\n\r\n" + body
			if out, m := r.one(caller, ack); out.Dst != backend || m.Method != sipcore.MethodACK {
				t.Fatalf("reject: the ACK went to %v as %v, want the ACK to the backend", out.Dst, m.Method)
			} else if ip, port := mediaOf(t, m); ip != "127.0.0.1" || port != 40102 {
				t.Fatalf("reject: the failed ACK's SDP changed to %s:%d", ip, port)
			}
			continue
		}
		if out.Dst != backend {
			t.Fatalf("pass: went to %v, want the backend", out.Dst)
		}
		if ip, port := mediaOf(t, m); ip != "127.0.0.1" || port != 40100 {
			t.Fatalf("pass: SDP changed to %s:%d", ip, port)
		}
	}
}

// A late offer: the INVITE carries no SDP, the callee's 200 carries the
// offer and the caller's ACK the answer. The INVITE goes through unparked
// with our Via marked; the 200 is anchored as the callee's offer and the
// ACK as the caller's answer, each side seeing the relay.
func TestLateOffer(t *testing.T) {
	relay := mediatest.Start(t)
	r := newRig(t, relayConfig(relay))
	const id = "call-late-offer"
	fwd, m := r.one(caller, invite(id, ""))
	if fwd.Dst != backend || m.Body.Len != 0 {
		t.Fatalf("INVITE went to %v with a %d-byte body, want %v and none", fwd.Dst, m.Body.Len, backend)
	}
	if !strings.Contains(string(m.B(m.Vias[0].Value)), ";"+sipcore.LateOfferParam+"=i") {
		t.Fatalf("our Via %q does not mark the late offer", m.B(m.Vias[0].Value))
	}
	if calls, _ := relay.Calls(); slices.Contains(calls, id) {
		t.Fatal("the relay holds a call for an INVITE without SDP")
	}

	back, rm := r.one(backend, reply(t, m, 200, sdp("127.0.0.2", 40200)))
	if back.Dst != caller || rm.StatusCode != 200 {
		t.Fatalf("%d went to %v, want 200 to the caller %v", rm.StatusCode, back.Dst, caller)
	}
	ip, port := mediaOf(t, rm)
	if ip != "127.0.0.1" || port < relay.PortMin || port > relay.PortMax {
		t.Fatalf("the caller sees the callee's offer at %s:%d, want the relay's 127.0.0.1:%d-%d", ip, port, relay.PortMin, relay.PortMax)
	}
	if calls, _ := relay.Calls(); !slices.Contains(calls, id) {
		t.Fatalf("relay holds %q after the 200's offer, want %s", calls, id)
	}

	ack := strings.Replace(inDialog("ACK", id, 1), "Content-Length: 0\r\n\r\n", "", 1)
	body := sdp("127.0.0.1", 40100)
	ack += "Content-Type: application/sdp\r\nContent-Length: " + strconv.Itoa(len(body)) + "\r\n\r\n" + body
	fa, am := r.one(caller, ack)
	if fa.Dst != backend || am.Method != sipcore.MethodACK {
		t.Fatalf("forwarded %v to %v, want the ACK to %v", am.Method, fa.Dst, backend)
	}
	ip2, port2 := mediaOf(t, am)
	if ip2 != "127.0.0.1" || port2 < relay.PortMin || port2 > relay.PortMax || port2 == port {
		t.Fatalf("the callee sees the caller's answer at %s:%d, want the relay's other port (caller side %d)", ip2, port2, port)
	}
	st := r.md.Stats()
	if st.Requests[0].Load() != 1 || st.Requests[1].Load() != 1 {
		t.Errorf("ng offer/answer = %d/%d, want 1/1", st.Requests[0].Load(), st.Requests[1].Load())
	}
	for i, name := range media.WhyNames {
		if n := st.Errors[i].Load(); n != 0 {
			t.Errorf("ng errors %s: %d, want 0", name, n)
		}
	}
	r.one(caller, inDialog("BYE", id, 2))
	waitCalls(t, relay, "BYE must delete the call", func(c []string) bool { return !slices.Contains(c, id) })
}

// A relay that left the DNS lingers with weight 0: no new calls, but the
// answers and deletes of the calls it anchored still reach it when the
// Call-ID's relay in the new set does not know them.
func TestLingeringRelayKeepsItsCalls(t *testing.T) {
	a, b := mediatest.Start(t), mediatest.Start(t)
	r := newRig(t, relayConfig(a, b))
	// A call anchored on a, found by trying Call-IDs.
	var id string
	var fwd *sipcore.Msg
	for i := 0; i < 40 && id == ""; i++ {
		c := fmt.Sprintf("call-linger-%d", i)
		_, m := r.one(caller, invite(c, sdp("127.0.0.1", 40100)))
		if calls, _ := a.Calls(); slices.Contains(calls, c) {
			id, fwd = c, m
		}
	}
	if id == "" {
		t.Fatal("no call of 40 went to relay a")
	}
	if err := r.md.ReplaceRelays([]pipeline.BackendSpec{{Addr: a.NG, Weight: 0}, {Addr: b.NG, Weight: 1}}); err != nil {
		t.Fatal(err)
	}
	_, rm := r.one(backend, reply(t, fwd, 200, sdp("127.0.0.2", 40200)))
	if ip, port := mediaOf(t, rm); ip != "127.0.0.1" || port < a.PortMin || port > a.PortMax {
		t.Fatalf("the 200's SDP names %s:%d, want lingering relay a's 127.0.0.1:%d-%d", ip, port, a.PortMin, a.PortMax)
	}
	r.one(caller, inDialog("BYE", id, 2))
	waitCalls(t, a, "the BYE must delete the call on the lingering relay", func(c []string) bool { return !slices.Contains(c, id) })
	// The relay deletes the call before it replies, and the helper counts
	// after the reply: the count is awaited, not read at once (CI saw 1).
	for end := time.Now().Add(5 * time.Second); r.md.Stats().Lingered.Load() < 2 && time.Now().Before(end); {
		time.Sleep(5 * time.Millisecond)
	}
	if n := r.md.Stats().Lingered.Load(); n != 2 {
		t.Errorf("lingering relay took %d requests, want 2 (the answer and the delete)", n)
	}
	// New calls never go to it.
	for i := 0; i < 10; i++ {
		c := fmt.Sprintf("call-after-%d", i)
		r.one(caller, invite(c, sdp("127.0.0.1", 40100)))
		if calls, _ := a.Calls(); slices.Contains(calls, c) {
			t.Fatalf("new call %s was anchored on the lingering relay", c)
		}
	}
}
