package sipcore

import (
	"bytes"
	"net/netip"
)

// ForwardOptions says how this node writes what it forwards. Build it once
// (per configuration) and share it between workers: it is read-only.
type ForwardOptions struct {
	// Key makes our branches and recognises them in responses.
	Key *Key
	// SentBy is this node's Via sent-by: "192.0.2.1:5060" or "[2001:db8::1]:5060".
	SentBy []byte
	// Transport is our Via transport; empty means "UDP".
	Transport string
	// RecordRoute is the URI this node record-routes with
	// ("sip:192.0.2.1:5060;lr"), so that in-dialog requests come back
	// through it; nil adds no Record-Route.
	RecordRoute []byte
	// IsLocal reports whether a Route URI names this node: such a top Route
	// is removed (loose routing, RFC 3261 16.4). nil never removes one.
	IsLocal func(buf []byte, u *URI) bool
	// RouteToken adds to our Record-Route a token binding the Call-ID and
	// the address the request came from (Key.RouteTarget checks it), so
	// that in-dialog requests from the backend side can be relayed to
	// that address and nowhere else.
	RouteToken bool
	// MarkLateOffer adds LateOfferParam to our Via of an INVITE without a
	// body. Its 2xx then says statelessly that the SDP it carries is the
	// offer, not the answer (RFC 3264 with the offer in the 2xx and the
	// answer in the ACK): a node anchoring media needs to know which, and
	// keeps no transaction to remember the INVITE by.
	MarkLateOffer bool
}

// LateOfferParam is the Via parameter MarkLateOffer adds: valueless for
// a re-INVITE, "=i" for an initial INVITE (no To-tag), which opens a call
// on the relay.
const LateOfferParam = "se-lo"

// LateOffer reports whether response m's top Via carries LateOfferParam:
// the request it answers was an INVITE that we forwarded without an offer
// (initial: one without a To-tag). Check that the Via is ours
// (Key.IsOwnBranch) before trusting it.
func (m *Msg) LateOffer() (late, initial bool) {
	if m.NVia == 0 {
		return false, false
	}
	p := m.B(m.Vias[0].Params)
	for len(p) > 0 {
		var name, val []byte
		if i := bytes.IndexByte(p, ';'); i >= 0 {
			name, p = p[:i], p[i+1:]
		} else {
			name, p = p, nil
		}
		if i := bytes.IndexByte(name, '='); i >= 0 {
			name, val = name[:i], bytes.TrimSpace(name[i+1:])
		}
		if bytes.EqualFold(bytes.TrimSpace(name), []byte(LateOfferParam)) {
			return true, len(val) == 1 && val[0] == 'i'
		}
	}
	return false, false
}

// emitCtx carries what insertions need while the message is copied.
type emitCtx struct {
	o           *ForwardOptions
	src         netip.AddrPort
	ruri        []byte
	branch      [BranchLen]byte
	maxFwd      int
	addMF       bool
	late        bool
	lateInitial bool
	toTag       [toTagLen]byte
	bodyLen     int
	rt          [maxRouteToken]byte
	rtLen       int
}

// emit copies m.buf[from:to] into w, applying the edits that fall in it.
func (w *writer) emit(m *Msg, from, to int, es *edits, c *emitCtx) {
	pos := from
	for i := 0; i < es.n; i++ {
		e := &es.e[i]
		if e.off < from || e.off >= to || e.off < pos {
			continue
		}
		w.put(m.buf[pos:e.off])
		switch e.kind {
		case editReplaceRURI:
			w.put(c.ruri)
		case editReceived:
			w.str(";received=")
			w.addr(c.src.Addr())
		case editReceivedVal:
			w.addr(c.src.Addr())
		case editRPort:
			w.str("=")
			w.uint(uint64(c.src.Port()))
		case editRPortVal:
			w.uint(uint64(c.src.Port()))
		case editMaxFwd:
			w.uint(uint64(c.maxFwd))
		case editToTag:
			w.str(";tag=")
			w.put(c.toTag[:])
		case editInsertTop:
			w.str("Via: SIP/2.0/")
			if c.o.Transport == "" {
				w.str("UDP")
			} else {
				w.str(c.o.Transport)
			}
			w.str(" ")
			w.put(c.o.SentBy)
			w.str(";branch=")
			w.put(c.branch[:])
			if c.late {
				w.str(";" + LateOfferParam)
				if c.lateInitial {
					w.str("=i")
				}
			}
			w.str("\r\n")
			if c.o.RecordRoute != nil {
				w.str("Record-Route: <")
				w.put(c.o.RecordRoute)
				if c.rtLen > 0 {
					w.str(";" + routeTokenParam + "=")
					w.put(c.rt[:c.rtLen])
				}
				w.str(">\r\n")
			}
			if c.addMF {
				w.str("Max-Forwards: 70\r\n")
			}
		case editContentLen:
			w.str("Content-Length: ")
			w.uint(uint64(c.bodyLen))
			w.str("\r\n")
		}
		pos = e.end
	}
	if pos < to {
		w.put(m.buf[pos:to])
	}
}

// BuildForward writes request m, received from src, as this node forwards
// it statelessly (RFC 3261 16.6 and 16.11), in one pass over the original
// bytes: our Via on top with a stateless branch, received/rport on the
// previous top Via (RFC 3581), Max-Forwards decremented (70 when absent),
// the top Route removed when it names us, our Record-Route when configured,
// and the Request-URI replaced by ruri when ruri is not nil. Everything
// else, unknown headers included, goes through unchanged. It returns the
// number of bytes written to dst; ErrTooManyHops means answer 483,
// ErrLoopDetected 482, ErrNoRoom that dst is too small.
func BuildForward(dst []byte, m *Msg, o *ForwardOptions, src netip.AddrPort, ruri []byte) (int, error) {
	if !m.IsRequest {
		return 0, ErrNotRequest
	}
	if m.MaxForwards == 0 {
		return 0, ErrTooManyHops
	}
	if o.Key.Looped(m) {
		return 0, ErrLoopDetected
	}
	var c emitCtx
	c.o, c.src, c.ruri = o, src, ruri
	o.Key.putBranch(c.branch[:], m)
	c.late = o.MarkLateOffer && m.Method == MethodINVITE && m.Body.Len == 0
	c.lateInitial = c.late && m.To.Tag.Len == 0
	if o.RouteToken && o.RecordRoute != nil && src.IsValid() {
		c.rtLen = o.Key.putRouteToken(c.rt[:], m.B(m.CallID), src)
	}

	var es edits
	if ruri != nil {
		es.add(int(m.RURI.Raw.Off), m.RURI.Raw.End(), editReplaceRURI)
	}
	top := int(m.Headers[0].Line.Off)
	if m.MaxForwards > 0 {
		c.maxFwd = m.MaxForwards - 1
		if i := m.Next(HdrMaxForwards, 0); i >= 0 {
			v := m.Headers[i].Value
			es.add(int(v.Off), v.End(), editMaxFwd)
		}
	} else {
		c.addMF = true
	}
	es.add(top, top, editInsertTop)
	viaEdits(&es, m, src)
	if m.NRoute > 0 && o.IsLocal != nil && o.IsLocal(m.buf, &m.Routes[0].URI) {
		r := &m.Routes[0]
		line := m.Headers[r.Header].Line
		next := -1
		if m.NRoute > 1 && m.Headers[m.Routes[1].Header].Line == line {
			next = int(m.Routes[1].Value.Off)
		}
		deleteFirstValue(&es, line, int(r.Value.Off), next)
	}
	if m.ContentLength < 0 {
		c.bodyLen = int(m.Body.Len)
		end := m.Headers[m.NHeaders-1].Line.End()
		es.add(end, end, editContentLen)
	}
	w := writer{b: dst}
	w.emit(m, 0, m.End, &es, &c)
	if w.short {
		return 0, ErrNoRoom
	}
	return w.n, nil
}

// ResponseOptions says how a stateless response is written.
type ResponseOptions struct {
	// Key derives the To-tag, so a retransmitted request gets the same one.
	Key *Key
	// Extra are complete header lines, each ending in CRLF, added after the
	// copied headers (Proxy-Authenticate, Retry-After, Warning, Server,
	// Allow, Unsupported...).
	Extra []byte
}

// BuildResponse writes a stateless response to request m, received from
// src (RFC 3261 8.2.6, 16.7 / 18.2.1): status line, the Vias (received and
// rport filled in on the top one), From, To (with a To-tag derived from the
// request unless it has one or status is 100), Call-ID, CSeq, the extra
// lines and Content-Length: 0. The reason should name the problem for
// errors ("Bad Request (malformed Via)").
func BuildResponse(dst []byte, m *Msg, status int, reason string, src netip.AddrPort, o *ResponseOptions) (int, error) {
	if !m.IsRequest {
		return 0, ErrNotRequest
	}
	var c emitCtx
	c.src = src
	var es edits
	viaEdits(&es, m, src)
	if status > 100 && m.To.Tag.Len == 0 && m.To.Value.Len > 0 {
		o.Key.putToTag(c.toTag[:], m)
		es.add(m.To.Value.End(), m.To.Value.End(), editToTag)
	}
	w := writer{b: dst}
	w.str("SIP/2.0 ")
	w.uint(uint64(status))
	w.str(" ")
	w.str(reason)
	w.str("\r\n")
	lastLine := -1
	for i := 0; i < m.NHeaders; i++ {
		h := &m.Headers[i]
		switch h.Kind {
		case HdrVia, HdrFrom, HdrTo, HdrCallID, HdrCSeq:
		default:
			continue
		}
		if int(h.Line.Off) == lastLine { // another value of a line already copied
			continue
		}
		lastLine = int(h.Line.Off)
		w.emit(m, int(h.Line.Off), h.Line.End(), &es, &c)
	}
	w.put(o.Extra)
	w.str("Content-Length: 0\r\n\r\n")
	if w.short {
		return 0, ErrNoRoom
	}
	return w.n, nil
}

// NextHop is where a response goes after this node removed its own Via.
type NextHop struct {
	// Addr is the destination when the next Via names an IP address (or
	// carries received=): the common case, no resolution needed.
	Addr netip.AddrPort
	// Host is the sent-by host when it is a name (Addr is then invalid):
	// the caller resolves it off the hot path.
	Host Span
	Port uint16
}

// BuildResponseForward writes response m as this node forwards it
// statelessly (RFC 3261 16.7): it checks that the top Via is ours (made with
// key k), removes it, and fills hop with where the response goes: the next
// Via's received address (or sent-by host) and its rport value (or sent-by
// port, 5060 by default), per RFC 3261 18.2.2 and RFC 3581.
func BuildResponseForward(dst []byte, m *Msg, k *Key, hop *NextHop) (int, error) {
	if m.IsRequest {
		return 0, ErrNotResponse
	}
	if m.NVia == 0 || !k.IsOwnBranch(m.B(m.Vias[0].Branch)) {
		return 0, ErrNotOurVia
	}
	if m.NVia < 2 {
		return 0, ErrNoNextVia
	}
	top, next := &m.Vias[0], &m.Vias[1]
	line := m.Headers[top.Header].Line
	nextOnLine := -1
	if m.Headers[next.Header].Line == line {
		nextOnLine = int(next.Value.Off)
	}
	var es edits
	deleteFirstValue(&es, line, int(top.Value.Off), nextOnLine)

	*hop = NextHop{Host: next.Host, Port: 5060}
	if next.HasPort {
		hop.Port = next.Port
	}
	if next.RPort.Len > 0 {
		b := m.B(next.RPort)
		if p, end, ok := parsePort(b, 0, len(b)); ok && end == len(b) && p != 0 {
			hop.Port = p
		}
	}
	host := next.Host
	if next.Received.Len > 0 {
		host = next.Received
	}
	if ip, ok := ParseIP(m.B(host)); ok {
		hop.Addr = netip.AddrPortFrom(ip, hop.Port)
	}

	var c emitCtx
	w := writer{b: dst}
	w.emit(m, 0, m.End, &es, &c)
	if w.short {
		return 0, ErrNoRoom
	}
	return w.n, nil
}
