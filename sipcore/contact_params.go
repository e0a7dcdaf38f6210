package sipcore

// Registrar helpers (RFC 3261 10.3, 20.10, 20.19; RFC 3327; RFC 5626 4.2):
// the Contact parameters a registrar reads and the Expires delta-seconds.
// Like the rest of the lazy parser they allocate nothing: results are
// integers and spans into the message.

// ContactParams are the header parameters of one Contact value that a
// registrar acts on.
type ContactParams struct {
	// Expires is the expires= value in seconds, -1 when absent.
	Expires int64
	// Q is the q= value in thousandths (q=0.5 is 500), -1 when absent.
	Q int
	// Instance is the +sip.instance value with its quotes removed
	// ("<urn:uuid:...>"), empty when absent.
	Instance Span
	// RegID is the reg-id= value, -1 when absent.
	RegID int64
}

// maxDelta caps delta-seconds (RFC 3261 25.1: 2**32-1 "or more" is
// treated as the largest value; a registrar clamps to its maximum anyway).
const maxDelta = 1<<32 - 1

// ParseContactParams reads expires, q, +sip.instance and reg-id from the
// header parameters of a Contact value (NameAddr.Params after
// ParseAddress). Other parameters are skipped. It returns ErrBadContact
// when one of these four is malformed: the registrar answers 400 rather
// than guess.
func (m *Msg) ParseContactParams(params Span, cp *ContactParams) error {
	*cp = ContactParams{Expires: -1, Q: -1, RegID: -1}
	b := m.buf
	p, e := int(params.Off), params.End()
	if e > len(b) || p > e {
		return m.fail(ErrBadContact, p)
	}
	for p < e {
		// One parameter: name [= value], up to an unquoted ';'.
		ns := p
		for p < e && b[p] != '=' && b[p] != ';' {
			p++
		}
		ne := trimWS(b, ns, p)
		ns = skipWS(b, ns, ne)
		vs, ve := p, p
		if p < e && b[p] == '=' {
			p++
			vs = skipWS(b, p, e)
			q := false
			for p = vs; p < e && (q || b[p] != ';'); p++ {
				if b[p] == '"' {
					q = !q
				} else if b[p] == '\\' && q {
					p++
				}
			}
			if q {
				return m.fail(ErrBadContact, vs)
			}
			if p > e {
				p = e
			}
			ve = trimWS(b, vs, p)
		}
		name := b[ns:ne]
		val := b[vs:ve]
		switch {
		case equalFold(name, "expires"):
			v, ok := ParseDeltaSeconds(val)
			if !ok {
				return m.fail(ErrBadContact, vs)
			}
			cp.Expires = v
		case equalFold(name, "q"):
			v, ok := ParseQValue(val)
			if !ok {
				return m.fail(ErrBadContact, vs)
			}
			cp.Q = v
		case equalFold(name, "+sip.instance"):
			if len(val) < 2 || val[0] != '"' || val[len(val)-1] != '"' {
				return m.fail(ErrBadContact, vs)
			}
			cp.Instance = Span{Off: uint16(vs + 1), Len: uint16(len(val) - 2)}
		case equalFold(name, "reg-id"):
			v, ok := ParseDeltaSeconds(val)
			if !ok || v == 0 {
				return m.fail(ErrBadContact, vs)
			}
			cp.RegID = v
		}
		if p < e && b[p] == ';' {
			p++
		}
	}
	return nil
}

// ParseDeltaSeconds parses delta-seconds (1*DIGIT), capping at 2**32-1 as
// RFC 3261 25.1 allows. It reports false for anything but digits.
func ParseDeltaSeconds(b []byte) (int64, bool) {
	if len(b) == 0 {
		return 0, false
	}
	var v int64
	for _, c := range b {
		if c < '0' || c > '9' {
			return 0, false
		}
		if v < maxDelta {
			v = v*10 + int64(c-'0')
		}
	}
	return min(v, maxDelta), true
}

// ParseQValue parses a qvalue (RFC 3261 25.1: "0" [ "." 0*3DIGIT ] /
// "1" [ "." 0*3("0") ]) into thousandths.
func ParseQValue(b []byte) (int, bool) {
	if len(b) == 0 || (b[0] != '0' && b[0] != '1') {
		return 0, false
	}
	v := int(b[0]-'0') * 1000
	if len(b) == 1 {
		return v, true
	}
	if b[1] != '.' || len(b) > 5 {
		return 0, false
	}
	scale := 100
	for _, c := range b[2:] {
		if c < '0' || c > '9' {
			return 0, false
		}
		v += int(c-'0') * scale
		scale /= 10
	}
	if v > 1000 {
		return 0, false
	}
	return v, true
}

// ExpiresValue returns the Expires header's delta-seconds, -1 when the
// header is absent, and false when it is malformed.
func (m *Msg) ExpiresValue() (int64, bool) {
	if m.Expires < 0 {
		return -1, true
	}
	return ParseDeltaSeconds(m.B(m.Headers[m.Expires].Value))
}

// NextPath returns the index in Headers of the next Path header (RFC 3327)
// at or after from, -1 when none: Path is not a kind of its own, so this
// finds it by name once per header.
func (m *Msg) NextPath(from int) int { return m.Find("Path", from) }
