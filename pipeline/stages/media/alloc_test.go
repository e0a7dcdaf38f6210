package media

import (
	"net/netip"
	"strings"
	"testing"
	"time"

	"sipedge/pipeline"
	"sipedge/sipcore"
)

var (
	testSrc   = netip.MustParseAddrPort("203.0.113.9:5060")
	testRelay = netip.MustParseAddrPort("127.0.0.1:9") // never asked: Solo parks nothing
)

const testSDP = "v=0\r\no=- 1 1 IN IP4 203.0.113.9\r\ns=-\r\nc=IN IP4 203.0.113.9\r\nt=0 0\r\nm=audio 40000 RTP/AVP 0 8\r\na=rtpmap:0 PCMU/8000\r\na=rtpmap:8 PCMA/8000\r\n"

func testInvite() string {
	return "INVITE sip:bob@192.0.2.1 SIP/2.0\r\nVia: SIP/2.0/UDP 203.0.113.9:5060;branch=z9hG4bK-alloc\r\n" +
		"Max-Forwards: 70\r\nFrom: <sip:alice@example.com>;tag=from-alloc\r\nTo: <sip:bob@example.com>\r\n" +
		"Call-ID: alloc-call@203.0.113.9\r\nCSeq: 1 INVITE\r\nContent-Type: application/sdp\r\n" +
		"Content-Length: " + itoa(len(testSDP)) + "\r\n\r\n" + testSDP
}

func itoa(n int) string {
	s := ""
	for ; n > 0; n /= 10 {
		s = string(rune('0'+n%10)) + s
	}
	return s
}

// solo makes one worker's request or response stage outside a worker.
func solo(t testing.TB, answer bool) (*pipeline.Solo, *stage) {
	t.Helper()
	key := sipcore.NewKey([]byte("media alloc test secret, 32 byte"))
	m, err := New(Config{Key: &key, Relays: []pipeline.BackendSpec{{Addr: testRelay, Weight: 1}}, Helpers: 1, Jobs: 8,
		Flags: Flags{Replace: []string{"origin", "session-connection"}, ICE: "remove", ReceivedFrom: true, Other: []string{"trust-address"}}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(m.Close)
	var mk pipeline.StageMaker = m
	if answer {
		mk = m.Answer()
	}
	so, err := pipeline.NewSolo(0, mk)
	if err != nil {
		t.Fatal(err)
	}
	return so, so.Stage().(*stage)
}

func parsedCtx(t testing.TB, msg string) *pipeline.Ctx {
	t.Helper()
	c := &pipeline.Ctx{Buf: []byte(msg), Src: testSrc, Msg: &sipcore.Msg{}}
	if err := c.Parse(); err != nil {
		t.Fatal(err)
	}
	return c
}

// The offer path parks without allocating: the dictionary is encoded into
// the job, the key into the stage. Jobs are reclaimed as the clock passes
// their deadline (nothing answers in a Solo).
func TestProcessOfferAllocatesNothing(t *testing.T) {
	so, s := solo(t, false)
	c := parsedCtx(t, testInvite())
	if v := so.Process(c); v != pipeline.Park {
		t.Fatalf("verdict %v, want park", v)
	}
	req := ""
	for i := range s.jobs {
		if s.jobs[i].word.Load()&0xff == jobQueued {
			req = string(s.jobs[i].req)
		}
	}
	for _, want := range []string{"7:command5:offer", "7:call-id22:alloc-call@203.0.113.9", "8:from-tag10:from-alloc",
		"10:via-branch13:z9hG4bK-alloc", "13:received-froml3:IP411:203.0.113.9e", "7:replacel6:origin18:session-connectione",
		"3:ICE6:remove", "5:flagsl13:trust-addresse", "3:sdp" + itoa(len(testSDP)) + ":" + testSDP} {
		if !strings.Contains(req, want) {
			t.Errorf("offer %q lacks %q", req, want)
		}
	}
	if a := testing.AllocsPerRun(1000, func() {
		c.Now += int64(10 * time.Second)
		if so.Process(c) != pipeline.Park {
			t.Fatal("not parked")
		}
	}); a != 0 {
		t.Errorf("Process(offer) allocates %v times", a)
	}
	bye := parsedCtx(t, strings.Replace(strings.Replace(testInvite(), "INVITE sip", "ACK sip", 1), "1 INVITE", "1 ACK", 1))
	if a := testing.AllocsPerRun(1000, func() { so.Process(bye) }); a != 0 {
		t.Errorf("Process(ACK) allocates %v times", a)
	}
}

// Resume writes the relay's SDP into the message (Content-Length
// following) without allocating.
func TestResumeRewritesWithoutAllocating(t *testing.T) {
	_, s := solo(t, false)
	relaySDP := strings.ReplaceAll(testSDP, "203.0.113.9", "198.51.100.7")
	relaySDP = strings.Replace(relaySDP, "40000", "30002", 1) + "a=rtcp:30003\r\n"
	c := parsedCtx(t, testInvite())
	var a pipeline.Answer
	resume := func() pipeline.Verdict {
		i, j, ok := s.take(c.Now)
		if !ok {
			t.Fatal("no job")
		}
		gen := uint32(j.word.Load()>>8) + 1
		j.reply = append(j.rbuf[:0], relaySDP...)
		j.word.Store(uint64(gen)<<8 | jobDone)
		a.Status = ansOK
		a.Len = uint16(copy(a.Data[:], jobKey(&s.key, i, gen)))
		c.Answer = &a
		c.Buf = []byte(testInvite())[:len(testInvite())]
		c.Parse()
		return s.Resume(c)
	}
	if v := resume(); v != pipeline.Continue {
		t.Fatalf("verdict %v, want continue", v)
	}
	m := c.Msg
	if string(m.B(m.Body)) != relaySDP || m.ContentLength != len(relaySDP) || string(m.B(m.CallID)) != "alloc-call@203.0.113.9" {
		t.Fatalf("rewritten message:\n%s", c.Buf)
	}
	inv := testInvite()
	buf := []byte(inv)
	if n := testing.AllocsPerRun(1000, func() {
		i, j, _ := s.take(c.Now)
		gen := uint32(j.word.Load()>>8) + 1
		j.reply = append(j.rbuf[:0], relaySDP...)
		j.word.Store(uint64(gen)<<8 | jobDone)
		a.Len = uint16(copy(a.Data[:], jobKey(&s.key, i, gen)))
		c.Buf = append(buf[:0], inv...)
		c.Parse()
		s.Resume(c)
	}); n != 0 {
		t.Errorf("Resume allocates %v times", n)
	}
}

func BenchmarkProcessOffer(b *testing.B) {
	so, _ := solo(b, false)
	c := parsedCtx(b, testInvite())
	b.ReportAllocs()
	for b.Loop() {
		c.Now += int64(10 * time.Second)
		so.Process(c)
	}
}

func BenchmarkResumeRewrite(b *testing.B) {
	_, s := solo(b, false)
	relaySDP := strings.ReplaceAll(testSDP, "203.0.113.9", "198.51.100.7") + "a=rtcp:30003\r\n"
	inv := testInvite()
	c := parsedCtx(b, inv)
	buf := []byte(inv)
	var a pipeline.Answer
	a.Status = ansOK
	c.Answer = &a
	b.ReportAllocs()
	for b.Loop() {
		i, j, _ := s.take(c.Now)
		gen := uint32(j.word.Load()>>8) + 1
		j.reply = append(j.rbuf[:0], relaySDP...)
		j.word.Store(uint64(gen)<<8 | jobDone)
		a.Len = uint16(copy(a.Data[:], jobKey(&s.key, i, gen)))
		c.Buf = append(buf[:0], inv...)
		c.Parse()
		s.Resume(c)
	}
}

// anchor = "sources": a request is offered when its source or its
// Request-URI host is in the set, and not otherwise.
func TestAnchorSources(t *testing.T) {
	key := sipcore.NewKey([]byte("media alloc test secret, 32 byte"))
	m, err := New(Config{Key: &key, Relays: []pipeline.BackendSpec{{Addr: testRelay, Weight: 1}}, Helpers: 1, Jobs: 8,
		Sources: []netip.Prefix{netip.MustParsePrefix("198.51.100.0/24")}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(m.Close)
	so, err := pipeline.NewSolo(0, m)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name, src, ruri string
		park            bool
	}{
		{"neither", "203.0.113.9:5060", "sip:bob@192.0.2.1", false},
		{"source in the set", "198.51.100.7:5060", "sip:bob@192.0.2.1", true},
		{"Request-URI in the set", "203.0.113.9:5060", "sip:bob@198.51.100.20:5060", true},
		{"Request-URI a name", "203.0.113.9:5060", "sip:bob@example.com", false},
	} {
		c := parsedCtx(t, strings.Replace(testInvite(), "sip:bob@192.0.2.1", tc.ruri, 1))
		c.Src = netip.MustParseAddrPort(tc.src)
		if got := so.Process(c) == pipeline.Park; got != tc.park {
			t.Errorf("%s: parked %v, want %v", tc.name, got, tc.park)
		}
	}
}

// A delete waiting in its helper's queue is never reclaimed: only the
// helper frees it (done), whatever the clock says.
func TestQueuedDeleteNotReclaimed(t *testing.T) {
	_, s := solo(t, false)
	i, j, _ := s.take(0)
	j.answered, j.reclaimAt = false, 0
	j.word.Store(1<<8 | jobQueued)
	for len(s.free) > 0 { // empty the stack so that take reclaims
		s.take(0)
	}
	s.reclaim(int64(time.Hour))
	if j.word.Load() != 1<<8|jobQueued {
		t.Fatalf("a queued delete was reclaimed (job %d)", i)
	}
	j.word.Store(1<<8 | jobDone)
	s.reclaim(int64(time.Hour))
	if j.word.Load()&0xff != jobFree {
		t.Fatal("a done delete was not reclaimed")
	}
}
