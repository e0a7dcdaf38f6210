package pipeline_test

import (
	"bytes"
	"fmt"
	"log/slog"
	"strings"
	"syscall"
	"testing"

	"sipedge/pipeline"
	"sipedge/pipeline/memport"
	"sipedge/pipeline/port"
)

// A request of another SIP version with a readable Via is answered 505
// (RFC 4475 badvers), not dropped as if it were not SIP.
func TestUnsupportedVersionAnswered505(t *testing.T) {
	r := newRig(t, pipeline.Config{})
	msg := "OPTIONS sip:t.watson@example.org SIP/7.0\r\n" +
		"Via:     SIP/7.0/UDP c.example.com;branch=z9hG4bKkdjuw\r\n" +
		"Via: SIP/2.0/UDP 203.0.113.9:40001;branch=z9hG4bKbadvers1\r\n" +
		"Max-Forwards:     70\r\nFrom:    A. Bell <sip:a.g.bell@example.com>;tag=qweoiqpe\r\n" +
		"To:     T. Watson <sip:t.watson@example.org>\r\nCall-ID:    badvers01.31415@c.example.com\r\n" +
		"CSeq:     1 OPTIONS\r\nL: 0\r\n\r\n"
	_, m := r.sendOne(caller, msg)
	if m.StatusCode != 505 {
		t.Fatalf("status %d, want 505", m.StatusCode)
	}
	// Without any Via there is nowhere to answer: a counted drop.
	noVia := strings.Replace(strings.Replace(msg, "Via:     SIP/7.0/UDP c.example.com;branch=z9hG4bKkdjuw\r\n", "", 1),
		"Via: SIP/2.0/UDP 203.0.113.9:40001;branch=z9hG4bKbadvers1\r\n", "", 1)
	r.expectNothing(caller, noVia, pipeline.DropUnparsable)
}

// panicky panics on every message whose body says so, as a stage with a
// bug would on a crafted datagram.
type panicky struct{}

func (panicky) Process(c *pipeline.Ctx) pipeline.Verdict {
	if c.Parsed && strings.Contains(string(c.Msg.B(c.Msg.Body)), "PANIC") {
		var m map[string]int
		m["boom"]++ // nil map write: a runtime panic like a real bug's
	}
	return pipeline.Continue
}

// A stage that panics drops that message, counted, and the worker goes on
// with the next one; the report is logged once a minute, not per panic.
func TestStagePanicDropsOneMessage(t *testing.T) {
	var logged bytes.Buffer
	log := slog.New(slog.NewTextHandler(&logged, nil))
	r := &rig{t: t, port: memport.New(512, 4096)}
	r.bk = newBackends(t, backendA, backendB)
	r.proxy = newProxy(t, r.bk)
	p := pipeline.StageOf("panicky", panicky{})
	makers, err := proxyChain.Insert("route", p.Def()).Makers(append(r.proxy, p)...)
	if err != nil {
		t.Fatal(err)
	}
	r.w, err = pipeline.NewWorker(r.port, pipeline.Config{Log: log, Key: &testKey, Core: -1}, makers)
	if err != nil {
		t.Fatal(err)
	}
	bad := strings.Replace(newCall(1).request("INVITE", false), "Content-Length: 0", "Content-Length: 5", 1) + "PANIC"
	out := r.send(caller, bad, newCall(2).request("INVITE", false), bad, newCall(3).request("INVITE", false))
	if len(out) != 2 {
		t.Fatalf("%d datagrams out, want the 2 good INVITEs forwarded", len(out))
	}
	st := r.w.Stats()
	if st.Drops[pipeline.DropPanic] != 2 {
		t.Fatalf("panic drops %d, want 2 (all: %v)", st.Drops[pipeline.DropPanic], st.Drops)
	}
	if n := strings.Count(logged.String(), "panicked"); n != 1 {
		t.Fatalf("logged %d panic reports, want 1 a minute:\n%s", n, logged.String())
	}
	if !strings.Contains(logged.String(), "datagram_fnv64a=") {
		t.Errorf("the report has no datagram hash:\n%s", logged.String())
	}
	if n := r.port.FramesInUse(); n > 1 {
		t.Errorf("%d frames in use after the panics", n)
	}
}

// flakyPort fails its first Receive with err, then is the memport.
type flakyPort struct {
	*memport.Port
	err error
}

func (p *flakyPort) Receive(rx []port.Packet) (int, error) {
	if err := p.err; err != nil {
		p.err = nil
		return 0, err
	}
	return p.Port.Receive(rx)
}

// A transient receive error (an ICMP error queued on a socket, a memory
// shortage) is counted and the worker goes on; any other error still ends
// Run, as a closed port does.
func TestTransientReceiveErrorCounted(t *testing.T) {
	for _, tc := range []struct {
		err  error
		fail bool
	}{
		{fmt.Errorf("recvmmsg: %w (%w)", syscall.ECONNREFUSED, port.ErrTransient), false},
		{fmt.Errorf("recvmmsg: %w", syscall.EBADF), true},
	} {
		fp := &flakyPort{Port: memport.New(64, 4096), err: tc.err}
		w, err := pipeline.NewWorker(fp, pipeline.Config{Key: &testKey, Core: -1}, newProxy(t, newBackends(t, backendA)))
		if err != nil {
			t.Fatal(err)
		}
		fp.In = append(fp.In, memport.Datagram{Payload: []byte(newCall(1).request("INVITE", false)), Src: caller, Dst: edgeAddr})
		_, err = w.Poll()
		if (err != nil) != tc.fail {
			t.Fatalf("%v: Poll returned %v", tc.err, err)
		}
		if got := w.Stats().RxErrors; got != 1 {
			t.Errorf("%v: receive errors %d, want 1", tc.err, got)
		}
		if tc.fail {
			continue
		}
		w.Poll()
		if len(fp.Sent) != 1 {
			t.Errorf("after a transient error: %d forwarded, want 1", len(fp.Sent))
		}
	}
}
