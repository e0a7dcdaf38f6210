package location

import (
	"testing"

	"sipedge/pipeline/stages/registrar/bindings"
	"sipedge/sipcore"
)

// BenchmarkLookupHit is the location stage's own lookup on a cache hit:
// the canonical AOR from the Request-URI, its keyed hash, and the probe of
// the per-core cache.
func BenchmarkLookupHit(b *testing.B) {
	msg := []byte("INVITE sip:ivy@Example.com SIP/2.0\r\nVia: SIP/2.0/UDP 192.0.2.9;branch=z9hG4bK1\r\nFrom: <sip:a@b>;tag=1\r\nTo: <sip:ivy@example.com>\r\nCall-ID: x\r\nCSeq: 1 INVITE\r\nContent-Length: 0\r\n\r\n")
	var m sipcore.Msg
	if err := sipcore.Parse(msg, &m); err != nil {
		b.Fatal(err)
	}
	h := newHasher()
	c := newCache(65536)
	var key [256]byte
	aor, _ := bindings.AppendAOR(key[:0], msg, &m.RURI)
	t := &Target{}
	c.put(h.key(aor), t, 0, 1<<62)
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		aor, _ := bindings.AppendAOR(key[:0], msg, &m.RURI)
		if c.get(h.key(aor), int64(i)) != t {
			b.Fatal("miss")
		}
	}
}
