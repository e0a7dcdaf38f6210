package sipcore

import (
	"errors"
	"testing"
)

// TestLazySplit checks what Parse leaves for later (RFC 3261 16.3) and that
// ParseAddress fills it in.
func TestLazySplit(t *testing.T) {
	var m Msg
	if err := Parse(append([]byte(nil), fixtureINVITE...), &m); err != nil {
		t.Fatal(err)
	}
	eq(t, "From tag (eager)", m.B(m.From.Tag), "1928301774")
	eq(t, "From params (eager)", m.B(m.From.Params), "tag=1928301774")
	is(t, "From parsed", m.From.Parsed, false)
	is(t, "From display (lazy)", m.From.Display.Len, uint16(0))
	is(t, "From URI (lazy)", m.From.URI.Raw.Len, uint16(0))
	is(t, "Contact parsed", m.Contacts[0].Parsed, false)
	eq(t, "Contact value", m.B(m.Contacts[0].Value), "<sip:alice@192.0.2.101:5062;transport=udp>")
	is(t, "Contact header", m.Headers[m.Contacts[0].Header].Kind, HdrContact)
	is(t, "Record-Route parsed", m.RecordRoutes[0].Parsed, false)

	if err := m.ParseAddress(&m.From); err != nil {
		t.Fatal(err)
	}
	is(t, "From parsed", m.From.Parsed, true)
	eq(t, "From display", m.B(m.From.Display), "Alice")
	eq(t, "From URI", m.B(m.From.URI.Raw), "sip:alice@atlanta.example.com")
	eq(t, "From tag kept", m.B(m.From.Tag), "1928301774")
	is(t, "From header kept", m.Headers[m.From.Header].Kind, HdrFrom)
	if err := m.ParseAddress(&m.Contacts[0]); err != nil {
		t.Fatal(err)
	}
	eq(t, "Contact transport", m.B(m.Contacts[0].URI.Transport), "udp")
	is(t, "Contact header kept", m.Headers[m.Contacts[0].Header].Kind, HdrContact)

	var zero NameAddr
	if err := m.ParseAddress(&zero); !errors.Is(err, ErrBadURI) {
		t.Errorf("ParseAddress(zero NameAddr) = %v, want %v", err, ErrBadURI)
	}
}

// TestLazyEagerTag checks the eager tag walk on the shapes where a naive
// search for ";tag=" would go wrong.
func TestLazyEagerTag(t *testing.T) {
	for _, c := range []struct{ to, tag, params string }{
		{`<sip:b@h;tag=uri>;tag=hdr`, "hdr", "tag=hdr"},
		{`"x;tag=q" <sip:b@h>;tag=hdr`, "hdr", "tag=hdr"},
		{`"a>b" <sip:b@h>`, "", ""},
		{`sip:b@h;tag=bare;x=1`, "bare", "tag=bare;x=1"},
		{`sip:b@h;x="a;tag=no";TAG=yes`, "yes", `x="a;tag=no";TAG=yes`},
		{`Bob <sip:b@h> ; tag = spaced`, "spaced", "tag = spaced"},
	} {
		var m Msg
		if err := Parse(msg(invite, "To: "+c.to), &m); err != nil {
			t.Errorf("To: %s: %v", c.to, err)
			continue
		}
		eq(t, c.to+" tag", m.B(m.To.Tag), c.tag)
		eq(t, c.to+" params", m.B(m.To.Params), c.params)
		if err := m.Validate(); err != nil {
			t.Errorf("To: %s: Validate: %v", c.to, err)
		}
		eq(t, c.to+" tag after Validate", m.B(m.To.Tag), c.tag)
	}
}

// TestLazyFailedParseAddressKeepsTag: a To whose URI is malformed still
// has the tag a proxy reads, before and after ParseAddress fails.
func TestLazyFailedParseAddressKeepsTag(t *testing.T) {
	var m Msg
	if err := Parse(msg(invite, "To: < sip:b@h >;tag=t1"), &m); err != nil {
		t.Fatal(err)
	}
	err := m.ParseAddress(&m.To)
	var pe *ParseError
	if !errors.As(err, &pe) || pe.Kind != ErrBadTo || pe.Offset != int(m.To.Value.Off) {
		t.Fatalf("ParseAddress = %v, want %v at %d", err, ErrBadTo, m.To.Value.Off)
	}
	if st, _ := ResponseFor(&m, err); st != 400 {
		t.Errorf("ResponseFor = %d, want 400", st)
	}
	eq(t, "tag kept", m.B(m.To.Tag), "t1")
	is(t, "not parsed", m.To.Parsed, false)
	if err := m.Validate(); !errors.Is(err, ErrBadTo) {
		t.Errorf("Validate = %v, want %v", err, ErrBadTo)
	}
}

func TestAllocsLazy(t *testing.T) {
	for name, b := range map[string][]byte{"INVITE": fixtureINVITE, "200 OK": fixture200OK,
		"bad contact": msg(invite, "Contact: <sip:a@h>, <sip:b@>")} {
		buf := append([]byte(nil), b...)
		var m Msg
		allocs := testing.AllocsPerRun(100, func() {
			if err := Parse(buf, &m); err != nil {
				t.Fatal(err)
			}
			m.ParseAddress(&m.To)
			err := m.Validate()
			ResponseFor(&m, err)
		})
		if allocs != 0 {
			t.Errorf("%s: %v allocations per Parse+ParseAddress+Validate, want 0", name, allocs)
		}
	}
}

func benchValidate(b *testing.B, msg []byte) {
	buf := append([]byte(nil), msg...)
	var m Msg
	b.SetBytes(int64(len(buf)))
	b.ReportAllocs()
	for b.Loop() {
		if err := Parse(buf, &m); err != nil {
			b.Fatal(err)
		}
		if err := m.Validate(); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkParseValidateINVITE is Parse plus Validate: the cost of the
// old all-eager parse, for whoever needs every component.
func BenchmarkParseValidateINVITE(b *testing.B) { benchValidate(b, fixtureINVITE) }
