package guard

import (
	"net/netip"
	"testing"
	"time"

	"sipedge/pipeline"
)

func invite() []byte {
	return []byte("INVITE sip:bob@example.com SIP/2.0\r\n" +
		"Via: SIP/2.0/UDP 203.0.113.5:5060;branch=z9hG4bK776asdhds;rport\r\n" +
		"Max-Forwards: 70\r\nTo: Bob <sip:bob@example.com>\r\n" +
		"From: Alice <sip:alice@example.com>;tag=1928301774\r\n" +
		"Call-ID: a84b4c76e66710@pc33.example.com\r\nCSeq: 314159 INVITE\r\n" +
		"Contact: <sip:alice@203.0.113.5:5060>\r\nUser-Agent: Zoiper rv2.10.19.9\r\n" +
		"Allow: INVITE, ACK, CANCEL, BYE, OPTIONS\r\nContent-Type: application/sdp\r\nContent-Length: 142\r\n\r\n" +
		"v=0\r\no=alice 2890844526 2890844526 IN IP4 203.0.113.5\r\ns=-\r\nc=IN IP4 203.0.113.5\r\nt=0 0\r\nm=audio 49172 RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\n")
}

// BenchmarkProcess is the guard's cost per message: legit traffic from
// 1000 sources under their limits; one source flooding (dropped over the
// limit, Silent); the same flood once banned; a spoofed flood (every
// message a new source, evicting); scanners (signature match).
func BenchmarkProcess(b *testing.B) {
	for _, c := range []struct {
		name string
		msg  []byte
		src  func(i int) netip.AddrPort
		ban  bool
	}{
		{"legit", invite(), func(i int) netip.AddrPort { return netip.AddrPortFrom(addrN(i%1000), 5060) }, false},
		{"flood-over-limit", invite(), func(int) netip.AddrPort { return netip.MustParseAddrPort("198.51.100.1:5060") }, false},
		{"flood-banned", invite(), func(int) netip.AddrPort { return netip.MustParseAddrPort("198.51.100.1:5060") }, true},
		{"spoofed-flood", invite(), func(i int) netip.AddrPort { return netip.AddrPortFrom(addrN(i), 5060) }, false},
		{"scanner", register("friendly-scanner"), func(i int) netip.AddrPort { return netip.AddrPortFrom(addrN(i), 5060) }, false},
	} {
		b.Run(c.name, func(b *testing.B) {
			g, err := New(Config{OverLimit: Silent, BanAfter: time.Hour, Now: func() int64 { return 0 }})
			if err != nil {
				b.Fatal(err)
			}
			s := soloStage(b, g)
			if c.ban {
				if err := g.Ban(c.src(0).Addr(), time.Hour); err != nil {
					b.Fatal(err)
				}
				startBatch(s, 0)
			}
			var ctx pipeline.Ctx
			buf := append([]byte(nil), c.msg...)
			b.SetBytes(int64(len(buf)))
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				// 1000 messages/ms overall: legit sources send 1/s each.
				proc(s, &ctx, buf, c.src(i), int64(i)*1000)
				if i&31 == 0 {
					startBatch(s, int64(i)*1000)
				}
			}
		})
	}
}
