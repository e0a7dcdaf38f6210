package redisstore_test

import (
	"context"
	"testing"
	"time"

	"github.com/redis/rueidis"

	"sipedge/internal/redistest"
	"sipedge/pipeline"
	"sipedge/pipeline/stages/auth"
	"sipedge/pipeline/stages/auth/authtest"
	"sipedge/pipeline/stages/auth/redisstore"
)

// Thin names over redistest, which the appliance's tests share.
type redisServer struct{ *redistest.Server }

func startRedis(t *testing.T, addr string) *redisServer {
	return &redisServer{redistest.StartOn(t, addr)}
}

func (s *redisServer) stop()                              { s.Stop() }
func (s *redisServer) client(t *testing.T) rueidis.Client { return s.Client(t) }

func freePort(t *testing.T) string { return redistest.FreeAddr(t) }

func setUser(t *testing.T, c rueidis.Client, user, password string) {
	redistest.SetUser(t, c, redisstore.DefaultPrefix, authtest.Realm, user, password)
}

func await[T any](t *testing.T, ch <-chan T, within time.Duration, what string) T {
	t.Helper()
	select {
	case v := <-ch:
		return v
	case <-time.After(within):
		t.Fatalf("%s did not happen within %v", what, within)
	}
	var zero T
	return zero
}

func TestRedisStore(t *testing.T) {
	srv := startRedis(t, freePort(t))
	rc := srv.client(t)
	setUser(t, rc, "alice", "one")

	invs := make(chan string, 64)
	states := make(chan bool, 64)
	st, err := redisstore.New(redisstore.Options{
		Addresses: []string{srv.Addr}, MinBackoff: 20 * time.Millisecond, MaxBackoff: 200 * time.Millisecond,
		OnInvalidate: func(_, user string) { invs <- user },
		OnState:      func(up bool) { states <- up },
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(st.Close)
	if !await(t, states, 5*time.Second, "connecting") {
		t.Fatal("first state is not connected")
	}
	r := authtest.NewRig(t, auth.Config{Store: st}, pipeline.Config{})
	alice := &authtest.Client{User: "alice", Password: "one"}
	nonce := authtest.Nonce(t, r.Expect(407, alice.Request("INVITE", "")))

	// Miss, then hit.
	r.Expect(0, alice.Request("INVITE", nonce))
	r.Expect(0, alice.Request("INVITE", nonce))
	if m := r.A.Metrics(); m.Lookups != 1 || m.CacheHits != 1 {
		t.Fatalf("metrics %+v: want one lookup then a hit", m)
	}

	// A password change on Redis is pushed within 1s.
	setUser(t, rc, "alice", "two")
	if u := await(t, invs, time.Second, "the invalidation of alice's changed password"); u != "alice" {
		t.Fatalf("invalidation for %q", u)
	}
	r.Expect(403, alice.Request("INVITE", nonce))
	alice.Password = "two"
	r.Expect(0, alice.Request("INVITE", nonce))

	// Deletion is pushed too; the user is then absent.
	if err := rc.Do(context.Background(), rc.B().Del().Key(st.Key(authtest.Realm, "alice")).Build()).Error(); err != nil {
		t.Fatal(err)
	}
	await(t, invs, time.Second, "the invalidation of alice's deletion")
	r.Expect(403, alice.Request("INVITE", nonce))

	// Creating a user cached as absent is pushed as well.
	setUser(t, rc, "alice", "three")
	await(t, invs, time.Second, "the invalidation of alice's creation")
	alice.Password = "three"
	r.Expect(0, alice.Request("INVITE", nonce))

	// Redis stops: cached users keep working, the others get the fallback.
	setUser(t, rc, "bob", "pw")
	await(t, invs, time.Second, "bob's invalidation")
	bob := &authtest.Client{User: "bob", Password: "pw"}
	bobNonce := authtest.Nonce(t, r.Expect(407, bob.Request("INVITE", "")))
	r.Expect(0, bob.Request("INVITE", bobNonce))
	if len(invs) != 0 {
		t.Errorf("%d more invalidations than changes: each must be pushed once", len(invs))
	}
	srv.stop()
	if await(t, states, 5*time.Second, "noticing Redis is gone") {
		t.Fatal("state after the stop is connected")
	}
	for i := 0; i < 3; i++ {
		r.Expect(0, bob.Request("INVITE", bobNonce))
		r.Expect(0, alice.Request("INVITE", nonce))
	}
	carol := &authtest.Client{User: "carol", Password: "pw"}
	carolNonce := authtest.Nonce(t, r.Expect(407, carol.Request("INVITE", "")))
	r.Expect(503, carol.Request("INVITE", carolNonce))
	if m := r.A.Metrics(); m.StoreErrors == 0 || m.StoreErrorAnswers != 1 {
		t.Fatalf("metrics %+v: want the store error counted", m)
	}

	// Redis comes back (empty: no persistence): picked up again, and what
	// was cached before is dropped, since changes may have been missed.
	srv = startRedis(t, srv.Addr)
	rc = srv.client(t)
	setUser(t, rc, "carol", "pw")
	if !await(t, states, 10*time.Second, "reconnecting") {
		t.Fatal("state after the restart is not connected")
	}
	r.Expect(0, carol.Request("INVITE", carolNonce))
	r.Expect(403, bob.Request("INVITE", bobNonce)) // gone with the old server

	if st.Reconnections() != 1 {
		t.Errorf("reconnections %d, want 1", st.Reconnections())
	}
	setUser(t, rc, "bob", "pw")
	// carol's change may have been pushed too, if the store was back first.
	for u := ""; u != "bob"; {
		u = await(t, invs, time.Second, "bob's invalidation after the restart")
	}
	r.Expect(0, bob.Request("INVITE", bobNonce))
}

func TestRedisStoreRejectsBadOptions(t *testing.T) {
	if _, err := redisstore.New(redisstore.Options{}); err == nil {
		t.Error("no address accepted")
	}
	if _, err := redisstore.New(redisstore.Options{Addresses: []string{"localhost"}}); err == nil {
		t.Error("address without port accepted")
	}
}
