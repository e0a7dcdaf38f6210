package location

import (
	"encoding/binary"
	"net/netip"

	"sipedge/pipeline"
	"sipedge/sipcore"
)

// stage is one worker's location stage.
type stage struct {
	l      *Location
	c      *core
	cnt    pipeline.Counters
	helper pipeline.HelperRef
	key    [pipeline.HelperKeyMax]byte
	fo     sipcore.ForwardOptions // fwdInitial with this request's Record-Route
	rr     [192]byte
}

var (
	_ pipeline.BatchStarter = (*stage)(nil)
	_ pipeline.Resumer      = (*stage)(nil)
)

// StartBatch applies the invalidations pushed since the last batch.
func (s *stage) StartBatch(int64, int) {
	c := s.c
	if f := c.flush.Load(); f > c.flushed {
		c.cache.clear()
		c.flushed = f
		c.applied = max(c.applied, f)
	}
	var e invEntry
	for c.inv.Pop(&e) {
		c.cache.remove(e.k)
		c.applied = max(c.applied, e.seq)
	}
	s.cnt.Set(cEntries, uint64(c.cache.live))
	s.cnt.Set(cExpired, c.cache.expired)
}

// keySeq is the helper key's head: the invalidation count when the lookup
// was asked, so that an answer an invalidation overtook is not cached.
const keySeq = 8

// Process implements pipeline.Stage.
func (s *stage) Process(c *pipeline.Ctx) pipeline.Verdict {
	m := c.Msg
	if !c.Parsed || !m.IsRequest || m.Method == sipcore.MethodREGISTER {
		return pipeline.Continue
	}
	l := s.l
	buf := m.Buf()
	routes := m.NRoute
	if routes > 0 && l.cfg.Node.IsLocal(buf, &m.Routes[0].URI) {
		u := &m.Routes[0].URI
		if a, ok := l.cfg.Node.Key.ParseFlowToken(m.B(u.User)); ok && !sameAddr(c.Src, a) {
			// Another node routed it here (we hold the flow), or it is
			// in a dialog we record-routed: on to where the token says.
			// From that very address it goes the other way: not back.
			s.cnt.Inc(cFlow)
			return s.forward(c, nil, a, nil, a)
		}
		routes--
	}
	if routes > 0 || !l.cfg.Domains.Local(m.B(m.RURI.Host)) {
		return pipeline.Continue // a Route to follow, or not our domain
	}
	aor, ok := l.cfg.Domains.AppendAOR(s.key[keySeq:keySeq], buf, &m.RURI)
	if !ok || keySeq+len(aor) > len(s.key) {
		return pipeline.Continue // the domain itself (no user): not a user's
	}
	s.cnt.Inc(cRequests)
	if t := s.c.cache.get(l.hash.key(aor), c.Now); t != nil {
		s.cnt.Inc(cHits)
		return s.send(c, t)
	}
	s.cnt.Inc(cMisses)
	binary.LittleEndian.PutUint64(s.key[:keySeq], l.seq.Load())
	return c.Park(s.helper, s.key[:keySeq+len(aor)], l.cfg.Deadline)
}

// Resume implements pipeline.Resumer: the helper's Target, cached unless
// an invalidation overtook the lookup.
func (s *stage) Resume(c *pipeline.Ctx) pipeline.Verdict {
	m := c.Msg
	if !c.Parsed || !m.IsRequest {
		return c.Drop(pipeline.DropUnparsable)
	}
	a := c.Answer
	if a == nil || a.Status != 0 || a.Len != 20 {
		s.cnt.Inc(cStoreErrors)
		return c.Respond(503, "Service Unavailable (location store unavailable)", s.l.retry)
	}
	t, ok := s.l.box.Get(binary.LittleEndian.Uint32(a.Data[0:]), binary.LittleEndian.Uint64(a.Data[4:]))
	if !ok {
		s.cnt.Inc(cStoreErrors)
		return c.Respond(503, "Service Unavailable (location answer lost)", s.l.retry)
	}
	if seq := binary.LittleEndian.Uint64(a.Data[12:]); seq >= s.c.applied {
		if aor, ok := s.l.cfg.Domains.AppendAOR(s.key[:0], m.Buf(), &m.RURI); ok {
			s.c.cache.put(s.l.hash.key(aor), t, c.Now, c.Now+int64(t.TTL))
		}
	} else {
		s.cnt.Inc(cFillSkipped)
	}
	return s.send(c, t)
}

// send acts on a Target: answer 404/480, or forward.
func (s *stage) send(c *pipeline.Ctx, t *Target) pipeline.Verdict {
	switch t.Status {
	case 404:
		s.cnt.Inc(cNotFound)
		return c.Respond(404, "Not Found", nil)
	case 480:
		s.cnt.Inc(cUnavailable)
		return c.Respond(480, "Temporarily Unavailable", nil)
	}
	if t.ViaNode {
		s.cnt.Inc(cViaNode)
	}
	s.cnt.Inc(cForwarded)
	rrTo := t.Dst
	if t.ViaNode {
		// The node holding the flow record-routes (with the flow's
		// token): the caller's in-dialog requests go straight to it. Two
		// nodes of one cluster in a row would look like a loop to the
		// second (the same key made both branches).
		rrTo = netip.AddrPort{}
	}
	return s.forward(c, t.RURI, t.Dst, t.Route, rrTo)
}

func sameAddr(a, b netip.AddrPort) bool {
	return a.Port() == b.Port() && a.Addr().Unmap() == b.Addr().Unmap()
}

// forward sends the request to dst with ruri (nil: unchanged) and the
// Route lines route added after the request line. An initial request is
// record-routed (when the edge record-routes) with a flow token of rrTo,
// where the caller's in-dialog requests are to go on to; not at all when
// rrTo is not valid.
func (s *stage) forward(c *pipeline.Ctx, ruri []byte, dst netip.AddrPort, route []byte, rrTo netip.AddrPort) pipeline.Verdict {
	m := c.Msg
	b := c.TxBuf()
	if b == nil {
		return c.Drop(pipeline.DropNoTxBuffer)
	}
	fo := &s.l.fwdInDialog
	if m.To.Tag.Len == 0 {
		fo = &s.l.fwdInitial
		if !rrTo.IsValid() {
			fo = &s.l.fwdInDialog // no Record-Route
		} else if s.l.rr {
			r := append(s.rr[:0], "sip:"...)
			r = s.l.cfg.Node.Key.AppendFlowToken(r, rrTo)
			r = append(r, '@')
			r = append(r, s.l.cfg.SentBy...)
			r = append(r, ";lr"...)
			s.fo = s.l.fwdInitial
			s.fo.RecordRoute = r
			fo = &s.fo
		}
	}
	n, err := sipcore.BuildForward(b, m, fo, c.Src, ruri)
	switch {
	case err == sipcore.ErrTooManyHops:
		return c.Respond(483, "Too Many Hops", nil)
	case err == sipcore.ErrLoopDetected:
		return c.Respond(482, "Loop Detected", nil)
	case err != nil:
		return c.Drop(pipeline.DropBuildFailed)
	}
	if len(route) > 0 {
		if n+len(route) > len(b) {
			return c.Drop(pipeline.DropBuildFailed)
		}
		eol := 0
		for eol+1 < n && (b[eol] != '\r' || b[eol+1] != '\n') {
			eol++
		}
		at := eol + 2
		copy(b[at+len(route):n+len(route)], b[at:n])
		copy(b[at:], route)
		n += len(route)
	}
	return c.Send(dst, n)
}
