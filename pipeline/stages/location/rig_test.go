package location_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"runtime"
	"strings"
	"testing"
	"time"

	"sipedge/internal/redistest"
	"sipedge/pipeline"
	"sipedge/pipeline/chain"
	"sipedge/pipeline/memport"
	"sipedge/pipeline/node"
	"sipedge/pipeline/port"
	"sipedge/pipeline/stages/location"
	"sipedge/pipeline/stages/registrar"
	"sipedge/pipeline/stages/registrar/bindings"
	"sipedge/sipcore"
)

var (
	secret  = []byte("registrar test cluster secret")
	edgeA   = netip.MustParseAddrPort("192.0.2.1:5060")
	edgeB   = netip.MustParseAddrPort("192.0.2.2:5060")
	backend = netip.MustParseAddrPort("192.0.2.50:5060")
	phone   = netip.MustParseAddrPort("198.51.100.7:5060")
	natted  = netip.MustParseAddrPort("203.0.113.9:40001")
	caller  = netip.MustParseAddrPort("198.51.100.99:5060")
)

// rig is one edge node: one worker running the whole chain (without the
// guard and auth) over a memport, with the registrar and location stages
// on a shared store.
type rig struct {
	t    testing.TB
	self netip.AddrPort
	port *memport.Port
	w    *pipeline.Worker
	reg  *registrar.Registrar
	loc  *location.Location
	now  int64
}

type rigOpt func(*registrar.Config, *location.Config)

func newRig(t testing.TB, self netip.AddrPort, store bindings.Store, opts ...rigOpt) *rig {
	t.Helper()
	r := &rig{t: t, self: self, port: memport.New(1024, 4096)}
	key := sipcore.NewKey(secret)
	bk, err := pipeline.NewBackends([]pipeline.BackendSpec{{Addr: backend, Weight: 1}})
	if err != nil {
		t.Fatal(err)
	}
	names := []string{self.Addr().String()}
	px, err := chain.Proxy(chain.ProxyConfig{Key: &key, SentBy: self.String(), Names: names, Ports: []uint16{self.Port()}, Backends: bk, PassRegister: true})
	if err != nil {
		t.Fatal(err)
	}
	nd, err := node.New(node.Config{Key: &key, Names: names, Ports: []uint16{self.Port()}})
	if err != nil {
		t.Fatal(err)
	}
	doms := bindings.NewDomains([]string{"example.com"}, bindings.DomainOptions{IsNode: nd.IsName})
	rc := registrar.Config{Domains: doms, DefaultExpires: time.Hour, MinExpires: time.Minute, MaxExpires: 2 * time.Hour,
		MaxContacts: 3, Store: store, Self: self, Node: nd, Workers: 1, Deadline: 5 * time.Second, RetryAfter: 7}
	lc := location.Config{Domains: doms, Store: store, Node: nd, Self: self, SentBy: self.String(), Workers: 1, Deadline: 5 * time.Second, RetryAfter: 7}
	for _, o := range opts {
		o(&rc, &lc)
	}
	if r.reg, err = registrar.New(rc); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(r.reg.Close)
	if r.loc, err = location.New(lc); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(r.loc.Close)
	makers, err := chain.Default.Without("guard", "auth").Makers(append(px, r.reg, r.loc)...)
	if err != nil {
		t.Fatal(err)
	}
	r.w, err = pipeline.NewWorker(r.port, pipeline.Config{Key: &key, Core: -1, Now: func() int64 { return r.now }}, makers)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// send runs msg from src through the worker until nothing is parked
// (bounded) and returns what it transmitted.
func (r *rig) send(src netip.AddrPort, msg string) []memport.Datagram {
	r.t.Helper()
	r.port.In = append(r.port.In, memport.Datagram{Payload: []byte(msg), Src: src, Dst: r.self})
	end := time.Now().Add(10 * time.Second)
	for {
		_, err := r.w.Poll()
		if err != nil && err != io.EOF {
			r.t.Fatal(err)
		}
		if err == io.EOF && r.w.Parked() == 0 {
			r.w.Poll()
			break
		}
		if time.Now().After(end) {
			r.t.Fatalf("still parked after 10s")
		}
		runtime.Gosched()
	}
	out := append([]memport.Datagram(nil), r.port.Sent...)
	r.port.Sent = r.port.Sent[:0]
	return out
}

// one sends msg and expects one datagram back; it returns it parsed.
func (r *rig) one(src netip.AddrPort, msg string) (*sipcore.Msg, memport.Datagram) {
	r.t.Helper()
	out := r.send(src, msg)
	if len(out) != 1 {
		r.t.Fatalf("%d datagrams out, want 1 (stats %+v)", len(out), r.w.Stats())
	}
	var m sipcore.Msg
	if err := sipcore.Parse(append([]byte(nil), out[0].Payload...), &m); err != nil {
		r.t.Fatalf("output does not parse: %v\n%s", err, out[0].Payload)
	}
	return &m, out[0]
}

func (r *rig) status(src netip.AddrPort, msg string, want int) string {
	r.t.Helper()
	m, d := r.one(src, msg)
	if m.IsRequest || int(m.StatusCode) != want {
		r.t.Fatalf("got %q, want status %d", d.Payload, want)
	}
	return string(d.Payload)
}

var seq int

func register(user, callID string, cseq int, headers ...string) string {
	seq++
	return "REGISTER sip:example.com SIP/2.0\r\n" +
		fmt.Sprintf("Via: SIP/2.0/UDP 198.51.100.7:5060;branch=z9hG4bKreg%d\r\n", seq) +
		"Max-Forwards: 70\r\n" +
		"From: <sip:" + user + "@example.com>;tag=r1\r\n" +
		"To: <sip:" + user + "@example.com>\r\n" +
		"Call-ID: " + callID + "\r\n" +
		fmt.Sprintf("CSeq: %d REGISTER\r\n", cseq) +
		strings.Join(headers, "") +
		"Content-Length: 0\r\n\r\n"
}

func invite(user string, headers ...string) string {
	seq++
	return "INVITE sip:" + user + "@example.com SIP/2.0\r\n" +
		fmt.Sprintf("Via: SIP/2.0/UDP 198.51.100.99:5060;branch=z9hG4bKinv%d\r\n", seq) +
		"Max-Forwards: 70\r\n" +
		"From: <sip:bob@example.org>;tag=i1\r\n" +
		"To: <sip:" + user + "@example.com>\r\n" +
		fmt.Sprintf("Call-ID: call%d\r\n", seq) +
		"CSeq: 1 INVITE\r\n" +
		"Contact: <sip:bob@198.51.100.99>\r\n" +
		strings.Join(headers, "") +
		"Content-Length: 0\r\n\r\n"
}

func contacts(resp string) []string {
	var out []string
	for _, l := range strings.Split(resp, "\r\n") {
		if strings.HasPrefix(l, "Contact: ") {
			out = append(out, strings.TrimPrefix(l, "Contact: "))
		}
	}
	return out
}

func TestRegisterAndCall(t *testing.T) {
	store := bindings.NewMemory()
	a := newRig(t, edgeA, store)
	// RFC 3261 10.3: the 200 lists the binding with its expiry, and Date.
	resp := a.status(phone, register("alice", "reg1", 1, "Contact: <sip:alice@198.51.100.7:5060>\r\n", "Expires: 600\r\n"), 200)
	if c := contacts(resp); len(c) != 1 || c[0] != "<sip:alice@198.51.100.7:5060>;expires=600" {
		t.Fatalf("contacts %q", c)
	}
	if !strings.Contains(resp, "\r\nDate: ") {
		t.Fatalf("no Date:\n%s", resp)
	}
	// A call for alice goes to her contact, the Request-URI rewritten.
	m, d := a.one(caller, invite("alice"))
	if !m.IsRequest || d.Dst != phone || string(m.B(m.RURI.Raw)) != "sip:alice@198.51.100.7:5060" {
		t.Fatalf("forwarded to %v: %s", d.Dst, d.Payload)
	}
	// Another edge on the same store finds her too.
	b := newRig(t, edgeB, store)
	if _, d := b.one(caller, invite("alice")); d.Dst != phone {
		t.Fatalf("edge B sent to %v", d.Dst)
	}
	// Unknown user: 404. The domain's other requests are not ours.
	a.status(caller, invite("nobody"), 404)
	// Expires: 0 removes it, and every edge's cache hears of it.
	a.status(phone, register("alice", "reg1", 2, "Contact: <sip:alice@198.51.100.7:5060>\r\n", "Expires: 0\r\n"), 200)
	a.status(caller, invite("alice"), 404)
	b.status(caller, invite("alice"), 404)
}

func TestRegisterRules(t *testing.T) {
	a := newRig(t, edgeA, bindings.NewMemory())
	ct := "Contact: <sip:carol@198.51.100.7>\r\n"
	// 423 with Min-Expires below the minimum (RFC 3261 10.3 step 6).
	resp := a.status(phone, register("carol", "c1", 1, ct, "Expires: 10\r\n"), 423)
	if !strings.Contains(resp, "Min-Expires: 60\r\n") {
		t.Fatalf("no Min-Expires:\n%s", resp)
	}
	// Above the maximum: clamped. The contact's expires wins over Expires.
	resp = a.status(phone, register("carol", "c1", 2, "Contact: <sip:carol@198.51.100.7>;expires=99999\r\n", "Expires: 100\r\n"), 200)
	if c := contacts(resp); len(c) != 1 || !strings.HasSuffix(c[0], ";expires=7200") {
		t.Fatalf("clamp: %q", c)
	}
	// No expiry at all: the default.
	resp = a.status(phone, register("carol", "c1", 3, "Contact: <sip:carol@198.51.100.8>\r\n"), 200)
	if c := contacts(resp); len(c) != 2 || !strings.Contains(strings.Join(c, " "), "198.51.100.8>;expires=3600") {
		t.Fatalf("default: %q", c)
	}
	// Fetch: no Contact lists the bindings, changes nothing.
	if c := contacts(a.status(phone, register("carol", "c1", 4), 200)); len(c) != 2 {
		t.Fatalf("fetch: %q", c)
	}
	// Same Call-ID, lower CSeq: 500 (RFC 3261 10.3 step 7); the same
	// CSeq is a retransmission: 200 again.
	a.status(phone, register("carol", "c1", 2, "Contact: <sip:carol@198.51.100.8>\r\n"), 500)
	a.status(phone, register("carol", "c1", 3, "Contact: <sip:carol@198.51.100.8>\r\n"), 200)
	// q is kept and returned; the best q is called.
	resp = a.status(phone, register("carol", "c1", 5, "Contact: <sip:carol@198.51.100.9>;q=0.9\r\n"), 200)
	if !strings.Contains(resp, "198.51.100.9>;expires=3600;q=0.9") {
		t.Fatalf("q: %s", resp)
	}
	a.status(phone, register("quinn", "q1", 1, "Contact: <sip:quinn@198.51.100.20>;q=0.2\r\n"), 200)
	a.status(phone, register("quinn", "q2", 1, "Contact: <sip:quinn@198.51.100.21>;q=0.8\r\n"), 200)
	a.status(phone, register("quinn", "q3", 1, "Contact: <sip:quinn@198.51.100.22>;q=0.5\r\n"), 200)
	// (Dst is the phone's source address: the contacts are not where the
	// REGISTERs came from, so they count as behind NAT.)
	if m, d := a.one(caller, invite("quinn")); string(m.B(m.RURI.Raw)) != "sip:quinn@198.51.100.21" || d.Dst != phone {
		t.Fatalf("highest q not chosen: %s to %v", m.B(m.RURI.Raw), d.Dst)
	}
	// Max contacts (3): a fourth is refused with 403.
	a.status(phone, register("carol", "c2", 1, "Contact: <sip:carol@198.51.100.10>\r\n"), 403)
	// Contact: * needs Expires: 0 ...
	a.status(phone, register("carol", "c1", 6, "Contact: *\r\n", "Expires: 5\r\n"), 400)
	// ... and removes everything.
	if c := contacts(a.status(phone, register("carol", "c1", 7, "Contact: *\r\n", "Expires: 0\r\n"), 200)); len(c) != 0 {
		t.Fatalf("star left %q", c)
	}
	// Malformed parameters: 400; another domain's AOR: 404.
	a.status(phone, register("carol", "c1", 8, "Contact: <sip:carol@198.51.100.7>;expires=soon\r\n"), 400)
	a.status(phone, strings.Replace(register("carol", "c1", 9, ct), "To: <sip:carol@example.com>", "To: <sip:carol@example.net>", 1), 404)
	// RFC 5626: +sip.instance and reg-id name the binding: a new contact
	// for the same instance replaces it instead of adding one.
	inst := ";+sip.instance=\"<urn:uuid:00000000-0000-1000-8000-000A95A0E128>\";reg-id=1\r\n"
	a.status(phone, register("dave", "d1", 1, "Contact: <sip:dave@198.51.100.7:5070>"+inst), 200)
	resp = a.status(phone, register("dave", "d2", 1, "Contact: <sip:dave@198.51.100.7:5080>"+inst), 200)
	if c := contacts(resp); len(c) != 1 || !strings.Contains(c[0], ":5080>") || !strings.Contains(c[0], "reg-id=1") {
		t.Fatalf("instance: %q", c)
	}
}

func TestEvictOldest(t *testing.T) {
	a := newRig(t, edgeA, bindings.NewMemory(), func(rc *registrar.Config, _ *location.Config) { rc.MaxContacts, rc.EvictOldest = 1, true })
	a.status(phone, register("erin", "e1", 1, "Contact: <sip:erin@198.51.100.7>\r\n"), 200)
	time.Sleep(2 * time.Millisecond) // registration times are in ms: the first must be older
	c := contacts(a.status(phone, register("erin", "e2", 1, "Contact: <sip:erin@198.51.100.8>\r\n"), 200))
	if len(c) != 1 || !strings.Contains(c[0], "198.51.100.8") {
		t.Fatalf("evict: %q", c)
	}
}

func TestNATAndPath(t *testing.T) {
	store := bindings.NewMemory()
	a := newRig(t, edgeA, store)
	b := newRig(t, edgeB, store)
	// The phone's Contact is private; its REGISTER came from the NAT.
	a.status(natted, register("nat", "n1", 1, "Contact: <sip:nat@10.0.0.5:5060>\r\n"), 200)
	// On the node that received it: straight to the NAT's address.
	if _, d := a.one(caller, invite("nat")); d.Dst != natted {
		t.Fatalf("edge A sent to %v, want the NAT address %v", d.Dst, natted)
	}
	// On another node: to node A, with a Route naming the flow ...
	m, d := b.one(caller, invite("nat"))
	if d.Dst != edgeA || m.NRoute != 1 || string(m.B(m.RURI.Raw)) != "sip:nat@10.0.0.5:5060" {
		t.Fatalf("edge B sent to %v:\n%s", d.Dst, d.Payload)
	}
	// ... which node A delivers on the flow, its Route removed.
	m2, d2 := a.one(edgeB, string(d.Payload))
	if d2.Dst != natted || m2.NRoute != 0 {
		t.Fatalf("edge A delivered to %v:\n%s", d2.Dst, d2.Payload)
	}
	// A forged token is not followed (no open relay): not ours, so the
	// dispatcher gets it.
	forged := strings.Replace(string(d.Payload), "Route: <sip:f", "Route: <sip:f0", 1)
	if _, d3 := a.one(edgeB, forged); d3.Dst == natted {
		t.Fatal("a forged flow token was followed")
	}
	// RFC 3327: a REGISTER that came through a proxy with Path is
	// reached through that Path.
	a.status(phone, register("pathy", "p1", 1, "Path: <sip:192.0.2.77:5070;lr>\r\n", "Contact: <sip:pathy@10.1.1.1>\r\n"), 200)
	m, d = b.one(caller, invite("pathy"))
	if d.Dst != netip.MustParseAddrPort("192.0.2.77:5070") || m.NRoute != 1 || string(m.B(m.Routes[0].Value)) != "<sip:192.0.2.77:5070;lr>" {
		t.Fatalf("Path: sent to %v:\n%s", d.Dst, d.Payload)
	}
}

func TestExistsGives480(t *testing.T) {
	a := newRig(t, edgeA, bindings.NewMemory(), func(_ *registrar.Config, lc *location.Config) {
		lc.Exists = func(_ context.Context, aor string) (bool, error) { return aor == "sip:frank@example.com", nil }
	})
	a.status(caller, invite("frank"), 480)
	a.status(caller, invite("grace"), 404)
}

// failing is a store that is down.
type failing struct{ bindings.Memory }

func (*failing) Apply(context.Context, *bindings.Update) (bindings.Result, error) {
	return bindings.Result{}, errors.New("down")
}
func (*failing) Lookup(context.Context, string) ([]bindings.Binding, error) {
	return nil, errors.New("down")
}

func TestStoreDown(t *testing.T) {
	a := newRig(t, edgeA, &failing{})
	for _, msg := range []string{register("h", "h1", 1, "Contact: <sip:h@198.51.100.7>\r\n"), invite("h")} {
		resp := a.status(phone, msg, 503)
		if !strings.Contains(resp, "Retry-After: 7\r\n") {
			t.Fatalf("no Retry-After:\n%s", resp)
		}
	}
}

// A cached location costs no allocation: the hot path of every call.
func TestLocationHitAllocs(t *testing.T) {
	a := newRig(t, edgeA, bindings.NewMemory(), recordRoute) // the Record-Route with a flow token too
	a.status(phone, register("ivy", "i1", 1, "Contact: <sip:ivy@198.51.100.7>\r\n"), 200)
	msg := invite("ivy")
	a.send(caller, msg) // fill the cache
	a.port.Sink = func(*port.Packet) {}
	a.port.Cycle = true
	d := memport.Datagram{Payload: []byte(msg), Src: caller, Dst: edgeA}
	a.port.In = []memport.Datagram{d, d, d, d} // Receive resumes at its position in In
	if n := testing.AllocsPerRun(200, func() { a.w.Poll() }); n != 0 {
		t.Fatalf("%v allocations per batch", n)
	}
}

// With Redis gone, REGISTERs get 503 with Retry-After (nothing is lost
// silently) and a location the edge has cached keeps serving calls.
func TestRedisDown(t *testing.T) {
	srv := redistest.Start(t)
	st, err := bindings.NewRedis(bindings.RedisOptions{Addresses: []string{srv.Addr}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(st.Close)
	end := time.Now().Add(10 * time.Second)
	for !st.Connected() {
		if time.Now().After(end) {
			t.Fatal("not connected within 10s")
		}
		time.Sleep(10 * time.Millisecond) // no connection event
	}
	a := newRig(t, edgeA, st, func(rc *registrar.Config, lc *location.Config) {
		rc.Deadline, lc.Deadline = 2*time.Second, 2*time.Second
	})
	a.status(phone, register("kim", "k1", 1, "Contact: <sip:kim@198.51.100.7>\r\n"), 200)
	if _, d := a.one(caller, invite("kim")); d.Dst != phone {
		t.Fatalf("sent to %v", d.Dst)
	}
	srv.Stop()
	resp := a.status(phone, register("kim", "k1", 2, "Contact: <sip:kim@198.51.100.7>\r\n"), 503)
	if !strings.Contains(resp, "Retry-After: 7\r\n") {
		t.Fatalf("no Retry-After:\n%s", resp)
	}
	if _, d := a.one(caller, invite("kim")); d.Dst != phone {
		t.Fatalf("cached location not served with Redis down: sent to %v", d.Dst)
	}
	// An AOR never cached cannot be found: 503, not 404.
	a.status(caller, invite("lee"), 503)
}

// RFC 3261 10.3 step 4: credentials may register only their own user's
// AOR (the auth stage, not in this rig, verifies them).
func TestRegisterOwnAOROnly(t *testing.T) {
	a := newRig(t, edgeA, bindings.NewMemory(), func(rc *registrar.Config, _ *location.Config) { rc.Realm = "example.com" })
	creds := func(user string) string {
		return "Authorization: Digest username=\"" + user + "\", realm=\"example.com\", nonce=\"abc\", uri=\"sip:example.com\", response=\"00000000000000000000000000000000\"\r\n"
	}
	ct := "Contact: <sip:mia@198.51.100.7>\r\n"
	a.status(phone, register("mia", "m1", 1, creds("noah"), ct), 403)
	a.status(phone, register("mia", "m1", 2, creds("mia"), ct), 200)
	// Credentials for another realm are not ours to judge.
	a.status(phone, register("mia", "m1", 3, strings.Replace(creds("noah"), "example.com", "other.net", 1), ct), 200)
}

// Phones often register at the node's address (REGISTER sip:192.0.2.1):
// the registrar answers it, To naming the domain; OPTIONS to the node
// are still the self stage's.
func TestRegisterAtNodeAddress(t *testing.T) {
	a := newRig(t, edgeA, bindings.NewMemory())
	msg := strings.Replace(register("olga", "o1", 1, "Contact: <sip:olga@198.51.100.7>\r\n"), "REGISTER sip:example.com", "REGISTER sip:192.0.2.1:5060", 1)
	a.status(phone, msg, 200)
	if _, d := a.one(caller, invite("olga")); d.Dst != phone {
		t.Fatalf("sent to %v", d.Dst)
	}
	// To outside the domains: 404 from the registrar.
	a.status(phone, strings.Replace(msg, "olga@example.com", "olga@example.net", 2), 404)
}

// use_domain = false (Kamailio's use_domain = 0): bindings are keyed by
// user alone, and a request for user@<node address> is local too, so a
// phone registered as alice@example.com through edge A is reached by a
// call for sip:alice@<edge B>. With the domain kept (the default) such a
// request stays the dispatcher's.
func TestIgnoreDomain(t *testing.T) {
	store := bindings.NewMemory()
	ignore := func(rc *registrar.Config, lc *location.Config) {
		d := bindings.NewDomains([]string{"example.com"}, bindings.DomainOptions{IgnoreDomain: true, IsNode: lc.Node.IsName})
		rc.Domains, lc.Domains = d, d
	}
	a := newRig(t, edgeA, store, ignore)
	b := newRig(t, edgeB, store, ignore)
	a.status(phone, register("pia", "p1", 1, "Contact: <sip:pia@198.51.100.7>\r\n"), 200)
	msg := strings.Replace(invite("pia"), "INVITE sip:pia@example.com", "INVITE sip:pia@192.0.2.2:5060", 1)
	if m, d := b.one(caller, msg); d.Dst != phone || string(m.B(m.RURI.Raw)) != "sip:pia@198.51.100.7" {
		t.Fatalf("sent to %v", d.Dst)
	}
	// The default keeps the domain: the same request goes to the backend.
	c := newRig(t, netip.MustParseAddrPort("192.0.2.3:5060"), store)
	msg = strings.Replace(invite("pia"), "INVITE sip:pia@example.com", "INVITE sip:pia@192.0.2.3:5060", 1)
	if _, d := c.one(caller, msg); d.Dst != backend {
		t.Fatalf("with the domain kept, sent to %v, want the dispatcher's backend", d.Dst)
	}
}

func recordRoute(_ *registrar.Config, lc *location.Config) {
	lc.RecordRoute = "sip:" + lc.SentBy + ";lr"
}

// rrValues returns the Record-Route values of a forwarded request, top first.
func rrValues(t *testing.T, payload []byte) []string {
	t.Helper()
	var m sipcore.Msg
	if err := sipcore.Parse(append([]byte(nil), payload...), &m); err != nil {
		t.Fatal(err)
	}
	var out []string
	for i := 0; i < m.NRecordRoute; i++ {
		out = append(out, string(m.B(m.RecordRoutes[i].Value)))
	}
	return out
}

func bye(ruri, routes string) string {
	seq++
	return "BYE " + ruri + " SIP/2.0\r\n" +
		fmt.Sprintf("Via: SIP/2.0/UDP 198.51.100.99:5060;branch=z9hG4bKbye%d\r\n", seq) +
		"Max-Forwards: 70\r\nFrom: <sip:bob@example.org>;tag=i1\r\nTo: <sip:x@example.com>;tag=callee\r\n" +
		"Call-ID: dialog1\r\nCSeq: 2 BYE\r\n" + routes + "Content-Length: 0\r\n\r\n"
}

// With the edge record-routing, a call routed by location carries a
// Record-Route with a flow token of where it went, so the caller's
// in-dialog requests (Request-URI: the contact) follow it through the edge
// instead of going to the dispatcher; through the node holding a NATed
// flow too. From the callee they go the other way, not back to it.
func TestInDialogFollowsRecordRoute(t *testing.T) {
	store := bindings.NewMemory()
	a := newRig(t, edgeA, store, recordRoute)
	b := newRig(t, edgeB, store, recordRoute)
	a.status(phone, register("rita", "r1", 1, "Contact: <sip:rita@198.51.100.7:5060>\r\n"), 200)
	_, d := a.one(caller, invite("rita"))
	rr := rrValues(t, d.Payload)
	if d.Dst != phone || len(rr) != 1 || !strings.Contains(rr[0], "@192.0.2.1:5060;lr") {
		t.Fatalf("INVITE to %v, Record-Route %q", d.Dst, rr)
	}
	m, d := a.one(caller, bye("sip:rita@198.51.100.7:5060", "Route: "+rr[0]+"\r\n"))
	if d.Dst != phone || m.NRoute != 0 {
		t.Fatalf("caller's BYE went to %v:\n%s", d.Dst, d.Payload)
	}
	if _, d := a.one(phone, bye("sip:bob@198.51.100.99", "Route: "+rr[0]+"\r\n")); d.Dst == phone {
		t.Fatal("the callee's BYE was sent back to the callee")
	}

	a.status(natted, register("nat", "n1", 1, "Contact: <sip:nat@10.0.0.5:5060>\r\n"), 200)
	_, d = b.one(caller, invite("nat"))
	_, d2 := a.one(edgeB, string(d.Payload))
	rr = rrValues(t, d2.Payload)
	// Only A, which holds the flow, record-routes: the caller's BYE goes
	// straight to it (B then A would look like a loop to A).
	if d2.Dst != natted || len(rr) != 1 || !strings.Contains(rr[0], "@192.0.2.1:5060;lr") {
		t.Fatalf("NATed INVITE delivered to %v with Record-Route %q", d2.Dst, rr)
	}
	if _, d = a.one(caller, bye("sip:nat@10.0.0.5:5060", "Route: "+rr[0]+"\r\n")); d.Dst != natted {
		t.Fatalf("edge A sent the BYE to %v, want the flow %v", d.Dst, natted)
	}
}
