package sipcore

import (
	"net/netip"
	"strconv"
)

// Builder errors. Like parse errors they are allocated once; Status says
// what a proxy answers (0: drop and count).
var (
	// ErrTooManyHops: Max-Forwards reached 0; answer 483 (RFC 3261 16.3 item 3).
	ErrTooManyHops = &ErrKind{Rule: "max-forwards-exhausted", Status: 483, Reason: "Too Many Hops"}
	// ErrLoopDetected: the request already passed through this cluster unchanged.
	ErrLoopDetected = &ErrKind{Rule: "loop-detected", Status: 482, Reason: "Loop Detected"}
	// ErrNoRoom: the output buffer is too small for the message; the caller
	// drops it and counts it (a frame size problem, not the peer's fault).
	ErrNoRoom = &ErrKind{Rule: "output-buffer-too-small", Status: 0}
	// ErrNotRequest / ErrNotResponse: a builder got the wrong kind of message.
	ErrNotRequest  = &ErrKind{Rule: "not-a-request", Status: 0}
	ErrNotResponse = &ErrKind{Rule: "not-a-response", Status: 0}
	// ErrNotOurVia: a response whose top Via was not made by this cluster;
	// a stateless proxy drops it (RFC 3261 16.7 item 3 / 18.1.2).
	ErrNotOurVia = &ErrKind{Rule: "response-top-via-not-ours", Status: 0}
	// ErrNoNextVia: a response to a request this node originated (a probe):
	// nothing to forward it to.
	ErrNoNextVia = &ErrKind{Rule: "response-has-no-next-via", Status: 0}
)

// writer copies into a fixed buffer and remembers when it ran out of room,
// so builders check once at the end and never grow (allocate) the buffer.
type writer struct {
	b     []byte
	n     int
	short bool
}

func (w *writer) put(p []byte) {
	if w.n+len(p) > len(w.b) {
		w.short = true
		return
	}
	w.n += copy(w.b[w.n:], p)
}

func (w *writer) str(s string) {
	if w.n+len(s) > len(w.b) {
		w.short = true
		return
	}
	w.n += copy(w.b[w.n:], s)
}

func (w *writer) uint(v uint64) {
	var tmp [20]byte
	w.put(strconv.AppendUint(tmp[:0], v, 10))
}

func (w *writer) addr(a netip.Addr) {
	var tmp [64]byte
	w.put(a.Unmap().AppendTo(tmp[:0]))
}

// editKind is how one span of the original message changes on the way out.
type editKind uint8

const (
	editDelete      editKind = iota // drop [off,end)
	editReplaceRURI                 // [off,end) becomes the new Request-URI
	editReceived                    // insert ";received=<src ip>" at off (end == off)
	editReceivedVal                 // [off,end) (an existing received value) becomes <src ip>
	editRPort                       // insert "=<src port>" at off
	editRPortVal                    // [off,end) (an existing rport value) becomes <src port>
	editMaxFwd                      // [off,end) becomes Max-Forwards - 1
	editToTag                       // insert ";tag=<derived>" at off
	editInsertTop                   // insert our Via, Record-Route, missing Max-Forwards
	editContentLen                  // insert "Content-Length: N" (absent on UDP)
)

type edit struct {
	off, end int
	kind     editKind
}

// edits is a small sorted set of changes; a message needs at most a handful.
type edits struct {
	e [10]edit
	n int
}

func (es *edits) add(off, end int, k editKind) {
	if es.n == len(es.e) {
		return
	}
	i := es.n
	for i > 0 && es.e[i-1].off > off {
		es.e[i] = es.e[i-1]
		i--
	}
	es.e[i] = edit{off, end, k}
	es.n++
}

// viaEdits makes received and rport on the top Via of a request received
// from src this node's observation (RFC 3261 18.2.1, RFC 3581), whatever
// the client wrote: received= when the sent-by is not the source address,
// when rport is asked for, or when the client wrote a received= of its
// own; the rport value always src's port. A client-written received= or
// rport= that names another address would otherwise aim every response
// of the transaction at a third party (reflection).
func viaEdits(es *edits, m *Msg, src netip.AddrPort) {
	if m.NVia == 0 || !src.IsValid() {
		return
	}
	v := &m.Vias[0]
	srcIP := src.Addr().Unmap()
	// A valueless rport has an empty RPort span placed just past its name:
	// that is where "=<port>" goes.
	if v.HasRPort {
		if v.RPort.Len == 0 { // before received: when rport ends the Via both insert at one offset
			es.add(int(v.RPort.Off), int(v.RPort.Off), editRPort)
		} else if p, end, ok := parsePort(m.B(v.RPort), 0, int(v.RPort.Len)); !ok || end != int(v.RPort.Len) || p != src.Port() {
			es.add(int(v.RPort.Off), v.RPort.End(), editRPortVal)
		}
	}
	if v.Received.Len > 0 {
		if ip, ok := ParseIP(m.B(v.Received)); !ok || ip.Unmap() != srcIP {
			es.add(int(v.Received.Off), v.Received.End(), editReceivedVal)
		}
		return
	}
	need := v.HasRPort
	if !need {
		ip, ok := ParseIP(m.B(v.Host))
		need = !ok || ip.Unmap() != srcIP
	}
	if need {
		es.add(v.Value.End(), v.Value.End(), editReceived)
	}
}

// ViaClaimsOther reports whether the top Via of request m, received from
// src, carries a received= or rport= value naming another address or port
// than src: what the forward replaces with the observation, worth
// counting, since honest clients do not write them.
func ViaClaimsOther(m *Msg, src netip.AddrPort) bool {
	if m.NVia == 0 {
		return false
	}
	v := &m.Vias[0]
	if v.Received.Len > 0 {
		if ip, ok := ParseIP(m.B(v.Received)); !ok || ip.Unmap() != src.Addr().Unmap() {
			return true
		}
	}
	if v.RPort.Len > 0 {
		if p, end, ok := parsePort(m.B(v.RPort), 0, int(v.RPort.Len)); !ok || end != int(v.RPort.Len) || p != src.Port() {
			return true
		}
	}
	return false
}

// deleteFirstValue removes the first value of a comma-separated header
// line (the top Route, the top Via): the whole line when it is the line's
// only value, else the value up to the next one ("a, b" -> "b").
func deleteFirstValue(es *edits, line Span, off, nextOnLine int) {
	if nextOnLine >= 0 {
		es.add(off, nextOnLine, editDelete)
		return
	}
	es.add(int(line.Off), line.End(), editDelete)
}
