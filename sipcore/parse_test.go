package sipcore

import (
	"errors"
	"strings"
	"testing"
)

// msg builds a request from header lines (CRLF added), with the required
// headers the test does not provide filled in, and an empty body.
func msg(startLine string, headers ...string) []byte {
	have := map[HeaderKind]bool{}
	for _, h := range headers {
		if i := strings.IndexByte(h, ':'); i > 0 {
			have[headerKind(strings.TrimSpace(h[:i]))] = true
		}
	}
	var b strings.Builder
	b.WriteString(startLine + "\r\n")
	for _, h := range headers {
		b.WriteString(h + "\r\n")
	}
	for _, d := range []struct {
		k HeaderKind
		h string
	}{
		{HdrVia, "Via: SIP/2.0/UDP 192.0.2.1;branch=z9hG4bKdef"},
		{HdrFrom, "From: <sip:a@example.com>;tag=1"},
		{HdrTo, "To: <sip:b@example.com>"},
		{HdrCallID, "Call-ID: def@example.com"},
		{HdrCSeq, "CSeq: 1 " + strings.Fields(startLine)[0]},
	} {
		if !have[d.k] && !strings.HasPrefix(startLine, "SIP/") {
			b.WriteString(d.h + "\r\n")
		}
	}
	b.WriteString("\r\n")
	return []byte(b.String())
}

const invite = "INVITE sip:bob@example.com SIP/2.0"

// mustParse parses buf and validates the lazy components too, so that
// tests can read every field.
func mustParse(t *testing.T, buf []byte) *Msg {
	t.Helper()
	m := new(Msg)
	if err := Parse(buf, m); err != nil {
		t.Fatalf("Parse: %v\n%s", err, buf)
	}
	if err := m.Validate(); err != nil {
		t.Fatalf("Validate: %v\n%s", err, buf)
	}
	return m
}

func TestFixtures(t *testing.T) {
	m := mustParse(t, append([]byte(nil), fixtureINVITE...))
	is(t, "method", m.Method, MethodINVITE)
	is(t, "vias", m.NVia, 2)
	is(t, "rport", m.Vias[0].HasRPort, true)
	eq(t, "rport value", m.B(m.Vias[0].RPort), "")
	is(t, "via port", m.Vias[0].Port, uint16(5060))
	eq(t, "received", m.B(m.Vias[1].Received), "192.0.2.101")
	is(t, "max-forwards", m.MaxForwards, 70)
	eq(t, "from tag", m.B(m.From.Tag), "1928301774")
	eq(t, "from display", m.B(m.From.Display), "Alice")
	eq(t, "to tag", m.B(m.To.Tag), "")
	eq(t, "contact transport", m.B(m.Contacts[0].URI.Transport), "udp")
	is(t, "record-route lr", m.RecordRoutes[0].URI.LR, true)
	is(t, "supported", m.Supported >= 0, true)
	is(t, "user-agent", m.UserAgent >= 0, true)
	eq(t, "content-type", m.B(m.ContentType), "application/sdp")
	is(t, "body", int(m.Body.Len), m.ContentLength)
	is(t, "end", m.End, len(fixtureINVITE))
	is(t, "Allow by name", m.Find("allow", 0) >= 0, true)

	r := mustParse(t, append([]byte(nil), fixture200OK...))
	is(t, "status", r.StatusCode, uint16(200))
	eq(t, "reason", r.B(r.Reason), "OK")
	eq(t, "rport=", r.B(r.Vias[0].RPort), "5060")
	eq(t, "to tag", r.B(r.To.Tag), "a6c85cf")
	is(t, "end", r.End, len(fixture200OK))
}

func TestCompactForms(t *testing.T) {
	buf := []byte("INVITE sip:b@example.com SIP/2.0\r\n" +
		"v: SIP/2.0/UDP h.example.com;branch=z9hG4bK1\r\n" +
		"f: <sip:a@example.com>;tag=x\r\nT: sip:b@example.com\r\ni: c1@h\r\n" +
		"CSeq: 1 INVITE\r\nm: <sip:a@h>\r\nc: application/sdp\r\nk: timer\r\n" +
		"s: hi\r\ne: gzip\r\no: dialog\r\nu: dialog\r\nr: <sip:x@h>\r\nb: <sip:y@h>\r\n" +
		"x: 1800\r\ny: abc\r\na: *;audio\r\nl: 0\r\n\r\n")
	m := mustParse(t, buf)
	for _, k := range []HeaderKind{HdrVia, HdrFrom, HdrTo, HdrCallID, HdrContact, HdrContentType,
		HdrSupported, HdrSubject, HdrContentEncoding, HdrEvent, HdrAllowEvents, HdrReferTo,
		HdrReferredBy, HdrSessionExpires, HdrIdentity, HdrAcceptContact, HdrContentLength} {
		if !m.Has(k) {
			t.Errorf("kind %d not recognised from its compact form", k)
		}
	}
	is(t, "Find long name finds compact", m.Find("Session-Expires", 0), m.Next(HdrSessionExpires, 0))
	is(t, "Find compact finds compact", m.Find("I", 0), m.Next(HdrCallID, 0))
	is(t, "content-length", m.ContentLength, 0)
	is(t, "supported index", m.Supported, int16(m.Next(HdrSupported, 0)))
}

func TestHeaderKindNames(t *testing.T) {
	for name, want := range map[string]HeaderKind{
		"VIA": HdrVia, "call-ID": HdrCallID, "Proxy-Authorization": HdrProxyAuthorization,
		"Content-Encoding": HdrContentEncoding, "Record-Route": HdrRecordRoute,
		"Max-Forwards": HdrMaxForwards, "Accept": HdrOther, "Call_ID": HdrOther,
		"Content-Lengths": HdrOther, "": HdrOther,
	} {
		is(t, name, headerKind(name), want)
		if len(name) > 0 {
			b := []byte(name + ": padding padding padding")
			is(t, name+" (kindAt)", kindAt(b, 0, len(name)), want)
		}
	}
}

func TestFolding(t *testing.T) {
	buf := msg(invite, "Subject: one\r\n two\r\n\tthree", "Via: SIP/2.0/UDP\r\n a.example.com\r\n ;branch=z9hG4bKf")
	m := mustParse(t, buf)
	eq(t, "subject", m.B(m.Headers[m.Next(HdrSubject, 0)].Value), "one   two  \tthree")
	eq(t, "via host", m.B(m.Vias[0].Host), "a.example.com")
	eq(t, "branch", m.B(m.Vias[0].Branch), "z9hG4bKf")
	if line := m.B(m.Headers[0].Line); !strings.HasSuffix(string(line), "three\r\n") {
		t.Errorf("Line does not span the continuation lines: %q", line)
	}
}

func TestCommaSplitting(t *testing.T) {
	buf := msg(invite,
		`Contact: "Doe, John" <sip:j,k@h.example.com;x=a>;q=0.5, <sip:k@h2>, sip:l@h3;expires=5`,
		"Route: <sip:r1@h;lr>,<sip:r2@h;lr>",
		"Record-Route: <sip:rr1@h;lr>",
		"Record-Route: <sip:rr2@h;lr>, <sip:rr3@h;lr>",
		"Via: SIP/2.0/UDP a.example.com;branch=z9hG4bK1, SIP/2.0/TCP [2001:db8::1]:5061;branch=z9hG4bK2;rport",
		"Via: SIP/2.0/UDP b.example.com;branch=z9hG4bK3",
		"Require: a, b")
	m := mustParse(t, buf)
	is(t, "contacts", m.NContact, 3)
	eq(t, "contact 0 display", m.B(m.Contacts[0].Display), "Doe, John")
	eq(t, "contact 0 user", m.B(m.Contacts[0].URI.User), "j,k")
	eq(t, "contact 0 params", m.B(m.Contacts[0].URI.Params), "x=a")
	eq(t, "contact 2 params", m.B(m.Contacts[2].Params), "expires=5")
	is(t, "routes", m.NRoute, 2)
	is(t, "record-routes", m.NRecordRoute, 3)
	eq(t, "rr order", m.B(m.RecordRoutes[2].URI.User), "rr3")
	is(t, "vias", m.NVia, 3)
	is(t, "via 1 kind", m.Vias[1].HostKind, HostIPv6)
	eq(t, "via 1 host", m.B(m.Vias[1].Host), "[2001:db8::1]")
	is(t, "via 1 port", m.Vias[1].Port, uint16(5061))
	is(t, "via 1 rport", m.Vias[1].HasRPort, true)
	is(t, "via 0 and 1 share a line", m.Headers[m.Vias[0].Header].Line, m.Headers[m.Vias[1].Header].Line)
	is(t, "Require not split", m.Next(HdrRequire, int(m.Require)+1), -1)
}

func TestURIs(t *testing.T) {
	cases := []struct {
		in   string
		ok   bool
		want func(t *testing.T, b []byte, u *URI)
	}{
		{"sip:alice:secret@atlanta.com;transport=tcp;maddr=239.255.255.1;ttl=15;user=ip;method=INVITE;lr?subject=x&priority=urgent", true,
			func(t *testing.T, b []byte, u *URI) {
				eq(t, "user", b[u.User.Off:u.User.End()], "alice")
				eq(t, "password", b[u.Password.Off:u.Password.End()], "secret")
				eq(t, "transport", b[u.Transport.Off:u.Transport.End()], "tcp")
				eq(t, "maddr", b[u.MAddr.Off:u.MAddr.End()], "239.255.255.1")
				eq(t, "ttl", b[u.TTL.Off:u.TTL.End()], "15")
				eq(t, "user param", b[u.UserParam.Off:u.UserParam.End()], "ip")
				eq(t, "method", b[u.MethodPar.Off:u.MethodPar.End()], "INVITE")
				is(t, "lr", u.LR, true)
				eq(t, "headers", b[u.Headers.Off:u.Headers.End()], "subject=x&priority=urgent")
			}},
		{"sips:[2001:db8::1]:5061", true, func(t *testing.T, b []byte, u *URI) {
			is(t, "scheme", u.Scheme, SchemeSIPS)
			is(t, "kind", u.HostKind, HostIPv6)
			is(t, "port", u.Port, uint16(5061))
		}},
		{"SIP:10.0.0.1", true, func(t *testing.T, b []byte, u *URI) { is(t, "kind", u.HostKind, HostIPv4) }},
		{"tel:+1-201-555-0123;phone-context=example.com", true, func(t *testing.T, b []byte, u *URI) {
			is(t, "scheme", u.Scheme, SchemeTel)
			eq(t, "number", b[u.User.Off:u.User.End()], "+1-201-555-0123")
		}},
		{"urn:service:sos", true, func(t *testing.T, b []byte, u *URI) { is(t, "scheme", u.Scheme, SchemeOther) }},
		{"sip:user@host:70000", false, nil},
		{"sip:user@host;;lr", false, nil},
		{"sip:us%zzer@host", false, nil},
		{"sip:@host", false, nil},
		{"sip:user@", false, nil},
		{"sip:user@[2001:db8::1", false, nil},
		{"sip:1.2.3", false, nil},
		{"sip:300.1.1.1", false, nil},
		{"sip:host name", false, nil},
		{"1sip:host", false, nil},
		{"sip", false, nil},
	}
	for _, c := range cases {
		b := []byte(c.in)
		var u URI
		err := ParseURI(b, Span{0, uint16(len(b))}, &u)
		if (err == nil) != c.ok {
			t.Errorf("ParseURI(%q) err = %v, want ok=%v", c.in, err, c.ok)
			continue
		}
		if c.want != nil {
			c.want(t, b, &u)
		}
	}
}

func TestErrors(t *testing.T) {
	long := "X-Long: " + strings.Repeat("a", MaxLineLength)
	many := make([]string, 0, MaxHeaders)
	for i := 0; i < MaxHeaders; i++ {
		many = append(many, "X-H: 1")
	}
	vias := make([]string, 0, MaxVias+1)
	for i := 0; i <= MaxVias; i++ {
		vias = append(vias, "Via: SIP/2.0/UDP h;branch=z9hG4bK1")
	}
	contacts := "Contact: " + strings.TrimSuffix(strings.Repeat("<sip:a@h>,", MaxContacts+1), ",")
	routes := "Route: " + strings.TrimSuffix(strings.Repeat("<sip:a@h;lr>,", MaxRoutes+1), ",")
	// lazy: Parse accepts (the fault is in a component a proxy forwards
	// unchanged, RFC 3261 16.3) and Validate returns the error.
	cases := []struct {
		name   string
		buf    []byte
		want   *ErrKind
		status int
		lazy   bool
	}{
		{"empty", nil, ErrStartLine, 0, false},
		{"garbage", []byte("\x80\x81\x82\r\n\r\n"), ErrStartLine, 0, false},
		{"too large", make([]byte, MaxMessageSize+1), ErrMessageTooLarge, 0, false},
		{"version", msg("INVITE sip:b@h SIP/3.0"), ErrVersion, 505, false},
		{"status 700", []byte("SIP/2.0 700 Nope\r\n\r\n"), ErrStatusCode, 0, false},
		{"status 99", []byte("SIP/2.0 099 Nope\r\n\r\n"), ErrStatusCode, 0, false},
		{"status letters", []byte("SIP/2.0 2x0 OK\r\n\r\n"), ErrStatusLine, 0, false},
		{"response bad via", msg("SIP/2.0 200 OK", "Via: nope"), ErrBadVia, 0, false},
		{"no end of headers", []byte("OPTIONS sip:h SIP/2.0\r\nVia: SIP/2.0/UDP h\r\n"), ErrNoHeaderEnd, 400, false},
		{"line too long", msg(invite, long), ErrLineTooLong, 513, false},
		{"too many headers", msg(invite, many...), ErrTooManyHeaders, 513, false},
		{"too many vias", msg(invite, vias...), ErrTooManyVias, 513, false},
		{"too many contacts", msg(invite, contacts), ErrTooManyContacts, 513, false},
		{"too many routes", msg(invite, routes), ErrTooManyRoutes, 513, false},
		{"header without colon", msg(invite, "Foo bar"), ErrHeaderLine, 400, false},
		{"empty via", msg(invite, "Via: "), ErrBadVia, 400, false},
		{"via trailing comma", msg(invite, "Via: SIP/2.0/UDP h;branch=z9hG4bK1,"), ErrBadVia, 400, false},
		{"via bad port", msg(invite, "Via: SIP/2.0/UDP h:99999"), ErrBadVia, 400, false},
		{"bad call-id", msg(invite, "Call-ID: a b"), ErrBadCallID, 400, false},
		{"cseq no method", msg(invite, "CSeq: 1"), ErrBadCSeq, 400, false},
		{"max-forwards 256", msg(invite, "Max-Forwards: 256"), ErrBadMaxForwards, 400, false},
		{"dup max-forwards", msg(invite, "Max-Forwards: 1", "Max-Forwards: 2"), ErrDupMaxForwards, 400, false},
		{"dup from", msg(invite, "From: <sip:a@h>", "f: <sip:a@h>"), ErrDupFrom, 400, false},
		{"dup to", msg(invite, "To: <sip:a@h>", "t: <sip:a@h>"), ErrDupTo, 400, false},
		{"dup call-id", msg(invite, "Call-ID: a", "i: b"), ErrDupCallID, 400, false},
		{"star contact mixed", msg(invite, "Contact: *, <sip:a@h>"), ErrStarContact, 400, false},
		{"bad route", msg(invite, "Route: <sip:a@h"), ErrBadRoute, 400, false},
		{"bad record-route", msg(invite, "Record-Route: nope"), ErrBadRecordRoute, 400, true},
		{"record-route unclosed quote", msg(invite, `Record-Route: "x <sip:a@h;lr>`), ErrBadRecordRoute, 400, true},
		{"record-route list unclosed quote", msg(invite, `Record-Route: "x, <sip:a@h;lr>`), ErrBadRecordRoute, 400, false},
		{"bad contact uri", msg(invite, "Contact: <sip:a@h:99999>"), ErrBadContact, 400, true},
		{"second contact bad", msg(invite, "Contact: <sip:a@h>, <sip:b@>"), ErrBadContact, 400, true},
		{"contact empty value", msg(invite, "Contact: <sip:a@h>,,<sip:b@h>"), ErrBadContact, 400, false},
		{"from bad uri", msg(invite, "From: <sip:a@h@h>;tag=1"), ErrBadFrom, 400, true},
		{"from bad display", msg(invite, "From: Bob <sip:a@h>;tag=1", "To: <sip:b@h> ;tag=2"), nil, 0, false},
		{"to addr-spec headers", msg(invite, "To: sip:b@h?x=y;tag=2"), ErrBadTo, 400, true},
		{"to unclosed quote", msg(invite, `To: "Bob <sip:b@h>;tag=2`), ErrBadTo, 400, false},
		{"to unclosed angle", msg(invite, "To: <sip:b@h;tag=2"), ErrBadTo, 400, false},
		{"to junk after uri", msg(invite, "To: <sip:b@h> x;tag=2"), ErrBadTo, 400, false},
		{"to bad param", msg(invite, "To: <sip:b@h>;tag=2;=x"), ErrBadTo, 400, false},
		{"from no uri", msg(invite, "From: ;tag=1"), ErrBadFrom, 400, false},
		{"first lazy error in message order", msg(invite, "Contact: <sip:a@h:99999>", "Record-Route: nope", "From: <sip:>;tag=1"), ErrBadContact, 400, true},
		{"missing via", []byte("OPTIONS sip:h SIP/2.0\r\nFrom: <sip:a@h>;tag=1\r\nTo: <sip:a@h>\r\nCall-ID: x\r\nCSeq: 1 OPTIONS\r\n\r\n"), ErrMissingVia, 400, false},
		{"missing to", []byte("OPTIONS sip:h SIP/2.0\r\nVia: SIP/2.0/UDP h\r\nFrom: <sip:a@h>;tag=1\r\nCall-ID: x\r\nCSeq: 1 OPTIONS\r\n\r\n"), ErrMissingTo, 400, false},
		{"missing call-id", []byte("OPTIONS sip:h SIP/2.0\r\nVia: SIP/2.0/UDP h\r\nFrom: <sip:a@h>;tag=1\r\nTo: <sip:a@h>\r\nCSeq: 1 OPTIONS\r\n\r\n"), ErrMissingCallID, 400, false},
		{"missing cseq", []byte("OPTIONS sip:h SIP/2.0\r\nVia: SIP/2.0/UDP h\r\nFrom: <sip:a@h>;tag=1\r\nTo: <sip:a@h>\r\nCall-ID: x\r\n\r\n"), ErrMissingCSeq, 400, false},
		{"ack is never answered", msg("ACK sip:b@h SIP/2.0", "CSeq: 1 INVITE"), ErrCSeqMismatch, 0, false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var m Msg
			err := Parse(c.buf, &m)
			if c.lazy || c.want == nil {
				if err != nil {
					t.Fatalf("Parse: %v, want success (the fault is for Validate)", err)
				}
				err = m.Validate()
				if c.want == nil {
					if err != nil {
						t.Fatalf("Validate: %v", err)
					}
					return
				}
			}
			if !errors.Is(err, c.want) {
				t.Fatalf("err = %v, want %v", err, c.want)
			}
			var pe *ParseError
			if !errors.As(err, &pe) || pe.Kind != c.want {
				t.Fatalf("err is not a *ParseError of kind %v", c.want)
			}
			st, reason := ResponseFor(&m, err)
			if st != c.status {
				t.Errorf("ResponseFor = %d %q, want %d", st, reason, c.status)
			}
			if st != 0 && reason == "" {
				t.Error("response without reason phrase")
			}
		})
	}
}

func TestUDPFraming(t *testing.T) {
	base := "OPTIONS sip:h SIP/2.0\r\nVia: SIP/2.0/UDP h\r\nFrom: <sip:a@h>;tag=1\r\nTo: <sip:a@h>\r\nCall-ID: x\r\nCSeq: 1 OPTIONS\r\n"
	m := mustParse(t, []byte(base+"Content-Length: 3\r\n\r\nabcdef"))
	is(t, "truncated to Content-Length", m.End, len(base)+len("Content-Length: 3\r\n\r\n")+3)
	eq(t, "body", m.B(m.Body), "abc")
	m = mustParse(t, []byte(base+"\r\nabcdef"))
	eq(t, "no Content-Length: rest of datagram", m.B(m.Body), "abcdef")
	is(t, "ContentLength", m.ContentLength, -1)
	m = mustParse(t, []byte(strings.ReplaceAll(base, "\r\n", "\n")+"l: 2\n\nxyz"))
	eq(t, "bare LF accepted", m.B(m.Body), "xy")
	var mm Msg
	err := Parse([]byte(base+"Content-Length: 99\r\n\r\nabc"), &mm)
	is(t, "too long", errors.Is(err, ErrContentLengthExceeds), true)
	err = Parse([]byte(base+"Content-Length: 99999999999999999999\r\n\r\nabc"), &mm)
	is(t, "huge", errors.Is(err, ErrContentLengthExceeds), true)
}

// TestParseReuse checks that a reused Msg carries nothing over.
func TestParseReuse(t *testing.T) {
	var m Msg
	if err := Parse(append([]byte(nil), fixtureINVITE...), &m); err != nil {
		t.Fatal(err)
	}
	small := msg("OPTIONS sip:h SIP/2.0")
	if err := Parse(small, &m); err != nil {
		t.Fatal(err)
	}
	is(t, "vias", m.NVia, 1)
	is(t, "contacts", m.NContact, 0)
	is(t, "record-routes", m.NRecordRoute, 0)
	is(t, "user-agent", m.UserAgent, int16(-1))
	is(t, "max-forwards", m.MaxForwards, -1)
	is(t, "content-type", m.ContentType.Len, uint16(0))
	is(t, "Find", m.Find("Allow", 0), -1)
}

func TestAllocsParse(t *testing.T) {
	bad := msg(invite, "Via: SIP/2.0/UDP h;;")
	for name, b := range map[string][]byte{"INVITE": fixtureINVITE, "200 OK": fixture200OK, "error": bad} {
		buf := append([]byte(nil), b...)
		var m Msg
		allocs := testing.AllocsPerRun(100, func() {
			err := Parse(buf, &m)
			ResponseFor(&m, err)
			m.Find("Allow", 0)
		})
		if allocs != 0 {
			t.Errorf("%s: %v allocations per Parse, want 0", name, allocs)
		}
	}
}

// TestScanHost compares the word-at-a-time host scan with the table.
func TestScanHost(t *testing.T) {
	slow := func(s []byte) int {
		q := 0
		for q < len(s) && charClass[s[q]]&cHost != 0 {
			q++
		}
		return q
	}
	b := []byte("pc33.atlanta-example.COM9")
	for c := 0; c < 256; c++ {
		for pos := 0; pos < len(b); pos++ {
			s := append([]byte(nil), b...)
			s[pos] = byte(c)
			for n := 0; n <= len(s); n++ {
				if got, want := scanHost(s[:n]), slow(s[:n]); got != want {
					t.Fatalf("scanHost(%q) = %d, want %d", s[:n], got, want)
				}
			}
		}
	}
}
