package main

import (
	"fmt"
	"net"
	"net/netip"
	"os"
	"sort"
	"strconv"
	"time"

	"sipedge/sipcore"
)

// setupLatencies places calls one at a time, at most rate a second,
// through the appliance at sip: INVITE with SDP, and the time until its
// 200 arrives (ns resolution, unlike sipp's ms), then ACK and BYE. Calls
// that get no 200 within a second are counted as failed.
func setupLatencies(sip string, n, rate int) (lat []time.Duration, failed int) {
	conn, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 2)})
	must(err)
	defer conn.Close()
	me := conn.LocalAddr().(*net.UDPAddr).AddrPort()
	to := netip.MustParseAddrPort(sip)
	buf := make([]byte, 65536)
	var m sipcore.Msg
	tick := time.NewTicker(time.Second / time.Duration(rate))
	defer tick.Stop()
	for i := 0; i < n; i++ {
		<-tick.C
		id := fmt.Sprintf("fig-%d-%d@%v", os.Getpid(), i, me.Addr())
		sdp := "v=0\r\no=- 1 1 IN IP4 127.0.0.2\r\ns=-\r\nc=IN IP4 127.0.0.2\r\nt=0 0\r\nm=audio " + strconv.Itoa(20000+2*(i%1000)) + " RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\n"
		head := func(method string, cseq int, branch, toTag string) string {
			t := ""
			if toTag != "" {
				t = ";tag=" + toTag
			}
			return fmt.Sprintf("%s sip:service@%v SIP/2.0\r\nVia: SIP/2.0/UDP %v;branch=z9hG4bK%s\r\nFrom: <sip:fig@%v>;tag=f%d\r\nTo: <sip:service@%v>%s\r\nCall-ID: %s\r\nCSeq: %d %s\r\nContact: <sip:fig@%v>\r\nMax-Forwards: 70\r\n",
				method, to, me, branch, me, i, to, t, id, cseq, method, me)
		}
		invite := head("INVITE", 1, "i"+strconv.Itoa(i), "") + "Content-Type: application/sdp\r\nContent-Length: " + strconv.Itoa(len(sdp)) + "\r\n\r\n" + sdp
		t0 := time.Now()
		conn.WriteToUDPAddrPort([]byte(invite), to)
		toTag := ""
		for toTag == "" {
			conn.SetReadDeadline(t0.Add(time.Second))
			k, _, err := conn.ReadFromUDPAddrPort(buf)
			if err != nil {
				break
			}
			if sipcore.Parse(buf[:k], &m) != nil || m.IsRequest || string(m.B(m.CallID)) != id || m.CSeqMethod != sipcore.MethodINVITE || m.StatusCode != 200 {
				continue
			}
			lat = append(lat, time.Since(t0))
			toTag = string(m.B(m.To.Tag))
		}
		if toTag == "" {
			failed++
			continue
		}
		conn.WriteToUDPAddrPort([]byte(head("ACK", 1, "a"+strconv.Itoa(i), toTag)+"Content-Length: 0\r\n\r\n"), to)
		conn.WriteToUDPAddrPort([]byte(head("BYE", 2, "b"+strconv.Itoa(i), toTag)+"Content-Length: 0\r\n\r\n"), to)
		for end := time.Now().Add(time.Second); ; {
			conn.SetReadDeadline(end)
			k, _, err := conn.ReadFromUDPAddrPort(buf)
			if err != nil {
				break
			}
			if sipcore.Parse(buf[:k], &m) == nil && !m.IsRequest && string(m.B(m.CallID)) == id && m.CSeqMethod == sipcore.MethodBYE {
				break
			}
		}
	}
	return lat, failed
}

func pct(v []time.Duration, p int) time.Duration {
	if len(v) == 0 {
		return 0
	}
	s := append([]time.Duration(nil), v...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	return s[min(len(s)-1, len(s)*p/100)]
}
