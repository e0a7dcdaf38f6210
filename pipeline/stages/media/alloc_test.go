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

// queuedReq is the ng dictionary of the job the stage handed over last
// (in a Solo nothing takes it).
func queuedReq(s *stage) string {
	req := ""
	for i := range s.jobs {
		if s.jobs[i].word.Load()&0xff == jobQueued {
			req = string(s.jobs[i].req)
		}
	}
	return req
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
	req := queuedReq(s)
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

// relaySwapSets are two relay sets a refresh alternates between; the
// stage's own relay is in both, so offers keep parking.
var relaySwapSets = [2][]pipeline.BackendSpec{
	{{Addr: testRelay, Weight: 1}, {Addr: netip.MustParseAddrPort("127.0.0.1:10"), Weight: 1, Priority: 5}},
	{{Addr: testRelay, Weight: 2}, {Addr: netip.MustParseAddrPort("127.0.0.1:11"), Weight: 1, Priority: 5}},
}

// A relay set swapped in by a DNS refresh costs the worker nothing: the
// next batch loads the new snapshot and parks offers on it without
// allocating.
func TestOfferAfterRelaySwapAllocatesNothing(t *testing.T) {
	so, s := solo(t, false)
	c := parsedCtx(t, testInvite())
	k := 0
	if a := testing.AllocsPerRun(1000, func() {
		if k%10 == 0 { // outside the worker's cost, but inside the measured function: keep it rare
			s.StartBatch(0, 0)
		}
		k++
		c.Now += int64(10 * time.Second)
		if so.Process(c) != pipeline.Park {
			t.Fatal("not parked")
		}
	}); a != 0 {
		t.Errorf("Process(offer) allocates %v times", a)
	}
	before := s.set
	if err := s.m.ReplaceRelays(relaySwapSets[1]); err != nil {
		t.Fatal(err)
	}
	s.StartBatch(0, 0)
	if s.set == before || len(s.set.Backends) != 2 {
		t.Fatalf("the stage did not load the swapped set: %+v", s.set.Backends)
	}
	if a := testing.AllocsPerRun(1000, func() {
		s.StartBatch(0, 0)
		c.Now += int64(10 * time.Second)
		if so.Process(c) != pipeline.Park {
			t.Fatal("not parked")
		}
	}); a != 0 {
		t.Errorf("StartBatch + Process(offer) after a swap allocates %v times", a)
	}
}

// BenchmarkOfferRelaySwaps is the worker's cost per offer (a batch of one:
// StartBatch, then Process) with the relay set still, swapped 20 times a
// second (a busy DNS: TTLs of 50ms), and swapped flat out by a goroutine
// (which then takes a core of this box's two). B/op and allocs/op count
// the swapping goroutine's new sets too: the worker's own are 0
// (TestOfferAfterRelaySwapAllocatesNothing).
func BenchmarkOfferRelaySwaps(b *testing.B) {
	for _, c := range []struct {
		name  string
		every time.Duration // 0: still; <0: flat out
	}{{"still", 0}, {"20/s", 50 * time.Millisecond}, {"flat-out", -1}} {
		b.Run(c.name, func(b *testing.B) {
			so, s := solo(b, false)
			msg := parsedCtx(b, testInvite())
			stop := make(chan struct{})
			done := make(chan int)
			go func() {
				n := 0
				var tick <-chan time.Time
				if c.every > 0 {
					t := time.NewTicker(c.every)
					defer t.Stop()
					tick = t.C
				}
				for {
					if c.every == 0 {
						<-stop
						done <- n
						return
					}
					if tick != nil {
						select {
						case <-stop:
							done <- n
							return
						case <-tick:
						}
					} else {
						select {
						case <-stop:
							done <- n
							return
						default:
						}
					}
					s.m.ReplaceRelays(relaySwapSets[n%2])
					n++
				}
			}()
			b.ReportAllocs()
			for b.Loop() {
				s.StartBatch(0, 0)
				msg.Now += int64(10 * time.Second)
				so.Process(msg)
			}
			b.StopTimer()
			close(stop)
			b.ReportMetric(float64(<-done)/b.Elapsed().Seconds(), "swaps/s")
		})
	}
}

// A late offer's ACK parks as the answer with the tags swapped (the
// callee offered) and no branch, without allocating.
func TestLateOfferAnswerAllocatesNothing(t *testing.T) {
	so, s := solo(t, false)
	ack := strings.Replace(strings.Replace(testInvite(), "INVITE sip", "ACK sip", 1), "1 INVITE", "1 ACK", 1)
	c := parsedCtx(t, strings.Replace(ack, "To: <sip:bob@example.com>", "To: <sip:bob@example.com>;tag=to-alloc", 1))
	if v := so.Process(c); v != pipeline.Park {
		t.Fatalf("verdict %v, want park", v)
	}
	req := queuedReq(s)
	for _, want := range []string{"7:command6:answer", "8:from-tag8:to-alloc", "6:to-tag10:from-alloc"} {
		if !strings.Contains(req, want) {
			t.Errorf("answer %q lacks %q", req, want)
		}
	}
	if strings.Contains(req, "via-branch") {
		t.Errorf("answer %q names a branch", req)
	}
	if a := testing.AllocsPerRun(1000, func() {
		c.Now += int64(10 * time.Second)
		if so.Process(c) != pipeline.Park {
			t.Fatal("not parked")
		}
	}); a != 0 {
		t.Errorf("Process(late-offer ACK) allocates %v times", a)
	}
}
