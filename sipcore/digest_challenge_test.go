package sipcore

import (
	"strings"
	"testing"
	"time"
)

func TestAppendChallenge(t *testing.T) {
	tests := []struct {
		name string
		c    Challenge
		want string
	}{
		{"401 MD5", Challenge{Realm: []byte("sip.example.org"), Nonce: []byte("abc"), Algorithm: AlgMD5},
			"WWW-Authenticate: Digest realm=\"sip.example.org\", nonce=\"abc\", algorithm=MD5, qop=\"auth\"\r\n"},
		{"407 SHA-256 stale opaque userhash", Challenge{Proxy: true, Realm: []byte("r"), Nonce: []byte("n"), Opaque: []byte("o"), Algorithm: AlgSHA256, Stale: true, UserHash: true},
			"Proxy-Authenticate: Digest realm=\"r\", nonce=\"n\", algorithm=SHA-256, qop=\"auth\", stale=true, opaque=\"o\", userhash=true\r\n"},
		{"SHA-512-256-sess", Challenge{Realm: []byte("r"), Nonce: []byte("n"), Algorithm: AlgSHA512_256Sess},
			"WWW-Authenticate: Digest realm=\"r\", nonce=\"n\", algorithm=SHA-512-256-sess, qop=\"auth\"\r\n"},
		{"escapes and control characters", Challenge{Realm: []byte("a\"b\\c\r\nVia: evil"), Nonce: []byte("n"), Algorithm: AlgMD5},
			"WWW-Authenticate: Digest realm=\"a\\\"b\\\\cVia: evil\", nonce=\"n\", algorithm=MD5, qop=\"auth\"\r\n"},
		{"unknown algorithm writes nothing", Challenge{Realm: []byte("r"), Nonce: []byte("n"), Algorithm: AlgUnknown}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := AppendChallenge([]byte("prefix|"), &tt.c)
			if string(got) != "prefix|"+tt.want {
				t.Fatalf("got  %q\nwant %q", got, "prefix|"+tt.want)
			}
		})
	}
}

// TestChallengeRoundTrip issues challenges the RFC 8760 way (SHA-256 first,
// then MD5, same nonce), answers the MD5 one as a client would, and checks
// the answer with ParseCredentials, NonceKey.Check and Verify.
func TestChallengeRoundTrip(t *testing.T) {
	k := NewNonceKey(nonceTestSecret)
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	realm := []byte("sip.example.org")
	ch := Challenge{Realm: realm, Nonce: k.Append(nil, now, realm, testBind), Algorithm: AlgSHA256}
	out := AppendChallenge(nil, &ch)
	ch.Algorithm = AlgMD5
	out = AppendChallenge(out, &ch)
	lines := strings.Split(strings.TrimSuffix(string(out), "\r\n"), "\r\n")
	if len(lines) != 2 || !strings.Contains(lines[0], "algorithm=SHA-256") || !strings.Contains(lines[1], "algorithm=MD5") {
		t.Fatalf("challenge lines %q", lines)
	}
	nonce := digestBetween(t, lines[1], `nonce="`, `"`)
	if nonce != string(ch.Nonce) {
		t.Fatalf("nonce in header %q, issued %q", nonce, ch.Nonce)
	}
	uri := "sip:sip.example.org;transport=udp"
	resp := digestRefResponse(AlgMD5, "alice", string(realm), "wonderland", "REGISTER", uri, nonce, "00000001", "c1", "auth")
	v := `Digest username="alice", realm="sip.example.org", nonce="` + nonce + `", uri="` + uri +
		`", response="` + resp + `", algorithm=MD5, cnonce="c1", qop=auth, nc=00000001`
	c := mustParseCredentials(t, v)
	if r := k.Check(c.Nonce, c.Realm, testBind, now.Add(time.Second), time.Minute); r != NonceValid {
		t.Fatalf("nonce check: %v", r)
	}
	if !c.Verify([]byte("REGISTER"), []byte(HA1(AlgMD5, "alice", "sip.example.org", "wonderland"))) {
		t.Fatalf("Verify = false")
	}
}

func digestBetween(t *testing.T, s, from, to string) string {
	t.Helper()
	i := strings.Index(s, from)
	if i < 0 {
		t.Fatalf("%q not in %q", from, s)
	}
	s = s[i+len(from):]
	j := strings.Index(s, to)
	if j < 0 {
		t.Fatalf("%q not in %q", to, s)
	}
	return s[:j]
}

func TestAppendChallengeZeroAllocs(t *testing.T) {
	c := Challenge{Proxy: true, Realm: []byte("sip.example.org"), Nonce: []byte(strings.Repeat("n", NonceLen)),
		Opaque: []byte("opaque"), Algorithm: AlgSHA256, Stale: true}
	buf := make([]byte, 0, 512)
	if a := testing.AllocsPerRun(200, func() {
		buf = AppendChallenge(buf[:0], &c)
	}); a != 0 {
		t.Fatalf("AppendChallenge: %v allocs per run", a)
	}
	if !strings.HasSuffix(string(buf), "\r\n") {
		t.Fatalf("no CRLF: %q", buf)
	}
}
