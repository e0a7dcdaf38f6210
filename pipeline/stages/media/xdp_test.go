package media_test

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"math/rand/v2"
	"net"
	"net/netip"
	"regexp"
	"strconv"
	"testing"
	"time"

	"sipedge/afxdp"
	"sipedge/afxdp/vethtest"
	"sipedge/pipeline/stages/media/mediatest"
)

// rtpPacket is an RTP packet (RFC 3550: version 2, PCMA) numbered seq.
func rtpPacket(seq uint16) []byte {
	b := make([]byte, 12+160)
	b[0], b[1] = 0x80, 8
	binary.BigEndian.PutUint16(b[2:], seq)
	binary.BigEndian.PutUint32(b[4:], uint32(seq)*160)
	binary.BigEndian.PutUint32(b[8:], 0x5eed1e55)
	for i := 12; i < len(b); i++ {
		b[i] = byte(seq) ^ byte(i)
	}
	return b
}

// rtcpPacket is an RTCP sender report (RFC 3550 6.4.1) without blocks.
func rtcpPacket(n uint32) []byte {
	b := make([]byte, 28)
	b[0], b[1] = 0x80, 200
	binary.BigEndian.PutUint16(b[2:], 6)
	binary.BigEndian.PutUint32(b[4:], 0x5eed1e55)
	binary.BigEndian.PutUint32(b[20:], n)
	return b
}

// evenPair opens two UDP sockets on ports p and p+1, p even (RTP and
// RTCP), with listen (in the namespace or not).
func evenPair(t *testing.T, ip netip.Addr, listen func(netip.AddrPort) (*net.UDPConn, error)) (rtp, rtcp *net.UDPConn) {
	t.Helper()
	for range 100 {
		p := uint16(40000 + 2*rand.IntN(10000))
		a, err := listen(netip.AddrPortFrom(ip, p))
		if err != nil {
			continue
		}
		b, err := listen(netip.AddrPortFrom(ip, p+1))
		if err != nil {
			a.Close()
			continue
		}
		t.Cleanup(func() { a.Close(); b.Close() })
		return a, b
	}
	t.Fatal("no free even/odd port pair")
	return nil, nil
}

func hostListen(a netip.AddrPort) (*net.UDPConn, error) {
	return net.ListenUDP("udp", net.UDPAddrFromAddrPort(a))
}

// recvFrom reads one datagram (bounded) and returns it with its source.
func recvFrom(t *testing.T, c *net.UDPConn) ([]byte, netip.AddrPort) {
	t.Helper()
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	buf := make([]byte, 2048)
	n, from, err := c.ReadFromUDPAddrPort(buf)
	if err != nil {
		t.Fatalf("nothing arrived on %v: %v", c.LocalAddr(), err)
	}
	return buf[:n], from
}

var sdpPort = regexp.MustCompile(`(?m)^m=audio (\d+) `)

// TestXDPPassesMedia: with the XDP program on the host end of a veth pair
// and an AF_XDP socket taking SIP, RTP, RTCP and other non-SIP UDP reach
// the kernel's sockets byte for byte, and a relay on the same box (an
// rtpengine on the host end's address) relays RTP and RTCP between two
// parties behind the program. Only SIP is redirected.
func TestXDPPassesMedia(t *testing.T) {
	vethtest.Require(t)
	pair := vethtest.New(t, vethtest.Options{IPv4Only: true})
	prog, err := afxdp.LoadProgram(afxdp.ProgramConfig{Ifindex: pair.HostIndex, Mode: afxdp.XDPAuto, Ports: []uint16{5060}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { prog.Close() })
	cfg := afxdp.DefaultConfig(pair.HostIndex, 0)
	cfg.FrameCount, cfg.FillRingSize, cfg.CompRingSize, cfg.RxRingSize, cfg.TxRingSize = 1024, 512, 512, 512, 256
	sock, err := afxdp.Open(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sock.Close() })
	if err := prog.Register(0, sock); err != nil {
		t.Fatal(err)
	}
	relay := mediatest.StartOn(t, pair.HostV4)
	before, err := prog.Counters()
	if err != nil {
		t.Fatal(err)
	}
	peer := pair.ListenUDP(t, netip.AddrPortFrom(pair.PeerV4, 0))
	peerAddr := peer.LocalAddr().(*net.UDPAddr).AddrPort()
	sent := 0

	// Straight to the kernel: RTP, RTCP, and a datagram that reads like
	// SIP but goes to a media port (the program keys on the port).
	hRTP, hRTCP := evenPair(t, pair.HostV4, hostListen)
	for _, c := range []struct {
		to   *net.UDPConn
		what string
		pkt  []byte
	}{
		{hRTP, "RTP", rtpPacket(1)}, {hRTP, "RTP", rtpPacket(2)}, {hRTCP, "RTCP", rtcpPacket(1)},
		{hRTP, "SIP-looking payload to a media port", []byte("INVITE sip:x@y SIP/2.0\r\n\r\n")},
	} {
		if _, err := peer.WriteToUDPAddrPort(c.pkt, c.to.LocalAddr().(*net.UDPAddr).AddrPort()); err != nil {
			t.Fatal(err)
		}
		sent++
		got, from := recvFrom(t, c.to)
		if !bytes.Equal(got, c.pkt) || from != peerAddr {
			t.Errorf("%s: the kernel got %d bytes from %v, want the %d bytes sent from %v unchanged", c.what, len(got), from, len(c.pkt), peerAddr)
		}
	}

	// Through a relay on the same box: caller and callee in the
	// namespace, the relay's media on the host end.
	aRTP, aRTCP := evenPair(t, pair.PeerV4, pair.Listen)
	bRTP, bRTCP := evenPair(t, pair.PeerV4, pair.Listen)
	sdpOf := func(c *net.UDPConn) string {
		return "v=0\r\no=- 1 1 IN IP4 " + pair.PeerV4.String() + "\r\ns=-\r\nc=IN IP4 " + pair.PeerV4.String() +
			"\r\nt=0 0\r\nm=audio " + strconv.Itoa(c.LocalAddr().(*net.UDPAddr).Port) + " RTP/AVP 8\r\n"
	}
	relayPort := func(cmd map[string]any) uint16 {
		d, err := relay.Do(cmd)
		if err != nil {
			t.Fatal(err)
		}
		m := sdpPort.FindSubmatch(d.Str(0, "sdp"))
		if m == nil {
			t.Fatalf("%s: no media port in the relay's reply: %s", cmd["command"], d.Buf)
		}
		p, _ := strconv.Atoi(string(m[1]))
		return uint16(p)
	}
	relayPort(map[string]any{"command": "offer", "call-id": "xdp-call", "from-tag": "a", "sdp": sdpOf(aRTP)})
	toB := relayPort(map[string]any{"command": "answer", "call-id": "xdp-call", "from-tag": "a", "to-tag": "b", "sdp": sdpOf(bRTP)})
	relayed := 0
	for seq := uint16(1); seq <= 5; seq++ {
		pkt := rtpPacket(seq)
		if _, err := aRTP.WriteToUDPAddrPort(pkt, netip.AddrPortFrom(pair.HostV4, toB)); err != nil {
			t.Fatal(err)
		}
		sent++
		got, from := recvFrom(t, bRTP)
		if from.Addr() != pair.HostV4 || int(from.Port()) < relay.PortMin || int(from.Port()) > relay.PortMax {
			t.Fatalf("RTP reached the callee from %v, want the relay's ports on %v", from, pair.HostV4)
		}
		if !bytes.Equal(got[12:], pkt[12:]) {
			t.Errorf("RTP %d: the callee got another payload than the caller sent", seq)
		}
		relayed++
	}
	if _, err := aRTCP.WriteToUDPAddrPort(rtcpPacket(7), netip.AddrPortFrom(pair.HostV4, toB+1)); err != nil {
		t.Fatal(err)
	}
	sent++
	if got, from := recvFrom(t, bRTCP); len(got) < 8 || got[1] != 200 || from.Addr() != pair.HostV4 {
		t.Errorf("RTCP: the callee got %d bytes (type %d) from %v, want the sender report from the relay", len(got), got[1], from)
	}
	if n, err := relay.Packets("xdp-call"); err != nil || n < int64(relayed) {
		t.Errorf("relay's RTP count %d (%v), want at least %d", n, err, relayed)
	}

	// Everything so far went to the kernel; SIP goes to the socket.
	after, err := prog.Counters()
	if err != nil {
		t.Fatal(err)
	}
	if after.Redirected != before.Redirected || after.Passed-before.Passed < uint64(sent) {
		t.Errorf("XDP counters %+v -> %+v: want %d more passed and none redirected", before, after, sent)
	}
	sip := []byte(fmt.Sprintf("OPTIONS sip:%v SIP/2.0\r\n\r\n", pair.HostV4))
	deadline := time.Now().Add(5 * time.Second)
	for {
		peer.WriteToUDPAddrPort(sip, netip.AddrPortFrom(pair.HostV4, 5060))
		c, err := prog.Counters()
		if err != nil {
			t.Fatal(err)
		}
		if c.Redirected > after.Redirected {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("SIP to 5060 never redirected: counters %+v", c)
		}
		time.Sleep(50 * time.Millisecond) // pacing the probe, not synchronisation
	}
}
