package guard

import "sipedge/pipeline"

// oversize answers a datagram over MaxMessageSize 513 when its Via can be
// read in its first MaxMessageSize bytes (counted as rejected for
// oversize), and drops it for oversize otherwise: a large INVITE must not
// vanish without its sender learning why.
func (s *Stage) oversize(c *pipeline.Ctx) pipeline.Verdict {
	if v, ok := c.RespondTooLarge(s.g.cfg.MaxMessageSize); ok {
		s.cnt.Inc(cRejectBase + int(ReasonOversize) - 1)
		return v
	}
	return s.drop(c, ReasonOversize)
}
