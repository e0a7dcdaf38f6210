package sipcore

import (
	"crypto/md5"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/hex"
	"errors"
	"hash"
	"strings"
	"testing"
)

// digestRefHash and digestRefResponse compute digests from the RFC 7616 3.4.1
// formulas with the streaming hash.Hash API, independently of the stack
// buffers Verify assembles, so that the two can be checked against each other.
func digestRefHash(alg Algorithm, s string) string {
	var h hash.Hash
	switch alg {
	case AlgMD5, AlgMD5Sess:
		h = md5.New()
	case AlgSHA256, AlgSHA256Sess:
		h = sha256.New()
	case AlgSHA512_256, AlgSHA512_256Sess:
		h = sha512.New512_256()
	}
	h.Write([]byte(s))
	return hex.EncodeToString(h.Sum(nil))
}

// digestRefResponse: HA1 = H(user:realm:pass), for -sess H(HA1:nonce:cnonce);
// HA2 = H(method:uri); response = H(HA1:nonce:nc:cnonce:qop:HA2), or
// H(HA1:nonce:HA2) when qop is empty.
func digestRefResponse(alg Algorithm, user, realm, pass, method, uri, nonce, nc, cnonce, qop string) string {
	ha1 := digestRefHash(alg, user+":"+realm+":"+pass)
	if alg.Sess() {
		ha1 = digestRefHash(alg, ha1+":"+nonce+":"+cnonce)
	}
	ha2 := digestRefHash(alg, method+":"+uri)
	if qop == "" {
		return digestRefHash(alg, ha1+":"+nonce+":"+ha2)
	}
	return digestRefHash(alg, ha1+":"+nonce+":"+nc+":"+cnonce+":"+qop+":"+ha2)
}

const (
	rfc7616Nonce  = "7ypf/xlj9XXwfDPEoM4URrv/xwf94BcCAzFZH4GiTo0v"
	rfc7616Cnonce = "f2/wE4q74E6zIJEtWaHKaf5wv/H5QzzpXusqGemxURZJ"
	rfc7616Opaque = "FQhe/qaU925kfnzjCev0ciny7QMkPqMAFRtzCUYo5tdS"
)

// rfc7616Header is the Authorization value of RFC 7616 3.9.1 for alg.
func rfc7616Header(alg, response string) string {
	return `Digest username="Mufasa",
       realm="http-auth@example.org",
       uri="/dir/index.html",
       algorithm=` + alg + `,
       nonce="` + rfc7616Nonce + `",
       nc=00000001,
       cnonce="` + rfc7616Cnonce + `",
       qop=auth,
       response="` + response + `",
       opaque="` + rfc7616Opaque + `"`
}

func mustParseCredentials(t *testing.T, v string) *Credentials {
	t.Helper()
	var c Credentials
	if err := ParseCredentials([]byte(v), &c); err != nil {
		t.Fatalf("ParseCredentials(%q): %v", v, err)
	}
	return &c
}

func TestDigestVectors(t *testing.T) {
	// SHA-512-256 values: RFC 7616 3.9.2 prints a userhash and response that
	// are not the hashes of its own inputs (erratum 4897), so the expected
	// values were computed from the 3.4 formulas with Python's hashlib and are
	// checked again below with crypto/sha512 by digestRefResponse. The -sess
	// values likewise (3.4.2: HA1 = H(H(user:realm:pass):nonce:cnonce)).
	jason := "J\u00e4s\u00f8n Doe"
	tests := []struct {
		name                  string
		alg                   Algorithm
		header                string
		user, realm, password string
		method, uri           string
		nonce, nc, cnonce     string
		qop                   string
		want                  string
	}{
		{
			name: "RFC 7616 3.9.1 MD5", alg: AlgMD5,
			header: rfc7616Header("MD5", "8ca523f5e9506fed4657c9700eebdbec"),
			user:   "Mufasa", realm: "http-auth@example.org", password: "Circle of Life",
			method: "GET", uri: "/dir/index.html", nonce: rfc7616Nonce, nc: "00000001", cnonce: rfc7616Cnonce, qop: "auth",
			want: "8ca523f5e9506fed4657c9700eebdbec",
		},
		{
			name: "RFC 7616 3.9.1 SHA-256", alg: AlgSHA256,
			header: rfc7616Header("SHA-256", "753927fa0e85d155564e2e272a28d1802ca10daf4496794697cf8db5856cb6c1"),
			user:   "Mufasa", realm: "http-auth@example.org", password: "Circle of Life",
			method: "GET", uri: "/dir/index.html", nonce: rfc7616Nonce, nc: "00000001", cnonce: rfc7616Cnonce, qop: "auth",
			want: "753927fa0e85d155564e2e272a28d1802ca10daf4496794697cf8db5856cb6c1",
		},
		{
			name: "RFC 2617 3.5 MD5 qop=auth", alg: AlgMD5,
			header: `Digest username="Mufasa", realm="testrealm@host.com", nonce="dcd98b7102dd2f0e8b11d0f600bfb0c093", uri="/dir/index.html", qop=auth, nc=00000001, cnonce="0a4f113b", response="6629fae49393a05397450978507c4ef1", opaque="5ccc069c403ebaf9f0171e9517f40e41"`,
			user:   "Mufasa", realm: "testrealm@host.com", password: "Circle Of Life",
			method: "GET", uri: "/dir/index.html", nonce: "dcd98b7102dd2f0e8b11d0f600bfb0c093", nc: "00000001", cnonce: "0a4f113b", qop: "auth",
			want: "6629fae49393a05397450978507c4ef1",
		},
		{
			// RFC 2069 form: no qop, nc or cnonce; response = H(HA1:nonce:HA2).
			name: "RFC 2069 no qop", alg: AlgMD5,
			header: `Digest username="Mufasa", realm="testrealm@host.com", nonce="dcd98b7102dd2f0e8b11d0f600bfb0c093", uri="/dir/index.html", response="670fd8c2df070c60b045671b8b24ff02"`,
			user:   "Mufasa", realm: "testrealm@host.com", password: "Circle Of Life",
			method: "GET", uri: "/dir/index.html", nonce: "dcd98b7102dd2f0e8b11d0f600bfb0c093",
			want: "670fd8c2df070c60b045671b8b24ff02",
		},
		{
			name: "RFC 7616 3.9.2 inputs SHA-512-256 userhash", alg: AlgSHA512_256,
			header: `Digest username="793263caabb707a56211940d90411ea4a575adeccb7e360aeb624ed06ece9b0b", realm="api@example.org", uri="/doe.json", algorithm=SHA-512-256, nonce="5TsQWLVdgBdmrQ0XsxbDODV+57QdFR34I9HAbC/RVvkK", nc=00000001, cnonce="NTg6RKcb9boFIAS3KrFK9BGeh+iDa/sm6jUMp2wds69v", qop=auth, response="3798d4131c277846293534c3edc11bd8a5e4cdcbff78b05db9d95eeb1cec68a5", opaque="HRPCssKJSGjCrkzDg8OhwpzCiGPChXYjwrI2QmXDnsOS", userhash=true`,
			user:   jason, realm: "api@example.org", password: "Secret, or not?",
			method: "GET", uri: "/doe.json", nonce: "5TsQWLVdgBdmrQ0XsxbDODV+57QdFR34I9HAbC/RVvkK", nc: "00000001", cnonce: "NTg6RKcb9boFIAS3KrFK9BGeh+iDa/sm6jUMp2wds69v", qop: "auth",
			want: "3798d4131c277846293534c3edc11bd8a5e4cdcbff78b05db9d95eeb1cec68a5",
		},
		{
			name: "MD5-sess", alg: AlgMD5Sess,
			header: rfc7616Header("MD5-sess", "e783283f46242139c486a698fec7211d"),
			user:   "Mufasa", realm: "http-auth@example.org", password: "Circle of Life",
			method: "GET", uri: "/dir/index.html", nonce: rfc7616Nonce, nc: "00000001", cnonce: rfc7616Cnonce, qop: "auth",
			want: "e783283f46242139c486a698fec7211d",
		},
		{
			name: "SHA-256-sess", alg: AlgSHA256Sess,
			header: rfc7616Header("sha-256-SESS", "2fd51b3a77ad75bad6afad6003e818d767133c46d9e2749e7f5232ae1ea3efd7"),
			user:   "Mufasa", realm: "http-auth@example.org", password: "Circle of Life",
			method: "GET", uri: "/dir/index.html", nonce: rfc7616Nonce, nc: "00000001", cnonce: rfc7616Cnonce, qop: "auth",
			want: "2fd51b3a77ad75bad6afad6003e818d767133c46d9e2749e7f5232ae1ea3efd7",
		},
		{
			name: "SHA-512-256-sess", alg: AlgSHA512_256Sess,
			header: rfc7616Header("SHA-512-256-sess", "3f2a34f923c38b0fb26dce2fdfc2ce326c23cecf86fbb1444f3e51fbbc2cb92e"),
			user:   "Mufasa", realm: "http-auth@example.org", password: "Circle of Life",
			method: "GET", uri: "/dir/index.html", nonce: rfc7616Nonce, nc: "00000001", cnonce: rfc7616Cnonce, qop: "auth",
			want: "3f2a34f923c38b0fb26dce2fdfc2ce326c23cecf86fbb1444f3e51fbbc2cb92e",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if ref := digestRefResponse(tt.alg, tt.user, tt.realm, tt.password, tt.method, tt.uri, tt.nonce, tt.nc, tt.cnonce, tt.qop); ref != tt.want {
				t.Fatalf("reference formula gives %s, vector says %s", ref, tt.want)
			}
			c := mustParseCredentials(t, tt.header)
			if c.Algorithm != tt.alg {
				t.Fatalf("algorithm %v, want %v", c.Algorithm, tt.alg)
			}
			if string(c.Response) != tt.want {
				t.Fatalf("response %q, want %q", c.Response, tt.want)
			}
			ha1 := HA1(tt.alg, tt.user, tt.realm, tt.password)
			if ha1 != digestRefHash(tt.alg, tt.user+":"+tt.realm+":"+tt.password) {
				t.Fatalf("HA1 %s differs from the reference", ha1)
			}
			if err := CheckHA1(tt.alg, []byte(ha1)); err != nil {
				t.Fatalf("CheckHA1: %v", err)
			}
			if !c.Verify([]byte(tt.method), []byte(ha1)) {
				t.Fatalf("Verify(right password) = false")
			}
			if !c.Verify([]byte(tt.method), []byte(strings.ToUpper(ha1))) {
				t.Errorf("Verify with an upper-case stored HA1 = false")
			}
			if c.UserHash && string(c.Username) != UserHash(tt.alg, tt.user, tt.realm) {
				t.Errorf("userhash %s, want %s", c.Username, UserHash(tt.alg, tt.user, tt.realm))
			}
			// Wrong password, wrong method, and every hashed field tampered with.
			if c.Verify([]byte(tt.method), []byte(HA1(tt.alg, tt.user, tt.realm, tt.password+"x"))) {
				t.Errorf("Verify(wrong password) = true")
			}
			if c.Verify([]byte("POST"), []byte(ha1)) {
				t.Errorf("Verify(other method) = true")
			}
			for _, f := range []*[]byte{&c.URI, &c.Nonce, &c.Cnonce, &c.NC, &c.Response} {
				if len(*f) == 0 {
					continue
				}
				orig := *f
				mod := []byte(string(orig))
				if mod[0] == '0' {
					mod[0] = '1'
				} else {
					mod[0] = '0'
				}
				*f = mod
				if c.Verify([]byte(tt.method), []byte(ha1)) {
					t.Errorf("Verify with %q instead of %q = true", mod, orig)
				}
				*f = orig
			}
			if c.Qop == QopAuth {
				c.Qop = QopNone
				if c.Verify([]byte(tt.method), []byte(ha1)) {
					t.Errorf("Verify with qop dropped = true")
				}
				c.Qop = QopAuth
			}
			if !c.Verify([]byte(tt.method), []byte(ha1)) {
				t.Fatalf("Verify after restoring fields = false")
			}
		})
	}
}

func TestDigestVerifyRejectsBadHA1(t *testing.T) {
	c := mustParseCredentials(t, rfc7616Header("MD5", "8ca523f5e9506fed4657c9700eebdbec"))
	ha1 := HA1(AlgMD5, "Mufasa", "http-auth@example.org", "Circle of Life")
	for _, bad := range []string{"", ha1[:31], ha1 + "0", "z" + ha1[1:], HA1(AlgSHA256, "Mufasa", "http-auth@example.org", "Circle of Life")} {
		if c.Verify([]byte("GET"), []byte(bad)) {
			t.Errorf("Verify(HA1 %q) = true", bad)
		}
		if CheckHA1(AlgMD5, []byte(bad)) == nil {
			t.Errorf("CheckHA1(%q) = nil", bad)
		}
	}
	if c.Verify([]byte(strings.Repeat("A", MaxDigestMethod+1)), []byte(ha1)) {
		t.Errorf("Verify with an over-long method = true")
	}
	if CheckHA1(AlgUnknown, []byte(ha1)) == nil {
		t.Errorf("CheckHA1(unknown algorithm) = nil")
	}
	var zero Credentials
	if zero.Verify([]byte("GET"), []byte(ha1)) {
		t.Errorf("zero Credentials verify")
	}
}

func TestDigestEscapes(t *testing.T) {
	// The username a"b\c is written with quoted-pairs; Verify must hash the
	// unescaped value, and AppendUnescaped must give it back.
	v := `Digest username="a\"b\\c", realm="r", nonce="n\x", uri="sip:x", response="` +
		digestRefResponse(AlgMD5, `a"b\c`, "r", "pw", "REGISTER", "sip:x", "nx", "", "", "") + `"`
	c := mustParseCredentials(t, v)
	if !c.Escaped {
		t.Fatalf("Escaped not set")
	}
	if got := string(AppendUnescaped(nil, c.Username)); got != `a"b\c` {
		t.Fatalf("unescaped username %q", got)
	}
	if string(c.Username) != `a\"b\\c` {
		t.Fatalf("raw username %q", c.Username)
	}
	if !c.Verify([]byte("REGISTER"), []byte(HA1(AlgMD5, `a"b\c`, "r", "pw"))) {
		t.Fatalf("Verify with escaped nonce and username = false")
	}
	c = mustParseCredentials(t, rfc7616Header("MD5", "8ca523f5e9506fed4657c9700eebdbec"))
	if c.Escaped {
		t.Fatalf("Escaped set without escapes")
	}
}

func TestParseCredentialsForms(t *testing.T) {
	tests := []struct {
		name, v string
		check   func(*Credentials) bool
	}{
		{"compact, no spaces", `Digest username="u",realm="r",nonce="n",uri="sip:a@b",response="0123456789abcdef0123456789ABCDEF"`,
			func(c *Credentials) bool {
				return string(c.Username) == "u" && string(c.URI) == "sip:a@b" && c.Algorithm == AlgMD5 && c.Qop == QopNone
			}},
		{"LWS everywhere, tabs and folding", "  digest\tusername = \"u\" ,\r\n\trealm= \"r\"\t,nonce =\"n\" , uri=\"sip:a\",\r\n response=\"0123456789abcdef0123456789abcdef\"  ",
			func(c *Credentials) bool { return string(c.Realm) == "r" && string(c.Nonce) == "n" }},
		{"unknown params ignored, any order, empty elements", `DIGEST foo=bar, response="0123456789abcdef0123456789abcdef",, x="y, z=\"w\"", uri="u", nonce="n", realm="r", username="u", algorithm=md5, extension-param="ignored"`,
			func(c *Credentials) bool { return string(c.Username) == "u" && c.Algorithm == AlgMD5 && !c.Escaped }},
		{"quoted algorithm, qop and nc (deployed phones)", `Digest username="u", realm="r", nonce="n", uri="u", algorithm="SHA-256", qop="auth", nc="0000000a", cnonce="c", response="` + strings.Repeat("a", 64) + `"`,
			func(c *Credentials) bool {
				return c.Algorithm == AlgSHA256 && c.Qop == QopAuth && c.NCValue == 10 && string(c.NC) == "0000000a"
			}},
		{"nc without qop is ignored (RFC 2069 clients)", `Digest username="u", realm="r", nonce="n", uri="u", nc="00000001", response="0123456789abcdef0123456789abcdef"`,
			func(c *Credentials) bool { return c.NC == nil && c.Qop == QopNone }},
		{"userhash true and opaque", `Digest username="u", realm="r", nonce="n", uri="u", response="0123456789abcdef0123456789abcdef", userhash=TRUE, opaque="o p"`,
			func(c *Credentials) bool { return c.UserHash && string(c.Opaque) == "o p" }},
		{"userhash false", `Digest username="u", realm="r", nonce="n", uri="u", response="0123456789abcdef0123456789abcdef", userhash="false"`,
			func(c *Credentials) bool { return !c.UserHash }},
		{"UTF-8 in quoted strings", "Digest username=\"J\u00e4s\u00f8n\", realm=\"r\", nonce=\"n\", uri=\"u\", response=\"0123456789abcdef0123456789abcdef\"",
			func(c *Credentials) bool { return string(c.Username) == "J\u00e4s\u00f8n" }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := mustParseCredentials(t, tt.v)
			if !tt.check(c) {
				t.Fatalf("parsed %+v", *c)
			}
		})
	}
}

func TestParseCredentialsErrors(t *testing.T) {
	const resp = `response="0123456789abcdef0123456789abcdef"`
	const base = `username="u", realm="r", nonce="n", uri="u", `
	long := strings.Repeat("x", MaxDigestField+1)
	tests := []struct {
		name, v string
		param   string
		problem DigestProblem
	}{
		{"empty", ``, "scheme", DigestMalformed},
		{"only spaces", "   ", "scheme", DigestMalformed},
		{"basic scheme", `Basic QWxhZGRpbjpvcGVuIHNlc2FtZQ==`, "scheme", DigestUnsupported},
		{"scheme glued to a param", `Digest,username="u"`, "scheme", DigestMalformed},
		{"missing username", `Digest realm="r", nonce="n", uri="u", ` + resp, "username", DigestMissing},
		{"missing realm", `Digest username="u", nonce="n", uri="u", ` + resp, "realm", DigestMissing},
		{"missing nonce", `Digest username="u", realm="r", uri="u", ` + resp, "nonce", DigestMissing},
		{"missing uri", `Digest username="u", realm="r", nonce="n", ` + resp, "uri", DigestMissing},
		{"missing response", `Digest ` + base + `qop=auth`, "response", DigestMissing},
		{"no params at all", `Digest`, "username", DigestMissing},
		{"qop without cnonce", `Digest ` + base + `qop=auth, nc=00000001, ` + resp, "cnonce", DigestMissing},
		{"qop without nc", `Digest ` + base + `qop=auth, cnonce="c", ` + resp, "nc", DigestMissing},
		{"sess without cnonce", `Digest ` + base + `algorithm=MD5-sess, ` + resp, "cnonce", DigestMissing},
		{"nc too short", `Digest ` + base + `qop=auth, cnonce="c", nc=0001, ` + resp, "nc", DigestMalformed},
		{"nc too long", `Digest ` + base + `qop=auth, cnonce="c", nc=000000001, ` + resp, "nc", DigestMalformed},
		{"nc not hex", `Digest ` + base + `qop=auth, cnonce="c", nc=0000000g, ` + resp, "nc", DigestMalformed},
		{"duplicate username", `Digest ` + base + `username="v", ` + resp, "username", DigestDuplicate},
		{"duplicate response, other case", `Digest ` + base + resp + `, RESPONSE="x"`, "response", DigestDuplicate},
		{"response wrong length", `Digest ` + base + `response="0123"`, "response", DigestMalformed},
		{"response too short for SHA-256", `Digest ` + base + `algorithm=SHA-256, ` + resp, "response", DigestMalformed},
		{"response not hex", `Digest ` + base + `response="0123456789abcdef0123456789abcdeX"`, "response", DigestMalformed},
		{"unterminated quote", `Digest ` + base + `response="0123`, "response", DigestMalformed},
		{"unterminated escape", `Digest username="u\`, "username", DigestMalformed},
		{"control char in quoted", "Digest username=\"u\x01\", realm=\"r\"", "username", DigestMalformed},
		{"empty username", `Digest username="", realm="r", nonce="n", uri="u", ` + resp, "username", DigestMalformed},
		{"empty uri", `Digest username="u", realm="r", nonce="n", uri="", ` + resp, "uri", DigestMalformed},
		{"empty cnonce", `Digest ` + base + `qop=auth, nc=00000001, cnonce="", ` + resp, "cnonce", DigestMalformed},
		{"no value", `Digest username=, ` + base + resp, "username", DigestMalformed},
		{"no equals", `Digest username "u", ` + resp, "username", DigestMalformed},
		{"garbage after value", `Digest username="u" realm="r"`, "username", DigestMalformed},
		{"garbage in list", `Digest ` + base + `@@@, ` + resp, "auth-param", DigestMalformed},
		{"unknown param without value", `Digest ` + base + `stale, ` + resp, "auth-param", DigestMalformed},
		{"bare uri", `Digest username="u", realm="r", nonce="n", uri=sip:a@b, ` + resp, "uri", DigestMalformed},
		{"userhash bad", `Digest ` + base + resp + `, userhash=yes`, "userhash", DigestMalformed},
		{"username too long", `Digest username="` + long + `", realm="r", nonce="n", uri="u", ` + resp, "username", DigestTooLong},
		{"nonce too long", `Digest username="u", realm="r", nonce="` + long + `", uri="u", ` + resp, "nonce", DigestTooLong},
		{"uri too long", `Digest username="u", realm="r", nonce="n", uri="` + strings.Repeat("u", MaxDigestURI+1) + `", ` + resp, "uri", DigestTooLong},
		{"auth-int", `Digest ` + base + `qop=auth-int, nc=00000001, cnonce="c", ` + resp, "qop", DigestUnsupported},
		{"unknown qop", `Digest ` + base + `qop=foo, nc=00000001, cnonce="c", ` + resp, "qop", DigestUnsupported},
		{"unknown algorithm", `Digest ` + base + `algorithm=SHA-1, ` + resp, "algorithm", DigestUnsupported},
		{"username* only", `Digest username*=UTF-8''J%C3%A4s%C3%B8n, realm="r", nonce="n", uri="u", ` + resp, "username*", DigestUnsupported},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var c Credentials
			err := ParseCredentials([]byte(tt.v), &c)
			var de *DigestError
			if !errors.As(err, &de) {
				t.Fatalf("ParseCredentials(%q) = %v, want a *DigestError", tt.v, err)
			}
			if de.Param != tt.param || de.Problem != tt.problem {
				t.Fatalf("ParseCredentials(%q) = %q (param %q problem %d), want param %q problem %d",
					tt.v, de, de.Param, de.Problem, tt.param, tt.problem)
			}
			if !strings.Contains(de.Error(), tt.param) && tt.param != "scheme" {
				t.Errorf("error text %q does not name %q", de, tt.param)
			}
			if de.Unsupported() != (tt.problem == DigestUnsupported) {
				t.Errorf("Unsupported() = %v", de.Unsupported())
			}
		})
	}
}

func TestParseCredentialsUnsupportedKeepsFields(t *testing.T) {
	var c Credentials
	err := ParseCredentials([]byte(`Digest username="alice", realm="r", nonce="n", uri="u", qop=auth-int, nc=00000001, cnonce="c", response="0123456789abcdef0123456789abcdef"`), &c)
	if err == nil || !err.(*DigestError).Unsupported() {
		t.Fatalf("err = %v, want unsupported", err)
	}
	if string(c.Username) != "alice" || c.Qop != QopAuthInt {
		t.Fatalf("fields not kept: %+v", c)
	}
	if c.Verify([]byte("INVITE"), []byte(HA1(AlgMD5, "alice", "r", "pw"))) {
		t.Fatalf("Verify of auth-int credentials = true")
	}
	if !errors.Is(ParseCredentials([]byte("Basic x"), &c), ErrDigestScheme) {
		t.Fatalf("Basic is not ErrDigestScheme")
	}
}

func TestParseCredentialsResets(t *testing.T) {
	c := mustParseCredentials(t, rfc7616Header("SHA-256", "753927fa0e85d155564e2e272a28d1802ca10daf4496794697cf8db5856cb6c1"))
	if err := ParseCredentials([]byte(`Digest username="u", realm="r", nonce="n", uri="u", response="0123456789abcdef0123456789abcdef"`), c); err != nil {
		t.Fatal(err)
	}
	if c.Algorithm != AlgMD5 || c.Qop != QopNone || c.Cnonce != nil || c.Opaque != nil {
		t.Fatalf("fields from the previous parse survived: %+v", *c)
	}
}

func TestDigestAlgorithmNames(t *testing.T) {
	for a := AlgMD5; a <= AlgSHA512_256Sess; a++ {
		if got := parseAlgorithm([]byte(strings.ToLower(a.String()))); got != a {
			t.Errorf("parseAlgorithm(%q) = %v", a, got)
		}
		if a.HexLen() == 0 {
			t.Errorf("%v has no hex length", a)
		}
	}
	if AlgUnknown.String() != "unknown" || AlgUnknown.HexLen() != 0 || AlgUnknown.Sess() {
		t.Errorf("AlgUnknown misdescribed")
	}
}

func TestDigestZeroAllocs(t *testing.T) {
	md5v := []byte(rfc7616Header("MD5", "8ca523f5e9506fed4657c9700eebdbec"))
	shav := []byte(rfc7616Header("SHA-256", "753927fa0e85d155564e2e272a28d1802ca10daf4496794697cf8db5856cb6c1"))
	md5ha1 := []byte(HA1(AlgMD5, "Mufasa", "http-auth@example.org", "Circle of Life"))
	shaha1 := []byte(HA1(AlgSHA256, "Mufasa", "http-auth@example.org", "Circle of Life"))
	sessv := []byte(rfc7616Header("SHA-512-256-sess", "3f2a34f923c38b0fb26dce2fdfc2ce326c23cecf86fbb1444f3e51fbbc2cb92e"))
	sessha1 := []byte(HA1(AlgSHA512_256, "Mufasa", "http-auth@example.org", "Circle of Life"))
	method := []byte("GET")
	var c Credentials
	var failed bool
	check := func(name string, f func()) {
		if n := testing.AllocsPerRun(200, f); n != 0 {
			t.Errorf("%s: %v allocs per run, want 0", name, n)
		}
	}
	check("ParseCredentials", func() {
		if ParseCredentials(md5v, &c) != nil {
			failed = true
		}
	})
	check("ParseCredentials error", func() {
		if ParseCredentials(md5v[:40], &c) == nil {
			failed = true
		}
	})
	check("Verify MD5", func() {
		if ParseCredentials(md5v, &c) != nil || !c.Verify(method, md5ha1) {
			failed = true
		}
	})
	check("Verify SHA-256", func() {
		if ParseCredentials(shav, &c) != nil || !c.Verify(method, shaha1) {
			failed = true
		}
	})
	check("Verify SHA-512-256-sess", func() {
		if ParseCredentials(sessv, &c) != nil || !c.Verify(method, sessha1) {
			failed = true
		}
	})
	if failed {
		t.Fatalf("a parse or verify failed inside AllocsPerRun")
	}
}

func TestLookupDigestParam(t *testing.T) {
	for p := dpUsername; p < numDigestParams; p++ {
		name := digestParamNames[p]
		if got := lookupDigestParam([]byte(strings.ToUpper(name))); got != p {
			t.Errorf("lookup(%q) = %d, want %d", strings.ToUpper(name), got, p)
		}
	}
	for _, name := range []string{"", "n", "nd", "urx", "qos", "realms", "stale", "domain", "usernamex", "username_", "userhasx", "algorithn", "x*"} {
		if got := lookupDigestParam([]byte(name)); got != dpUnknown {
			t.Errorf("lookup(%q) = %d, want unknown", name, got)
		}
	}
}
