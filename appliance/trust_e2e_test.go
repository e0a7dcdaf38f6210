package appliance_test

import (
	"encoding/binary"
	"fmt"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// The attacks of "trust nothing from the wire", end to end: the appliance
// binary in front of sipp, attacked with crafted datagrams, some with
// spoofed sources from a raw socket.

// spoofer sends UDP datagrams with any IPv4 source from a raw socket
// (IP_HDRINCL): what an attacker off-path can put on the wire. It needs
// root; without it the test skips, or fails when CI=true.
type spoofer struct{ fd int }

func newSpoofer(t *testing.T) *spoofer {
	t.Helper()
	fd, err := syscall.Socket(syscall.AF_INET, syscall.SOCK_RAW, syscall.IPPROTO_RAW)
	if err != nil {
		msg := fmt.Sprintf("spoofed sources need a raw socket (root): %v", err)
		if os.Getenv("CI") == "true" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	t.Cleanup(func() { syscall.Close(fd) })
	return &spoofer{fd: fd}
}

// send sends payload from src to dst (both IPv4). The kernel fills in the
// IP checksum and length; the UDP checksum is left 0 (none, allowed on
// IPv4).
func (s *spoofer) send(t *testing.T, src, dst netip.AddrPort, payload string) {
	t.Helper()
	pkt := make([]byte, 28+len(payload))
	pkt[0] = 0x45
	binary.BigEndian.PutUint16(pkt[2:], uint16(len(pkt)))
	pkt[8] = 64
	pkt[9] = syscall.IPPROTO_UDP
	s4, d4 := src.Addr().As4(), dst.Addr().As4()
	copy(pkt[12:16], s4[:])
	copy(pkt[16:20], d4[:])
	binary.BigEndian.PutUint16(pkt[20:], src.Port())
	binary.BigEndian.PutUint16(pkt[22:], dst.Port())
	binary.BigEndian.PutUint16(pkt[24:], uint16(8+len(payload)))
	copy(pkt[28:], payload)
	if err := syscall.Sendto(s.fd, pkt, 0, &syscall.SockaddrInet4{Addr: d4}); err != nil {
		t.Fatalf("raw send %v -> %v: %v", src, dst, err)
	}
}

// listenUDP opens a UDP socket on ip (a free port) closed with the test.
func listenUDP(t *testing.T, ip string) *net.UDPConn {
	t.Helper()
	c, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.ParseIP(ip)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// expectSilence reports datagrams that reach c within d: what a victim
// must not get. Bounded: a read deadline, not a sleep.
func expectSilence(t *testing.T, c *net.UDPConn, d time.Duration, what string) {
	t.Helper()
	c.SetReadDeadline(time.Now().Add(d))
	b := make([]byte, 4096)
	if n, from, err := c.ReadFromUDP(b); err == nil {
		t.Errorf("%s: the victim %v got a datagram from %v:\n%s", what, c.LocalAddr(), from, b[:n])
	}
}

// readUntil reads from c until a datagram starts with prefix, within d.
func readUntil(t *testing.T, c *net.UDPConn, prefix string, d time.Duration) string {
	t.Helper()
	c.SetReadDeadline(time.Now().Add(d))
	b := make([]byte, 4096)
	for {
		n, err := c.Read(b)
		if err != nil {
			t.Fatalf("no %q within %v: %v", prefix, d, err)
		}
		if strings.HasPrefix(string(b[:n]), prefix) {
			return string(b[:n])
		}
	}
}

func addrPort(t *testing.T, s string) netip.AddrPort {
	t.Helper()
	a, err := netip.ParseAddrPort(s)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

func invite(callID, sentBy, viaParams, ruri string) string {
	return "INVITE " + ruri + " SIP/2.0\r\nVia: SIP/2.0/UDP " + sentBy + ";branch=z9hG4bK" + callID + viaParams + "\r\n" +
		"Max-Forwards: 70\r\nFrom: <sip:alice@example.org>;tag=a" + callID + "\r\nTo: <sip:bob@example.com>\r\n" +
		"Call-ID: " + callID + "\r\nCSeq: 1 INVITE\r\nContact: <sip:alice@" + sentBy + ">\r\nContent-Length: 0\r\n\r\n"
}

// Reflection: an INVITE whose top Via names a victim in received= and
// rport= (the caller's real address as sent-by) gets its responses back
// at the caller, none at the victim, and the correction is counted.
func TestE2EViaReflection(t *testing.T) {
	r := newLoopRig(t, 1)
	victim := listenUDP(t, "127.0.0.4")
	caller := listenUDP(t, uacIP)
	vp := victim.LocalAddr().(*net.UDPAddr).Port
	cp := caller.LocalAddr().(*net.UDPAddr).Port
	msg := invite("refl-1", fmt.Sprintf("%s:%d", uacIP, cp), fmt.Sprintf(";received=127.0.0.4;rport=%d", vp), "sip:bob@"+r.sip)
	if _, err := caller.WriteToUDP([]byte(msg), net.UDPAddrFromAddrPort(addrPort(t, r.sip))); err != nil {
		t.Fatal(err)
	}
	readUntil(t, caller, "SIP/2.0 200", 5*time.Second)
	expectSilence(t, victim, 300*time.Millisecond, "reflection")
	var m string
	r.app.get(t, "/metrics", &m)
	if v := metric(t, m, "sipedge_route_via_corrected_total"); v != 1 {
		t.Errorf("sipedge_route_via_corrected_total %v, want 1", v)
	}
}

// Open relay: datagrams with a backend's address as (spoofed) source and
// a Request-URI naming a victim are not relayed there: in-dialog without
// our signed Record-Route and initial to a destination not allowed get
// 403 (to the real backend), counted by reason.
func TestE2ESpoofedBackendRelay(t *testing.T) {
	sp := newSpoofer(t)
	r := newLoopRig(t, 1)
	victim := listenUDP(t, "127.0.0.5")
	vaddr := victim.LocalAddr().String()
	be, edge := addrPort(t, r.uasAddrs[0]), addrPort(t, r.sip)
	bye := "BYE sip:x@" + vaddr + " SIP/2.0\r\nVia: SIP/2.0/UDP " + be.String() + ";branch=z9hG4bKspoof1\r\nMax-Forwards: 70\r\n" +
		"Route: <sip:" + r.sip + ";lr>\r\nFrom: <sip:bob@example.com>;tag=b1\r\nTo: <sip:x@example.org>;tag=x1\r\n" +
		"Call-ID: spoof-1\r\nCSeq: 2 BYE\r\nContent-Length: 0\r\n\r\n"
	sp.send(t, be, edge, bye)
	sp.send(t, be, edge, invite("spoof-2", be.String(), "", "sip:x@"+vaddr))
	expectSilence(t, victim, 500*time.Millisecond, "open relay")
	var m string
	r.app.get(t, "/metrics", &m)
	if v := metric(t, m, `sipedge_route_refused_total{reason="no-token"}`); v != 1 {
		t.Errorf(`sipedge_route_refused_total{reason="no-token"} %v, want 1`, v)
	}
	if v := metric(t, m, `sipedge_route_refused_total{reason="destination"}`); v != 1 {
		t.Errorf(`sipedge_route_refused_total{reason="destination"} %v, want 1`, v)
	}
}

// Same host: a caller on the backend's IP (another port) places calls
// like any caller instead of getting 482 Loop Detected.
func TestE2ECallerOnBackendHost(t *testing.T) {
	r := newLoopRig(t, 1)
	const calls = 20
	p := sipp(t, r.dir, nil, "samehost", "-sn", "uac", "-i", backendIP, "-p", portOf(freeUDP(t, backendIP)),
		"-r", "20", "-m", fmt.Sprint(calls), "-recv_timeout", "4s", "-timeout", "30s", "-timeout_error", r.sip)
	p.wait(t, 40*time.Second)
	st := sippStats(t, r.dir, "samehost")
	if st["SuccessfulCall(C)"] != calls || st["FailedCall(C)"] != 0 {
		t.Errorf("caller on the backend's IP: %d successful, %d failed calls, want %d and 0\n%s", st["SuccessfulCall(C)"], st["FailedCall(C)"], calls, errorsLog(r.dir, "samehost"))
	}
}

// The callee hangs up: a backend's BYE is an in-dialog request from the
// backend side, relayed only on this node's signed Record-Route token, to
// the caller the token names. Every call's BYE, sent by sipp UAS through
// the route set it was given, reaches the sipp caller and is answered;
// nothing is refused.
func TestE2ECalleeHangsUp(t *testing.T) {
	scenario, err := filepath.Abs("testdata/uas_bye.xml")
	if err != nil {
		t.Fatal(err)
	}
	uac, err := filepath.Abs("testdata/uac_recv_bye.xml")
	if err != nil {
		t.Fatal(err)
	}
	r := newLoopRigScenario(t, 1, e2eGuard, scenario)
	const calls = 20
	p := sipp(t, r.dir, nil, "caller", "-sf", uac, "-i", uacIP, "-p", portOf(freeUDP(t, uacIP)),
		"-r", "10", "-m", fmt.Sprint(calls), "-recv_timeout", "4s", "-timeout", "30s", "-timeout_error", r.sip)
	p.wait(t, 40*time.Second)
	st := sippStats(t, r.dir, "caller")
	if st["SuccessfulCall(C)"] != calls || st["FailedCall(C)"] != 0 {
		t.Errorf("caller: %d successful, %d failed calls, want %d and 0 (the callee's BYE must reach it)\n%s",
			st["SuccessfulCall(C)"], st["FailedCall(C)"], calls, errorsLog(r.dir, "caller"))
	}
	us := stopUAS(t, r.uas[0], r.dir, r.uasNames[0])
	// The callee's successful calls include the probes it answered.
	if us["SuccessfulCall(C)"] < calls || us["FailedCall(C)"] != 0 {
		t.Errorf("callee: %d successful, %d failed calls, want at least %d and 0 (its BYE must be answered)\n%s",
			us["SuccessfulCall(C)"], us["FailedCall(C)"], calls, errorsLog(r.dir, r.uasNames[0]))
	}
	var m string
	r.app.get(t, "/metrics", &m)
	for _, reason := range []string{"no-token", "bad-token", "destination"} {
		if v := metric(t, m, `sipedge_route_refused_total{reason="`+reason+`"}`); v != 0 {
			t.Errorf(`sipedge_route_refused_total{reason=%q} %v, want 0`, reason, v)
		}
	}
}

// Framing a caller: spoofed datagrams with the caller's source address, a
// scanner display name and a scanner User-Agent (fewer times than
// scanner_matches), are dropped and counted but ban nobody: the caller's
// calls that follow all succeed.
func TestE2EForgedScannerBansNobody(t *testing.T) {
	sp := newSpoofer(t)
	r := newLoopRig(t, 1)
	victim := addrPort(t, uacIP+":5099")
	edge := addrPort(t, r.sip)
	framed := invite("frame-1", victim.String(), "", "sip:bob@"+r.sip)
	framed = strings.Replace(framed, "From: <sip:alice@example.org>", `From: "sipvicious" <sip:100@example.org>`, 1)
	sp.send(t, victim, edge, framed)
	ua := strings.Replace(invite("frame-2", victim.String(), "", "sip:bob@"+r.sip), "Content-Length: 0", "User-Agent: friendly-scanner\r\nContent-Length: 0", 1)
	for i := 0; i < 4; i++ { // scanner_matches is 5
		sp.send(t, victim, edge, ua)
	}
	var m string
	for deadline := time.Now().Add(5 * time.Second); ; {
		r.app.get(t, "/metrics", &m)
		if metric(t, m, `sipedge_guard_dropped_total{reason="scanner"}`) >= 5 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the forged scanner datagrams were not dropped as scanner:\n%s", m)
		}
		time.Sleep(20 * time.Millisecond) // polling an external process's counter, bounded
	}
	if bans := r.app.bans(t); len(bans) != 0 {
		t.Fatalf("forged datagrams got a ban: %+v", bans)
	}
	if st := r.fewCalls(t, "framed", 10); st["SuccessfulCall(C)"] != 10 {
		t.Errorf("the framed caller: %d of 10 calls succeeded\n%s", st["SuccessfulCall(C)"], errorsLog(r.dir, "framed"))
	}
}
