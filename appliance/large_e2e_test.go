package appliance_test

import (
	"fmt"
	"net"
	"strings"
	"testing"
	"time"
)

// bigInvite is an INVITE from from to to with an SDP body padded to about
// size bytes in all, as a softphone offering many codecs and ICE
// candidates sends.
func bigInvite(from, to string, size int, callID string) string {
	head := fmt.Sprintf("INVITE sip:bob@%s SIP/2.0\r\n"+
		"Via: SIP/2.0/UDP %s;branch=z9hG4bK-%d;rport\r\n"+
		"Max-Forwards: 70\r\nFrom: <sip:alice@%s>;tag=big1\r\nTo: <sip:bob@%s>\r\n"+
		"Call-ID: %s\r\nCSeq: 1 INVITE\r\nContact: <sip:alice@%s>\r\nContent-Type: application/sdp\r\n",
		to, from, size, from, to, callID, from)
	var body strings.Builder
	body.WriteString("v=0\r\no=- 1 1 IN IP4 127.0.0.2\r\ns=-\r\nc=IN IP4 127.0.0.2\r\nt=0 0\r\nm=audio 40000 RTP/AVP 0\r\n")
	for i := 0; body.Len() < size-len(head)-40; i++ {
		fmt.Fprintf(&body, "a=candidate:%d 1 UDP 2130706431 127.0.0.2 %d typ host\r\n", i, 40000+i)
	}
	return head + fmt.Sprintf("Content-Length: %d\r\n\r\n", body.Len()) + body.String()
}

// finalAnswer sends msg from conn to to and returns the first final
// response (5s at most; fail, with more, tells what the appliance saw).
func finalAnswer(t *testing.T, conn net.PacketConn, to net.Addr, msg string, more func() string) string {
	t.Helper()
	if _, err := conn.WriteTo([]byte(msg), to); err != nil {
		t.Fatal(err)
	}
	_, rest, _ := strings.Cut(msg, "\r\nCall-ID: ")
	callID, _, _ := strings.Cut(rest, "\r\n")
	buf := make([]byte, 65535)
	deadline := time.Now().Add(5 * time.Second)
	for {
		conn.SetReadDeadline(deadline)
		n, _, err := conn.ReadFrom(buf)
		if err != nil {
			t.Fatalf("no final answer to a %d-byte INVITE: %v\n%s", len(msg), err, more())
		}
		// Only this INVITE's: the UAS retransmits the 200 of an earlier
		// one, which no ACK ends.
		if resp := string(buf[:n]); !strings.HasPrefix(resp, "SIP/2.0 1") && strings.Contains(resp, callID) {
			return resp
		}
	}
}

// largeInvites sends 3.5 KB and 7.5 KB INVITEs (IP-fragmented on a 1500
// MTU) from conn through the appliance at to and checks their answers:
// the UAS's 200 for what the port carries whole (up to maxWhole bytes),
// 513 for the rest and for one over [guard] max_message_size (8192).
func largeInvites(t *testing.T, conn net.PacketConn, to net.Addr, maxWhole int, more func() string) {
	t.Helper()
	from := conn.LocalAddr().String()
	for _, size := range []int{3500, 7500, 9000} {
		msg := bigInvite(from, to.String(), size, fmt.Sprintf("big-%d@%s", size, strings.ReplaceAll(from, ":", "-")))
		want := "SIP/2.0 200"
		if len(msg) > maxWhole || len(msg) > 8192 {
			want = "SIP/2.0 513"
		}
		if resp := finalAnswer(t, conn, to, msg, more); !strings.HasPrefix(resp, want) {
			t.Errorf("%d-byte INVITE: %q, want %q\n%s", len(msg), strings.SplitN(resp, "\r\n", 2)[0], want, more())
		}
	}
}

// INVITEs of 3.5 KB and 7.5 KB (a 7.5 KB one is IP-fragmented on a 1500
// MTU) go through the socket port both ways; one over [guard]
// max_message_size is answered 513, not lost.
func TestE2ELargeInviteSocket(t *testing.T) {
	r := newLoopRig(t, 1)
	conn, err := net.ListenPacket("udp", uacIP+":0")
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	to, err := net.ResolveUDPAddr("udp", r.sip)
	if err != nil {
		t.Fatal(err)
	}
	largeInvites(t, conn, to, 8192, func() string {
		var m string
		r.app.get(t, "/metrics", &m)
		return m + "\n" + errorsLog(r.dir, r.uasNames[0])
	})
}
