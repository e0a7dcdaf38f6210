package sipcore

// Test fixtures shared by the parser's tests and benchmarks (and reused by
// the builder's): realistic messages of one INVITE transaction. They are
// test-only on purpose; nothing exports them.

// fixtureINVITE is a typical INVITE with SDP as a UAC sends it through one
// proxy (934 bytes): 2 Vias, Max-Forwards, From/To, Call-ID, CSeq, Contact,
// Record-Route, Allow, Supported, User-Agent, Content-Type, Content-Length.
var fixtureINVITE = []byte("" +
	"INVITE sip:bob@biloxi.example.com SIP/2.0\r\n" +
	"Via: SIP/2.0/UDP pc33.atlanta.example.com:5060;branch=z9hG4bK776asdhds;rport\r\n" +
	"Via: SIP/2.0/UDP 192.0.2.101:5062;branch=z9hG4bKnashds8;received=192.0.2.101\r\n" +
	"Max-Forwards: 70\r\n" +
	"From: \"Alice\" <sip:alice@atlanta.example.com>;tag=1928301774\r\n" +
	"To: \"Bob\" <sip:bob@biloxi.example.com>\r\n" +
	"Call-ID: a84b4c76e66710@pc33.atlanta.example.com\r\n" +
	"CSeq: 314159 INVITE\r\n" +
	"Contact: <sip:alice@192.0.2.101:5062;transport=udp>\r\n" +
	"Record-Route: <sip:proxy1.atlanta.example.com;lr>\r\n" +
	"Allow: INVITE, ACK, CANCEL, BYE, OPTIONS, PRACK, UPDATE, INFO, REFER, NOTIFY\r\n" +
	"Supported: replaces, timer, 100rel\r\n" +
	"User-Agent: ExamplePhone/4.2.1\r\n" +
	"Content-Type: application/sdp\r\n" +
	"Content-Length: 240\r\n" +
	"\r\n" +
	"v=0\r\n" +
	"o=alice 2890844526 2890844526 IN IP4 192.0.2.101\r\n" +
	"s=-\r\n" +
	"c=IN IP4 192.0.2.101\r\n" +
	"t=0 0\r\n" +
	"m=audio 49170 RTP/AVP 0 8 101\r\n" +
	"a=rtpmap:0 PCMU/8000\r\n" +
	"a=rtpmap:8 PCMA/8000\r\n" +
	"a=rtpmap:101 telephone-event/8000\r\n" +
	"a=fmtp:101 0-15\r\n" +
	"a=ptime:20\r\n" +
	"a=sendrecv\r\n")

// fixture200OK is the 200 OK answering fixtureINVITE, with SDP (895 bytes).
var fixture200OK = []byte("" +
	"SIP/2.0 200 OK\r\n" +
	"Via: SIP/2.0/UDP pc33.atlanta.example.com:5060;branch=z9hG4bK776asdhds;rport=5060;received=192.0.2.101\r\n" +
	"Via: SIP/2.0/UDP 192.0.2.101:5062;branch=z9hG4bKnashds8;received=192.0.2.101\r\n" +
	"Record-Route: <sip:proxy1.atlanta.example.com;lr>\r\n" +
	"From: \"Alice\" <sip:alice@atlanta.example.com>;tag=1928301774\r\n" +
	"To: \"Bob\" <sip:bob@biloxi.example.com>;tag=a6c85cf\r\n" +
	"Call-ID: a84b4c76e66710@pc33.atlanta.example.com\r\n" +
	"CSeq: 314159 INVITE\r\n" +
	"Contact: <sip:bob@192.0.2.201:5060>\r\n" +
	"Allow: INVITE, ACK, CANCEL, BYE, OPTIONS, PRACK, UPDATE, INFO, REFER, NOTIFY\r\n" +
	"Supported: replaces, timer\r\n" +
	"Server: ExampleSwitch/2.3\r\n" +
	"Content-Type: application/sdp\r\n" +
	"Content-Length: 237\r\n" +
	"\r\n" +
	"v=0\r\n" +
	"o=bob 2808844564 2808844564 IN IP4 192.0.2.201\r\n" +
	"s=-\r\n" +
	"c=IN IP4 192.0.2.201\r\n" +
	"t=0 0\r\n" +
	"m=audio 3456 RTP/AVP 0 8 101\r\n" +
	"a=rtpmap:0 PCMU/8000\r\n" +
	"a=rtpmap:8 PCMA/8000\r\n" +
	"a=rtpmap:101 telephone-event/8000\r\n" +
	"a=fmtp:101 0-15\r\n" +
	"a=ptime:20\r\n" +
	"a=sendrecv\r\n")
