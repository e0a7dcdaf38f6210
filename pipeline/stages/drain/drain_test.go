package drain_test

import (
	"fmt"
	"io"
	"net/netip"
	"strings"
	"testing"
	"time"

	"sipedge/pipeline"
	"sipedge/pipeline/chain"
	"sipedge/pipeline/memport"
	"sipedge/pipeline/port"
	"sipedge/pipeline/stages/drain"
	"sipedge/sipcore"
)

var (
	testKey  = sipcore.NewKey([]byte("drain test cluster secret 32 byt"))
	edgeAddr = netip.MustParseAddrPort("192.0.2.1:5060")
	backend  = netip.MustParseAddrPort("10.0.0.1:5060")
	caller   = netip.MustParseAddrPort("203.0.113.9:5070")
	// backendKey tags the backend's responses (not ours).
	backendKey = sipcore.NewKey([]byte("the backend's own key, 32 bytes."))
)

// rig is one worker running the proxy chain with the drain stage over a
// memport, on a clock the test moves.
type rig struct {
	t     testing.TB
	port  *memport.Port
	w     *pipeline.Worker
	st    *drain.State
	clock int64
	sent  []memport.Datagram
}

func newRig(t testing.TB, cfg drain.Config) *rig {
	t.Helper()
	r := &rig{t: t, port: memport.New(256, 4096), st: drain.NewState(), clock: int64(time.Hour)}
	bk, err := pipeline.NewBackends([]pipeline.BackendSpec{{Addr: backend, Weight: 1}})
	if err != nil {
		t.Fatal(err)
	}
	proxy, err := chain.Proxy(chain.ProxyConfig{Key: &testKey, SentBy: edgeAddr.String(), RecordRoute: "sip:192.0.2.1:5060;lr",
		Names: []string{"192.0.2.1"}, Backends: bk})
	if err != nil {
		t.Fatal(err)
	}
	cfg.State = r.st
	d, err := drain.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	stages, err := chain.Default.Without("auth", "guard").Makers(append(proxy, d)...)
	if err != nil {
		t.Fatal(err)
	}
	r.w, err = pipeline.NewWorker(r.port, pipeline.Config{Key: &testKey, Core: -1, Batch: 16, Now: func() int64 { return r.clock }}, stages)
	if err != nil {
		t.Fatal(err)
	}
	r.port.Sink = func(p *port.Packet) {
		r.sent = append(r.sent, memport.Datagram{Payload: append([]byte(nil), p.Payload...), Src: p.Src, Dst: p.Dst})
	}
	return r
}

// run delivers one datagram and returns what the worker sent for it.
func (r *rig) run(src netip.AddrPort, msg string) []memport.Datagram {
	r.t.Helper()
	r.sent = nil
	r.port.In = append(r.port.In, memport.Datagram{Payload: []byte(msg), Src: src, Dst: edgeAddr})
	for i := 0; i < 100; i++ {
		if _, err := r.w.Poll(); err == io.EOF {
			break
		} else if err != nil {
			r.t.Fatal(err)
		}
	}
	r.w.Poll()
	return r.sent
}

func request(method, callID string, inDialog bool) string {
	to := "To: <sip:bob@example.com>"
	if inDialog {
		to += ";tag=uas1"
	}
	cseq := map[string]int{"INVITE": 1, "ACK": 1, "CANCEL": 1, "BYE": 2, "OPTIONS": 1, "REGISTER": 1}[method]
	return fmt.Sprintf("%s sip:bob@example.com SIP/2.0\r\nVia: SIP/2.0/UDP %s;branch=z9hG4bK-%s-%s;rport\r\nMax-Forwards: 70\r\n"+
		"%s\r\nFrom: <sip:alice@example.com>;tag=a1\r\nCall-ID: %s\r\nCSeq: %d %s\r\nContact: <sip:alice@%s>\r\nContent-Length: 0\r\n\r\n",
		method, caller, callID, method, to, callID, cseq, method, caller)
}

// response builds the backend's answer to the forwarded request fwd.
func response(t testing.TB, fwd []byte, code int) string {
	t.Helper()
	var m sipcore.Msg
	if err := sipcore.Parse(fwd, &m); err != nil {
		t.Fatal(err)
	}
	out := make([]byte, 4096)
	n, err := sipcore.BuildResponse(out, &m, code, "X", backend, &sipcore.ResponseOptions{Key: &backendKey})
	if err != nil {
		t.Fatal(err)
	}
	return string(out[:n])
}

func counter(t testing.TB, w *pipeline.Worker, name string) uint64 {
	t.Helper()
	for _, s := range w.Stats().Stages {
		if s.Name != "drain" {
			continue
		}
		for i, d := range drain.Def.Counters {
			if d.Name == name {
				return s.Counters[i]
			}
		}
	}
	t.Fatalf("no counter %s", name)
	return 0
}

// While draining, a new INVITE gets 503 with the configured Retry-After
// and its ACK is absorbed; the call set up before the drain goes on (the
// 200, its ACK, the BYE and its 200 all pass), a CANCEL and out-of-dialog
// REGISTER and OPTIONS pass; undrained, INVITEs are forwarded again. The
// activity clock moves with call traffic only.
func TestDrain503(t *testing.T) {
	r := newRig(t, drain.Config{Status: 503, RetryAfter: 30})
	out := r.run(caller, request("INVITE", "up-before", false))
	if len(out) != 1 || out[0].Dst != backend {
		t.Fatalf("INVITE before the drain: %+v", out)
	}
	invite := out[0].Payload
	if got := r.st.LastActivity(); got != r.clock {
		t.Errorf("activity clock %d after an INVITE, want %d", got, r.clock)
	}

	r.st.Set(true)
	r.clock += int64(time.Second)
	out = r.run(caller, request("INVITE", "new-during", false))
	if len(out) != 1 || out[0].Dst != caller || !strings.HasPrefix(string(out[0].Payload), "SIP/2.0 503 ") ||
		!strings.Contains(string(out[0].Payload), "\r\nRetry-After: 30\r\n") {
		t.Fatalf("a new INVITE while draining: %+v", out)
	}
	refusal := out[0].Payload
	if got := r.st.LastActivity(); got != r.clock-int64(time.Second) {
		t.Errorf("a refused INVITE moved the activity clock")
	}
	var m sipcore.Msg
	sipcore.Parse(refusal, &m)
	// The ACK of a non-2xx answer is in the INVITE's transaction: its branch.
	ack := strings.Replace(request("ACK", "new-during", false), "To: <sip:bob@example.com>", "To: <sip:bob@example.com>;tag="+string(m.B(m.To.Tag)), 1)
	ack = strings.Replace(ack, "-new-during-ACK", "-new-during-INVITE", 1)
	if out := r.run(caller, ack); len(out) != 0 {
		t.Errorf("the ACK of the refusal was sent on: %+v", out)
	}

	steps := []struct {
		name string
		src  netip.AddrPort
		msg  string
		to   netip.AddrPort
	}{
		{"200 to the INVITE set up before", backend, response(t, invite, 200), caller},
		{"its ACK", caller, request("ACK", "up-before", true), backend},
		{"its BYE", caller, request("BYE", "up-before", true), backend},
		{"CANCEL", caller, request("CANCEL", "up-before", false), backend},
		{"REGISTER", caller, request("REGISTER", "reg", false), backend},
		{"OPTIONS", caller, request("OPTIONS", "ping", false), backend},
	}
	for _, s := range steps {
		r.clock += int64(time.Millisecond) * 10
		out := r.run(s.src, s.msg)
		if len(out) != 1 || out[0].Dst != s.to {
			t.Errorf("%s while draining: sent %+v, want one message to %v", s.name, out, s.to)
		}
	}
	last := r.clock - 2*10*int64(time.Millisecond) // CANCEL was the last call message
	if got := r.st.LastActivity(); got != last {
		t.Errorf("activity clock %d, want %d (REGISTER and OPTIONS are not calls)", got, last)
	}
	if got := counter(t, r.w, "sipedge_drain_refused_total"); got != 1 {
		t.Errorf("refused %d, want 1", got)
	}
	if got := counter(t, r.w, "sipedge_drain_in_call_total"); got != 4 {
		t.Errorf("in-call %d, want 4 (200, ACK, BYE, CANCEL)", got)
	}

	r.st.Set(false)
	if out := r.run(caller, request("INVITE", "after", false)); len(out) != 1 || out[0].Dst != backend {
		t.Errorf("INVITE after undrain: %+v", out)
	}
}

func TestDrainRedirect(t *testing.T) {
	for _, code := range []int{302, 305} {
		r := newRig(t, drain.Config{Status: code, Peer: "sip:198.51.100.7:5060"})
		r.st.Set(true)
		out := r.run(caller, request("INVITE", "moved", false))
		if len(out) != 1 || !strings.HasPrefix(string(out[0].Payload), fmt.Sprintf("SIP/2.0 %d ", code)) ||
			!strings.Contains(string(out[0].Payload), "\r\nContact: <sip:198.51.100.7:5060>\r\n") {
			t.Errorf("%d: %+v", code, out)
		}
	}
}

func TestNewRefusesBadConfig(t *testing.T) {
	st := drain.NewState()
	for _, c := range []struct {
		cfg  drain.Config
		want string
	}{
		{drain.Config{Status: 503}, "State"},
		{drain.Config{State: st, Status: 404}, "want 503, 302 or 305"},
		{drain.Config{State: st, Status: 302}, "peer"},
		{drain.Config{State: st, Status: 305, Peer: "198.51.100.7"}, "SIP URI"},
	} {
		if _, err := drain.New(c.cfg); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%+v: error %v, want one saying %q", c.cfg, err, c.want)
		}
	}
}

// Neither passing a call's message nor refusing one allocates.
func TestDrainAllocatesNothing(t *testing.T) {
	for _, draining := range []bool{false, true} {
		r := newRig(t, drain.Config{Status: 503})
		r.port.Sink = func(*port.Packet) {}
		r.st.Set(draining)
		r.port.Cycle = true
		r.port.In = []memport.Datagram{
			{Payload: []byte(request("INVITE", "alloc", false)), Src: caller, Dst: edgeAddr},
			{Payload: []byte(request("BYE", "alloc", true)), Src: caller, Dst: edgeAddr},
		}
		r.w.Poll() // warm up
		if n := testing.AllocsPerRun(200, func() { r.clock++; r.w.Poll() }); n != 0 {
			t.Errorf("draining=%v: %v allocations per batch", draining, n)
		}
	}
}
