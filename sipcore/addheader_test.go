package sipcore

import (
	"bytes"
	"testing"
)

// AddHeader leaves m as a fresh Parse of the longer message would: every
// header, the body and the end in their places.
func TestAddHeader(t *testing.T) {
	msg := string(fixtureINVITE)
	buf := append(make([]byte, 0, len(msg)+100), msg...)
	var m Msg
	if err := Parse(buf, &m); err != nil {
		t.Fatal(err)
	}
	body := string(m.B(m.Body))
	out, ok := m.AddHeader("P-Asserted-Identity", []byte("<sip:"), []byte("alice"), []byte("@example.com>"))
	if !ok {
		t.Fatal("AddHeader refused a line that fits")
	}
	var fresh Msg
	again := append([]byte(nil), out...)
	if err := Parse(again, &fresh); err != nil {
		t.Fatalf("the longer message does not parse: %v\n%s", err, out)
	}
	if m.NHeaders != fresh.NHeaders || m.Body != fresh.Body || m.End != fresh.End || string(m.B(m.Body)) != body {
		t.Fatalf("after AddHeader: %d headers, body %+v, end %d; a fresh parse: %d, %+v, %d", m.NHeaders, m.Body, m.End, fresh.NHeaders, fresh.Body, fresh.End)
	}
	for i := 0; i < m.NHeaders; i++ {
		if m.Headers[i] != fresh.Headers[i] {
			t.Fatalf("header %d: %+v, a fresh parse %+v", i, m.Headers[i], fresh.Headers[i])
		}
	}
	if i := m.Find("P-Asserted-Identity", 0); i < 0 || string(m.B(m.Headers[i].Value)) != "<sip:alice@example.com>" {
		t.Fatalf("the new header is not found with its value")
	}
	if !bytes.HasSuffix(out, []byte(body)) {
		t.Fatalf("the body moved wrong")
	}
	// Refused: no room, a known header, a line break in the value.
	for _, tc := range []struct {
		name  string
		parts [][]byte
		room  int
	}{
		{"P-Asserted-Identity", [][]byte{[]byte("<sip:a@b>")}, 0},
		{"Via", [][]byte{[]byte("SIP/2.0/UDP h")}, 100},
		{"X-Bad", [][]byte{[]byte("a\r\nVia: evil")}, 100},
	} {
		b := append(make([]byte, 0, len(msg)+tc.room), msg...)
		var m2 Msg
		Parse(b, &m2)
		if _, ok := m2.AddHeader(tc.name, tc.parts...); ok {
			t.Errorf("AddHeader(%q, %q) with %d bytes of room accepted", tc.name, tc.parts, tc.room)
		}
	}
	a := testing.AllocsPerRun(100, func() {
		b := buf[:copy(buf[:len(msg)], msg)]
		Parse(b, &m)
		m.AddHeader("P-Asserted-Identity", []byte("<sip:"), []byte("alice"), []byte("@example.com>"))
	})
	if a != 0 {
		t.Errorf("AddHeader allocates %v times", a)
	}
}

// FuzzAddHeader: on any message Parse accepts, AddHeader either refuses
// or leaves a message that parses again to the same headers and body.
func FuzzAddHeader(f *testing.F) {
	f.Add(fixtureINVITE, []byte("<sip:alice@example.com>"))
	f.Add(fixture200OK, []byte(""))
	f.Fuzz(func(t *testing.T, data, value []byte) {
		buf := append(make([]byte, 0, len(data)+len(value)+64), data...)
		var m Msg
		if Parse(buf, &m) != nil {
			return
		}
		out, ok := m.AddHeader("X-Asserted", value)
		if !ok {
			return
		}
		var fresh Msg
		if err := Parse(append([]byte(nil), out...), &fresh); err != nil {
			t.Fatalf("AddHeader made a message that does not parse: %v\n%q", err, out)
		}
		if fresh.NHeaders != m.NHeaders || fresh.Body != m.Body || fresh.End != m.End {
			t.Fatalf("AddHeader: %d headers, body %+v, end %d; a fresh parse %d, %+v, %d\n%q",
				m.NHeaders, m.Body, m.End, fresh.NHeaders, fresh.Body, fresh.End, out)
		}
	})
}
