package auth_test

import (
	"fmt"
	"net/netip"
	"testing"
	"time"

	"sipedge/pipeline/stages/auth"
	"sipedge/pipeline/stages/auth/authtest"
)

// pollUntil polls the rig's worker until cond holds, for at most 5s: the
// helper goroutines answer on their own time.
func pollUntil(t *testing.T, r *authtest.Rig, what string, cond func() bool) {
	t.Helper()
	end := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(end) {
			t.Fatalf("after 5s: %s", what)
		}
		r.SendNoWait(authtest.Caller)
	}
}

// slowUser is a rig whose store hangs on user "slow" until release is
// closed, with slow's client and a nonce for it.
func slowUser(t *testing.T) (*fakeStore, *authtest.Rig, *authtest.Client, string, chan struct{}) {
	st := newFakeStore(t, map[string]string{"slow": "pw"})
	release := make(chan struct{})
	st.hang["slow"] = release
	r := rigWith(t, st, nil)
	c := &authtest.Client{User: "slow", Password: "pw"}
	return st, r, c, authtest.Nonce(t, r.Expect(407, c.Request("INVITE", ""))), release
}

// An answer that comes after the deadline still fills the cache: the next
// request of that user is a hit, not another lookup that times out too.
func TestLateAnswerFillsCache(t *testing.T) {
	st, r, c, nonce, release := slowUser(t)
	r.SendNoWait(authtest.Caller, c.Request("INVITE", nonce))
	r.Clock.Advance(60 * time.Millisecond) // past the 50ms deadline
	if out := r.Send(authtest.Caller); len(out) != 1 {
		t.Fatalf("%d datagrams after the deadline, want the 503 fallback", len(out))
	}
	close(release) // the store answers, late
	pollUntil(t, r, "the late answer reaching the cache", func() bool { return r.A.Metrics().CacheEntries == 1 })
	r.Expect(0, c.Request("INVITE", nonce))
	if m := r.A.Metrics(); st.lookups.Load() != 1 || m.CacheHits != 1 {
		t.Errorf("lookups %d, metrics %+v: want the late answer used from the cache", st.lookups.Load(), m)
	}
}

// Concurrent requests of one user make one store lookup.
func TestConcurrentLookupsMerged(t *testing.T) {
	st := newFakeStore(t, map[string]string{"alice": "pw"})
	release := make(chan struct{})
	st.hang["alice"] = release
	r := rigWith(t, st, nil)
	var reqs []string
	for i := 0; i < 5; i++ {
		c := &authtest.Client{User: "alice", Password: "pw", Call: i}
		reqs = append(reqs, c.Request("INVITE", authtest.Nonce(t, r.Expect(407, c.Request("INVITE", "")))))
	}
	r.SendNoWait(authtest.Caller, reqs...)
	if r.W.Parked() != 5 {
		t.Fatalf("parked %d, want 5", r.W.Parked())
	}
	pollUntil(t, r, "four lookups merged into the first", func() bool { return r.A.Metrics().Merged == 4 })
	close(release)
	out := r.Send(authtest.Caller)
	if len(out) != 5 {
		t.Fatalf("%d forwarded, want 5", len(out))
	}
	if n := st.lookups.Load(); n != 1 {
		t.Errorf("%d store lookups for one user, want 1", n)
	}
}

// Random user names from one source park at most MaxParkedPerSource
// lookups; another source still gets its lookups.
func TestParkedLookupsBoundedPerSource(t *testing.T) {
	st := newFakeStore(t, nil)
	release := make(chan struct{})
	defer close(release)
	r := rigWith(t, st, func(c *auth.Config) { c.MaxParkedPerSource = 4 })
	// ask sends user's INVITE from src, answering the challenge, without
	// waiting for parked messages, and returns what came back at once.
	ask := func(src netip.AddrPort, user string) []int {
		c := &authtest.Client{User: user, Password: "x"}
		st.mu.Lock()
		st.hang[user] = release
		st.mu.Unlock()
		ch := r.SendNoWait(src, c.Request("INVITE", ""))
		if len(ch) != 1 {
			t.Fatalf("%s: %d answers to the first INVITE", user, len(ch))
		}
		nonce := authtest.Nonce(t, string(ch[0].Payload))
		var codes []int
		for _, d := range r.SendNoWait(src, c.Request("INVITE", nonce)) {
			_, code := authtest.Status(t, d)
			codes = append(codes, code)
		}
		return codes
	}
	refused := 0
	for i := 0; i < 10; i++ {
		if codes := ask(authtest.Caller, fmt.Sprintf("guess%d", i)); len(codes) == 1 && codes[0] == 503 {
			refused++
		}
	}
	if r.W.Parked() != 4 || refused != 6 {
		t.Fatalf("parked %d, refused %d: want 4 parked, 6 refused with 503", r.W.Parked(), refused)
	}
	if codes := ask(netip.MustParseAddrPort("198.51.100.20:5060"), "carol"); len(codes) != 0 || r.W.Parked() != 5 {
		t.Fatalf("another source: answers %v, parked %d: want its lookup parked", codes, r.W.Parked())
	}
	if m := r.A.Metrics(); m.SourceParkLimit != 6 {
		t.Errorf("source park limit count %d, want 6", m.SourceParkLimit)
	}
}
