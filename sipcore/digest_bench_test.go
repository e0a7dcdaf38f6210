package sipcore

import (
	"testing"
	"time"
)

// digestBenchSetup builds what a REGISTER carries after a challenge from this
// node: an Authorization value answering a fresh nonce, and the stored HA1.
func digestBenchSetup(b *testing.B, alg Algorithm) (k *NonceKey, v, ha1 []byte, now time.Time) {
	k = NewNonceKey(nonceTestSecret)
	now = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	realm := "sip.example.org"
	nonce := string(k.Append(nil, now, []byte(realm), testBind))
	uri := "sip:sip.example.org;transport=udp"
	resp := digestRefResponse(alg, "alice", realm, "wonderland", "REGISTER", uri, nonce, "00000001", "0a4f113b2c3d", "auth")
	v = []byte(`Digest username="alice", realm="sip.example.org", nonce="` + nonce + `", uri="` + uri +
		`", response="` + resp + `", algorithm=` + alg.String() + `, cnonce="0a4f113b2c3d", qop=auth, nc=00000001`)
	return k, v, []byte(HA1(alg, "alice", realm, "wonderland")), now.Add(2 * time.Second)
}

// benchmarkDigestVerify is the whole per-request cost with the HA1 at hand:
// parse, nonce check, verify.
func benchmarkDigestVerify(b *testing.B, alg Algorithm) {
	k, v, ha1, now := digestBenchSetup(b, alg)
	method := []byte("REGISTER")
	var c Credentials
	b.ReportAllocs()
	b.SetBytes(int64(len(v)))
	for b.Loop() {
		if ParseCredentials(v, &c) != nil ||
			k.Check(c.Nonce, c.Realm, testBind, now, time.Minute) != NonceValid ||
			!c.Verify(method, ha1) {
			b.Fatal("credentials did not verify")
		}
	}
}

func BenchmarkDigestVerifyMD5(b *testing.B)        { benchmarkDigestVerify(b, AlgMD5) }
func BenchmarkDigestVerifySHA256(b *testing.B)     { benchmarkDigestVerify(b, AlgSHA256) }
func BenchmarkDigestVerifySHA512_256(b *testing.B) { benchmarkDigestVerify(b, AlgSHA512_256) }

func BenchmarkDigestParse(b *testing.B) {
	_, v, _, _ := digestBenchSetup(b, AlgMD5)
	var c Credentials
	b.ReportAllocs()
	b.SetBytes(int64(len(v)))
	for b.Loop() {
		if ParseCredentials(v, &c) != nil {
			b.Fatal("parse failed")
		}
	}
}

func BenchmarkNonceCheck(b *testing.B) {
	k := NewNonceKey(nonceTestSecret)
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	realm := []byte("sip.example.org")
	n := k.Append(nil, now, realm, testBind)
	b.ReportAllocs()
	for b.Loop() {
		if k.Check(n, realm, testBind, now, time.Minute) != NonceValid {
			b.Fatal("nonce did not check")
		}
	}
}

func BenchmarkNonceAppend(b *testing.B) {
	k := NewNonceKey(nonceTestSecret)
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	realm := []byte("sip.example.org")
	buf := make([]byte, 0, NonceLen)
	b.ReportAllocs()
	for b.Loop() {
		buf = k.Append(buf[:0], now, realm, testBind)
	}
}

func BenchmarkDigestAppendChallenge(b *testing.B) {
	k := NewNonceKey(nonceTestSecret)
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	realm := []byte("sip.example.org")
	c := Challenge{Realm: realm, Algorithm: AlgSHA256, Nonce: make([]byte, 0, NonceLen)}
	buf := make([]byte, 0, 256)
	b.ReportAllocs()
	for b.Loop() {
		c.Nonce = k.Append(c.Nonce[:0], now, realm, testBind)
		buf = AppendChallenge(buf[:0], &c)
	}
}
