package pipeline

import "sipedge/sipcore"

// RespondTooLarge answers 513 Message Too Large (RFC 3261 21.5.14) to a
// datagram longer than max bytes (or one the port cut, Ctx.Truncated),
// reading only its first max bytes: an
// over-limit request whose Via can be read there is told why it is not
// served, instead of vanishing. It returns ok false, building nothing,
// when there is no one to answer (no Via in the first max bytes, a
// response, an ACK) or no buffer to answer with; the caller then drops and
// counts the datagram. Whatever a stage does next with c, Msg describes
// only the first max bytes.
func (c *Ctx) RespondTooLarge(max int) (v Verdict, ok bool) {
	if c.Msg == nil || max <= 0 || len(c.Buf) <= max && !c.Truncated {
		return 0, false
	}
	full := c.Buf
	c.Buf = full[:min(max, len(full))]
	c.Parse() // fails on the cut, but what precedes it is read
	c.Buf, c.Parsed = full, false
	m := c.Msg
	if !m.IsRequest || m.NVia == 0 || m.Method == sipcore.MethodACK {
		return 0, false
	}
	if v = c.Respond(513, "Message Too Large", nil); v != Respond {
		return 0, false
	}
	return v, true
}
