package sipcore

import "testing"

const regMsg = "REGISTER sip:example.com SIP/2.0\r\n" +
	"Via: SIP/2.0/UDP 192.0.2.10:5060;branch=z9hG4bK1\r\n" +
	"Max-Forwards: 70\r\n" +
	"From: <sip:alice@example.com>;tag=1\r\n" +
	"To: <sip:alice@example.com>\r\n" +
	"Call-ID: c1@192.0.2.10\r\n" +
	"CSeq: 2 REGISTER\r\n" +
	"Path: <sip:edge1.example.net;lr>\r\n" +
	"Contact: <sip:alice@192.0.2.10:5060>;q=0.7;expires=120;+sip.instance=\"<urn:uuid:00000000-0000-1000-8000-000A95A0E128>\";reg-id=1, <sip:alice@192.0.2.11>\r\n" +
	"Expires: 3600\r\n" +
	"Content-Length: 0\r\n\r\n"

func TestContactParams(t *testing.T) {
	var m Msg
	if err := Parse([]byte(regMsg), &m); err != nil {
		t.Fatal(err)
	}
	if err := m.Validate(); err != nil {
		t.Fatal(err)
	}
	var cp ContactParams
	if err := m.ParseContactParams(m.Contacts[0].Params, &cp); err != nil {
		t.Fatal(err)
	}
	if cp.Expires != 120 || cp.Q != 700 || cp.RegID != 1 || string(m.B(cp.Instance)) != "<urn:uuid:00000000-0000-1000-8000-000A95A0E128>" {
		t.Fatalf("got %+v instance %q", cp, m.B(cp.Instance))
	}
	if err := m.ParseContactParams(m.Contacts[1].Params, &cp); err != nil || cp.Expires != -1 || cp.Q != -1 || cp.RegID != -1 || !cp.Instance.Empty() {
		t.Fatalf("second contact: %+v %v", cp, err)
	}
	if v, ok := m.ExpiresValue(); !ok || v != 3600 {
		t.Fatalf("Expires = %d %v", v, ok)
	}
	if i := m.NextPath(0); i < 0 || string(m.B(m.Headers[i].Value)) != "<sip:edge1.example.net;lr>" {
		t.Fatalf("Path at %d", i)
	}
	if allocs := testing.AllocsPerRun(100, func() {
		_ = m.ParseContactParams(m.Contacts[0].Params, &cp)
		_, _ = m.ExpiresValue()
	}); allocs != 0 {
		t.Fatalf("%v allocations", allocs)
	}
}

func TestContactParamsBad(t *testing.T) {
	for _, params := range []string{"expires=abc", "q=2", "q=0.1234", "q=", "+sip.instance=<x>", "reg-id=0", "reg-id=x", "+sip.instance=\"<x>"} {
		msg := "REGISTER sip:example.com SIP/2.0\r\nVia: SIP/2.0/UDP 192.0.2.10;branch=z9hG4bK1\r\nFrom: <sip:a@example.com>;tag=1\r\nTo: <sip:a@example.com>\r\nCall-ID: x\r\nCSeq: 1 REGISTER\r\nContact: <sip:a@192.0.2.10>;" + params + "\r\nContent-Length: 0\r\n\r\n"
		var m Msg
		if err := Parse([]byte(msg), &m); err != nil {
			continue // the parser refused it already: also an error
		}
		if err := m.ParseAddress(&m.Contacts[0]); err != nil {
			continue
		}
		var cp ContactParams
		if err := m.ParseContactParams(m.Contacts[0].Params, &cp); err == nil {
			t.Errorf("%q: accepted as %+v", params, cp)
		}
	}
}

func TestDeltaAndQ(t *testing.T) {
	for in, want := range map[string]int64{"0": 0, "3600": 3600, "99999999999999": maxDelta} {
		if v, ok := ParseDeltaSeconds([]byte(in)); !ok || v != want {
			t.Errorf("delta %q = %d %v", in, v, ok)
		}
	}
	for in, want := range map[string]int{"0": 0, "1": 1000, "0.5": 500, "0.123": 123, "1.000": 1000, "0.": 0} {
		if v, ok := ParseQValue([]byte(in)); !ok || v != want {
			t.Errorf("q %q = %d %v", in, v, ok)
		}
	}
	for _, in := range []string{"", "-1", "1.5", "2", "0.1234", "a"} {
		if _, ok := ParseQValue([]byte(in)); ok {
			t.Errorf("q %q accepted", in)
		}
	}
}

// FuzzContactParams feeds any Contact value of a REGISTER to the
// registrar's readers: they must not panic, and what they accept must be
// in range.
func FuzzContactParams(f *testing.F) {
	for _, s := range []string{
		`<sip:a@192.0.2.1>;expires=60;q=0.5`,
		`<sip:a@192.0.2.1>;+sip.instance="<urn:uuid:1>";reg-id=2`,
		`sip:a@h;expires=`, `<sip:a@h>;q=1.000;expires=99999999999999`,
		`<sip:a@h>;+sip.instance="<x\"y>";a=b;;c`,
	} {
		f.Add(s, "3600")
	}
	f.Fuzz(func(t *testing.T, contact, expires string) {
		msg := "REGISTER sip:example.com SIP/2.0\r\nVia: SIP/2.0/UDP 192.0.2.10;branch=z9hG4bK1\r\nFrom: <sip:a@example.com>;tag=1\r\nTo: <sip:a@example.com>\r\nCall-ID: x\r\nCSeq: 1 REGISTER\r\nContact: " +
			contact + "\r\nExpires: " + expires + "\r\nContent-Length: 0\r\n\r\n"
		var m Msg
		if Parse([]byte(msg), &m) != nil {
			return
		}
		if v, ok := m.ExpiresValue(); ok && (v < -1 || v > maxDelta) {
			t.Fatalf("Expires %d", v)
		}
		for i := 0; i < m.NContact; i++ {
			if m.ParseAddress(&m.Contacts[i]) != nil {
				continue
			}
			var cp ContactParams
			if m.ParseContactParams(m.Contacts[i].Params, &cp) != nil {
				continue
			}
			if cp.Q > 1000 || cp.Q < -1 || cp.Expires > maxDelta || cp.Instance.End() > len(m.Buf()) {
				t.Fatalf("%q: %+v", contact, cp)
			}
		}
	})
}
