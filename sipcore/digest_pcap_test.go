package sipcore

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"

	"sipedge/sipcore/shareddata"
)

// digestHeaderValues returns the values of every Authorization and
// Proxy-Authorization line in a capture, found by scanning the raw file: the
// SIP in these captures is unfragmented UDP text, so no packet decoding (and
// no dependency on the parser) is needed.
func digestHeaderValues(data []byte) (vals [][]byte) {
	for _, name := range []string{"\r\nAuthorization:", "\r\nProxy-Authorization:"} {
		rest := data
		for {
			i := bytes.Index(rest, []byte(name))
			if i < 0 {
				break
			}
			rest = rest[i+len(name):]
			end := bytes.Index(rest, []byte("\r\n"))
			if end < 0 {
				break
			}
			vals = append(vals, rest[:end])
			rest = rest[end:]
		}
	}
	return vals
}

// TestDigestRealCaptures parses every credential real phones sent in the
// shared captures (Zoiper, Linphone, Nero SIPPS). Their passwords are
// unknown, so the test checks that each parses, with the fields they show.
func TestDigestRealCaptures(t *testing.T) {
	dir := shareddata.Dir(t, "pcaps")
	tests := []struct {
		file  string
		count int
		qop   Qop
	}{
		{"register-digest-qop-cisco-cme.pcapng", 2, QopAuth},
		{"register-digest-unregister-asterisk.pcapng", 3, QopNone},
		{"options-invite-401-488-freepbx.pcapng", 1, QopAuth},
		{"aaa-register-401-invite-407-cancel.pcap", 12, QopNone},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			data, err := os.ReadFile(filepath.Join(dir, tt.file))
			if err != nil {
				t.Fatal(err)
			}
			vals := digestHeaderValues(data)
			if len(vals) != tt.count {
				t.Fatalf("found %d credentials, want %d", len(vals), tt.count)
			}
			for _, v := range vals {
				var c Credentials
				if err := ParseCredentials(v, &c); err != nil {
					t.Fatalf("ParseCredentials(%q): %v", v, err)
				}
				if c.Algorithm != AlgMD5 || c.Qop != tt.qop || len(c.Response) != 32 ||
					len(c.Username) == 0 || len(c.Realm) == 0 || len(c.Nonce) == 0 || len(c.URI) == 0 {
					t.Fatalf("%q parsed to %+v", v, c)
				}
				if c.Qop == QopAuth && (c.NCValue == 0 || len(c.Cnonce) == 0) {
					t.Fatalf("%q: qop=auth without nc or cnonce: %+v", v, c)
				}
				// A wrong HA1 must not verify (the real one is unknown).
				if c.Verify([]byte("REGISTER"), []byte(HA1(AlgMD5, string(c.Username), string(c.Realm), "guess"))) {
					t.Fatalf("%q verified with a guessed password", v)
				}
			}
		})
	}
}
