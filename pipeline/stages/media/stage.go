package media

import (
	"bytes"
	"net/netip"

	"sipedge/pipeline"
	"sipedge/pipeline/stages/media/ng"
	"sipedge/sipcore"
)

// Counters of both sides, in their StageDefs' order.
const (
	cParked = iota
	cRewritten
	cDeletes
	cNotAnchored
	cFallbacks // one per fallbackWhy
	// cRefused follows the fallbacks, on the request side only.
	cRefused = cFallbacks + len(fallbackWhyConst)
)

// reclaimGrace is how long after a parked message's deadline its job is
// kept for an answer that could still resume it. The parker times the
// message out in the loop iteration that passes the deadline, and a
// generation check in Resume refuses a job reused meanwhile, so this only
// needs to cover a tick of the timer wheel; kept short so that a slow relay
// does not also starve the stage of jobs.
const reclaimGrace = int64(50e6)

// stage is one worker's media stage: the request side (offers, deletes
// on BYE and CANCEL) or, with answer set, the response side (answers,
// deletes on final failures). Its jobs and helpers are its own.
type stage struct {
	m      *Media
	answer bool
	cnt    pipeline.Counters
	drops  pipeline.Counters
	refs   []pipeline.HelperRef
	fhs    []*pipeline.FuncHelper
	next   int
	jobs   []job
	free   []uint32
	set    *pipeline.BackendSet
	enc    ng.Enc
	key    [8]byte
	ip     [64]byte
	out    []byte // the rewritten message: Buf of every stage after this one
	wait   int64
}

var (
	_ pipeline.BatchStarter = (*stage)(nil)
	_ pipeline.Resumer      = (*stage)(nil)
	_ pipeline.Refuser      = (*stage)(nil)
)

func (m *Media) newStage(env *pipeline.Env, answer bool) (pipeline.Stage, error) {
	s := &stage{m: m, answer: answer, cnt: env.Counters, drops: env.Drops,
		jobs: make([]job, m.cfg.Jobs), free: make([]uint32, 0, m.cfg.Jobs), out: make([]byte, 65536)}
	for i := m.cfg.Jobs - 1; i >= 0; i-- {
		s.free = append(s.free, uint32(i))
	}
	side := "o"
	if answer {
		side = "a"
	}
	refs, fhs, err := m.newHelpers(env, s.jobs, side)
	if err != nil {
		return nil, err
	}
	s.refs, s.fhs = refs, fhs
	// The relay's own deadline runs out first, so a late relay gets the
	// configured fallback from Resume; the parker's timer (whose fallback
	// is always 503 or drop) is the backstop for a helper that is stuck.
	s.wait = int64(m.cfg.Deadline) + int64(m.cfg.Deadline)/2 + 20e6
	s.set = m.relays.Load()
	return s, nil
}

// StartBatch loads the relay snapshot once per batch.
func (s *stage) StartBatch(int64, int) { s.set = s.m.relays.Load() }

// Process implements pipeline.Stage.
func (s *stage) Process(c *pipeline.Ctx) pipeline.Verdict {
	if !c.Parsed {
		return pipeline.Continue
	}
	m := c.Msg
	if s.answer {
		return s.response(c, m)
	}
	if !m.IsRequest {
		return pipeline.Continue
	}
	switch m.Method {
	case sipcore.MethodBYE, sipcore.MethodCANCEL:
		s.delete(c, m, cDeletes)
	case sipcore.MethodINVITE, sipcore.MethodUPDATE, sipcore.MethodPRACK:
		if !hasSDP(m) {
			return pipeline.Continue
		}
		if !s.m.anchors(c.Src.Addr()) && !s.m.anchorsURI(m) {
			s.cnt.Inc(cNotAnchored)
			return pipeline.Continue
		}
		return s.park(c, m, opOffer, false, m.To.Tag.Len == 0)
	case sipcore.MethodACK:
		// An ACK carries SDP only as the answer to an offer its 2xx
		// made (a late offer, RFC 3264 section 5): the callee offered,
		// so the tags are the other way round.
		if m.To.Tag.Len == 0 || !hasSDP(m) {
			return pipeline.Continue
		}
		if !s.m.anchors(c.Src.Addr()) && !s.m.anchorsURI(m) {
			s.cnt.Inc(cNotAnchored)
			return pipeline.Continue
		}
		return s.park(c, m, opAnswer, true, false)
	}
	return pipeline.Continue
}

func (s *stage) response(c *pipeline.Ctx, m *sipcore.Msg) pipeline.Verdict {
	if m.IsRequest || m.NVia < 2 || !s.m.cfg.Key.IsOwnBranch(m.B(m.Vias[0].Branch)) {
		return pipeline.Continue // the response stage drops what is not ours
	}
	switch m.CSeqMethod {
	case sipcore.MethodINVITE, sipcore.MethodUPDATE, sipcore.MethodPRACK:
	default:
		return pipeline.Continue
	}
	code := m.StatusCode
	if code >= 300 {
		if m.CSeqMethod == sipcore.MethodINVITE {
			s.delete(c, m, cDeletes)
		}
		return pipeline.Continue
	}
	if code <= 100 || !hasSDP(m) {
		return pipeline.Continue
	}
	if len(s.m.cfg.Sources) > 0 {
		if a, ok := nextHopAddr(m); (!ok || !s.m.anchors(a)) && !s.m.anchors(c.Src.Addr()) {
			s.cnt.Inc(cNotAnchored)
			return pipeline.Continue
		}
	}
	// Our Via says whether we forwarded the INVITE without SDP: then this
	// 2xx carries the offer, made by the callee (tags swapped), and the
	// caller's ACK will carry the answer. A late offer in a reliable 1xx
	// (100rel, answered in the PRACK) is not anchored: without state the
	// PRACK's answer cannot be told from an offer.
	if late, initial := m.LateOffer(); late && m.CSeqMethod == sipcore.MethodINVITE {
		if code < 200 {
			s.cnt.Inc(cNotAnchored)
			return pipeline.Continue
		}
		return s.park(c, m, opOffer, true, initial)
	}
	return s.park(c, m, opAnswer, false, false)
}

// nextHopAddr is the address the response goes back to: the second Via's
// received, or its host.
func nextHopAddr(m *sipcore.Msg) (netip.Addr, bool) {
	v := &m.Vias[1]
	h := v.Host
	if v.Received.Len > 0 {
		h = v.Received
	}
	return sipcore.ParseIP(m.B(h))
}

// hasSDP reports whether the message carries an SDP body: Content-Type
// application/sdp, or no Content-Type and a body starting "v=".
func hasSDP(m *sipcore.Msg) bool {
	if m.Body.Len == 0 {
		return false
	}
	if m.ContentType.Len > 0 {
		ct := m.B(m.ContentType)
		if i := bytes.IndexByte(ct, ';'); i >= 0 {
			ct = ct[:i]
		}
		return bytes.EqualFold(bytes.TrimSpace(ct), []byte("application/sdp"))
	}
	b := m.B(m.Body)
	return len(b) > 2 && b[0] == 'v' && b[1] == '='
}

// take returns a free job, reclaiming finished ones when none is left.
func (s *stage) take(now int64) (uint32, *job, bool) {
	if len(s.free) == 0 {
		s.reclaim(now)
		if len(s.free) == 0 {
			return 0, nil, false
		}
	}
	i := s.free[len(s.free)-1]
	s.free = s.free[:len(s.free)-1]
	return i, &s.jobs[i], true
}

// reclaim frees the jobs no message will come back for: deletes done,
// parked messages whose deadline passed long ago (answered too late, or
// never handed over because the park pool was full).
func (s *stage) reclaim(now int64) {
	for i := range s.jobs {
		j := &s.jobs[i]
		w := j.word.Load()
		g := w >> 8
		switch w & 0xff {
		case jobDone:
			if j.answered && now < j.reclaimAt {
				continue
			}
			j.word.Store(g<<8 | jobFree)
		case jobQueued:
			// A delete is always handed to its helper, which will take
			// it; only a parked message's job may never have been (the
			// park pool was full), or be taken too late to matter.
			if !j.answered || now < j.reclaimAt || !j.word.CompareAndSwap(w, g<<8|jobFree) {
				continue
			}
		default:
			continue
		}
		s.free = append(s.free, uint32(i))
	}
}

// release frees job i after its message resumed.
func (s *stage) release(i uint32, j *job) {
	w := j.word.Load()
	j.word.Store(w&^0xff | jobFree)
	s.free = append(s.free, i)
}

// begin fills job j's common part and the dictionary's head. fromTag is
// the offerer's tag: From's, or To's when the callee offered (swapped).
func (s *stage) begin(c *pipeline.Ctx, m *sipcore.Msg, j *job, op uint8, relay netip.AddrPort, fromTag sipcore.Span) {
	j.op, j.relay, j.parkedAt = op, relay, c.Now
	e := &s.enc
	e.B = j.reqBuf[:0]
	e.Dict()
	e.KS("command", OpNames[op])
	e.KV("call-id", m.B(m.CallID))
	e.KV("from-tag", m.B(fromTag))
}

// commit hands job i to a helper, answered or not.
func (s *stage) handTo(i uint32, j *job) (pipeline.HelperRef, *pipeline.FuncHelper) {
	j.req = s.enc.B
	w := j.word.Load()
	gen := uint32(w>>8) + 1
	j.word.Store(uint64(gen)<<8 | jobQueued)
	jobKey(&s.key, i, gen)
	k := s.next
	s.next++
	if s.next == len(s.refs) {
		s.next = 0
	}
	return s.refs[k], s.fhs[k]
}

// park asks the relay for an offer or answer and parks the message. swap
// says the callee made the offer (a late offer: its 2xx and the caller's
// ACK), newCall that an offer opens a call on the relay.
func (s *stage) park(c *pipeline.Ctx, m *sipcore.Msg, op uint8, swap, newCall bool) pipeline.Verdict {
	k := s.set.Pick(m.B(m.CallID))
	if k < 0 {
		return s.fallback(c, whyNoRelay)
	}
	sdp := m.B(m.Body)
	// Everything but the SDP and the flags fits in 1 KiB (Call-ID and
	// tags are bounded by the line length the parser accepts per header,
	// so check them too): the encoder then never grows the job's buffer.
	need := len(sdp) + len(s.m.flags) + int(m.CallID.Len) + int(m.From.Tag.Len) + int(m.To.Tag.Len) + int(m.Vias[0].Branch.Len) + 256
	if need > reqMax {
		return s.fallback(c, whyTooLarge)
	}
	i, j, ok := s.take(c.Now)
	if !ok {
		return s.fallback(c, whyJobsFull)
	}
	from, to := m.From.Tag, m.To.Tag
	if swap {
		from, to = to, from
	}
	s.begin(c, m, j, op, s.set.Backends[k].Addr, from)
	e := &s.enc
	if to.Len > 0 {
		e.KV("to-tag", m.B(to))
	}
	// The branch names a fork's leg from the caller's side; a late
	// offer's 2xx and ACK are in different transactions, so neither
	// carries one the relay could pair.
	if !swap && m.NVia > 0 && m.Vias[0].Branch.Len > 0 {
		e.KV("via-branch", m.B(m.Vias[0].Branch))
	}
	e.KV("sdp", sdp)
	if s.m.cfg.Flags.ReceivedFrom {
		e.Str("received-from")
		e.List()
		a := c.Src.Addr().Unmap()
		if a.Is4() {
			e.Str("IP4")
		} else {
			e.Str("IP6")
		}
		e.Bytes(a.AppendTo(s.ip[:0]))
		e.End()
	}
	e.B = append(e.B, s.m.flags...)
	e.End()
	j.answered, j.newCall = true, op == opOffer && newCall
	j.reclaimAt = c.Now + s.wait + reclaimGrace
	ref, _ := s.handTo(i, j)
	s.cnt.Inc(cParked)
	return c.Park(ref, s.key[:], durationNs(s.wait))
}

// Refused implements pipeline.Refuser. An initial INVITE that a later
// stage answered itself (location: no such user, no binding, store down;
// route: no backend) never reaches a callee, so no final response comes
// back through mediaanswer to delete the call its offer opened on the
// relay: delete it now. A refused re-INVITE leaves its dialog, and the
// call, as they were. When the offer was not anchored after all (a relay
// failure with pass_on_failure) the relay answers the delete with an
// unknown call, which costs one exchange and nothing else.
func (s *stage) Refused(c *pipeline.Ctx, status int) {
	m := c.Msg
	if s.answer || m.Method != sipcore.MethodINVITE || m.To.Tag.Len > 0 || !hasSDP(m) {
		return
	}
	if !s.m.anchors(c.Src.Addr()) && !s.m.anchorsURI(m) {
		return
	}
	s.delete(c, m, cRefused)
}

// delete tells the call's relay the call is over, counted under counter;
// nothing waits for it.
func (s *stage) delete(c *pipeline.Ctx, m *sipcore.Msg, counter int) {
	k := s.set.Pick(m.B(m.CallID))
	if k < 0 || int(m.CallID.Len)+int(m.From.Tag.Len)+128 > reqMax {
		s.m.stats.Errors[whyDeleteFailed].Add(1) // no relay up: the call stays on its relay until the relay's own timeout
		return
	}
	i, j, ok := s.take(c.Now)
	if !ok {
		s.m.stats.Errors[whyDeleteFailed].Add(1) // every job is out: rare, and an atomic is cheap beside a lost delete
		return
	}
	s.begin(c, m, j, opDelete, s.set.Backends[k].Addr, m.From.Tag)
	if d := s.m.cfg.DeleteDelay; d >= 0 {
		s.enc.Str("delete-delay")
		s.enc.Int(int64(d))
	}
	s.enc.End()
	j.answered, j.newCall, j.reclaimAt = false, false, c.Now
	_, fh := s.handTo(i, j)
	s.cnt.Inc(counter)
	fh.Request(pipeline.Handle{}, s.key[:])
}

// Resume implements pipeline.Resumer: the relay's SDP replaces the
// message's, or the fallback applies.
func (s *stage) Resume(c *pipeline.Ctx) pipeline.Verdict {
	a := c.Answer
	idx, gen, ok := keyJob(a.Bytes())
	if !ok || int(idx) >= len(s.jobs) {
		return s.fallback(c, whyRelayError)
	}
	j := &s.jobs[idx]
	if !j.is(uint64(gen), jobDone) {
		return s.fallback(c, whyRelayError)
	}
	status := a.Status
	var n int
	var err error
	if status == ansOK && c.Parsed {
		n, err = sipcore.BuildWithBody(s.out, c.Msg, j.reply)
	}
	s.release(idx, j)
	switch {
	case status != ansOK:
		return s.fallback(c, whyOf(status))
	case !c.Parsed || err != nil:
		return s.fallback(c, whyTooLarge)
	}
	c.Buf = s.out[:n]
	if c.Parse() != nil {
		return c.Drop(pipeline.DropBuildFailed)
	}
	s.cnt.Inc(cRewritten)
	return pipeline.Continue
}

// fallback is what a message gets when the relay did not anchor it.
func (s *stage) fallback(c *pipeline.Ctx, why int) pipeline.Verdict {
	s.cnt.Inc(cFallbacks + why)
	if s.m.cfg.PassOnFailure {
		return pipeline.Continue
	}
	if s.answer {
		return c.DropOwn(0) // the sender retransmits the response
	}
	if c.Parsed && c.Msg.Method == sipcore.MethodACK {
		// An ACK is never answered, and one dropped for good fails the
		// call: it goes on unchanged. So does the SDP some UAs repeat in
		// the ACK of an early offer, which the relay does not take as
		// the answer of a late one.
		return pipeline.Continue
	}
	return c.Respond(503, "Service Unavailable (media relay)", s.m.retry)
}
