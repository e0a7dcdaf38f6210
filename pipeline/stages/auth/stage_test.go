package auth_test

import (
	"context"
	"errors"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"sipedge/pipeline"
	"sipedge/pipeline/stages/auth"
	"sipedge/pipeline/stages/auth/authtest"
	"sipedge/sipcore"
)

// fakeStore counts lookups; users listed in hang block until released.
type fakeStore struct {
	mu      sync.Mutex
	users   map[string]auth.Entry
	lookups atomic.Int64
	fail    atomic.Bool
	hang    map[string]chan struct{}
}

func newFakeStore(t *testing.T, users map[string]string) *fakeStore {
	s := &fakeStore{users: map[string]auth.Entry{}, hang: map[string]chan struct{}{}}
	for u, p := range users {
		s.users[u] = authtest.Entry(t, u, p)
	}
	return s
}

func (s *fakeStore) Name() string { return "fake" }

func (s *fakeStore) Lookup(ctx context.Context, realm, user string) (auth.Entry, error) {
	s.lookups.Add(1)
	s.mu.Lock()
	h := s.hang[user]
	e, ok := s.users[user]
	s.mu.Unlock()
	if h != nil {
		select {
		case <-h:
		case <-ctx.Done():
			return auth.Entry{}, ctx.Err()
		}
	}
	if s.fail.Load() {
		return auth.Entry{}, errors.New("fake store down")
	}
	if !ok || realm != authtest.Realm {
		return auth.Entry{}, auth.ErrNotFound
	}
	return e, nil
}

func (s *fakeStore) set(t *testing.T, user, password string) {
	s.mu.Lock()
	s.users[user] = authtest.Entry(t, user, password)
	s.mu.Unlock()
}

func rigWith(t *testing.T, store auth.Store, mod func(*auth.Config)) *authtest.Rig {
	cfg := auth.Config{Store: store}
	if mod != nil {
		mod(&cfg)
	}
	return authtest.NewRig(t, cfg, pipeline.Config{})
}

func TestChallengeWithoutCredentials(t *testing.T) {
	st := newFakeStore(t, map[string]string{"alice": "pw"})
	r := rigWith(t, st, nil)
	c := &authtest.Client{User: "alice", Password: "pw"}
	resp := r.Expect(407, c.Request("INVITE", ""))
	if !strings.Contains(resp, `Proxy-Authenticate: Digest realm="example.com", nonce="`) ||
		!strings.Contains(resp, "algorithm=SHA-256") || !strings.Contains(resp, "algorithm=MD5") {
		t.Fatalf("challenge lacks SHA-256 and MD5 offers:\n%s", resp)
	}
	if strings.Index(resp, "algorithm=SHA-256") > strings.Index(resp, "algorithm=MD5") {
		t.Errorf("SHA-256 must be offered before MD5 (RFC 8760):\n%s", resp)
	}
	resp = r.Expect(401, c.Request("REGISTER", ""))
	if !strings.Contains(resp, "WWW-Authenticate: Digest") {
		t.Fatalf("REGISTER challenge is not WWW-Authenticate:\n%s", resp)
	}
	// Methods not configured pass untouched.
	r.Expect(0, c.Request("OPTIONS", ""))
	if n := st.lookups.Load(); n != 0 {
		t.Errorf("%d store lookups for requests without credentials, want none", n)
	}
	if m := r.A.Metrics(); m.Challenges != 2 || m.Failures != 0 {
		t.Errorf("metrics %+v", m)
	}
}

func TestVerifyEveryAlgorithm(t *testing.T) {
	for _, alg := range []sipcore.Algorithm{sipcore.AlgMD5, sipcore.AlgMD5Sess, sipcore.AlgSHA256, sipcore.AlgSHA256Sess} {
		t.Run(alg.String(), func(t *testing.T) {
			st := newFakeStore(t, map[string]string{"Mufasa": "Circle of Life"})
			r := rigWith(t, st, func(c *auth.Config) { c.Algorithms = []sipcore.Algorithm{alg} })
			c := &authtest.Client{User: "Mufasa", Password: "Circle of Life", Alg: alg}
			nonce := authtest.Nonce(t, r.Expect(407, c.Request("INVITE", "")))
			r.Expect(0, c.Request("INVITE", nonce)) // miss: parked, fetched, verified
			r.Expect(0, c.Request("INVITE", nonce)) // hit
			nonce = authtest.Nonce(t, r.Expect(401, c.Request("REGISTER", "")))
			r.Expect(0, c.Request("REGISTER", nonce))
			m := r.A.Metrics()
			if st.lookups.Load() != 1 || m.CacheMisses != 1 || m.CacheHits != 2 || m.Successes != 3 || m.Parked != 1 {
				t.Errorf("lookups %d, metrics %+v: want 1 miss then hits", st.lookups.Load(), m)
			}
			bad := &authtest.Client{User: "Mufasa", Password: "circle of life", Alg: alg}
			r.Expect(403, bad.Request("INVITE", nonce))
			if r.Sink.Count.Load() != 1 || r.Sink.Srcs[0] != authtest.Caller.Addr() {
				t.Errorf("failure sink got %v, want the caller once", r.Sink.Srcs)
			}
		})
	}
}

func TestStaleNonceAndReplay(t *testing.T) {
	st := newFakeStore(t, map[string]string{"alice": "pw"})
	r := rigWith(t, st, func(c *auth.Config) { c.NonceMaxAge = time.Minute })
	c := &authtest.Client{User: "alice", Password: "pw"}
	nonce := authtest.Nonce(t, r.Expect(407, c.Request("INVITE", "")))
	req := c.Request("INVITE", nonce)
	r.Expect(0, req)
	r.Clock.Advance(2 * time.Minute)
	// The same right credentials, replayed after expiry: never accepted
	// again, only re-challenged with stale=true.
	for i := 0; i < 2; i++ {
		resp := r.Expect(407, req)
		if !strings.Contains(resp, "stale=true") {
			t.Fatalf("expired nonce challenged without stale=true:\n%s", resp)
		}
	}
	// A wrong password on a stale nonce is a failure, not a stale.
	bad := &authtest.Client{User: "alice", Password: "guess"}
	r.Expect(403, bad.Request("INVITE", nonce))
	// A forged nonce: failure and a fresh challenge without stale.
	resp := r.Expect(407, c.Request("INVITE", "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"))
	if strings.Contains(resp, "stale=true") {
		t.Errorf("forged nonce got stale=true")
	}
	if m := r.A.Metrics(); m.Stale != 2 || m.Failures != 1 || m.Successes != 1 || m.InvalidNonces != 1 {
		t.Errorf("metrics %+v, want 2 stale, 1 failure (the forged nonce is not one), 1 success, 1 invalid nonce", m)
	}
}

func TestURIAndRealmChecks(t *testing.T) {
	st := newFakeStore(t, map[string]string{"alice": "pw"})
	r := rigWith(t, st, nil)
	c := &authtest.Client{User: "alice", Password: "pw"}
	nonce := authtest.Nonce(t, r.Expect(407, c.Request("INVITE", "")))
	resp := r.Expect(400, c.RequestURI("INVITE", "sip:bob@example.com", "sip:carol@example.com", nonce))
	if !strings.Contains(resp, "uri") {
		t.Errorf("400 does not say the uri is wrong:\n%s", resp)
	}
	// Credentials for another realm are someone else's: challenge.
	req := strings.Replace(c.Request("INVITE", nonce), `realm="example.com"`, `realm="other.net"`, 1)
	r.Expect(407, req)
	// Malformed credentials: 400 and a failure.
	req = strings.Replace(c.Request("INVITE", nonce), `nc=0000000`, `nc=`, 1)
	r.Expect(400, req)
	if got := r.Sink.Count.Load(); got != 2 {
		t.Errorf("failures reported %d, want 2 (uri, malformed)", got)
	}
	if st.lookups.Load() != 0 {
		t.Errorf("lookups %d, want none before the credentials are sound", st.lookups.Load())
	}
	// With the check off, the wrong uri verifies.
	r2 := rigWith(t, st, func(c *auth.Config) { c.IgnoreURI = true })
	nonce = authtest.Nonce(t, r2.Expect(407, c.Request("INVITE", "")))
	r2.Expect(0, c.RequestURI("INVITE", "sip:bob@example.com", "sip:carol@example.com", nonce))
}

func TestTrustedSourcesSkip(t *testing.T) {
	st := newFakeStore(t, nil)
	r := rigWith(t, st, func(c *auth.Config) {
		c.Trusted = []netipPrefix{mustPrefix("203.0.113.0/24")}
	})
	c := &authtest.Client{User: "x"}
	r.Expect(0, c.Request("INVITE", ""))
	if m := r.A.Metrics(); m.Trusted != 1 || m.Challenges != 0 {
		t.Errorf("metrics %+v, want one trusted pass", m)
	}
}

func TestNegativeCache(t *testing.T) {
	st := newFakeStore(t, nil)
	r := rigWith(t, st, func(c *auth.Config) { c.NegativeTTL = 10 * time.Second })
	c := &authtest.Client{User: "mallory", Password: "guess"}
	nonce := authtest.Nonce(t, r.Expect(407, c.Request("INVITE", "")))
	for i := 0; i < 20; i++ {
		c.Password = "guess" + strings.Repeat("x", i)
		r.Expect(403, c.Request("INVITE", nonce))
	}
	if n := st.lookups.Load(); n != 1 {
		t.Fatalf("%d lookups for 20 attempts on an absent user, want 1", n)
	}
	st.set(t, "mallory", "finally")
	r.Clock.Advance(11 * time.Second)
	c.Password = "finally"
	nonce = authtest.Nonce(t, r.Expect(407, c.Request("INVITE", "")))
	r.Expect(0, c.Request("INVITE", nonce))
	if n := st.lookups.Load(); n != 2 {
		t.Fatalf("%d lookups, want a second one once the negative entry expired", n)
	}
	if m := r.A.Metrics(); m.NegativeHits != 19 || m.Failures != 20 {
		t.Errorf("metrics %+v", m)
	}
}

func TestInvalidate(t *testing.T) {
	st := newFakeStore(t, map[string]string{"alice": "old"})
	r := rigWith(t, st, nil)
	c := &authtest.Client{User: "alice", Password: "old"}
	nonce := authtest.Nonce(t, r.Expect(407, c.Request("INVITE", "")))
	r.Expect(0, c.Request("INVITE", nonce))
	st.set(t, "alice", "new")
	r.Expect(0, c.Request("INVITE", nonce)) // cached: the change is not known yet
	r.A.Invalidate([]byte(authtest.Realm), []byte("alice"))
	r.Expect(403, c.Request("INVITE", nonce))
	c.Password = "new"
	r.Expect(0, c.Request("INVITE", nonce))
	r.A.InvalidateAll()
	r.Expect(0, c.Request("INVITE", nonce))
	if n := st.lookups.Load(); n != 3 {
		t.Errorf("%d lookups, want 3 (first, after invalidate, after invalidate-all)", n)
	}
	if m := r.A.Metrics(); m.Invalidations != 1 || m.InvalidateAlls != 1 || m.Flushes != 1 {
		t.Errorf("metrics %+v", m)
	}
}

func TestStoreErrorFallback(t *testing.T) {
	st := newFakeStore(t, map[string]string{"alice": "pw"})
	st.fail.Store(true)
	r := rigWith(t, st, func(c *auth.Config) { c.RetryAfter = 9 })
	c := &authtest.Client{User: "alice", Password: "pw"}
	nonce := authtest.Nonce(t, r.Expect(407, c.Request("INVITE", "")))
	resp := r.Expect(503, c.Request("INVITE", nonce))
	if !strings.Contains(resp, "Retry-After: 9") {
		t.Errorf("503 without Retry-After:\n%s", resp)
	}
	st.fail.Store(false)
	r.Expect(0, c.Request("INVITE", nonce)) // not cached negatively
	if m := r.A.Metrics(); m.StoreErrors != 1 || m.StoreErrorAnswers != 1 {
		t.Errorf("metrics %+v", m)
	}
}

// A store error with fallback "drop" is counted as a helper error, where
// it happened, never as a park timeout (the store did answer in time).
func TestStoreErrorDropCountedAsHelperError(t *testing.T) {
	st := newFakeStore(t, map[string]string{"alice": "pw"})
	st.fail.Store(true)
	r := rigWith(t, st, func(c *auth.Config) { c.DropOnStoreError = true })
	c := &authtest.Client{User: "alice", Password: "pw"}
	nonce := authtest.Nonce(t, r.Expect(407, c.Request("INVITE", "")))
	if out := r.Send(authtest.Caller, c.Request("INVITE", nonce)); len(out) != 0 {
		t.Fatalf("a store error with fallback drop sent %d datagrams", len(out))
	}
	s := r.W.Stats()
	if s.Drops[pipeline.DropHelperError] != 1 || s.Drops[pipeline.DropParkTimeout] != 0 || s.ParkTimeouts != 0 || s.Resumed != 1 {
		t.Errorf("helper-error drops %d, park-timeout drops %d, timeouts %d, resumed %d", s.Drops[pipeline.DropHelperError], s.Drops[pipeline.DropParkTimeout], s.ParkTimeouts, s.Resumed)
	}
	for _, ss := range s.Stages {
		if ss.Name == "auth" && ss.Verdicts[pipeline.Drop] != 1 {
			t.Errorf("the auth stage counted %d drops, want the resumed message's", ss.Verdicts[pipeline.Drop])
		}
	}
}

func TestDeadlineGivesParkFallback(t *testing.T) {
	_, r, c, nonce, release := slowUser(t)
	if out := r.SendNoWait(authtest.Caller, c.Request("INVITE", nonce)); len(out) != 0 {
		t.Fatalf("a parked message produced %d datagrams", len(out))
	}
	r.Clock.Advance(60 * time.Millisecond) // past the 50ms deadline
	out := r.Send(authtest.Caller)
	if len(out) != 1 {
		t.Fatalf("%d datagrams after the deadline, want the 503 fallback", len(out))
	}
	if _, code := authtest.Status(t, out[0]); code != 503 {
		t.Fatalf("fallback %d, want 503", code)
	}
	close(release)
}

// A lookup that hangs holds back neither the worker nor cached users.
func TestSlowStoreNeverStallsWorker(t *testing.T) {
	st := newFakeStore(t, map[string]string{"alice": "pw", "slow": "pw", "bob": "pw"})
	release := make(chan struct{})
	st.hang["slow"] = release
	r := rigWith(t, st, nil)
	alice := &authtest.Client{User: "alice", Password: "pw"}
	nonce := authtest.Nonce(t, r.Expect(407, alice.Request("INVITE", "")))
	r.Expect(0, alice.Request("INVITE", nonce)) // cached now
	slow := &authtest.Client{User: "slow", Password: "pw"}
	slowNonce := authtest.Nonce(t, r.Expect(407, slow.Request("INVITE", "")))
	bob := &authtest.Client{User: "bob", Password: "pw"}
	bobNonce := authtest.Nonce(t, r.Expect(407, bob.Request("INVITE", "")))
	r.SendNoWait(authtest.Caller, slow.Request("INVITE", slowNonce))
	if r.W.Parked() != 1 {
		t.Fatalf("parked %d, want the slow user's request", r.W.Parked())
	}
	var msgs []string
	for i := 0; i < 200; i++ {
		msgs = append(msgs, alice.Request("INVITE", nonce))
	}
	out := r.SendNoWait(authtest.Caller, msgs...)
	if len(out) != 200 || r.W.Parked() != 1 {
		t.Fatalf("forwarded %d of 200 cached-user requests with a lookup hanging (parked %d)", len(out), r.W.Parked())
	}
	// Another uncached user is looked up while the first still hangs.
	got := len(r.SendNoWait(authtest.Caller, bob.Request("INVITE", bobNonce)))
	end := time.Now().Add(5 * time.Second)
	for got == 0 && time.Now().Before(end) {
		got = len(r.SendNoWait(authtest.Caller))
	}
	if got != 1 || r.W.Parked() != 1 {
		t.Fatalf("bob's request: %d datagrams (parked %d): want it answered while slow still hangs", got, r.W.Parked())
	}
	close(release)
	out = r.Send(authtest.Caller)
	if len(out) != 1 {
		t.Fatalf("slow user's request: %d datagrams after release", len(out))
	}
	if m := r.A.Metrics(); m.Successes != 203 {
		t.Errorf("successes %d, want 203", m.Successes)
	}
}

func TestFileStoreNeverParks(t *testing.T) {
	u, err := auth.ParseUsers(strings.NewReader("# users\nalice example.com "+
		sipcore.HA1(sipcore.AlgMD5, "alice", "example.com", "pw")+" -\n"), "users")
	if err != nil {
		t.Fatal(err)
	}
	fs := auth.NewFileStore(u)
	r := rigWith(t, fs, nil)
	c := &authtest.Client{User: "alice", Password: "pw"}
	resp := r.Expect(407, c.Request("INVITE", ""))
	nonce := authtest.Nonce(t, resp)
	r.Expect(0, c.Request("INVITE", nonce))
	// SHA-256 from a user with only MD5 is a 403, as for a user who does
	// not exist: a different answer would tell which names exist.
	c.Alg = sipcore.AlgSHA256
	r.Expect(403, c.Request("INVITE", nonce))
	nobody := &authtest.Client{User: "nobody", Password: "pw"}
	r.Expect(403, nobody.Request("INVITE", authtest.Nonce(t, r.Expect(407, nobody.Request("INVITE", "")))))
	if m := r.A.Metrics(); m.Parked != 0 || m.Lookups != 0 {
		t.Errorf("file store parked %d / looked up %d, want none", m.Parked, m.Lookups)
	}
}

func TestMetricsCountLookups(t *testing.T) {
	st := newFakeStore(t, map[string]string{"alice": "pw"})
	r := rigWith(t, st, nil)
	c := &authtest.Client{User: "alice", Password: "pw"}
	nonce := authtest.Nonce(t, r.Expect(407, c.Request("INVITE", "")))
	r.Expect(0, c.Request("INVITE", nonce))
	m := r.A.Metrics()
	if m.Challenges != 1 || m.Successes != 1 || m.CacheMisses != 1 || m.Lookups != 1 || m.Latency.Count() != 1 {
		t.Errorf("metrics %+v: want 1 challenge, success, miss, lookup and latency sample", m)
	}
}

func TestParseUsersErrors(t *testing.T) {
	md5 := sipcore.HA1(sipcore.AlgMD5, "a", "r", "p")
	in := "# c\n\na r " + md5 + " -\n" + // fine
		"a r " + md5 + " -\n" + // duplicate
		"b r - -\n" + // no hash
		"c r xyz -\n" + // bad hex
		"d r " + md5 + "\n" // 3 fields
	_, err := auth.ParseUsers(strings.NewReader(in), "users")
	if err == nil {
		t.Fatal("accepted")
	}
	for _, want := range []string{"users line 4: user \"a\" in realm \"r\" is already on line 3", "line 5: user \"b\" has neither", "line 6: MD5 HA1", "line 7: want 4 fields"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error lacks %q:\n%v", want, err)
		}
	}
}
