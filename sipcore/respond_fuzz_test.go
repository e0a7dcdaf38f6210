package sipcore

import (
	"net/netip"
	"testing"
	"time"
)

// FuzzRespondAfterError builds the answer the proxy sends to a request
// Parse refused (400, 505, 513...) from what Parse read before the fault,
// and to one cut at an arbitrary size limit (the 513 path reads only the
// first bytes): building never panics, and what it builds parses.
func FuzzRespondAfterError(f *testing.F) {
	f.Add(fixtureINVITE, uint16(0))
	f.Add([]byte("INVITE sip:b@h SIP/3.0\r\nVia: SIP/2.0/UDP h;branch=z9hG4bKx\r\nCall-ID: c\r\n\r\n"), uint16(0))
	f.Add(fixtureINVITE, uint16(200))
	key := NewKey([]byte("fuzz respond secret, 32 bytes..."))
	src := netip.MustParseAddrPort("192.0.2.9:5060")
	out := make([]byte, 70000)
	f.Fuzz(func(t *testing.T, data []byte, cut uint16) {
		buf := append([]byte(nil), data...)
		if cut > 0 && int(cut) < len(buf) {
			buf = buf[:cut]
		}
		var m Msg
		err := Parse(buf, &m)
		status, reason := ResponseFor(&m, err)
		if err == nil {
			status, reason = 513, "Message Too Large"
		}
		if status == 0 || !m.IsRequest || m.NVia == 0 {
			return
		}
		n, berr := BuildResponse(out, &m, status, reason, src, &ResponseOptions{Key: &key})
		if berr != nil {
			return
		}
		var r Msg
		if perr := Parse(append([]byte(nil), out[:n]...), &r); perr != nil && r.IsRequest {
			t.Fatalf("the %d answer parses as a request: %v\n%q", status, perr, out[:n])
		}
	})
}

// FuzzNonceCheck: any value offered as a nonce is checked without panic,
// and never Valid unless this key made it for this binding.
func FuzzNonceCheck(f *testing.F) {
	k := NewNonceKey([]byte("fuzz nonce secret, 32 bytes....."))
	now := time.Unix(1_700_000_000, 0)
	good := k.Append(nil, now, []byte("example.com"), testBind)
	f.Add(good, []byte("a84b4c76e66710@pc33.example.com"))
	f.Add([]byte("AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"), []byte("x"))
	f.Fuzz(func(t *testing.T, nonce, callID []byte) {
		b := NonceBinding{Src: testBind.Src, CallID: callID}
		r := k.Check(nonce, []byte("example.com"), b, now, time.Minute)
		NonceIssued(nonce)
		if r == NonceValid && (string(nonce) != string(good) || string(callID) != string(testBind.CallID)) {
			t.Fatalf("a nonce this key did not issue for this call is valid: %q for %q", nonce, callID)
		}
	})
}
