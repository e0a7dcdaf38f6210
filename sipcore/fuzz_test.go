package sipcore

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"sipedge/sipcore/shareddata"
)

// FuzzParse checks that Parse never panics, that every span of a
// successful parse lies inside the message, and that the message it framed
// (buf[:m.End]) parses again, alone, to the same facts. Validate runs on
// every message Parse accepted: when it succeeds too, the lazy fields are
// checked the same way and must agree with what Parse found eagerly; when
// it fails (a fault a proxy forwards unchanged, RFC 3261 16.3), the request
// must still forward and answer correctly.
func FuzzParse(f *testing.F) {
	f.Add(fixtureINVITE)
	f.Add(fixture200OK)
	dir, _ := shareddata.Find() // seeds from the shared data when present; the fuzzer runs without them
	for _, sub := range []string{"rfc4475", "rfc5118"} {
		files, _ := filepath.Glob(filepath.Join(dir, "conformance", sub, "*.dat"))
		for _, p := range files {
			if b, err := os.ReadFile(p); err == nil {
				f.Add(b)
			}
		}
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		buf := append([]byte(nil), data...)
		var m Msg
		if err := Parse(buf, &m); err != nil {
			ResponseFor(&m, err) // must not panic either
			return
		}
		if m.End > len(buf) || m.End < 0 {
			t.Fatalf("End %d outside datagram of %d", m.End, len(buf))
		}
		checkSpans(t, &m)
		from, to := m.From, m.To
		verr := m.Validate()
		if verr != nil {
			if !lazyErr(verr) {
				t.Fatalf("Validate: %v is not the error of a lazy component", verr)
			}
			ResponseFor(&m, verr)
			if m.From.Tag != from.Tag || m.To.Tag != to.Tag || m.From.Params != from.Params || m.To.Params != to.Params {
				t.Fatalf("failed Validate changed the eager From/To fields")
			}
		} else {
			checkSpans(t, &m)
			if m.From.Tag != from.Tag || m.To.Tag != to.Tag || m.From.Params != from.Params || m.To.Params != to.Params {
				t.Fatalf("eager From/To tag or params differ from the full parse: %+v / %+v vs %+v / %+v", from, to, m.From, m.To)
			}
		}

		again := append([]byte(nil), buf[:m.End]...)
		var m2 Msg
		if err := Parse(again, &m2); err != nil {
			t.Fatalf("re-parse of buf[:End] failed: %v", err)
		}
		if err := m2.Validate(); (err == nil) != (verr == nil) {
			t.Fatalf("Validate of buf[:End] = %v, of the datagram %v", err, verr)
		}
		same := func(what string, a, b []byte) {
			if !bytes.Equal(a, b) {
				t.Fatalf("%s differs on re-parse: %q vs %q", what, a, b)
			}
		}
		if m.IsRequest != m2.IsRequest || m.Method != m2.Method || m.StatusCode != m2.StatusCode ||
			m.CSeq != m2.CSeq || m.NVia != m2.NVia || m.Body.Len != m2.Body.Len {
			t.Fatalf("re-parse differs: req %v/%v method %d/%d status %d/%d cseq %d/%d via %d/%d body %d/%d",
				m.IsRequest, m2.IsRequest, m.Method, m2.Method, m.StatusCode, m2.StatusCode,
				m.CSeq, m2.CSeq, m.NVia, m2.NVia, m.Body.Len, m2.Body.Len)
		}
		same("method", m.B(m.MethodSpan), m2.B(m2.MethodSpan))
		same("Call-ID", m.B(m.CallID), m2.B(m2.CallID))
		same("CSeq method", m.B(m.CSeqSpan), m2.B(m2.CSeqSpan))
		for i := 0; i < m.NVia; i++ {
			same("branch", m.B(m.Vias[i].Branch), m2.B(m2.Vias[i].Branch))
		}
		same("From tag", m.B(m.From.Tag), m2.B(m2.From.Tag))
		same("To tag", m.B(m.To.Tag), m2.B(m2.To.Tag))
		if m.NContact != m2.NContact || m.NRecordRoute != m2.NRecordRoute || m.NRoute != m2.NRoute {
			t.Fatalf("re-parse differs: contacts %d/%d record-routes %d/%d routes %d/%d",
				m.NContact, m2.NContact, m.NRecordRoute, m2.NRecordRoute, m.NRoute, m2.NRoute)
		}
		if verr == nil {
			same("From URI", m.B(m.From.URI.Raw), m2.B(m2.From.URI.Raw))
			same("To URI", m.B(m.To.URI.Raw), m2.B(m2.To.URI.Raw))
			for i := 0; i < m.NContact; i++ {
				same("Contact URI", m.B(m.Contacts[i].URI.Raw), m2.B(m2.Contacts[i].URI.Raw))
			}
			for i := 0; i < m.NRecordRoute; i++ {
				same("Record-Route URI", m.B(m.RecordRoutes[i].URI.Raw), m2.B(m2.RecordRoutes[i].URI.Raw))
			}
		}
		if m.IsRequest {
			checkRebuilt(t, &m2)
		}
	})
}

// lazyErr reports whether err is one Validate may return: a fault in a
// component Parse leaves lazy.
func lazyErr(err error) bool {
	for _, k := range []*ErrKind{ErrBadFrom, ErrBadTo, ErrBadContact, ErrBadRecordRoute} {
		if errors.Is(err, k) {
			return true
		}
	}
	return false
}

// FuzzNameAddr checks that the eager walk Parse does on From and To agrees
// with the full parse: whatever the full parse accepts, the eager walk
// accepts with the same tag and parameters, so laziness never changes
// what a proxy reads.
func FuzzNameAddr(f *testing.F) {
	for _, s := range []string{`"A" <sip:a@h>;tag=1`, `sip:a@h;tag=2;x="<;tag=3>"`, `Bob<sip:b@h>;tag=x`,
		`"a\"<" <sip:a@h;tag=no>;tag=yes`, `<sip:a@h?x=y>;foo;tag=t`, `sip:user;par=1@h;tag=z`, `"Bell, A" <tel:+1>`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		if len(data) == 0 || len(data) > 2000 {
			return
		}
		var m Msg
		m.buf = data
		var full, lazy NameAddr
		okFull := m.parseNameAddr(0, len(data), &full, true)
		okLazy := m.parseNameAddr(0, len(data), &lazy, false)
		if okFull && (!okLazy || full.Tag != lazy.Tag || full.Params != lazy.Params) {
			t.Fatalf("%q: full ok, tag %v params %v; eager ok=%v tag %v params %v",
				data, full.Tag, full.Params, okLazy, lazy.Tag, lazy.Params)
		}
	})
}

// limitErr reports whether a rebuilt message failed to parse only because
// forwarding grew it past one of the parser's own limits (one more Via, one
// more header, a longer top Via line): a legitimate outcome, not a bug.
func limitErr(err error) bool {
	for _, k := range []*ErrKind{ErrTooManyVias, ErrTooManyHeaders, ErrTooManyRRoutes, ErrLineTooLong, ErrMessageTooLarge} {
		if errors.Is(err, k) {
			return true
		}
	}
	return false
}

// checkRebuilt forwards and answers a request that parsed, and checks that
// what the builders wrote parses again to the same facts.
func checkRebuilt(t *testing.T, m *Msg) {
	out := make([]byte, 2*MaxMessageSize)
	n, err := BuildForward(out, m, testForward, testSrc, nil)
	switch {
	case errors.Is(err, ErrTooManyHops), errors.Is(err, ErrLoopDetected):
	case err != nil:
		t.Fatalf("BuildForward: %v", err)
	default:
		var f Msg
		if err := Parse(out[:n], &f); err != nil {
			if limitErr(err) {
				break
			}
			t.Fatalf("forwarded request does not parse: %v\n%q", err, out[:n])
		}
		if f.Method != m.Method || f.CSeq != m.CSeq || f.NVia != m.NVia+1 ||
			!bytes.Equal(f.B(f.CallID), m.B(m.CallID)) || !bytes.Equal(f.B(f.Body), m.B(m.Body)) {
			t.Fatalf("forwarded request differs:\n%q\nfrom\n%q", out[:n], m.Buf()[:m.End])
		}
		for i := 0; i < m.NVia; i++ {
			if !bytes.Equal(f.B(f.Vias[i+1].Branch), m.B(m.Vias[i].Branch)) {
				t.Fatalf("Via %d branch changed on forward", i)
			}
		}
		if want := m.MaxForwards - 1; m.MaxForwards < 0 && f.MaxForwards != 70 || m.MaxForwards > 0 && f.MaxForwards != want {
			t.Fatalf("Max-Forwards %d forwarded as %d", m.MaxForwards, f.MaxForwards)
		}
	}
	n, err = BuildResponse(out, m, 500, "Server Internal Error", testSrc, &ResponseOptions{Key: &testKey})
	if err != nil {
		t.Fatalf("BuildResponse: %v", err)
	}
	var r Msg
	if err := Parse(out[:n], &r); err != nil {
		if limitErr(err) {
			return
		}
		t.Fatalf("response does not parse: %v\n%q", err, out[:n])
	}
	if r.IsRequest || r.StatusCode != 500 || r.CSeq != m.CSeq || r.NVia != m.NVia || !bytes.Equal(r.B(r.CallID), m.B(m.CallID)) {
		t.Fatalf("response differs from its request:\n%q", out[:n])
	}
}

// checkSpans fails when any span Parse set reaches past m.End.
func checkSpans(t *testing.T, m *Msg) {
	t.Helper()
	in := func(what string, s Span) {
		if s.End() > m.End {
			t.Fatalf("%s span [%d,%d) outside message end %d", what, s.Off, s.End(), m.End)
		}
	}
	uri := func(what string, u *URI) {
		for _, s := range []Span{u.Raw, u.SchemeSpan, u.User, u.Password, u.Host, u.Params,
			u.Transport, u.MAddr, u.UserParam, u.TTL, u.MethodPar, u.Headers} {
			in(what, s)
		}
	}
	na := func(what string, a *NameAddr) {
		for _, s := range []Span{a.Value, a.Display, a.Params, a.Tag} {
			in(what, s)
		}
		uri(what, &a.URI)
	}
	in("method", m.MethodSpan)
	in("reason", m.Reason)
	uri("Request-URI", &m.RURI)
	for i := 0; i < m.NHeaders; i++ {
		h := &m.Headers[i]
		in("header name", h.Name)
		in("header value", h.Value)
		in("header line", h.Line)
	}
	for i := 0; i < m.NVia; i++ {
		v := &m.Vias[i]
		for _, s := range []Span{v.Value, v.Transport, v.Host, v.Params, v.Branch, v.Received, v.RPort, v.MAddr} {
			in("Via", s)
		}
		if int(v.Header) >= m.NHeaders {
			t.Fatalf("Via header index %d >= %d", v.Header, m.NHeaders)
		}
	}
	na("From", &m.From)
	na("To", &m.To)
	for i := 0; i < m.NContact; i++ {
		na("Contact", &m.Contacts[i])
	}
	for i := 0; i < m.NRoute; i++ {
		na("Route", &m.Routes[i])
	}
	for i := 0; i < m.NRecordRoute; i++ {
		na("Record-Route", &m.RecordRoutes[i])
	}
	in("Call-ID", m.CallID)
	in("CSeq method", m.CSeqSpan)
	in("Content-Type", m.ContentType)
	in("body", m.Body)
}

// FuzzViaList checks that parsing a Via line in one pass (parseVia finding
// each value's end itself) agrees with splitting the line on commas first
// (listElemEnd, as for the other lists) and parsing each value alone.
func FuzzViaList(f *testing.F) {
	for _, s := range []string{"SIP/2.0/UDP h;branch=z9hG4bK1, SIP/2.0/TCP [2001:db8::1]:5061;rport",
		`SIP/2.0/UDP h;x="a,b";branch=1 ,SIP / 2.0 / UDP h2 : 5060`, "SIP/2.0/UDP h;x=<a,b>", "SIP/2.0/UDP h,,", "SIP/2.0/UDP h ;;"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		if len(data) == 0 || len(data) > 4000 {
			return
		}
		var one Msg
		one.reset(data)
		errOne := one.parseList(HdrVia, Span{}, Span{}, 0, len(data))

		var two Msg
		two.reset(data)
		okTwo := true
		for p := 0; okTwo; {
			q := listElemEnd(data, p, len(data))
			if q < 0 || trimWS(data, p, q) == p || two.NVia >= MaxVias {
				okTwo = false
				break
			}
			ve := trimWS(data, p, q)
			if end, ok := two.parseVia(p, ve, two.NHeaders); !ok || end != ve {
				okTwo = false
				break
			}
			two.NHeaders++
			if q == len(data) {
				break
			}
			if p = skipWS(data, q+1, len(data)); p >= len(data) {
				okTwo = false
			}
		}
		if (errOne == nil) != okTwo {
			t.Fatalf("%q: one pass err %v, split first ok %v", data, errOne, okTwo)
		}
		if errOne != nil {
			return
		}
		if one.NVia != two.NVia {
			t.Fatalf("%q: %d Vias vs %d", data, one.NVia, two.NVia)
		}
		for i := 0; i < one.NVia; i++ {
			a, b := one.Vias[i], two.Vias[i]
			if a != b {
				t.Fatalf("%q: Via %d differs:\n%+v\n%+v", data, i, a, b)
			}
		}
	})
}
