package media_test

import (
	"fmt"
	"io"
	"net/netip"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"sipedge/pipeline"
	"sipedge/pipeline/chain"
	"sipedge/pipeline/memport"
	"sipedge/pipeline/stages/media"
	"sipedge/sipcore"
)

// Addresses of the rig.
var (
	edge    = netip.MustParseAddrPort("127.0.0.1:5060")
	caller  = netip.MustParseAddrPort("127.0.0.1:40001")
	backend = netip.MustParseAddrPort("127.0.0.2:5080")
)

// rig is one worker running the chain without guard and auth over a
// memport, with the media stages of cfg.
type rig struct {
	t    testing.TB
	port *memport.Port
	w    *pipeline.Worker
	md   *media.Media
}

func newRig(t testing.TB, cfg media.Config) *rig {
	t.Helper()
	key := sipcore.NewKey([]byte("media test cluster secret, 32 by"))
	cfg.Key = &key
	md, err := media.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(md.Close)
	bk, err := pipeline.NewBackends([]pipeline.BackendSpec{{Addr: backend, Weight: 1}})
	if err != nil {
		t.Fatal(err)
	}
	px, err := chain.Proxy(chain.ProxyConfig{Key: &key, SentBy: edge.String(), Names: []string{"127.0.0.1"}, Backends: bk, MarkLateOffer: true})
	if err != nil {
		t.Fatal(err)
	}
	makers, err := chain.Default.Without("guard", "auth").Makers(append(px, md, md.Answer())...)
	if err != nil {
		t.Fatal(err)
	}
	r := &rig{t: t, port: memport.New(1024, 4096), md: md}
	w, err := pipeline.NewWorker(r.port, pipeline.Config{Key: &key, Core: -1}, makers)
	if err != nil {
		t.Fatal(err)
	}
	r.w = w
	return r
}

// send runs msg from src through the worker until nothing is parked
// (bounded: 10s) and returns what it transmitted.
func (r *rig) send(src netip.AddrPort, msg string) []memport.Datagram {
	r.t.Helper()
	r.port.In = append(r.port.In, memport.Datagram{Payload: []byte(msg), Src: src, Dst: edge})
	end := time.Now().Add(10 * time.Second)
	for {
		_, err := r.w.Poll()
		if err != nil && err != io.EOF {
			r.t.Fatalf("Poll: %v", err)
		}
		if err == io.EOF && r.w.Parked() == 0 {
			r.w.Poll()
			break
		}
		if time.Now().After(end) {
			r.t.Fatalf("%d messages still parked after 10s", r.w.Parked())
		}
		runtime.Gosched()
	}
	out := append([]memport.Datagram(nil), r.port.Sent...)
	r.port.Sent = r.port.Sent[:0]
	return out
}

// one sends msg and wants exactly one datagram out, parsed.
func (r *rig) one(src netip.AddrPort, msg string) (memport.Datagram, *sipcore.Msg) {
	r.t.Helper()
	out := r.send(src, msg)
	if len(out) != 1 {
		r.t.Fatalf("sent %d datagrams, want 1; stats %+v", len(out), r.w.Stats())
	}
	var m sipcore.Msg
	if err := sipcore.Parse(append([]byte(nil), out[0].Payload...), &m); err != nil {
		r.t.Fatalf("output does not parse: %v\n%s", err, out[0].Payload)
	}
	return out[0], &m
}

func sdp(ip string, port int) string {
	return "v=0\r\no=caller 1 1 IN IP4 " + ip + "\r\ns=-\r\nc=IN IP4 " + ip + "\r\nt=0 0\r\nm=audio " + strconv.Itoa(port) + " RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\n"
}

func invite(callID, body string) string {
	return "INVITE sip:bob@127.0.0.2:5080 SIP/2.0\r\n" +
		"Via: SIP/2.0/UDP 127.0.0.1:40001;branch=z9hG4bK-" + callID + "\r\n" +
		"Max-Forwards: 70\r\nFrom: <sip:alice@example.com>;tag=from-" + callID + "\r\n" +
		"To: <sip:bob@example.com>\r\nCall-ID: " + callID + "\r\nCSeq: 1 INVITE\r\n" +
		"Contact: <sip:alice@127.0.0.1:40001>\r\nContent-Type: application/sdp\r\n" +
		"Content-Length: " + strconv.Itoa(len(body)) + "\r\n\r\n" + body
}

func inDialog(method, callID string, cseq int) string {
	return method + " sip:bob@127.0.0.2:5080 SIP/2.0\r\n" +
		"Via: SIP/2.0/UDP 127.0.0.1:40001;branch=z9hG4bK-" + method + callID + "\r\n" +
		"Max-Forwards: 70\r\nFrom: <sip:alice@example.com>;tag=from-" + callID + "\r\n" +
		"To: <sip:bob@example.com>;tag=to-" + callID + "\r\nCall-ID: " + callID + "\r\nCSeq: " + strconv.Itoa(cseq) + " " + method + "\r\n" +
		"Content-Length: 0\r\n\r\n"
}

// reply answers the forwarded request fwd with status, a To tag and body.
func reply(t testing.TB, fwd *sipcore.Msg, status int, body string) string {
	t.Helper()
	var b strings.Builder
	fmt.Fprintf(&b, "SIP/2.0 %d X\r\n", status)
	for i := 0; i < fwd.NHeaders; i++ {
		h := &fwd.Headers[i]
		switch h.Kind {
		case sipcore.HdrVia, sipcore.HdrFrom, sipcore.HdrCallID, sipcore.HdrCSeq:
			b.WriteString(strings.TrimRight(string(fwd.B(h.Line)), "\r\n"))
			b.WriteString("\r\n")
		case sipcore.HdrTo:
			b.WriteString(strings.TrimRight(string(fwd.B(h.Line)), "\r\n"))
			if fwd.To.Tag.Len == 0 {
				b.WriteString(";tag=to-" + string(fwd.B(fwd.CallID)))
			}
			b.WriteString("\r\n")
		}
	}
	if body != "" {
		b.WriteString("Content-Type: application/sdp\r\n")
	}
	fmt.Fprintf(&b, "Content-Length: %d\r\n\r\n%s", len(body), body)
	return b.String()
}

var mediaLine = regexp.MustCompile(`(?m)^m=audio (\d+) `)
var connLine = regexp.MustCompile(`(?m)^c=IN IP4 (\S+)\r$`)

// mediaOf returns the connection address and audio port of a body.
func mediaOf(t testing.TB, m *sipcore.Msg) (string, int) {
	t.Helper()
	body := string(m.B(m.Body))
	c, p := connLine.FindStringSubmatch(body), mediaLine.FindStringSubmatch(body)
	if c == nil || p == nil {
		t.Fatalf("no c= or m= line in the body:\n%s", body)
	}
	port, _ := strconv.Atoi(p[1])
	return c[1], port
}
