package auth_test

import (
	"net/netip"
	"regexp"
	"strings"
	"testing"

	"sipedge/pipeline/stages/auth"
	"sipedge/pipeline/stages/auth/authtest"
	"sipedge/sipcore"
)

var (
	callIDRE = regexp.MustCompile(`Call-ID: [^\r]*`)
	branchRE = regexp.MustCompile(`branch=[^;\r]*`)
	toTagRE  = regexp.MustCompile(`;tag=[0-9a-f]+`)
	cseqRE   = regexp.MustCompile(`CSeq: [0-9]+`)
)

// A captured authenticated INVITE or REGISTER cannot be played again: not
// in a new call, not from another address, not with the same nonce-count.
func TestReplayRefused(t *testing.T) {
	for _, method := range []string{"INVITE", "REGISTER"} {
		t.Run(method, func(t *testing.T) {
			challenge := 407
			if method == "REGISTER" {
				challenge = 401
			}
			st := newFakeStore(t, map[string]string{"alice": "pw"})
			r := rigWith(t, st, nil)
			c := &authtest.Client{User: "alice", Password: "pw"}
			nonce := authtest.Nonce(t, r.Expect(challenge, c.Request(method, "")))
			captured := c.Request(method, nonce)
			r.Expect(0, captured)
			// The same datagram again is a retransmission of the same
			// transaction: forwarded again (the backend absorbs it).
			r.Expect(0, captured)

			// New Call-ID, same credentials.
			newCall := callIDRE.ReplaceAllString(captured, "Call-ID: replayed-1@evil")
			resp := r.Expect(challenge, newCall)
			if strings.Contains(resp, "stale=true") {
				t.Errorf("a nonce of another call got stale=true:\n%s", resp)
			}
			// Same nonce and nc in a new transaction (new branch).
			newTx := branchRE.ReplaceAllString(captured, "branch=z9hG4bKreplay1")
			r.Expect(challenge, newTx)
			// The captured datagram from another address.
			out := r.Send(netip.MustParseAddrPort("198.51.100.7:5060"), captured)
			if len(out) != 1 {
				t.Fatalf("replay from elsewhere: %d datagrams", len(out))
			}
			if _, code := authtest.Status(t, out[0]); code != challenge {
				t.Fatalf("replay from elsewhere: status %d, want %d", code, challenge)
			}
			// The captured datagram as is, from the caller's address but
			// another port: not a retransmission of the caller's.
			out = r.Send(netip.MustParseAddrPort("203.0.113.9:40999"), captured)
			if len(out) != 1 {
				t.Fatalf("replay from another port: %d datagrams", len(out))
			}
			if _, code := authtest.Status(t, out[0]); code != challenge {
				t.Fatalf("replay from another port: status %d, want %d", code, challenge)
			}
			// The honest client goes on with the next nonce-count.
			r.Expect(0, c.Request(method, nonce))

			m := r.A.Metrics()
			if m.Successes != 3 || m.Replays != 2 || m.InvalidNonces != 2 {
				t.Errorf("metrics %+v: want 3 successes (one a retransmission), 2 replays, 2 invalid nonces", m)
			}
			if n := r.Sink.Count.Load(); n != 0 {
				t.Errorf("%d failures reported: replays and foreign nonces must not count (their source can be forged)", n)
			}
		})
	}
}

// RFC 2069 answers (no qop, so no nc) and algorithms not configured are
// challenged again, never verified.
func TestOnlyConfiguredAnswersAccepted(t *testing.T) {
	st := newFakeStore(t, map[string]string{"alice": "pw"})
	r := rigWith(t, st, func(c *auth.Config) { c.Algorithms = []sipcore.Algorithm{sipcore.AlgSHA256} })
	c := &authtest.Client{User: "alice", Password: "pw", Alg: sipcore.AlgMD5}
	nonce := authtest.Nonce(t, r.Expect(407, c.Request("INVITE", "")))
	resp := r.Expect(407, c.Request("INVITE", nonce))
	if strings.Contains(resp, "MD5") {
		t.Errorf("MD5 offered when only SHA-256 is configured:\n%s", resp)
	}
	c.Alg = sipcore.AlgSHA256
	noQop := c.Request("INVITE", nonce)
	noQop = regexp.MustCompile(`, qop=auth, nc=[0-9a-f]+, cnonce="[^"]*"`).ReplaceAllString(noQop, "")
	r.Expect(407, noQop)
	if m := r.A.Metrics(); m.Rechallenged != 2 || m.Successes != 0 || st.lookups.Load() != 0 {
		t.Errorf("metrics %+v, lookups %d: want 2 re-challenges and no lookup", m, st.lookups.Load())
	}
	r.Expect(0, c.Request("INVITE", nonce))
}

// An unknown user and a wrong password get the same answer: user names
// cannot be probed.
func TestNoUsernameOracle(t *testing.T) {
	st := newFakeStore(t, map[string]string{"alice": "pw"})
	r := rigWith(t, st, nil)
	answer := func(c *authtest.Client) string {
		nonce := authtest.Nonce(t, r.Expect(407, c.Request("INVITE", "")))
		resp := r.Expect(403, c.Request("INVITE", nonce))
		resp = toTagRE.ReplaceAllString(resp, "")
		resp = branchRE.ReplaceAllString(resp, "")
		resp = callIDRE.ReplaceAllString(resp, "")
		resp = cseqRE.ReplaceAllString(resp, "")
		return strings.ReplaceAll(resp, c.User, "USER")
	}
	wrong := answer(&authtest.Client{User: "alice", Password: "guess"})
	for _, c := range []*authtest.Client{
		{User: "mallory", Password: "guess"},
		{User: "alice", Password: "guess", Alg: sipcore.AlgSHA256},
	} {
		// Twice: once from the store, once from the (negative) cache.
		for i := 0; i < 2; i++ {
			c.Call++
			if got := answer(c); got != wrong {
				t.Errorf("%s (%s) answered\n%s\nwhere a wrong password is answered\n%s", c.User, c.Alg, got, wrong)
			}
		}
	}
}

func TestFromMustMatch(t *testing.T) {
	st := newFakeStore(t, map[string]string{"alice": "pw"})
	r := rigWith(t, st, func(c *auth.Config) { c.FromMustMatch = true })
	c := &authtest.Client{User: "alice", Password: "pw"}
	nonce := authtest.Nonce(t, r.Expect(407, c.Request("INVITE", "")))
	asBob := strings.Replace(c.Request("INVITE", nonce), "From: <sip:alice@", "From: <sip:bob@", 1)
	resp := r.Expect(403, asBob)
	if !strings.Contains(resp, "From user") {
		t.Errorf("403 does not say why:\n%s", resp)
	}
	r.Expect(0, c.Request("INVITE", nonce))
	if m := r.A.Metrics(); m.FromMismatch != 1 || m.Successes != 1 {
		t.Errorf("metrics %+v: want 1 From mismatch, 1 success", m)
	}
}
