package sipcore

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"
)

var nonceTestSecret = []byte("0123456789abcdef0123456789abcdef")

func TestNonceLifecycle(t *testing.T) {
	k := NewNonceKey(nonceTestSecret)
	other := NewNonceKey(nonceTestSecret) // another node, same cluster secret
	t0 := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	realm := []byte("sip.example.org")
	const maxAge = 5 * time.Minute
	n := k.Append(nil, t0, realm, testBind)
	if len(n) != NonceLen {
		t.Fatalf("nonce %q has %d bytes, want %d", n, len(n), NonceLen)
	}
	for _, ch := range n {
		if !(ch >= 'A' && ch <= 'Z' || ch >= 'a' && ch <= 'z' || ch >= '0' && ch <= '9' || ch == '-' || ch == '_') {
			t.Fatalf("nonce %q has %q, not base64url", n, ch)
		}
	}
	tests := []struct {
		name string
		key  *NonceKey
		at   time.Time
		want NonceResult
	}{
		{"fresh", k, t0, NonceValid},
		{"fresh on another node", other, t0, NonceValid},
		{"just inside maxAge", k, t0.Add(maxAge), NonceValid},
		{"just past maxAge", k, t0.Add(maxAge + time.Nanosecond), NonceStale},
		{"replayed an hour later", k, t0.Add(time.Hour), NonceStale},
		{"replayed a year later", other, t0.Add(365 * 24 * time.Hour), NonceStale},
		{"clock of the checker slightly behind", k, t0.Add(-NonceSkew), NonceValid},
		{"from the future beyond skew", k, t0.Add(-NonceSkew - time.Nanosecond), NonceInvalid},
		{"other secret", NewNonceKey([]byte("another secret of sufficient size")), t0, NonceInvalid},
		{"nil key", nil, t0, NonceInvalid},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.key.Check(n, realm, testBind, tt.at, maxAge); got != tt.want {
				t.Fatalf("Check = %v, want %v", got, tt.want)
			}
		})
	}
	if got := k.Check(n, []byte("sip.example.com"), testBind, t0, maxAge); got != NonceInvalid {
		t.Errorf("other realm: %v", got)
	}
	if got := k.Check(n, realm, testBind, t0, 0); got != NonceStale {
		t.Errorf("maxAge 0: %v, want stale", got)
	}
	if n2 := k.Append(nil, t0.Add(time.Nanosecond), realm, testBind); string(n2) == string(n) {
		t.Errorf("nonces issued at different times are equal: %q", n)
	}
}

func TestNonceForgeries(t *testing.T) {
	k := NewNonceKey(nonceTestSecret)
	t0 := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	realm := []byte("r")
	n := k.Append(nil, t0, realm, testBind)
	bad := map[string][]byte{
		"empty":        nil,
		"truncated":    n[:NonceLen-1],
		"extended":     append(append([]byte{}, n...), 'A'),
		"not base64":   []byte(strings.Repeat("*", NonceLen)),
		"std base64":   []byte(strings.Repeat("+", NonceLen)),
		"with newline": append(append([]byte{}, n[:NonceLen-1]...), '\n'),
		"all zero":     []byte(strings.Repeat("A", NonceLen)),
		"quoted":       []byte(`"` + string(n[1:NonceLen-1]) + `"`),
	}
	// Every single-character change anywhere (timestamp or MAC).
	for i := range n {
		m := append([]byte{}, n...)
		if m[i] == 'A' {
			m[i] = 'B'
		} else {
			m[i] = 'A'
		}
		bad["changed at "+string(rune('0'+i/10))+string(rune('0'+i%10))] = m
	}
	// A stale nonce with its timestamp moved forward but the MAC kept: the
	// timestamp is under the MAC, so it must not come back to life.
	var raw [nonceRawLen]byte
	if _, err := base64.RawURLEncoding.Decode(raw[:], n); err != nil {
		t.Fatal(err)
	}
	binary.BigEndian.PutUint64(raw[:8], uint64(t0.Add(time.Hour).UnixNano()))
	bad["refreshed timestamp"] = []byte(base64.RawURLEncoding.EncodeToString(raw[:]))
	for name, b := range bad {
		if got := k.Check(b, realm, testBind, t0.Add(time.Hour), 24*time.Hour); got != NonceInvalid {
			t.Errorf("%s (%q): %v, want invalid", name, b, got)
		}
	}
}

// TestNonceMACMatchesHMAC checks the hand-rolled HMAC (two sha256.Sum256
// over precomputed pads) against crypto/hmac with the derived key.
func TestNonceMACMatchesHMAC(t *testing.T) {
	d := hmac.New(sha256.New, nonceTestSecret)
	d.Write([]byte(nonceKeyLabel))
	derived := d.Sum(nil)
	k := NewNonceKey(nonceTestSecret)
	t0 := time.Unix(1767225600, 123456789)
	for _, realm := range []string{"", "r", "sip.example.org", strings.Repeat("x", MaxDigestField)} {
		n := k.Append(nil, t0, []byte(realm), testBind)
		raw, err := base64.RawURLEncoding.DecodeString(string(n))
		if err != nil {
			t.Fatal(err)
		}
		if got := int64(binary.BigEndian.Uint64(raw[:8])); got != t0.UnixNano() {
			t.Fatalf("timestamp %d, want %d", got, t0.UnixNano())
		}
		m := hmac.New(sha256.New, derived)
		m.Write(raw[:8])
		a16 := testBind.Src.As16()
		m.Write(a16[:])
		cid := sha256.Sum256(testBind.CallID)
		m.Write(cid[:])
		m.Write([]byte(realm))
		if want := m.Sum(nil)[:nonceMACLen]; !hmac.Equal(want, raw[8:]) {
			t.Fatalf("realm %q: MAC %x, crypto/hmac gives %x", realm, raw[8:], want)
		}
	}
}

func TestNonceLongRealm(t *testing.T) {
	k := NewNonceKey(nonceTestSecret)
	long := []byte(strings.Repeat("x", MaxDigestField+1))
	if got := k.Append([]byte("x"), time.Now(), long, testBind); string(got) != "x" {
		t.Fatalf("Append with an over-long realm wrote %q", got)
	}
	n := k.Append(nil, time.Now(), long[:MaxDigestField], testBind)
	if got := k.Check(n, long, testBind, time.Now(), time.Minute); got != NonceInvalid {
		t.Fatalf("Check with an over-long realm: %v", got)
	}
}

func TestValidateNonceSecret(t *testing.T) {
	if err := ValidateNonceSecret(nonceTestSecret); err != nil {
		t.Fatal(err)
	}
	err := ValidateNonceSecret([]byte("short"))
	if err == nil || !strings.Contains(err.Error(), "at least 16") {
		t.Fatalf("short secret: %v", err)
	}
}

func TestNonceResultString(t *testing.T) {
	for r, s := range map[NonceResult]string{NonceInvalid: "invalid", NonceValid: "valid", NonceStale: "stale", 9: "NonceResult(9)"} {
		if r.String() != s {
			t.Errorf("%d.String() = %q, want %q", r, r.String(), s)
		}
	}
}

// TestNonceConcurrent shares one key between goroutines the way cores do;
// run with -race to check that the key is never written after creation.
func TestNonceConcurrent(t *testing.T) {
	k := NewNonceKey(nonceTestSecret)
	t0 := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	var wg sync.WaitGroup
	errs := make(chan string, 4)
	for g := 0; g < 4; g++ {
		wg.Add(1)
		go func(g int) {
			defer wg.Done()
			realm := []byte{'r', byte('0' + g)}
			buf := make([]byte, 0, NonceLen)
			for i := 0; i < 500; i++ {
				now := t0.Add(time.Duration(i) * time.Millisecond)
				buf = k.Append(buf[:0], now, realm, testBind)
				if r := k.Check(buf, realm, testBind, now, time.Minute); r != NonceValid {
					errs <- "goroutine " + string(realm) + ": " + r.String()
					return
				}
			}
		}(g)
	}
	wg.Wait()
	close(errs)
	for e := range errs {
		t.Error(e)
	}
}

func TestNonceZeroAllocs(t *testing.T) {
	k := NewNonceKey(nonceTestSecret)
	realm := []byte("sip.example.org")
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	buf := make([]byte, 0, 64)
	n := k.Append(nil, now, realm, testBind)
	var bad bool
	if a := testing.AllocsPerRun(200, func() {
		buf = k.Append(buf[:0], now, realm, testBind)
	}); a != 0 {
		t.Errorf("Append: %v allocs per run", a)
	}
	if a := testing.AllocsPerRun(200, func() {
		if k.Check(n, realm, testBind, now, time.Minute) != NonceValid {
			bad = true
		}
	}); a != 0 {
		t.Errorf("Check: %v allocs per run", a)
	}
	if bad || string(buf) != string(n) {
		t.Fatalf("nonce changed or failed to check inside AllocsPerRun")
	}
}

// testBind is the binding of the nonces the tests issue.
var testBind = NonceBinding{Src: netip.MustParseAddr("192.0.2.10"), CallID: []byte("a84b4c76e66710@pc33.example.com")}

// A nonce answers only the address and the call it was issued to: captured
// credentials replayed from elsewhere, or in a new call, are refused.
func TestNonceBinding(t *testing.T) {
	k := NewNonceKey(nonceTestSecret)
	realm := []byte("example.com")
	now := time.Unix(1700000000, 0)
	n := k.Append(nil, now, realm, testBind)
	if got := k.Check(n, realm, testBind, now, time.Minute); got != NonceValid {
		t.Fatalf("same binding: %v, want valid", got)
	}
	for name, b := range map[string]NonceBinding{
		"other address": {Src: netip.MustParseAddr("192.0.2.11"), CallID: testBind.CallID},
		"other call":    {Src: testBind.Src, CallID: []byte("new-call-id@pc33.example.com")},
		"IPv6 address":  {Src: netip.MustParseAddr("2001:db8::10"), CallID: testBind.CallID},
		"no call":       {Src: testBind.Src},
	} {
		if got := k.Check(n, realm, b, now, time.Minute); got != NonceInvalid {
			t.Errorf("%s: %v, want invalid", name, got)
		}
	}
	// The IPv4-mapped form of the same address is the same source.
	mapped := NonceBinding{Src: netip.AddrFrom16(testBind.Src.As16()), CallID: testBind.CallID}
	if got := k.Check(n, realm, mapped, now, time.Minute); got != NonceValid {
		t.Errorf("mapped address: %v, want valid", got)
	}
	if got := NonceIssued(n); got != now.UnixNano() {
		t.Errorf("NonceIssued = %d, want %d", got, now.UnixNano())
	}
	if NonceIssued([]byte("short")) != 0 {
		t.Error("NonceIssued of a short value is not 0")
	}
}
