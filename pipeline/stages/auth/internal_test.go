package auth

import (
	"crypto/md5"
	"crypto/sha256"
	"encoding/hex"
	"net/netip"
	"strings"
	"testing"
	"time"

	"sipedge/pipeline"
	"sipedge/sipcore"
)

func TestCacheEvictsLeastRecentlyUsed(t *testing.T) {
	c := newCache(ways) // one set
	h := newHasher()
	e := &Entry{Has: HasMD5}
	keys := make([]userKey, ways+1)
	for i := range keys {
		keys[i] = h.key([]byte{byte('a' + i)})
	}
	for i := 0; i < ways; i++ {
		c.put(keys[i], e, int64(i+1), 0)
	}
	c.get(keys[0], 100) // keys[0] is now the most recent; keys[1] the least
	c.put(keys[ways], e, 101, 0)
	if c.evictions != 1 || c.live != ways {
		t.Fatalf("evictions %d live %d, want 1 and %d", c.evictions, c.live, ways)
	}
	if _, _, ok := c.get(keys[1], 102); ok {
		t.Errorf("the least recently used entry survived")
	}
	for _, k := range []userKey{keys[0], keys[2], keys[ways]} {
		if _, _, ok := c.get(k, 103); !ok {
			t.Errorf("entry %v evicted instead of the LRU one", k)
		}
	}
	// A negative entry never evicts a found user...
	if c.put(keys[1], nil, 104, 105) {
		t.Fatalf("a negative entry evicted a found user")
	}
	// ...but takes a free way.
	c.remove(keys[0])
	if c.live != ways-1 {
		t.Fatalf("live %d after remove, want %d", c.live, ways-1)
	}
	if !c.put(keys[1], nil, 104, 105) || c.live != ways {
		t.Fatalf("negative entry not stored in a free way (live %d)", c.live)
	}
	if _, neg, ok := c.get(keys[1], 104); !ok || !neg {
		t.Fatalf("negative entry not found before expiry")
	}
	if _, _, ok := c.get(keys[1], 106); ok {
		t.Fatalf("negative entry found after expiry")
	}
	// Once a set holds negative entries, a new negative one replaces the
	// least recently used of them, never a found user.
	c.clear()
	for i := 0; i < ways; i++ {
		var ei *Entry
		if i%2 == 0 {
			ei = e
		}
		c.put(keys[i], ei, int64(i+1), 0)
	}
	if !c.put(keys[ways], nil, 200, 0) {
		t.Fatal("a negative entry could not replace another")
	}
	if _, _, ok := c.get(keys[1], 201); ok {
		t.Error("the least recently used negative entry survived")
	}
	for i := 0; i < ways; i += 2 {
		if _, neg, ok := c.get(keys[i], 201); !ok || neg {
			t.Errorf("found user %d evicted by a negative entry", i)
		}
	}
	c.clear()
	if c.live != 0 || c.size() != 0 {
		t.Fatalf("clear left %d entries", c.size())
	}
}

// hitRig is one auth stage with alice cached, and a parsed request with
// right credentials, for the allocation test and the benchmarks.
type hitRig struct {
	st  *stage
	ctx pipeline.Ctx
	msg sipcore.Msg
	buf []byte
	// orig and origMsg are the request as it arrived, without
	// P-Asserted-Identity, for restore.
	orig    []byte
	origMsg sipcore.Msg
}

// restore puts the request back as it arrived (no P-Asserted-Identity):
// what a worker hands the stage for each new request, without parsing it
// again here.
func (r *hitRig) restore() {
	r.buf = r.buf[:len(r.orig)]
	copy(r.buf, r.orig)
	r.msg = r.origMsg
	r.ctx.Buf = r.buf
}

func newHitRig(t testing.TB, alg sipcore.Algorithm) *hitRig {
	wall := time.Unix(1_700_000_000, 0)
	a, err := New(Config{
		Realm: "example.com", NonceKey: sipcore.NewNonceKey([]byte("0123456789abcdef0123456789abcdef")),
		Store: NewFileStore(Users{}), Clock: func() time.Time { return wall },
	})
	if err != nil {
		t.Fatal(err)
	}
	a.peek = nil // exercise the cache, not the file store's snapshot
	a.cores[0] = newCore(a, 0)
	so, err := pipeline.NewSolo(0, a)
	if err != nil {
		t.Fatal(err)
	}
	r := &hitRig{st: so.Stage().(*stage)}
	var e Entry
	e.SetHA1(sipcore.AlgMD5, []byte(sipcore.HA1(sipcore.AlgMD5, "alice", "example.com", "pw")))
	e.SetHA1(sipcore.AlgSHA256, []byte(sipcore.HA1(sipcore.AlgSHA256, "alice", "example.com", "pw")))
	r.st.core.cache.put(a.hash.key([]byte("alice")), &e, 1, 0)
	r.st.StartBatch(0, 0)

	bind := sipcore.NonceBinding{Src: netip.MustParseAddr("203.0.113.9"), CallID: []byte("a84b4c76e66710@pc33")}
	nonce := string(a.cfg.NonceKey.Append(nil, wall, []byte("example.com"), bind))
	uri := "sip:bob@example.com"
	ha1 := sipcore.HA1(alg, "alice", "example.com", "pw")
	hx := func(s string) string { return digestHex(alg, s) }
	resp := hx(ha1 + ":" + nonce + ":00000001:c0ffee:auth:" + hx("INVITE:"+uri))
	msg := "INVITE " + uri + " SIP/2.0\r\n" +
		"Via: SIP/2.0/UDP 203.0.113.9:40001;branch=z9hG4bK776asdhds;rport\r\n" +
		"Max-Forwards: 70\r\nTo: <sip:bob@example.com>\r\nFrom: <sip:alice@example.com>;tag=1928301774\r\n" +
		"Call-ID: a84b4c76e66710@pc33\r\nCSeq: 314159 INVITE\r\nContact: <sip:alice@203.0.113.9:40001>\r\n" +
		`Proxy-Authorization: Digest username="alice", realm="example.com", nonce="` + nonce + `", uri="` + uri +
		`", response="` + resp + `", algorithm=` + alg.String() + `, qop=auth, nc=00000001, cnonce="c0ffee"` + "\r\n" +
		"Content-Length: 0\r\n\r\n"
	// Room to add P-Asserted-Identity, as a port's buffer has: each run
	// strips the one the previous run added (the source is not trusted)
	// and asserts it again.
	r.buf = append(make([]byte, 0, len(msg)+128), msg...)
	if err := sipcore.Parse(r.buf, &r.msg); err != nil {
		t.Fatal(err)
	}
	r.orig, r.origMsg = []byte(msg), r.msg
	r.ctx = pipeline.Ctx{Buf: r.buf, Msg: &r.msg, Parsed: true, Src: netip.MustParseAddrPort("203.0.113.9:40001"), Now: 2}
	if v := r.st.Process(&r.ctx); v != pipeline.Continue {
		t.Fatalf("verdict %v, want continue (metrics %+v)", v, a.Metrics())
	}
	return r
}

func TestCacheHitAllocatesNothing(t *testing.T) {
	for _, alg := range []sipcore.Algorithm{sipcore.AlgMD5, sipcore.AlgSHA256} {
		r := newHitRig(t, alg)
		n := testing.AllocsPerRun(1000, func() {
			if r.st.Process(&r.ctx) != pipeline.Continue {
				panic("not verified")
			}
		})
		if n != 0 {
			t.Errorf("%s: %v allocations per cached-user request, want 0", alg, n)
		}
		if h := r.st.core.cnt.Get(cCacheHits); h < 1000 {
			t.Errorf("%s: %d cache hits, want every run to hit", alg, h)
		}
		if u := r.st.core.cnt.Get(cUnasserted); u != 0 || !strings.Contains(string(r.ctx.Buf), "P-Asserted-Identity: <sip:alice@example.com>\r\n") {
			t.Errorf("%s: %d requests without this node's P-Asserted-Identity, want every one asserted", alg, u)
		}
	}
}

// BenchmarkAuthCacheHit: a cached user's request as it usually comes,
// without P-Asserted-Identity (MD5, SHA-256): verified, and this node's
// assertion added in place, no second parse. Each run starts from the
// request as it arrived (restore, whose own cost is the "restore" line:
// subtract it). "+incoming-PAI" is the request carrying one (the one the
// previous run added): stripped, which parses the message again.
func BenchmarkAuthCacheHit(b *testing.B) {
	for _, alg := range []sipcore.Algorithm{sipcore.AlgMD5, sipcore.AlgSHA256} {
		b.Run(alg.String(), func(b *testing.B) {
			r := newHitRig(b, alg)
			b.ReportAllocs()
			for b.Loop() {
				r.restore()
				if r.st.Process(&r.ctx) != pipeline.Continue {
					b.Fatal("not verified")
				}
			}
			if r.st.core.cnt.Get(cUnasserted) != 0 {
				b.Fatal("requests went on without this node's P-Asserted-Identity")
			}
		})
		b.Run(alg.String()+"+incoming-PAI", func(b *testing.B) {
			r := newHitRig(b, alg)
			b.ReportAllocs()
			for b.Loop() {
				if r.st.Process(&r.ctx) != pipeline.Continue {
					b.Fatal("not verified")
				}
			}
		})
	}
	b.Run("restore", func(b *testing.B) {
		r := newHitRig(b, sipcore.AlgMD5)
		b.ReportAllocs()
		for b.Loop() {
			r.restore()
		}
	})
}

func digestHex(alg sipcore.Algorithm, s string) string {
	switch alg {
	case sipcore.AlgSHA256:
		x := sha256.Sum256([]byte(s))
		return hex.EncodeToString(x[:])
	}
	x := md5.Sum([]byte(s))
	return hex.EncodeToString(x[:])
}
