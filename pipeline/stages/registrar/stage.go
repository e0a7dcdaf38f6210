package registrar

import (
	"encoding/binary"
	"net/netip"
	"time"

	"sipedge/pipeline"
	"sipedge/pipeline/stages/registrar/bindings"
	"sipedge/sipcore"
)

// maxRegister bounds the REGISTER a helper takes (a copy travels in its
// queue); a larger one is answered 513.
const maxRegister = 4096

// keyHead is the source address ahead of the message in a helper key.
const keyHead = 18

// stage is one worker's registrar.
type stage struct {
	r      *Registrar
	cnt    pipeline.Counters
	helper pipeline.HelperRef
	aor    [bindings.MaxAOR]byte
	key    [keyHead + maxRegister]byte
	cr     sipcore.Credentials
	user   [sipcore.MaxDigestField]byte
	realm  [sipcore.MaxDigestField]byte
}

var _ pipeline.Resumer = (*stage)(nil)

// Process implements pipeline.Stage.
func (s *stage) Process(c *pipeline.Ctx) pipeline.Verdict {
	m := c.Msg
	if !c.Parsed || !m.IsRequest || m.Method != sipcore.MethodREGISTER || !s.r.ours(m) {
		return pipeline.Continue
	}
	s.cnt.Inc(cRequests)
	if st, reason := s.r.check(m, s.aor[:0]); st != 0 {
		return s.refuse(c, st, reason)
	}
	if !s.authorized(m) {
		s.cnt.Inc(cForbidden)
		return c.Respond(403, "Forbidden (the credentials are not for this address-of-record)", nil)
	}
	if m.End > maxRegister {
		s.cnt.Inc(cTooLarge)
		return c.Respond(513, "Message Too Large", nil)
	}
	putAddr(s.key[:keyHead], c.Src)
	n := keyHead + copy(s.key[keyHead:], c.Buf[:m.End])
	s.cnt.Inc(cParked)
	return c.Park(s.helper, s.key[:n], s.r.cfg.Deadline)
}

// authorized applies RFC 3261 10.3 step 4 as the auth stage left it: a
// user may register only its own address-of-record, so the credentials
// for our realm must name To's user. A REGISTER without them was let
// through by auth (a trusted source, or no [auth]): allowed.
func (s *stage) authorized(m *sipcore.Msg) bool {
	realm := s.r.cfg.Realm
	if realm == "" {
		return true
	}
	for i := m.Next(sipcore.HdrAuthorization, 0); i >= 0; i = m.Next(sipcore.HdrAuthorization, i+1) {
		if sipcore.ParseCredentials(m.B(m.Headers[i].Value), &s.cr) != nil {
			continue
		}
		if string(s.field(s.realm[:0], s.cr.Realm)) != realm {
			continue
		}
		return string(s.field(s.user[:0], s.cr.Username)) == string(m.B(m.To.URI.User))
	}
	return true
}

// field is a credential field unescaped into dst when it had escapes.
func (s *stage) field(dst, raw []byte) []byte {
	if !s.cr.Escaped {
		return raw
	}
	return sipcore.AppendUnescaped(dst, raw)
}

func (s *stage) refuse(c *pipeline.Ctx, st int, reason string) pipeline.Verdict {
	switch st {
	case 423:
		s.cnt.Inc(cTooBrief)
		return c.Respond(423, reason, s.r.minExpires)
	case 404:
		s.cnt.Inc(cNotFound)
	default:
		s.cnt.Inc(cBad)
	}
	return c.Respond(st, reason, nil)
}

// Resume implements pipeline.Resumer: the store has answered.
func (s *stage) Resume(c *pipeline.Ctx) pipeline.Verdict {
	if !c.Parsed || !c.Msg.IsRequest {
		return c.Drop(pipeline.DropUnparsable)
	}
	st, slot, seq := decodeAnswer(c.Answer)
	switch st {
	case ansOK:
		extra, ok := s.r.box.Get(slot, seq)
		if !ok {
			s.cnt.Inc(cLost)
			return c.Respond(500, "Server Internal Error (registrar answer lost; retry)", s.r.retry)
		}
		s.cnt.Inc(cOK)
		return c.Respond(200, "OK", extra)
	case ansOutOfOrder:
		s.cnt.Inc(cOutOfOrder)
		return c.Respond(500, "Server Internal Error (REGISTER out of order: CSeq not higher than the binding's)", nil)
	case ansTooMany:
		s.cnt.Inc(cTooMany)
		return c.Respond(403, "Forbidden (too many contacts for this address-of-record)", nil)
	case ansBad:
		s.cnt.Inc(cBad)
		return c.Respond(400, "Bad Request", nil)
	}
	s.cnt.Inc(cStoreErrors)
	return c.Respond(503, "Service Unavailable (binding store unavailable)", s.r.retry)
}

// ours reports whether the REGISTER is for this registrar: its
// Request-URI names one of the domains or, with a user part absent, the
// node itself.
func (r *Registrar) ours(m *sipcore.Msg) bool {
	if r.cfg.Domains.Local(m.B(m.RURI.Host)) {
		return true
	}
	return r.cfg.Node != nil && r.cfg.Node.IsSelf(m.Buf(), &m.RURI)
}

// check makes every decision that needs no store (RFC 3261 10.3 steps 2,
// 3, 5 and 6 for the expiry bounds): 0 when the REGISTER may be stored.
// It allocates nothing.
func (r *Registrar) check(m *sipcore.Msg, aor []byte) (int, string) {
	if err := m.Validate(); err != nil {
		return 400, "Bad Request (malformed To or Contact)"
	}
	if _, ok := r.cfg.Domains.AppendAOR(aor, m.Buf(), &m.To.URI); !ok {
		return 400, "Bad Request (To is not a sip: address with a user)"
	}
	if !r.cfg.Domains.Local(m.B(m.To.URI.Host)) {
		return 404, "Not Found (not a domain of this registrar)"
	}
	hexp, ok := m.ExpiresValue()
	if !ok {
		return 400, "Bad Request (malformed Expires)"
	}
	if m.StarContact {
		if hexp != 0 {
			return 400, "Bad Request (Contact: * needs Expires: 0)"
		}
		return 0, ""
	}
	var cp sipcore.ContactParams
	for i := 0; i < m.NContact; i++ {
		ct := &m.Contacts[i]
		if ct.URI.Scheme != sipcore.SchemeSIP && ct.URI.Scheme != sipcore.SchemeSIPS {
			return 400, "Bad Request (this registrar binds sip: and sips: contacts only)"
		}
		if m.ParseContactParams(ct.Params, &cp) != nil {
			return 400, "Bad Request (malformed Contact expires, q, +sip.instance or reg-id)"
		}
		if _, brief := r.grant(cp.Expires, hexp); brief {
			return 423, "Interval Too Brief"
		}
	}
	return 0, ""
}

// grant is the expiry a contact gets: its expires parameter, else the
// Expires header, else the default; 0 removes; below the minimum is too
// brief (423), above the maximum is clamped (RFC 3261 10.3 step 6).
func (r *Registrar) grant(contactExp, headerExp int64) (time.Duration, bool) {
	e := contactExp
	if e < 0 {
		e = headerExp
	}
	if e < 0 {
		return r.cfg.DefaultExpires, false
	}
	if e == 0 {
		return 0, false
	}
	d := time.Duration(e) * time.Second
	if d < r.cfg.MinExpires {
		return 0, true
	}
	return min(d, r.cfg.MaxExpires), false
}

// Answer statuses of the helper.
const (
	ansOK int32 = iota
	ansOutOfOrder
	ansTooMany
	ansBad
	ansError
)

func encodeAnswer(a *pipeline.Answer, st int32, slot uint32, seq uint64) {
	a.Status, a.Len = st, 12
	binary.LittleEndian.PutUint32(a.Data[0:], slot)
	binary.LittleEndian.PutUint64(a.Data[4:], seq)
}

func decodeAnswer(a *pipeline.Answer) (st int32, slot uint32, seq uint64) {
	if a == nil || a.Len != 12 {
		return ansError, 0, 0
	}
	return a.Status, binary.LittleEndian.Uint32(a.Data[0:]), binary.LittleEndian.Uint64(a.Data[4:])
}

func putAddr(b []byte, a netip.AddrPort) {
	ip := a.Addr().As16()
	copy(b, ip[:])
	binary.BigEndian.PutUint16(b[16:], a.Port())
}

func getAddr(b []byte) netip.AddrPort {
	var ip [16]byte
	copy(ip[:], b)
	return netip.AddrPortFrom(netip.AddrFrom16(ip).Unmap(), binary.BigEndian.Uint16(b[16:]))
}
