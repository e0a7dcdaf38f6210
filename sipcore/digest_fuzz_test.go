package sipcore

import (
	"bytes"
	"testing"
	"unsafe"
)

// FuzzParseCredentials checks that no input panics, that accepted credentials
// have their required fields inside the input, and that Verify then runs.
func FuzzParseCredentials(f *testing.F) {
	f.Add([]byte(rfc7616Header("MD5", "8ca523f5e9506fed4657c9700eebdbec")))
	f.Add([]byte(rfc7616Header("SHA-512-256-sess", "3f2a34f923c38b0fb26dce2fdfc2ce326c23cecf86fbb1444f3e51fbbc2cb92e")))
	f.Add([]byte(`Digest username="a\"b", realm="r", nonce="n", uri="u", response="0123456789abcdef0123456789abcdef", x=y,, userhash=true`))
	f.Add([]byte(`Digest username="voi18063",realm="sip.cybercity.dk",uri="sip:192.168.1.2",nonce="1701af566be182070084c6f740706bb",opaque="1701a1351f70795",nc="00000001",response="bd79fecae600a2eb79d37ec73214830b"`))
	f.Add([]byte(`Digest qop=auth-int, username*=UTF-8''x, realm="\`))
	f.Add([]byte("Basic abc"))
	f.Fuzz(func(t *testing.T, v []byte) {
		var c Credentials
		if err := ParseCredentials(v, &c); err != nil {
			if err.Error() == "" {
				t.Fatalf("empty error text")
			}
			return
		}
		for _, f := range [][]byte{c.Username, c.Realm, c.Nonce, c.URI, c.Response} {
			if len(f) > 0 && !digestWithin(f, v) {
				t.Fatalf("accepted %q with a field outside the input: %q", v, f)
			}
			if len(f) == 0 {
				t.Fatalf("accepted %q with an empty required field: %+v", v, c)
			}
		}
		if len(c.Response) != c.Algorithm.HexLen() {
			t.Fatalf("accepted %q with a response of %d bytes for %v", v, len(c.Response), c.Algorithm)
		}
		c.Verify([]byte("INVITE"), bytes.Repeat([]byte("a"), c.Algorithm.HexLen()))
	})
}

// digestWithin reports whether f is a slice of v's backing array.
func digestWithin(f, v []byte) bool {
	if len(f) == 0 || len(v) == 0 {
		return false
	}
	base := &v[:cap(v)][0]
	end := &v[:cap(v)][cap(v)-1]
	return uintptr(unsafe.Pointer(&f[0])) >= uintptr(unsafe.Pointer(base)) &&
		uintptr(unsafe.Pointer(&f[len(f)-1])) <= uintptr(unsafe.Pointer(end))
}
