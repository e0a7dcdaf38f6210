package sipcore_test

import (
	"fmt"
	"net/netip"
	"strings"
	"time"

	"sipedge/sipcore"
)

// The auth stage's use of the package: challenge, then check the answer.
// Allocation happens only in setup here; per packet, buffers are reused.
func ExampleParseCredentials() {
	key := sipcore.NewNonceKey([]byte("cluster secret, 32 random bytes!"))
	realm := []byte("sip.example.org")
	issued := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	// The nonce is good only for the address and the call it was sent to.
	bind := sipcore.NonceBinding{Src: netip.MustParseAddr("192.0.2.10"), CallID: []byte("a84b4c76e66710")}

	// 401 to an unauthenticated REGISTER: SHA-256 first, then MD5 (RFC 8760).
	ch := sipcore.Challenge{Realm: realm, Nonce: key.Append(nil, issued, realm, bind), Algorithm: sipcore.AlgSHA256}
	hdr := sipcore.AppendChallenge(nil, &ch)
	ch.Algorithm = sipcore.AlgMD5
	hdr = sipcore.AppendChallenge(hdr, &ch)
	fmt.Print(strings.ReplaceAll(string(hdr), "\r\n", "\n")) // lines end in CRLF

	// The retried REGISTER carries this (a client computed response= from
	// the password; here it is a wrong one).
	v := []byte(`Digest username="alice", realm="sip.example.org", nonce="` + string(ch.Nonce) +
		`", uri="sip:sip.example.org", response="0123456789abcdef0123456789abcdef", qop=auth, nc=00000001, cnonce="x1"`)
	var c sipcore.Credentials
	if err := sipcore.ParseCredentials(v, &c); err != nil {
		fmt.Println("400:", err)
		return
	}
	switch key.Check(c.Nonce, c.Realm, bind, issued.Add(10*time.Second), 5*time.Minute) {
	case sipcore.NonceInvalid:
		fmt.Println("401 with a fresh nonce")
	case sipcore.NonceStale:
		fmt.Println("401 with a fresh nonce and stale=true (if the response is right)")
	case sipcore.NonceValid:
		ha1 := []byte(sipcore.HA1(sipcore.AlgMD5, "alice", "sip.example.org", "wonderland")) // from the store
		fmt.Println("user", string(c.Username), "verified:", c.Verify([]byte("REGISTER"), ha1))
	}
	// Output:
	// WWW-Authenticate: Digest realm="sip.example.org", nonce="GJi12bPWgABBErJODcBzy2qHKTv6zAmM", algorithm=SHA-256, qop="auth"
	// WWW-Authenticate: Digest realm="sip.example.org", nonce="GJi12bPWgABBErJODcBzy2qHKTv6zAmM", algorithm=MD5, qop="auth"
	// user alice verified: false
}
