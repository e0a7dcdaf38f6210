package authtest

import (
	"crypto/md5"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"net/netip"
	"regexp"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"sipedge/pipeline"
	"sipedge/pipeline/chain"
	"sipedge/pipeline/memport"
	"sipedge/pipeline/stages/auth"
	"sipedge/sipcore"
)

// Addresses of the rig.
var (
	Edge    = netip.MustParseAddrPort("192.0.2.1:5060")
	Caller  = netip.MustParseAddrPort("203.0.113.9:40001")
	Backend = netip.MustParseAddrPort("10.0.0.1:5060")
)

// Realm is the realm the rig authenticates in.
const Realm = "example.com"

// Secret keys the rig's nonces and branches.
var Secret = []byte("authtest cluster secret, 32 byte")

// Clock is a settable clock for the worker (monotonic ns) and the nonces
// (wall time = Base + Now).
type Clock struct {
	ns   atomic.Int64
	Base time.Time
}

// Now is the worker clock.
func (c *Clock) Now() int64 { return c.ns.Load() }

// Wall is the nonce clock.
func (c *Clock) Wall() time.Time { return c.Base.Add(time.Duration(c.ns.Load())) }

// Advance moves both clocks.
func (c *Clock) Advance(d time.Duration) { c.ns.Add(int64(d)) }

// Sink records failures reported to the guard.
type Sink struct {
	mu    sync.Mutex
	Srcs  []netip.Addr
	Count atomic.Int64
}

// AuthFailed implements auth.FailureSink.
func (s *Sink) AuthFailed(src netip.Addr, _ int64) {
	s.mu.Lock()
	s.Srcs = append(s.Srcs, src)
	s.mu.Unlock()
	s.Count.Add(1)
}

// Rig is one worker running the chain without the guard (sanity,
// response, self, auth, route) over a memport.
type Rig struct {
	T     testing.TB
	Port  *memport.Port
	W     *pipeline.Worker
	A     *auth.Auth
	Clock *Clock
	Sink  *Sink
}

// NewRig builds the rig around cfg (Realm, NonceKey, Clock, Failures and
// Workers are set here when left empty). The worker's clock is manual: park
// deadlines pass only when the test advances it.
func NewRig(t testing.TB, cfg auth.Config, wcfg pipeline.Config) *Rig {
	t.Helper()
	r := &Rig{T: t, Port: memport.New(1024, 4096), Clock: &Clock{Base: time.Unix(1_700_000_000, 0)}, Sink: &Sink{}}
	if cfg.Realm == "" {
		cfg.Realm = Realm
	}
	if cfg.NonceKey == nil {
		cfg.NonceKey = sipcore.NewNonceKey(Secret)
	}
	if cfg.Clock == nil {
		cfg.Clock = r.Clock.Wall
	}
	if cfg.Failures == nil {
		cfg.Failures = r.Sink
	}
	a, err := auth.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(a.Close)
	r.A = a
	bk, err := pipeline.NewBackends([]pipeline.BackendSpec{{Addr: Backend, Weight: 1}})
	if err != nil {
		t.Fatal(err)
	}
	key := sipcore.NewKey(Secret)
	px, err := chain.Proxy(chain.ProxyConfig{Key: &key, SentBy: Edge.String(), Names: []string{"192.0.2.1"}, Backends: bk})
	if err != nil {
		t.Fatal(err)
	}
	stages, err := chain.Default.Without("guard").Makers(append(px, a)...)
	if err != nil {
		t.Fatal(err)
	}
	wcfg.Key = &key
	wcfg.Core = -1
	wcfg.Now = r.Clock.Now
	w, err := pipeline.NewWorker(r.Port, wcfg, stages)
	if err != nil {
		t.Fatal(err)
	}
	r.W = w
	return r
}

// Send runs the messages from src through the worker until none is
// parked (bounded: 10s) and returns what it transmitted.
func (r *Rig) Send(src netip.AddrPort, msgs ...string) []memport.Datagram {
	r.T.Helper()
	return r.send(src, true, msgs...)
}

// SendNoWait runs the messages once through the worker, leaving parked
// ones parked.
func (r *Rig) SendNoWait(src netip.AddrPort, msgs ...string) []memport.Datagram {
	r.T.Helper()
	return r.send(src, false, msgs...)
}

func (r *Rig) send(src netip.AddrPort, wait bool, msgs ...string) []memport.Datagram {
	r.T.Helper()
	for _, m := range msgs {
		r.Port.In = append(r.Port.In, memport.Datagram{Payload: []byte(m), Src: src, Dst: Edge})
	}
	r.Poll(wait)
	out := append([]memport.Datagram(nil), r.Port.Sent...)
	r.Port.Sent = r.Port.Sent[:0]
	return out
}

// Poll runs the worker until its input is consumed and, if wait, until no
// message is parked; it fails the test after 10s.
func (r *Rig) Poll(wait bool) {
	r.T.Helper()
	end := time.Now().Add(10 * time.Second)
	for {
		_, err := r.W.Poll()
		if err != nil && err != io.EOF {
			r.T.Fatalf("Poll: %v", err)
		}
		if err == io.EOF && (!wait || r.W.Parked() == 0) {
			r.W.Poll() // publish the counters of the last batch
			return
		}
		if time.Now().After(end) {
			r.T.Fatalf("%d messages still parked after 10s", r.W.Parked())
		}
		runtime.Gosched()
	}
}

// Status parses a response and returns it with its status code.
func Status(t testing.TB, d memport.Datagram) (*sipcore.Msg, int) {
	t.Helper()
	var m sipcore.Msg
	buf := append([]byte(nil), d.Payload...)
	if err := sipcore.Parse(buf, &m); err != nil {
		t.Fatalf("output does not parse: %v\n%s", err, d.Payload)
	}
	if m.IsRequest {
		return &m, 0
	}
	return &m, int(m.StatusCode)
}

// Expect sends one message and checks that exactly one datagram came out
// with status code want (0: a forwarded request). It returns the payload.
func (r *Rig) Expect(want int, msg string) string {
	r.T.Helper()
	out := r.Send(Caller, msg)
	if len(out) != 1 {
		r.T.Fatalf("sent %d datagrams, want 1 (drops %v, auth %+v)", len(out), r.W.Stats().Drops, r.A.Metrics())
	}
	_, got := Status(r.T, out[0])
	if got != want {
		r.T.Fatalf("got status %d, want %d:\n%s", got, want, out[0].Payload)
	}
	if want == 0 && out[0].Dst != Backend {
		r.T.Fatalf("forwarded to %v, want the backend %v", out[0].Dst, Backend)
	}
	return string(out[0].Payload)
}

// Client is a SIP UA with a password.
type Client struct {
	User, Password string
	// Alg is the algorithm the client answers with (MD5 when zero).
	Alg sipcore.Algorithm
	seq int
	// Call numbers the client's call: its Call-ID stays the same until
	// Call changes, as RFC 3261 22.2 has a client retry with credentials.
	Call int
	// NC is the nonce-count of the last credentials; it grows with each
	// use of the same nonce and starts at 1 on a new one.
	NC        int
	lastNonce string
}

// Request builds method (INVITE, REGISTER...) with credentials answering
// nonce, or none when nonce is "".
func (c *Client) Request(method, nonce string) string {
	return c.RequestURI(method, "sip:bob@example.com", "sip:bob@example.com", nonce)
}

// RequestURI builds a request to ruri whose credentials cover duri.
func (c *Client) RequestURI(method, ruri, duri, nonce string) string {
	c.seq++
	var b strings.Builder
	fmt.Fprintf(&b, "%s %s SIP/2.0\r\n", method, ruri)
	fmt.Fprintf(&b, "Via: SIP/2.0/UDP 203.0.113.9:40001;branch=z9hG4bK%s%d%d;rport\r\n", c.User, c.Call, c.seq)
	b.WriteString("Max-Forwards: 70\r\nTo: <sip:bob@example.com>\r\n")
	fmt.Fprintf(&b, "From: <sip:%s@example.com>;tag=f%d\r\nCall-ID: %s-%d@pc33\r\nCSeq: %d %s\r\n", c.User, c.Call, c.User, c.Call, c.seq, method)
	b.WriteString("Contact: <sip:u@203.0.113.9:40001>\r\n")
	if nonce != "" {
		hdr := "Proxy-Authorization"
		if method == "REGISTER" {
			hdr = "Authorization"
		}
		fmt.Fprintf(&b, "%s: %s\r\n", hdr, c.Credentials(method, duri, nonce))
	}
	b.WriteString("Content-Length: 0\r\n\r\n")
	return b.String()
}

// Credentials computes a credentials value with the reference formula of
// RFC 7616 3.4.1 (independent of sipcore.Verify), qop=auth.
func (c *Client) Credentials(method, uri, nonce string) string {
	h := func(s string) string {
		switch c.Alg {
		case sipcore.AlgSHA256, sipcore.AlgSHA256Sess:
			x := sha256.Sum256([]byte(s))
			return hex.EncodeToString(x[:])
		}
		x := md5.Sum([]byte(s))
		return hex.EncodeToString(x[:])
	}
	if nonce != c.lastNonce {
		c.lastNonce, c.NC = nonce, 0
	}
	c.NC++
	cnonce, nc := "0a4f113b", fmt.Sprintf("%08x", c.NC)
	ha1 := h(c.User + ":" + Realm + ":" + c.Password)
	if c.Alg.Sess() {
		ha1 = h(ha1 + ":" + nonce + ":" + cnonce)
	}
	resp := h(ha1 + ":" + nonce + ":" + nc + ":" + cnonce + ":auth:" + h(method+":"+uri))
	return fmt.Sprintf(`Digest username="%s", realm="%s", nonce="%s", uri="%s", response="%s", algorithm=%s, qop=auth, nc=%s, cnonce="%s"`,
		c.User, Realm, nonce, uri, resp, c.Alg, nc, cnonce)
}

var nonceRE = regexp.MustCompile(`nonce="([^"]+)"`)

// Nonce returns the nonce of the first challenge in a 401/407.
func Nonce(t testing.TB, resp string) string {
	t.Helper()
	m := nonceRE.FindStringSubmatch(resp)
	if m == nil {
		t.Fatalf("no nonce in:\n%s", resp)
	}
	return m[1]
}

// Entry builds the stored entry of user with password (both HA1s).
func Entry(t testing.TB, user, password string) auth.Entry {
	t.Helper()
	var e auth.Entry
	for _, alg := range []sipcore.Algorithm{sipcore.AlgMD5, sipcore.AlgSHA256} {
		if err := e.SetHA1(alg, []byte(sipcore.HA1(alg, user, Realm, password))); err != nil {
			t.Fatal(err)
		}
	}
	return e
}
