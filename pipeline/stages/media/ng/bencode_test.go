package ng

import (
	"bytes"
	"testing"
)

func TestEncode(t *testing.T) {
	var e Enc
	e.Reset([]byte("c1 "))
	e.Dict()
	e.KS("command", "offer")
	e.KV("sdp", []byte("v=0\r\n"))
	e.Str("flags")
	e.List()
	e.Str("trust-address")
	e.End()
	e.Str("delete-delay")
	e.Int(-3)
	e.End()
	want := "c1 d7:command5:offer3:sdp5:v=0\r\n5:flagsl13:trust-addresse12:delete-delayi-3ee"
	if string(e.B) != want {
		t.Fatalf("got  %q\nwant %q", e.B, want)
	}
}

func TestEncodeAllocatesNothing(t *testing.T) {
	e := Enc{B: make([]byte, 0, 4096)}
	sdp := bytes.Repeat([]byte("a=x\r\n"), 100)
	if a := testing.AllocsPerRun(100, func() {
		e.Reset([]byte("cookie "))
		e.Dict()
		e.KS("command", "offer")
		e.KV("call-id", []byte("abc@host"))
		e.KV("sdp", sdp)
		e.Str("replace")
		e.List()
		e.Str("origin")
		e.End()
		e.Str("n")
		e.Int(1234567)
		e.End()
	}); a != 0 {
		t.Errorf("encoding allocates %v times", a)
	}
}

func TestDecode(t *testing.T) {
	d := NewDecoded(64)
	in := []byte("d6:result2:ok3:sdp5:v=0\r\n6:totalsd3:RTPd7:packetsi42eee5:callsl1:a2:bbee")
	if err := d.Decode(in); err != nil {
		t.Fatal(err)
	}
	if res, _ := Result(d); string(res) != "ok" {
		t.Errorf("result %q", res)
	}
	if s := d.Str(0, "sdp"); string(s) != "v=0\r\n" {
		t.Errorf("sdp %q", s)
	}
	if n := d.Int(d.Get(d.Get(d.Get(0, "totals"), "RTP"), "packets")); n != 42 {
		t.Errorf("packets %d", n)
	}
	var calls []string
	d.Elems(d.Get(0, "calls"), func(i int) bool { calls = append(calls, string(d.Bytes(i))); return true })
	if len(calls) != 2 || calls[0] != "a" || calls[1] != "bb" {
		t.Errorf("calls %q", calls)
	}
	if d.Get(0, "absent") != -1 || d.Str(0, "totals") != nil {
		t.Error("absent key or wrong kind found")
	}
	if a := testing.AllocsPerRun(100, func() { d.Decode(in); d.Str(0, "sdp") }); a != 0 {
		t.Errorf("decoding allocates %v times", a)
	}
}

func TestDecodeRejects(t *testing.T) {
	deep := bytes.Repeat([]byte("l"), MaxDepth+1)
	deep = append(deep, bytes.Repeat([]byte("e"), MaxDepth+1)...)
	for _, tc := range []struct {
		in   string
		want error
	}{
		{"", ErrSyntax},
		{"d", ErrSyntax},
		{"e", ErrSyntax},
		{"d3:abce", ErrSyntax},     // key without value
		{"di1e1:ae", ErrSyntax},    // integer key
		{"dd1:aee1:be", ErrSyntax}, // dictionary key
		{"5:abc", ErrSyntax},       // string past the end
		{"99999999999999999999:a", ErrSyntax},
		{"ie", ErrSyntax},
		{"i12", ErrSyntax},
		{"i-e", ErrSyntax},
		{"i03e", ErrSyntax}, // not canonical: would not re-encode the same
		{"i-0e", ErrSyntax},
		{"01:a", ErrSyntax},
		{"x", ErrSyntax},
		{"1:ab", ErrTrailing},
		{"le1:a", ErrTrailing},
		{string(deep), ErrTooDeep},
	} {
		d := NewDecoded(64)
		if err := d.Decode([]byte(tc.in)); err != tc.want {
			t.Errorf("Decode(%q) = %v, want %v", tc.in, err, tc.want)
		}
	}
	d := NewDecoded(2)
	if err := d.Decode([]byte("l1:a1:b1:ce")); err != ErrTooLarge {
		t.Errorf("over the token table: %v, want ErrTooLarge", err)
	}
}

// FuzzDecode: whatever a relay (or anyone spoofing one) sends, decoding
// ends with a value or an error, never a panic, and what decodes
// re-encodes to the same bytes.
func FuzzDecode(f *testing.F) {
	for _, s := range []string{"d6:result4:ponge", "d6:result2:ok3:sdp3:v=0e", "li1ei-2e0:e", "de", "le", "4:spam"} {
		f.Add([]byte(s))
	}
	d := NewDecoded(256)
	f.Fuzz(func(t *testing.T, b []byte) {
		if d.Decode(b) != nil {
			return
		}
		var e Enc
		reencode(&e, d, 0)
		if !bytes.Equal(e.B, b) {
			t.Fatalf("decoded %q re-encodes as %q", b, e.B)
		}
	})
}

// reencode writes token i (and its subtree) back with Enc.
func reencode(e *Enc, d *Decoded, i int) {
	switch d.Toks[i].Kind {
	case KString:
		e.Bytes(d.Bytes(i))
	case KInt:
		e.B = append(e.B, 'i')
		e.B = append(e.B, d.Bytes(i)...)
		e.B = append(e.B, 'e')
	case KList, KDict:
		if d.Toks[i].Kind == KList {
			e.List()
		} else {
			e.Dict()
		}
		d.Elems(i, func(j int) bool { reencode(e, d, j); return true })
		e.End()
	}
}
