package sipcore

// AddHeader inserts the header line "name: value\r\n" (value the
// concatenation of parts) after the last header of the message m holds,
// moving the body along, and updates m as if Parse had read the longer
// message: no second parse. The buffer m was parsed from must have room
// for the line within its capacity; the longer buffer is returned.
//
// It refuses (ok false, nothing changed) a name Parse gives meaning to
// (any but HdrOther: its index fields would have to move too), a message
// without headers or with MaxHeaders of them, a line that would not fit
// the buffer's capacity or MaxMessageSize, and bytes in name or value that
// would break the header section (CR, LF). It allocates nothing.
func (m *Msg) AddHeader(name string, parts ...[]byte) (buf []byte, ok bool) {
	if m.NHeaders == 0 || m.NHeaders >= MaxHeaders || name == "" || headerKind(name) != HdrOther {
		return m.buf, false
	}
	vlen := 0
	for _, p := range parts {
		for _, c := range p {
			if c == '\r' || c == '\n' {
				return m.buf, false
			}
		}
		vlen += len(p)
	}
	for i := 0; i < len(name); i++ {
		if charClass[name[i]]&cToken == 0 {
			return m.buf, false
		}
	}
	n := len(name) + 2 + vlen + 2
	b := m.buf
	if len(b)+n > cap(b) || len(b)+n > MaxMessageSize {
		return m.buf, false
	}
	at := m.Headers[m.NHeaders-1].Line.End()
	b = b[:len(b)+n]
	copy(b[at+n:], b[at:])
	k := at + copy(b[at:], name)
	k += copy(b[k:], ": ")
	v := k
	for _, p := range parts {
		k += copy(b[k:], p)
	}
	copy(b[k:], "\r\n")
	m.Headers[m.NHeaders] = Header{Kind: HdrOther, Name: span(at, at+len(name)), Value: span(v, k), Line: span(at, at+n)}
	m.NHeaders++
	m.Body.Off += uint16(n)
	m.End += n
	m.buf = b
	return b, true
}
