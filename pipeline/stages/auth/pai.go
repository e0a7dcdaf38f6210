package auth

import "sipedge/pipeline"

// P-Asserted-Identity (RFC 3325) tells the next hops who the caller is,
// and they believe it because it comes from inside their trust domain. So
// a request from outside (any source not in trusted) loses every
// P-Asserted-Identity it carries: a forged one would be believed by the
// backends. After authentication this node asserts the authenticated user
// itself (RFC 3325 9.1).

const paiName = "P-Asserted-Identity"

// stripPAI removes every P-Asserted-Identity line of the request in c, in
// place, and parses it again. It reports false when the message no longer
// parses (it always should: only whole header lines went).
func stripPAI(c *pipeline.Ctx) bool {
	m := c.Msg
	i := m.Find(paiName, 0)
	if i < 0 {
		return true
	}
	b := c.Buf
	w := int(m.Headers[i].Line.Off)
	r := w
	for ; i >= 0; i = m.Find(paiName, i+1) {
		l := m.Headers[i].Line
		w += copy(b[w:], b[r:int(l.Off)])
		r = l.End()
	}
	w += copy(b[w:], b[r:])
	c.Buf = b[:w]
	return c.Parse() == nil
}

// assertIdentity adds "P-Asserted-Identity: <sip:user@realm>" as the last
// header of the request in c, in place (within the buffer's capacity; the
// parsed message is updated, not parsed again). It leaves the message as
// it is when the user name has characters a SIP URI's user part would need
// escaped, or when the buffer has no room: the request goes on without an
// assertion, never with a wrong one.
func (s *checker) assertIdentity(c *pipeline.Ctx, user []byte) bool {
	if !uriUser(user) {
		return false
	}
	b, ok := c.Msg.AddHeader(paiName, paiOpen, user, paiAt, s.core.a.realm, paiClose)
	if ok {
		c.Buf = b
	}
	return ok
}

var (
	paiOpen  = []byte("<sip:")
	paiAt    = []byte("@")
	paiClose = []byte(">")
)

// uriUser reports whether u can stand as a SIP URI's user part as it is:
// unreserved characters and the user-unreserved ones of RFC 3261 25.1.
func uriUser(u []byte) bool {
	if len(u) == 0 {
		return false
	}
	for _, ch := range u {
		if !uriUserChar[ch] {
			return false
		}
	}
	return true
}

var uriUserChar = func() (t [256]bool) {
	for _, ch := range "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_.!~*'()&=+$,;?/" {
		t[ch] = true
	}
	return t
}()
