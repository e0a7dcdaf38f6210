package pipeline_test

import (
	"bytes"
	"fmt"
	"io"
	"net/netip"
	"strings"
	"testing"

	"sipedge/pipeline"
	"sipedge/pipeline/chain"
	"sipedge/pipeline/memport"
	"sipedge/sipcore"
)

var (
	testKey  = sipcore.NewKey([]byte("pipeline test cluster secret 32b"))
	edgeAddr = netip.MustParseAddrPort("192.0.2.1:5060")
	caller   = netip.MustParseAddrPort("203.0.113.9:40001")
	backendA = netip.MustParseAddrPort("10.0.0.1:5060")
	backendB = netip.MustParseAddrPort("10.0.0.2:5060")
)

type rig struct {
	t     testing.TB
	port  *memport.Port
	w     *pipeline.Worker
	bk    *pipeline.Backends
	proxy []pipeline.StageMaker // sanity, response, self, route
}

func newBackends(t testing.TB, addrs ...netip.AddrPort) *pipeline.Backends {
	t.Helper()
	var specs []pipeline.BackendSpec
	for _, a := range addrs {
		specs = append(specs, pipeline.BackendSpec{Addr: a, Weight: 1})
	}
	bk, err := pipeline.NewBackends(specs)
	if err != nil {
		t.Fatal(err)
	}
	return bk
}

func newProxy(t testing.TB, bk *pipeline.Backends) []pipeline.StageMaker {
	t.Helper()
	p, err := chain.Proxy(chain.ProxyConfig{
		Key:         &testKey,
		SentBy:      edgeAddr.String(),
		RecordRoute: "sip:192.0.2.1:5060;lr",
		Names:       []string{"192.0.2.1", "edge.example.com"},
		Backends:    bk,
		RetryAfter:  7,
	})
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// proxyChain is the chain without the stages that need a section enabled
// (guard, auth): the stateless proxy.
var proxyChain = chain.Default.Without("guard", "auth")

// newRig builds a worker running the proxy stages (plus extra stages
// after them) over a memport.
func newRig(t testing.TB, cfg pipeline.Config, extra ...pipeline.StageMaker) *rig {
	t.Helper()
	r := &rig{t: t, port: memport.New(512, 4096)}
	r.bk = newBackends(t, backendA, backendB)
	r.proxy = newProxy(t, r.bk)
	cfg.Key = &testKey
	cfg.Core = -1
	stages, err := proxyChain.Insert("", defsOf(extra)...).Makers(append(r.proxy, extra...)...)
	if err != nil {
		t.Fatal(err)
	}
	w, err := pipeline.NewWorker(r.port, cfg, stages)
	if err != nil {
		t.Fatal(err)
	}
	r.w = w
	return r
}

// send runs datagrams through the worker and returns what it transmitted.
func (r *rig) send(src netip.AddrPort, msgs ...string) []memport.Datagram {
	r.t.Helper()
	r.port.Sent = r.port.Sent[:0]
	for _, m := range msgs {
		r.port.In = append(r.port.In, memport.Datagram{Payload: []byte(m), Src: src, Dst: edgeAddr})
	}
	for i := 0; i < 1000; i++ {
		_, err := r.w.Poll()
		if err == io.EOF {
			break
		}
		if err != nil {
			r.t.Fatalf("Poll: %v", err)
		}
	}
	out := append([]memport.Datagram(nil), r.port.Sent...)
	r.port.Sent = r.port.Sent[:0]
	return out
}

func (r *rig) sendOne(src netip.AddrPort, msg string) (memport.Datagram, *sipcore.Msg) {
	r.t.Helper()
	out := r.send(src, msg)
	if len(out) != 1 {
		r.t.Fatalf("sent %d datagrams, want 1 (stats %+v)", len(out), r.w.Stats().Drops)
	}
	return out[0], parse(r.t, out[0].Payload)
}

// pollOne polls without new input and expects exactly one datagram out.
func (r *rig) pollOne() (memport.Datagram, *sipcore.Msg) {
	r.t.Helper()
	out := r.send(caller)
	if len(out) != 1 {
		r.t.Fatalf("sent %d datagrams, want 1", len(out))
	}
	return out[0], parse(r.t, out[0].Payload)
}

func (r *rig) expectNothing(src netip.AddrPort, msg string, reason pipeline.DropReason) {
	r.t.Helper()
	before := r.w.Stats().Drops[reason]
	if out := r.send(src, msg); len(out) != 0 {
		r.t.Fatalf("sent %d datagrams, want none:\n%s", len(out), out[0].Payload)
	}
	if got := r.w.Stats().Drops[reason]; got != before+1 {
		r.t.Fatalf("drops[%v] = %d, want %d (all: %v)", reason, got, before+1, r.w.Stats().Drops)
	}
}

func parse(t testing.TB, b []byte) *sipcore.Msg {
	t.Helper()
	var m sipcore.Msg
	buf := append([]byte(nil), b...)
	if err := sipcore.Parse(buf, &m); err != nil {
		t.Fatalf("output does not parse: %v\n%s", err, b)
	}
	return &m
}

func status(m *sipcore.Msg) int { return int(m.StatusCode) }

func header(m *sipcore.Msg, name string) string {
	if i := m.Find(name, 0); i >= 0 {
		return string(m.B(m.Headers[i].Value))
	}
	return ""
}

type call struct {
	id, fromTag, toTag string
	cseq               int
}

func newCall(i int) call {
	return call{id: fmt.Sprintf("c%06d-4f2a9b@pc33.example.com", i), fromTag: fmt.Sprintf("ft%d", i), toTag: fmt.Sprintf("tt%d", i), cseq: 100}
}

// request builds a caller-side request of the call.
func (c call) request(method string, inDialog bool, extra ...string) string {
	to := "To: Bob <sip:bob@example.com>"
	if inDialog {
		to += ";tag=" + c.toTag
	}
	cseq := c.cseq
	if method == "BYE" {
		cseq++
	}
	branch := "z9hG4bK" + c.fromTag + method
	if method == "ACK" || method == "CANCEL" {
		branch = "z9hG4bK" + c.fromTag + "INVITE"
	}
	var b strings.Builder
	fmt.Fprintf(&b, "%s sip:bob@example.com SIP/2.0\r\n", method)
	fmt.Fprintf(&b, "Via: SIP/2.0/UDP 203.0.113.9:40001;branch=%s;rport\r\n", branch)
	b.WriteString("Max-Forwards: 70\r\n")
	if inDialog {
		b.WriteString("Route: <sip:192.0.2.1:5060;lr>\r\n")
	}
	fmt.Fprintf(&b, "%s\r\nFrom: Alice <sip:alice@example.com>;tag=%s\r\n", to, c.fromTag)
	fmt.Fprintf(&b, "Call-ID: %s\r\nCSeq: %d %s\r\n", c.id, cseq, method)
	b.WriteString("Contact: <sip:alice@203.0.113.9:40001>\r\n")
	for _, e := range extra {
		b.WriteString(e + "\r\n")
	}
	b.WriteString("Content-Length: 0\r\n\r\n")
	return b.String()
}

// respond builds the backend's response to a request the edge forwarded.
func respond(t testing.TB, fwd []byte, code int, reason string) string {
	t.Helper()
	m := parse(t, fwd)
	out := make([]byte, 4096)
	n, err := sipcore.BuildResponse(out, m, code, reason, netip.AddrPort{}, &sipcore.ResponseOptions{Key: &otherKey})
	if err != nil {
		t.Fatal(err)
	}
	return string(out[:n])
}

var otherKey = sipcore.NewKey([]byte("a backend's own secret"))

func contains(b []byte, s string) bool { return bytes.Contains(b, []byte(s)) }

type memportDatagram = memport.Datagram

func dgram(src netip.AddrPort, s string) memport.Datagram {
	return memport.Datagram{Payload: []byte(s), Src: src, Dst: edgeAddr}
}

// callFlows returns n calls' messages as the edge receives them: INVITE
// from the caller, 100/180/200 from the backend, ACK and BYE from the
// caller, 200 to the BYE from the backend. Responses carry the Via the
// edge pushed, so they are forwarded like real ones.
func callFlows(t testing.TB, n int) []memport.Datagram {
	t.Helper()
	r := newRig(t, pipeline.Config{})
	var out []memport.Datagram
	for i := 0; i < n; i++ {
		c := newCall(i)
		inv := c.request("INVITE", false)
		fwd, _ := r.sendOne(caller, inv)
		be := fwd.Dst
		// The BYE names the backend's Contact, as a UA's in-dialog
		// requests do: the route stage follows it (no hash).
		bye := strings.Replace(c.request("BYE", true), "BYE sip:bob@example.com", "BYE sip:bob@"+be.String(), 1)
		fbye, _ := r.sendOne(caller, bye)
		out = append(out,
			dgram(caller, inv),
			dgram(be, respond(t, fwd.Payload, 100, "Trying")),
			dgram(be, respond(t, fwd.Payload, 180, "Ringing")),
			dgram(be, respond(t, fwd.Payload, 200, "OK")),
			dgram(caller, c.request("ACK", true)),
			dgram(caller, bye),
			dgram(be, respond(t, fbye.Payload, 200, "OK")),
		)
	}
	return out
}

func defsOf(ms []pipeline.StageMaker) []*pipeline.StageDef {
	var out []*pipeline.StageDef
	for _, m := range ms {
		out = append(out, m.Def())
	}
	return out
}

// withStages builds the rig's worker again with extra stages just before
// route.
func (r *rig) withStages(cfg pipeline.Config, extra ...pipeline.StageMaker) *pipeline.Worker {
	r.t.Helper()
	stages, err := proxyChain.Insert("route", defsOf(extra)...).Makers(append(r.proxy, extra...)...)
	if err != nil {
		r.t.Fatal(err)
	}
	cfg.Key, cfg.Core = &testKey, -1
	w, err := pipeline.NewWorker(r.port, cfg, stages)
	if err != nil {
		r.t.Fatal(err)
	}
	return w
}
