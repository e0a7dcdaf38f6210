package sipcore

import (
	"strings"
	"testing"
)

func TestBuildWithBody(t *testing.T) {
	sdp := "v=0\r\no=- 1 1 IN IP4 192.0.2.9\r\ns=-\r\nc=IN IP4 192.0.2.9\r\nt=0 0\r\nm=audio 40000 RTP/AVP 0\r\n"
	head := "INVITE sip:b@example.com SIP/2.0\r\nVia: SIP/2.0/UDP 192.0.2.1:5060;branch=z9hG4bK1\r\nFrom: <sip:a@example.com>;tag=1\r\nTo: <sip:b@example.com>\r\nCall-ID: c1\r\nCSeq: 1 INVITE\r\nContent-Type: application/sdp\r\n"
	relay := "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio 30000 RTP/AVP 0\r\na=rtcp:30001\r\n"
	cases := []struct{ name, in, cl string }{
		{"long", head + "Content-Length: 5\r\n\r\n" + sdp[:5], "Content-Length: "},
		{"compact", head + "l:5\r\n\r\n" + sdp[:5], "l:"},
		{"absent", head + "\r\n" + sdp, "Content-Length: "},
		{"absent-lf", strings.ReplaceAll(head, "\r\n", "\n") + "\n" + sdp, "Content-Length: "},
		{"longer-datagram", head + "Content-Length: 5\r\n\r\n" + sdp, "Content-Length: "},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var m Msg
			if err := Parse([]byte(tc.in), &m); err != nil {
				t.Fatal(err)
			}
			dst := make([]byte, 2048)
			n, err := BuildWithBody(dst, &m, []byte(relay))
			if err != nil {
				t.Fatal(err)
			}
			var out Msg
			if err := Parse(dst[:n], &out); err != nil {
				t.Fatalf("rewritten message does not parse: %v\n%s", err, dst[:n])
			}
			if got := string(out.B(out.Body)); got != relay {
				t.Errorf("body %q, want %q", got, relay)
			}
			if out.ContentLength != len(relay) {
				t.Errorf("Content-Length %d, want %d", out.ContentLength, len(relay))
			}
			if !strings.Contains(string(dst[:n]), tc.cl) {
				t.Errorf("Content-Length header form lost: %s", dst[:n])
			}
			if string(out.B(out.CallID)) != "c1" || out.NVia != 1 {
				t.Errorf("headers changed: %s", dst[:n])
			}
			if _, err := BuildWithBody(dst[:n-1], &m, []byte(relay)); err != ErrNoRoom {
				t.Errorf("short buffer: %v, want ErrNoRoom", err)
			}
			if a := testing.AllocsPerRun(100, func() { BuildWithBody(dst, &m, []byte(relay)) }); a != 0 {
				t.Errorf("BuildWithBody allocates %v times", a)
			}
		})
	}
}
