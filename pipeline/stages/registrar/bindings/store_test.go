package bindings_test

import (
	"context"
	"testing"
	"time"

	"sipedge/internal/redistest"
	"sipedge/pipeline/stages/registrar/bindings"
)

const aor = "sip:alice@example.com"

func change(id string, exp time.Duration) bindings.Change {
	return bindings.Change{Binding: bindings.Binding{ID: id, Contact: id, Q: 1000, Received: "192.0.2.1:5060", Node: "127.0.0.1:5060"}, Expires: exp}
}

func upd(callID string, cseq uint32, chs ...bindings.Change) *bindings.Update {
	return &bindings.Update{AOR: aor, CallID: callID, CSeq: cseq, Changes: chs, Now: time.Now(), Keep: time.Hour}
}

func apply(t *testing.T, s bindings.Store, u *bindings.Update) bindings.Result {
	t.Helper()
	r, err := s.Apply(context.Background(), u)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func ids(bs []bindings.Binding) []string {
	var out []string
	for _, b := range bs {
		out = append(out, b.ID)
	}
	return out
}

func same(a []string, b ...string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// storeRules is every registrar rule a Store applies, run against each
// store: the Redis script must agree with the reference.
func storeRules(t *testing.T, s bindings.Store) {
	t.Run("add-refresh-remove", func(t *testing.T) {
		r := apply(t, s, upd("c1", 1, change("sip:a@192.0.2.1", time.Minute)))
		if r.Outcome != bindings.Applied || r.Written != 1 || !same(ids(r.Bindings), "sip:a@192.0.2.1") {
			t.Fatalf("add: %+v", r)
		}
		if left := time.Until(r.Bindings[0].Expires); left < 50*time.Second || left > time.Minute+time.Second {
			t.Fatalf("expiry in %v, want about 1m", left)
		}
		// RFC 3261 10.3 step 7: a refresh with a higher CSeq moves the
		// expiry only.
		r = apply(t, s, upd("c1", 2, change("sip:a@192.0.2.1", 2*time.Minute)))
		if r.Written != 0 || r.Refreshed != 1 || time.Until(r.Bindings[0].Expires) < 110*time.Second {
			t.Fatalf("refresh: %+v", r)
		}
		// Same Call-ID, lower CSeq: aborted.
		r = apply(t, s, upd("c1", 0, change("sip:a@192.0.2.1", 0)))
		if r.Outcome != bindings.OutOfOrder || len(r.Bindings) != 1 {
			t.Fatalf("out of order: %+v", r)
		}
		// The same CSeq again is a retransmission of the write (no
		// transaction absorbs it on a stateless edge): the same answer,
		// nothing changed.
		r = apply(t, s, upd("c1", 1, change("sip:a@192.0.2.1", 0)))
		if r.Outcome != bindings.Applied || r.Removed != 0 || len(r.Bindings) != 1 {
			t.Fatalf("retransmission: %+v", r)
		}
		// Another Call-ID may remove it whatever its CSeq.
		r = apply(t, s, upd("c2", 1, change("sip:a@192.0.2.1", 0)))
		if r.Outcome != bindings.Applied || r.Removed != 1 || len(r.Bindings) != 0 {
			t.Fatalf("remove: %+v", r)
		}
		if bs, err := s.Lookup(context.Background(), aor); err != nil || len(bs) != 0 {
			t.Fatalf("lookup after remove: %v %v", bs, err)
		}
	})
	t.Run("changed-contact-is-rewritten", func(t *testing.T) {
		apply(t, s, upd("c3", 1, change("x", time.Minute)))
		ch := change("x", time.Minute)
		ch.Binding.Received = "192.0.2.9:5060" // the UA moved
		r := apply(t, s, upd("c3", 2, ch))
		if r.Written != 1 || r.Refreshed != 0 || r.Bindings[0].Received != "192.0.2.9:5060" || r.Bindings[0].CSeq != 2 {
			t.Fatalf("%+v", r)
		}
		apply(t, s, &bindings.Update{AOR: aor, CallID: "c3", CSeq: 3, Star: true, Now: time.Now()})
	})
	t.Run("star-and-order", func(t *testing.T) {
		apply(t, s, upd("c4", 5, change("a", time.Minute), change("b", time.Minute)))
		if r := apply(t, s, &bindings.Update{AOR: aor, CallID: "c4", CSeq: 4, Star: true, Now: time.Now()}); r.Outcome != bindings.OutOfOrder {
			t.Fatalf("star with old CSeq: %+v", r)
		}
		r := apply(t, s, &bindings.Update{AOR: aor, CallID: "c4", CSeq: 6, Star: true, Now: time.Now()})
		if r.Outcome != bindings.Applied || r.Removed != 2 || len(r.Bindings) != 0 {
			t.Fatalf("star: %+v", r)
		}
	})
	t.Run("max-contacts", func(t *testing.T) {
		u := upd("c5", 1, change("a", time.Minute), change("b", time.Minute))
		u.MaxContacts = 2
		apply(t, s, u)
		u = upd("c6", 1, change("c", time.Minute))
		u.MaxContacts = 2
		if r := apply(t, s, u); r.Outcome != bindings.TooMany || len(r.Bindings) != 2 {
			t.Fatalf("refuse: %+v", r)
		}
		u.EvictOldest = true
		u.Now = time.Now().Add(5 * time.Millisecond)
		r := apply(t, s, u)
		if r.Outcome != bindings.Applied || r.Evicted != 1 || len(r.Bindings) != 2 || r.Bindings[0].ID != "c" {
			t.Fatalf("evict: %+v %v", r, ids(r.Bindings))
		}
		apply(t, s, &bindings.Update{AOR: aor, CallID: "c9", CSeq: 1, Star: true, Now: time.Now()})
	})
	t.Run("q-then-newest", func(t *testing.T) {
		lo, hi := change("lo", time.Minute), change("hi", time.Minute)
		lo.Binding.Q, hi.Binding.Q = 500, 900
		apply(t, s, upd("c7", 1, lo, hi))
		bs, err := s.Lookup(context.Background(), aor)
		if err != nil || !same(ids(bs), "hi", "lo") {
			t.Fatalf("%v %v", ids(bs), err)
		}
		apply(t, s, &bindings.Update{AOR: aor, CallID: "c7", CSeq: 2, Star: true, Now: time.Now()})
	})
}

func TestMemoryRules(t *testing.T) { storeRules(t, bindings.NewMemory()) }

func newRedis(t *testing.T, addrs ...string) *bindings.Redis {
	t.Helper()
	s, err := bindings.NewRedis(bindings.RedisOptions{Addresses: addrs})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	end := time.Now().Add(10 * time.Second)
	for !s.Connected() {
		if time.Now().After(end) {
			t.Fatal("the store did not connect within 10s")
		}
		time.Sleep(10 * time.Millisecond) // the connection has no event
	}
	return s
}

func TestRedisRules(t *testing.T) {
	srv := redistest.Start(t)
	storeRules(t, newRedis(t, srv.Addr))
}

// A refresh that changes nothing but the expiry is one PEXPIRE: no HSET,
// no SET (INFO commandstats counts commands run inside scripts).
func TestRedisRefreshWritesNothing(t *testing.T) {
	srv := redistest.Start(t)
	s := newRedis(t, srv.Addr)
	for i := 0; i < 50; i++ {
		u := upd("storm", 1, change("sip:p@192.0.2.1", time.Minute))
		u.AOR = "sip:p" + string(rune('a'+i%26)) + string(rune('a'+i/26)) + "@example.com"
		apply(t, s, u)
	}
	before, err := srv.CommandCalls()
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 50; i++ {
		u := upd("storm", 2, change("sip:p@192.0.2.1", time.Minute))
		u.AOR = "sip:p" + string(rune('a'+i%26)) + string(rune('a'+i/26)) + "@example.com"
		if r := apply(t, s, u); r.Refreshed != 1 || r.Written != 0 {
			t.Fatalf("%+v", r)
		}
	}
	after, err := srv.CommandCalls()
	if err != nil {
		t.Fatal(err)
	}
	for _, w := range []string{"hset", "set", "del", "hdel"} {
		if after[w] != before[w] {
			t.Errorf("%s ran %d times during unchanged refreshes", w, after[w]-before[w])
		}
	}
	if d := after["pexpire"] - before["pexpire"]; d < 50 {
		t.Errorf("pexpire ran %d times, want at least 50 (one per refresh)", d)
	}
}

// Another edge's cache hears of every change and of expiry, from Redis.
func TestRedisInvalidationsAndExpiry(t *testing.T) {
	srv := redistest.Start(t)
	a := newRedis(t, srv.Addr)
	b := newRedis(t, srv.Addr)
	heard := make(chan string, 64)
	b.Notify(func(aor string) { heard <- aor })
	u := upd("e1", 1, change("sip:e@192.0.2.1", 300*time.Millisecond))
	apply(t, a, u)
	await(t, heard, aor, "invalidation after a write")
	// Redis expires the binding by itself and pushes the invalidation.
	await(t, heard, aor, "invalidation on expiry")
	end := time.Now().Add(3 * time.Second)
	for {
		bs, err := b.Lookup(context.Background(), aor)
		if err != nil {
			t.Fatal(err)
		}
		if len(bs) == 0 {
			break
		}
		if time.Now().After(end) {
			t.Fatalf("binding still there after its expiry: %+v", bs)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func await(t *testing.T, ch <-chan string, want, what string) {
	t.Helper()
	deadline := time.After(5 * time.Second)
	for {
		select {
		case got := <-ch:
			if got == want {
				return
			}
		case <-deadline:
			t.Fatalf("%s: not heard within 5s", what)
		}
	}
}

// A binding past its expiry is gone, and the next write of its AOR counts
// it as expired.
func expiryRule(t *testing.T, s bindings.Store, wait func()) {
	u := upd("x1", 1, change("sip:gone@192.0.2.1", 50*time.Millisecond), change("sip:stays@192.0.2.1", time.Minute))
	apply(t, s, u)
	wait()
	r := apply(t, s, upd("x2", 1, change("sip:new@192.0.2.1", time.Minute)))
	if r.Expired != 1 || len(r.Bindings) != 2 {
		t.Fatalf("%+v %v", r, ids(r.Bindings))
	}
}

func TestExpiryCounted(t *testing.T) {
	t.Run("memory", func(t *testing.T) {
		m := bindings.NewMemory()
		expiryRule(t, m, func() { time.Sleep(60 * time.Millisecond) }) // the Memory store reads the wall clock
	})
	t.Run("redis", func(t *testing.T) {
		srv := redistest.Start(t)
		// Redis's own TTL: wait until it says the key is gone.
		expiryRule(t, newRedis(t, srv.Addr), func() {
			end := time.Now().Add(5 * time.Second)
			for {
				if v, err := srv.Cmd("EXISTS", bindings.DefaultPrefix+"{"+aor+"}:e:sip:gone@192.0.2.1"); err == nil && v == "0" {
					return
				}
				if time.Now().After(end) {
					t.Fatal("the binding did not expire in Redis within 5s")
				}
				time.Sleep(10 * time.Millisecond)
			}
		})
	})
}
