package sipcore

import (
	"strings"
	"testing"
)

// TestFastNames checks the word-compare table against headerKind, in lower,
// upper and mixed case, and that near misses fall through to the slow path.
func TestFastNames(t *testing.T) {
	n := 0
	for _, list := range fastNames {
		for _, f := range list {
			n++
			name := strings.TrimRight(string([]byte{byte(f.p0), byte(f.p0 >> 8), byte(f.p0 >> 16),
				byte(f.p0 >> 24), byte(f.p0 >> 32), byte(f.p0 >> 40), byte(f.p0 >> 48), byte(f.p0 >> 56),
				byte(f.p1), byte(f.p1 >> 8), byte(f.p1 >> 16), byte(f.p1 >> 24), byte(f.p1 >> 32),
				byte(f.p1 >> 40), byte(f.p1 >> 48), byte(f.p1 >> 56)}), "\x00")
			name = strings.TrimSuffix(name, ":")
			if f.kind != headerKind(name) {
				t.Errorf("%q: fast kind %d, headerKind %d", name, f.kind, headerKind(name))
			}
			for _, v := range []string{name, strings.ToUpper(name), strings.ToUpper(name[:1]) + name[1:]} {
				pad := v + ": x" + strings.Repeat(" ", 16)
				if got, k := fastNameAt([]byte(pad), 0); got != len(name) || k != f.kind {
					t.Errorf("fastNameAt(%q) = %d, %d; want %d, %d", v, got, k, len(name), f.kind)
				}
				// A space before the colon, a longer name, and a control
				// byte that |0x20 would turn into a letter or a colon.
				for _, miss := range []string{v + " :", v + "x:", strings.Replace(v+":", ":", "\x1a", 1)} {
					if got, _ := fastNameAt([]byte(miss+strings.Repeat(" ", 16)), 0); got != 0 {
						t.Errorf("fastNameAt(%q) = %d, want 0 (slow path)", miss, got)
					}
				}
			}
		}
	}
	if n < 20 {
		t.Fatalf("only %d fast names", n)
	}
}

// TestVersionControlBytes: a control byte whose value|0x20 is '/', '2', '.'
// or '0' is not the SIP version (eqLower once folded every byte).
func TestVersionControlBytes(t *testing.T) {
	for _, v := range []string{"SIP\x0f2.0", "SIP/\x122.0", "SIP/2\x0e0", "SIP/2.\x10"} {
		var m Msg
		if err := Parse(msg("INVITE sip:bob@example.com "+v), &m); err == nil {
			t.Errorf("request line version %q accepted", v)
		}
		resp := v + " 200 OK\r\nVia: SIP/2.0/UDP h\r\nFrom: <sip:a@h>;tag=1\r\nTo: <sip:b@h>\r\n" +
			"Call-ID: c@h\r\nCSeq: 1 INVITE\r\n\r\n"
		if err := Parse([]byte("SIP/2.0"+resp[len(v):]), &m); err != nil {
			t.Fatalf("control response does not parse: %v", err)
		}
		if err := Parse([]byte(resp), &m); err == nil {
			t.Errorf("status line version %q accepted", v)
		}
	}
	if !eqLower("Call-ID", "call-id") || eqLower("Call\rID", "call-id") {
		t.Error("eqLower folds the wrong bytes")
	}
}

// TestHostCharsInGenValue: nextParam skips a value's host characters with
// scanHost before its table loop, which is only right while every host
// character is a generic-param value character.
func TestHostCharsInGenValue(t *testing.T) {
	for c := 0; c < 256; c++ {
		if charClass[c]&cHost != 0 && charClass[c]&cGenVal == 0 {
			t.Errorf("%q is a host character but not a gen-value one", rune(c))
		}
	}
	for _, v := range []string{"SIP/2.0/", "sip/2.0/", "Sip/2.0/"} {
		if !viaPrefix([]byte(v)) {
			t.Errorf("viaPrefix(%q) = false", v)
		}
	}
	for _, v := range []string{"SIP/2.1/", "SIP/2.0 ", "SIP\x0f2.0/", "SI\x10/2.0/", "XIP/2.0/"} {
		if viaPrefix([]byte(v)) {
			t.Errorf("viaPrefix(%q) = true", v)
		}
	}
}
