// Code generated from the parser at commit 32eb9d7 (before the speed work),
// with one deliberate fix since: refEqLower matches only letters by case.

package sipcore

import (
	"bytes"
	"encoding/binary"
	"math/bits"
)

// refParse parses one UDP datagram into m, which then holds offsets into buf.
// It makes one pass, allocates nothing and copies nothing.
//
// Header folding (a line starting with SP or HT continues the previous one,
// RFC 3261 7.3.1) is undone in place: refParse overwrites the CR and LF before
// each continuation line with spaces, which keeps the message equivalent and
// lets every value be a single Span. buf must therefore be writable, and a
// folded message reads differently after refParse (only in those bytes).
//
// Bytes after the message are ignored: with a Content-Length, the message
// ends at m.End = start of body + Content-Length (RFC 3261 18.3); without
// one, the body is the rest of the datagram.
//
// On error refParse returns a *ParseError (stored inside m, valid until the
// next refParse) whose Kind says which rule broke; ResponseFor turns it into
// the response to send, if any. Fields parsed before the error are set.
func refParse(buf []byte, m *Msg) error {
	m.refReset(buf)
	if len(buf) > MaxMessageSize {
		return m.refFail(ErrMessageTooLarge, MaxMessageSize)
	}
	nl := bytes.IndexByte(buf, '\n')
	if nl < 0 {
		if len(buf) > MaxLineLength {
			return m.refFail(ErrStartLine, 0)
		}
		return m.refFail(ErrStartLine, len(buf))
	}
	le := nl
	if le > 0 && buf[le-1] == '\r' {
		le--
	}
	if err := m.refParseStartLine(le); err != nil {
		return err
	}
	if nl+1 > MaxLineLength {
		return m.refFail(ErrLineTooLong, 0)
	}

	pos := nl + 1
	for {
		if pos >= len(buf) {
			return m.refFail(ErrNoHeaderEnd, pos)
		}
		c := buf[pos]
		if c == '\n' {
			pos++
			break
		}
		if c == '\r' && pos+1 < len(buf) && buf[pos+1] == '\n' {
			pos += 2
			break
		}
		i := bytes.IndexByte(buf[pos:], '\n')
		if i < 0 {
			return m.refFail(ErrNoHeaderEnd, pos)
		}
		next := pos + i + 1
		for next < len(buf) && refIsWS(buf[next]) {
			if next-pos > MaxLineLength {
				return m.refFail(ErrLineTooLong, pos)
			}
			buf[next-1] = ' '
			if buf[next-2] == '\r' {
				buf[next-2] = ' '
			}
			i = bytes.IndexByte(buf[next:], '\n')
			if i < 0 {
				return m.refFail(ErrNoHeaderEnd, pos)
			}
			next += i + 1
		}
		if next-pos > MaxLineLength {
			return m.refFail(ErrLineTooLong, pos)
		}
		end := next - 1
		if end > pos && buf[end-1] == '\r' {
			end--
		}
		if err := m.refParseHeader(pos, end, next); err != nil {
			return err
		}
		pos = next
	}

	switch {
	case !m.Has(HdrVia):
		return m.refFail(ErrMissingVia, pos)
	case !m.Has(HdrFrom):
		return m.refFail(ErrMissingFrom, pos)
	case !m.Has(HdrTo):
		return m.refFail(ErrMissingTo, pos)
	case !m.Has(HdrCallID):
		return m.refFail(ErrMissingCallID, pos)
	case !m.Has(HdrCSeq):
		return m.refFail(ErrMissingCSeq, pos)
	}

	// RFC 3261 18.3 on UDP: no Content-Length means the rest of the
	// datagram; a shorter one truncates; a longer one is an error.
	end := len(buf)
	if m.ContentLength >= 0 {
		if m.ContentLength > len(buf)-pos {
			return m.refFail(ErrContentLengthExceeds, pos)
		}
		end = pos + m.ContentLength
	}
	m.Body = refSpan(pos, end)
	m.End = end
	return nil
}

// refReset clears what refParse sets, except the big index arrays: only their
// counts, since entries past a count are never read.
func (m *Msg) refReset(buf []byte) {
	m.buf = buf
	m.IsRequest = false
	m.Method = MethodUnknown
	m.MethodSpan = Span{}
	m.RURI = URI{}
	m.StatusCode = 0
	m.Reason = Span{}
	m.NHeaders = 0
	m.NVia = 0
	m.From = NameAddr{}
	m.To = NameAddr{}
	m.CallID = Span{}
	m.CSeq = 0
	m.CSeqMethod = MethodUnknown
	m.CSeqSpan = Span{}
	m.MaxForwards = -1
	m.NContact = 0
	m.StarContact = false
	m.NRoute = 0
	m.NRecordRoute = 0
	m.ContentLength = -1
	m.ContentType = Span{}
	m.Authorization = -1
	m.ProxyAuthorization = -1
	m.ProxyRequire = -1
	m.Require = -1
	m.Supported = -1
	m.UserAgent = -1
	m.Expires = -1
	m.Body = Span{}
	m.End = 0
	m.seen = 0
}

func (m *Msg) refFail(k *ErrKind, off int) error {
	m.err.Kind = k
	m.err.Offset = off
	return &m.err
}

// refParseStartLine parses buf[:le], the first line without its line ending.
func (m *Msg) refParseStartLine(le int) error {
	b := m.buf
	if le >= 4 && refEqLower(b[:4], "sip/") {
		return m.refParseStatusLine(le)
	}
	// Request-Line = Method SP Request-URI SP SIP-Version
	i := refScanToken(b, 0, le)
	if i == 0 || i >= le || b[i] != ' ' {
		return m.refFail(ErrStartLine, i)
	}
	m.IsRequest = true
	m.MethodSpan = refSpan(0, i)
	m.Method = refMethodOf(b[:i])
	u := i + 1
	last := bytes.LastIndexByte(b[u:le], ' ')
	if last < 0 {
		return m.refFail(ErrRequestLine, u)
	}
	ue := u + last
	if v := b[ue+1 : le]; !refEqLower(v, "sip/2.0") {
		if refIsVersion(v) {
			return m.refFail(ErrVersion, ue+1)
		}
		return m.refFail(ErrRequestLine, ue+1)
	}
	// One SP on each side of the Request-URI, nothing else: RFC 4475
	// lwsstart, lwsruri and trws are rejected rather than guessed at, so
	// that no stray whitespace is ever forwarded.
	if ue == u || bytes.IndexByte(b[u:ue], ' ') >= 0 {
		return m.refFail(ErrRequestLine, u)
	}
	if !refParseURI(b, u, ue, &m.RURI) {
		return m.refFail(ErrRequestURI, u)
	}
	if !m.RURI.Headers.Empty() {
		// RFC 3261 19.1.5: headers are not allowed in a Request-URI
		// (RFC 4475 escruri); never apply or forward them.
		return m.refFail(ErrRequestURIHdrs, u)
	}
	return nil
}

// refIsVersion reports whether v looks like "SIP/" 1*DIGIT "." 1*DIGIT.
func refIsVersion(v []byte) bool {
	if len(v) < 7 || !refEqLower(v[:4], "sip/") {
		return false
	}
	dot := bytes.IndexByte(v[4:], '.')
	if dot <= 0 || 4+dot+1 >= len(v) {
		return false
	}
	for i, c := range v[4:] {
		if i != dot && !refIsDigit(c) {
			return false
		}
	}
	return true
}

// refParseStatusLine parses "SIP/2.0 SP 3DIGIT SP Reason-Phrase".
func (m *Msg) refParseStatusLine(le int) error {
	b := m.buf
	sp := bytes.IndexByte(b[:le], ' ')
	if sp < 0 {
		return m.refFail(ErrStatusLine, 0)
	}
	if !refEqLower(b[:sp], "sip/2.0") {
		if refIsVersion(b[:sp]) {
			return m.refFail(ErrVersion, 0)
		}
		return m.refFail(ErrStatusLine, 0)
	}
	p := sp + 1
	if p+3 > le || !refIsDigit(b[p]) || !refIsDigit(b[p+1]) || !refIsDigit(b[p+2]) {
		return m.refFail(ErrStatusLine, p)
	}
	if p+3 < le && b[p+3] != ' ' {
		if refIsDigit(b[p+3]) {
			return m.refFail(ErrStatusCode, p) // RFC 4475 bigcode
		}
		return m.refFail(ErrStatusLine, p+3)
	}
	code := uint16(b[p]-'0')*100 + uint16(b[p+1]-'0')*10 + uint16(b[p+2]-'0')
	if code < 100 || code > 699 {
		return m.refFail(ErrStatusCode, p)
	}
	m.StatusCode = code
	if p+4 <= le {
		m.Reason = refSpan(p+4, le)
	} else {
		m.Reason = refSpan(le, le)
	}
	return nil
}

// refParseHeader parses the header line buf[pos:end] (folding undone, line
// ending excluded); next is just past its line ending.
func (m *Msg) refParseHeader(pos, end, next int) error {
	b := m.buf
	ne := refScanToken(b, pos, end)
	if ne == pos {
		return m.refFail(ErrHeaderLine, pos)
	}
	p := refSkipWS(b, ne, end)
	if p >= end || b[p] != ':' {
		return m.refFail(ErrHeaderLine, p)
	}
	p = refSkipWS(b, p+1, end)
	e := end
	for e > p && refIsWS(b[e-1]) {
		e--
	}
	kind := refKindAt(b, pos, ne)
	name, line := refSpan(pos, ne), refSpan(pos, next)

	switch kind {
	case HdrVia, HdrContact, HdrRoute, HdrRecordRoute:
		return m.refParseList(kind, name, line, p, e)
	case HdrFrom, HdrTo:
		na, dup, bad := &m.From, ErrDupFrom, ErrBadFrom
		if kind == HdrTo {
			na, dup, bad = &m.To, ErrDupTo, ErrBadTo
		}
		if m.Has(kind) {
			return m.refFail(dup, pos)
		}
		idx, err := m.refAddHeader(kind, name, refSpan(p, e), line)
		if err != nil {
			return err
		}
		if p == e || !m.refParseNameAddr(p, e, na) {
			return m.refFail(bad, p)
		}
		na.Header = uint8(idx)
		return nil
	case HdrCallID:
		if m.Has(kind) {
			return m.refFail(ErrDupCallID, pos)
		}
		if _, err := m.refAddHeader(kind, name, refSpan(p, e), line); err != nil {
			return err
		}
		if !refValidCallID(b, p, e) {
			return m.refFail(ErrBadCallID, p)
		}
		m.CallID = refSpan(p, e)
		return nil
	case HdrCSeq:
		if m.Has(kind) {
			return m.refFail(ErrDupCSeq, pos)
		}
		if _, err := m.refAddHeader(kind, name, refSpan(p, e), line); err != nil {
			return err
		}
		return m.refParseCSeq(p, e)
	case HdrMaxForwards:
		if m.Has(kind) {
			return m.refFail(ErrDupMaxForwards, pos)
		}
		if _, err := m.refAddHeader(kind, name, refSpan(p, e), line); err != nil {
			return err
		}
		n, q := 0, p
		for q < e && refIsDigit(b[q]) {
			n = n*10 + int(b[q]-'0')
			if n > 255 { // RFC 3261 20.22: 0-255
				return m.refFail(ErrBadMaxForwards, p)
			}
			q++
		}
		if q == p || q != e {
			return m.refFail(ErrBadMaxForwards, p)
		}
		m.MaxForwards = n
		return nil
	case HdrContentLength:
		if m.Has(kind) {
			return m.refFail(ErrDupContentLength, pos)
		}
		if _, err := m.refAddHeader(kind, name, refSpan(p, e), line); err != nil {
			return err
		}
		n, q := 0, p
		for q < e && refIsDigit(b[q]) {
			if n <= MaxMessageSize { // saturate: anything larger exceeds the datagram
				n = n*10 + int(b[q]-'0')
			}
			q++
		}
		if q == p || q != e {
			return m.refFail(ErrBadContentLength, p)
		}
		m.ContentLength = n
		return nil
	}

	idx, err := m.refAddHeader(kind, name, refSpan(p, e), line)
	if err != nil {
		return err
	}
	var first *int16
	switch kind {
	case HdrContentType:
		if m.ContentType.Empty() {
			m.ContentType = refSpan(p, e)
		}
		return nil
	case HdrAuthorization:
		first = &m.Authorization
	case HdrProxyAuthorization:
		first = &m.ProxyAuthorization
	case HdrProxyRequire:
		first = &m.ProxyRequire
	case HdrRequire:
		first = &m.Require
	case HdrSupported:
		first = &m.Supported
	case HdrUserAgent:
		first = &m.UserAgent
	case HdrExpires:
		first = &m.Expires
	default:
		return nil
	}
	if *first < 0 {
		*first = int16(idx)
	}
	return nil
}

// refAddHeader appends one header value and returns its index.
func (m *Msg) refAddHeader(kind HeaderKind, name, value, line Span) (int, error) {
	n := m.NHeaders
	if n >= MaxHeaders {
		return -1, m.refFail(ErrTooManyHeaders, int(line.Off))
	}
	m.Headers[n] = Header{Kind: kind, Name: name, Value: value, Line: line}
	m.NHeaders = n + 1
	m.seen |= 1 << kind
	return n, nil
}

// refParseList splits a Via, Contact, Route or Record-Route line on the commas
// outside quoted strings and angle brackets, adding one Header per value.
func (m *Msg) refParseList(kind HeaderKind, name, line Span, p, e int) error {
	var bad *ErrKind
	switch kind {
	case HdrVia:
		bad = ErrBadVia
	case HdrContact:
		bad = ErrBadContact
	case HdrRoute:
		bad = ErrBadRoute
	default:
		bad = ErrBadRecordRoute
	}
	b := m.buf
	if p >= e {
		return m.refFail(bad, p)
	}
	for {
		q := refListElemEnd(b, p, e)
		if q < 0 {
			return m.refFail(bad, p)
		}
		ve := q
		for ve > p && refIsWS(b[ve-1]) {
			ve--
		}
		if ve == p {
			return m.refFail(bad, p) // empty value: RFC 4475 badinv01
		}
		idx, err := m.refAddHeader(kind, name, refSpan(p, ve), line)
		if err != nil {
			return err
		}
		if err := m.refParseListValue(kind, p, ve, idx, bad); err != nil {
			return err
		}
		if q == e {
			return nil
		}
		p = refSkipWS(b, q+1, e)
		if p >= e {
			return m.refFail(bad, q) // trailing comma
		}
	}
}

func (m *Msg) refParseListValue(kind HeaderKind, p, e, idx int, bad *ErrKind) error {
	var na *NameAddr
	switch kind {
	case HdrVia:
		if m.NVia >= MaxVias {
			return m.refFail(ErrTooManyVias, p)
		}
		if !m.refParseVia(p, e, idx) {
			return m.refFail(bad, p)
		}
		return nil
	case HdrContact:
		if e-p == 1 && m.buf[p] == '*' {
			if m.NContact > 0 || m.StarContact {
				return m.refFail(ErrStarContact, p)
			}
			m.StarContact = true
			return nil
		}
		if m.StarContact {
			return m.refFail(ErrStarContact, p)
		}
		if m.NContact >= MaxContacts {
			return m.refFail(ErrTooManyContacts, p)
		}
		na = &m.Contacts[m.NContact]
		m.NContact++
	case HdrRoute:
		if m.NRoute >= MaxRoutes {
			return m.refFail(ErrTooManyRoutes, p)
		}
		na = &m.Routes[m.NRoute]
		m.NRoute++
	default:
		if m.NRecordRoute >= MaxRoutes {
			return m.refFail(ErrTooManyRRoutes, p)
		}
		na = &m.RecordRoutes[m.NRecordRoute]
		m.NRecordRoute++
	}
	if !m.refParseNameAddr(p, e, na) {
		return m.refFail(bad, p)
	}
	na.Header = uint8(idx)
	return nil
}

// refListElemEnd returns the index of the comma that ends the list element
// starting at p (or e when it is the last one), skipping commas inside
// quoted strings and <...>; -1 for an unterminated quoted string.
func refListElemEnd(b []byte, p, e int) int {
	c := bytes.IndexByte(b[p:e], ',')
	if c < 0 {
		return e // the common case: one value per line
	}
	if bytes.IndexByte(b[p:p+c], '"') < 0 && bytes.IndexByte(b[p:p+c], '<') < 0 {
		return p + c
	}
	inAngle := false
	for q := p; q < e; q++ {
		switch b[q] {
		case '"':
			if !inAngle {
				q = refEndQuoted(b, q, e)
				if q < 0 {
					return -1
				}
				q--
			}
		case '<':
			inAngle = true
		case '>':
			inAngle = false
		case ',':
			if !inAngle {
				return q
			}
		}
	}
	return e
}

// refValidCallID checks callid = word ["@" word] (RFC 3261 25.1).
func refValidCallID(b []byte, p, e int) bool {
	if p >= e {
		return false
	}
	at := false
	for q := p; q < e; q++ {
		c := b[q]
		if c == '@' {
			if at || q == p || q == e-1 {
				return false
			}
			at = true
			continue
		}
		if refCharClass[c]&refCWord == 0 {
			return false
		}
	}
	return true
}

// refParseCSeq parses CSeq = 1*DIGIT LWS Method, the number at most 2^32-1.
func (m *Msg) refParseCSeq(p, e int) error {
	b := m.buf
	var n uint64
	q := p
	for q < e && refIsDigit(b[q]) {
		n = n*10 + uint64(b[q]-'0')
		if n > 0xFFFFFFFF { // RFC 4475 scalar02
			return m.refFail(ErrBadCSeq, p)
		}
		q++
	}
	if q == p || q >= e || !refIsWS(b[q]) {
		return m.refFail(ErrBadCSeq, p)
	}
	ms := refSkipWS(b, q, e)
	me := refScanToken(b, ms, e)
	if me == ms || me != e {
		return m.refFail(ErrBadCSeq, p)
	}
	m.CSeq = uint32(n)
	m.CSeqSpan = refSpan(ms, me)
	m.CSeqMethod = refMethodOf(b[ms:me])
	if m.IsRequest && (m.CSeqMethod != m.Method ||
		m.Method == MethodUnknown && !bytes.Equal(b[ms:me], m.B(m.MethodSpan))) {
		return m.refFail(ErrCSeqMismatch, ms) // RFC 4475 mismatch01/02
	}
	return nil
}

// refParseVia parses one via-parm (RFC 3261 20.42, RFC 3581 rport) in
// buf[p:e] into the next Vias entry.
func (m *Msg) refParseVia(p, e, idx int) bool {
	b := m.buf
	v := &m.Vias[m.NVia]
	*v = Via{Value: refSpan(p, e), Header: uint8(idx)}
	// sent-protocol = name SLASH version SLASH transport, SLASH = SWS "/" SWS
	q := refScanToken(b, p, e)
	if q == p {
		return false
	}
	for i := 0; i < 2; i++ {
		q = refSkipWS(b, q, e)
		if q >= e || b[q] != '/' {
			return false
		}
		q = refSkipWS(b, q+1, e)
		s := q
		q = refScanToken(b, q, e)
		if q == s {
			return false
		}
		if i == 1 {
			v.Transport = refSpan(s, q)
		}
	}
	if q >= e || !refIsWS(b[q]) {
		return false
	}
	q = refSkipWS(b, q, e)
	hs := q
	q, kind, ok := refParseHost(b, q, e)
	if !ok {
		return false
	}
	v.HostKind, v.Host = kind, refSpan(hs, q)
	q = refSkipWS(b, q, e)
	if q < e && b[q] == ':' {
		port, r, ok := refParsePort(b, refSkipWS(b, q+1, e), e)
		if !ok {
			return false
		}
		v.Port, v.HasPort = port, true
		q = refSkipWS(b, r, e)
	}
	if q == e {
		m.NVia++
		return true
	}
	if b[q] != ';' {
		return false
	}
	v.Params = refSpan(refSkipWS(b, q+1, e), e)
	for q < e {
		ns, ne, vs, ve, r, ok := refNextParam(b, q, e)
		if !ok {
			return false
		}
		q = r
		name, val := b[ns:ne], refSpan(vs, ve)
		switch len(name) {
		case 5:
			if refEqLower(name, "rport") {
				v.RPort, v.HasRPort = val, true
			} else if refEqLower(name, "maddr") {
				v.MAddr = val
			}
		case 6:
			if refEqLower(name, "branch") {
				v.Branch = val
			}
		case 8:
			if refEqLower(name, "received") {
				v.Received = val
			}
		}
	}
	m.NVia++
	return true
}

// refNextParam parses one "SEMI name [EQUAL value]" with the ';' at b[p]
// (SEMI and EQUAL allow whitespace around them, RFC 3261 25.1). The value
// is a token, a host or a quoted-string (kept with its quotes). It returns
// the name and value bounds and where the next parameter starts.
func refNextParam(b []byte, p, e int) (ns, ne, vs, ve, next int, ok bool) {
	if b[p] != ';' {
		return
	}
	ns = refSkipWS(b, p+1, e)
	ne = refScanToken(b, ns, e)
	if ne == ns {
		return
	}
	q := refSkipWS(b, ne, e)
	vs, ve = ne, ne
	if q < e && b[q] == '=' {
		vs = refSkipWS(b, q+1, e)
		if vs < e && b[vs] == '"' {
			ve = refEndQuoted(b, vs, e)
			if ve < 0 {
				return
			}
		} else {
			ve = vs
			for ve < e && refCharClass[b[ve]]&refCGenVal != 0 {
				ve++
			}
		}
		if ve == vs {
			return
		}
		q = refSkipWS(b, ve, e)
	}
	if q < e && b[q] != ';' {
		return
	}
	return ns, ne, vs, ve, q, true
}

// refParseNameAddr parses a From, To, Contact, Route or Record-Route value in
// b[p:e]: [display-name] <URI> or a bare addr-spec, then ;parameters.
func (m *Msg) refParseNameAddr(p, e int, na *NameAddr) bool {
	b := m.buf
	*na = NameAddr{Value: refSpan(p, e)}
	q := p
	if b[q] == '"' {
		qe := refEndQuoted(b, q, e)
		if qe < 0 {
			return false // RFC 4475 quotbal
		}
		na.Display = refSpan(q+1, qe-1)
		q = refSkipWS(b, qe, e)
		if q >= e || b[q] != '<' {
			return false
		}
	} else {
		// display-name as *(token LWS): RFC 4475 lwsdisp has no LWS
		// before '<', which is accepted. "Bell, Alexander" (baddn) stops
		// at the comma, is then no addr-spec, and is rejected.
		r := q
		for r < e && (refCharClass[b[r]]&refCToken != 0 || refIsWS(b[r])) {
			r++
		}
		if r < e && b[r] == '<' {
			de := r
			for de > q && refIsWS(b[de-1]) {
				de--
			}
			na.Display = refSpan(q, de)
			q = r
		}
	}
	if b[q] == '<' {
		gt := bytes.IndexByte(b[q+1:e], '>')
		if gt < 0 {
			return false
		}
		ue := q + 1 + gt
		// No whitespace inside <> (RFC 4475 badaspec): refParseURI rejects it.
		if !refParseURI(b, q+1, ue, &na.URI) {
			return false
		}
		q = refSkipWS(b, ue+1, e)
	} else {
		r := q
		for r < e && b[r] != ';' && !refIsWS(b[r]) {
			r++
		}
		if !refParseURI(b, q, r, &na.URI) {
			return false
		}
		// RFC 3261 20: an addr-spec with '?' (or ',' or ';') must be
		// enclosed in <> (RFC 4475 regbadct).
		if !na.URI.Headers.Empty() {
			return false
		}
		q = refSkipWS(b, r, e)
	}
	if q == e {
		return true
	}
	if b[q] != ';' {
		return false
	}
	na.Params = refSpan(refSkipWS(b, q+1, e), e)
	for q < e {
		ns, ne, vs, ve, r, ok := refNextParam(b, q, e)
		if !ok {
			return false
		}
		if ne-ns == 3 && refEqLower(b[ns:ne], "tag") {
			na.Tag = refSpan(vs, ve)
		}
		q = r
	}
	return true
}

// refParseURI parses buf[s:e] into u and reports whether it is well formed.
func refParseURI(b []byte, s, e int, u *URI) bool {
	*u = URI{}
	if s >= e || !refIsAlpha(b[s]) {
		return false
	}
	u.Raw = refSpan(s, e)
	p := s + 1
	for p < e && refCharClass[b[p]]&refCScheme != 0 {
		p++
	}
	if p >= e || b[p] != ':' {
		return false
	}
	u.SchemeSpan = refSpan(s, p)
	switch sch := b[s:p]; len(sch) {
	case 3:
		if refEqLower(sch, "sip") {
			u.Scheme = SchemeSIP
		} else if refEqLower(sch, "tel") {
			u.Scheme = SchemeTel
		}
	case 4:
		if refEqLower(sch, "sips") {
			u.Scheme = SchemeSIPS
		}
	}
	p++
	switch u.Scheme {
	case SchemeOther:
		// Opaque, but still one refPrintable token: whitespace or control
		// bytes would mean the caller cut the URI in the wrong place.
		return refPrintable(b, p, e)
	case SchemeTel:
		q := p
		for q < e && b[q] != ';' {
			q++
		}
		if q == p || !refPrintable(b, p, e) {
			return false
		}
		u.User = refSpan(p, q)
		if q < e {
			return refParseURIParams(b, q, e, u) == e
		}
		return true
	}

	if at := bytes.IndexByte(b[p:e], '@'); at >= 0 {
		at += p
		ue := at
		if c := bytes.IndexByte(b[p:at], ':'); c >= 0 {
			ue = p + c
			q, ok := refScanClass(b, ue+1, at, refCPass)
			if !ok || q != at {
				return false
			}
			u.Password = refSpan(ue+1, at)
		}
		q, ok := refScanClass(b, p, ue, refCUser)
		if !ok || q != ue || q == p {
			return false
		}
		u.User = refSpan(p, ue)
		p = at + 1
	}
	q, kind, ok := refParseHost(b, p, e)
	if !ok {
		return false
	}
	u.HostKind, u.Host = kind, refSpan(p, q)
	p = q
	if p < e && b[p] == ':' {
		port, q, ok := refParsePort(b, p+1, e)
		if !ok {
			return false
		}
		u.Port, u.HasPort = port, true
		p = q
	}
	if p < e && b[p] == ';' {
		p = refParseURIParams(b, p, e, u)
	}
	if p < e && b[p] == '?' {
		if p+1 >= e || !refPrintable(b, p+1, e) {
			return false
		}
		u.Headers = refSpan(p+1, e)
		p = e
	}
	return p == e
}

// refPrintable reports whether b[p:e] holds only visible ASCII.
func refPrintable(b []byte, p, e int) bool {
	if p >= e {
		return false
	}
	for ; p < e; p++ {
		if c := b[p]; c <= ' ' || c >= 0x7f {
			return false
		}
	}
	return true
}

// refParseURIParams parses ";name[=value]" parameters starting at the ';' at
// b[p] and returns where they stop (e when all of b[p:e] was parameters).
// It records the ones the proxy acts on.
func refParseURIParams(b []byte, p, e int, u *URI) int {
	start := p + 1
	for p < e && b[p] == ';' {
		ns := p + 1
		ne, ok := refScanClass(b, ns, e, refCParam)
		if !ok || ne == ns {
			return p // an empty or broken name: let the caller reject
		}
		vs, ve := ne, ne
		if ne < e && b[ne] == '=' {
			vs = ne + 1
			ve, ok = refScanClass(b, vs, e, refCParam)
			if !ok || ve == vs {
				return p
			}
		}
		name, val := b[ns:ne], refSpan(vs, ve)
		switch len(name) {
		case 2:
			if refEqLower(name, "lr") {
				u.LR = true
			}
		case 3:
			if refEqLower(name, "ttl") {
				u.TTL = val
			}
		case 4:
			if refEqLower(name, "user") {
				u.UserParam = val
			}
		case 5:
			if refEqLower(name, "maddr") {
				u.MAddr = val
			}
		case 6:
			if refEqLower(name, "method") {
				u.MethodPar = val
			}
		case 9:
			if refEqLower(name, "transport") {
				u.Transport = val
			}
		}
		p = ve
	}
	u.Params = refSpan(start, p)
	return p
}

// refParseHost parses a host (hostname, IPv4 address or bracketed IPv6
// reference) at b[p] and returns the index just past it.
func refParseHost(b []byte, p, e int) (int, HostKind, bool) {
	if p >= e {
		return p, HostNone, false
	}
	if b[p] == '[' {
		q := p + 1
		colons := 0
		for q < e && refCharClass[b[q]]&refCIPv6 != 0 {
			if b[q] == ':' {
				colons++
			}
			q++
		}
		if q >= e || b[q] != ']' || colons < 2 {
			return p, HostNone, false
		}
		return q + 1, HostIPv6, true
	}
	s := b[p:e]
	q := refScanHost(s)
	if q == 0 || s[0] == '.' || s[0] == '-' {
		return p, HostNone, false
	}
	if !refIsDigit(s[0]) {
		// RFC 3261 toplabel starts with a letter: a name.
		return p + q, HostName, true
	}
	if refIsIPv4(s[:q]) {
		return p + q, HostIPv4, true
	}
	for _, c := range s[:q] {
		if c != '.' && !refIsDigit(c) {
			return p + q, HostName, true // "1and1.example.com"
		}
	}
	// Digits and dots but no dotted quad, e.g. "2001" in front of a bare
	// IPv6 address (RFC 5118 ipv6-bad).
	return p, HostNone, false
}

// refIsIPv4 reports whether b is a dotted quad of decimal octets.
func refIsIPv4(b []byte) bool {
	parts, n, digits := 0, 0, 0
	for i := 0; i <= len(b); i++ {
		if i == len(b) || b[i] == '.' {
			if digits == 0 || digits > 3 || n > 255 {
				return false
			}
			parts++
			n, digits = 0, 0
			continue
		}
		n = n*10 + int(b[i]-'0')
		digits++
	}
	return parts == 4
}

// refParsePort parses 1*DIGIT at b[p] as a port (0..65535).
func refParsePort(b []byte, p, e int) (uint16, int, bool) {
	n, q := 0, p
	for q < e && refIsDigit(b[q]) {
		n = n*10 + int(b[q]-'0')
		if n > 65535 {
			return 0, q, false
		}
		q++
	}
	if q == p {
		return 0, q, false
	}
	return uint16(n), q, true
}

// refHeaderKind classifies a header name, long or compact, case-insensitively.
// It dispatches on length and first letter so that a name costs at most a
// couple of byte comparisons: no map, no refLower-casing copy.
func refHeaderKind[T ~string | ~[]byte](n T) HeaderKind {
	if len(n) == 0 {
		return HdrOther
	}
	c := n[0] | 0x20
	switch len(n) {
	case 1:
		return refCompactKind[c]
	case 2:
		if refEqLower(n, "to") {
			return HdrTo
		}
	case 3:
		if refEqLower(n, "via") {
			return HdrVia
		}
	case 4:
		switch {
		case c == 'f' && refEqLower(n, "from"):
			return HdrFrom
		case c == 'c' && refEqLower(n, "cseq"):
			return HdrCSeq
		}
	case 5:
		switch {
		case c == 'r' && refEqLower(n, "route"):
			return HdrRoute
		case c == 'e' && refEqLower(n, "event"):
			return HdrEvent
		}
	case 7:
		switch c {
		case 'c':
			if refEqLower(n, "call-id") {
				return HdrCallID
			}
			if refEqLower(n, "contact") {
				return HdrContact
			}
		case 'r':
			if refEqLower(n, "require") {
				return HdrRequire
			}
		case 'e':
			if refEqLower(n, "expires") {
				return HdrExpires
			}
		case 's':
			if refEqLower(n, "subject") {
				return HdrSubject
			}
		}
	case 8:
		switch {
		case c == 'r' && refEqLower(n, "refer-to"):
			return HdrReferTo
		case c == 'i' && refEqLower(n, "identity"):
			return HdrIdentity
		}
	case 9:
		if refEqLower(n, "supported") {
			return HdrSupported
		}
	case 10:
		if refEqLower(n, "user-agent") {
			return HdrUserAgent
		}
	case 11:
		if refEqLower(n, "referred-by") {
			return HdrReferredBy
		}
	case 12:
		switch {
		case c == 'm' && refEqLower(n, "max-forwards"):
			return HdrMaxForwards
		case c == 'c' && refEqLower(n, "content-type"):
			return HdrContentType
		case c == 'a' && refEqLower(n, "allow-events"):
			return HdrAllowEvents
		case c == 'r' && refEqLower(n, "record-route"):
			return HdrRecordRoute
		}
	case 13:
		switch {
		case c == 'a' && refEqLower(n, "authorization"):
			return HdrAuthorization
		case c == 'p' && refEqLower(n, "proxy-require"):
			return HdrProxyRequire
		}
	case 14:
		switch {
		case c == 'c' && refEqLower(n, "content-length"):
			return HdrContentLength
		case c == 'a' && refEqLower(n, "accept-contact"):
			return HdrAcceptContact
		}
	case 15:
		if refEqLower(n, "session-expires") {
			return HdrSessionExpires
		}
	case 16:
		if refEqLower(n, "content-encoding") {
			return HdrContentEncoding
		}
	case 19:
		if refEqLower(n, "proxy-authorization") {
			return HdrProxyAuthorization
		}
	}
	return HdrOther
}

// refCompactKind maps the refLower-cased single-letter compact forms (RFC 3261
// 7.3.3 and the IANA SIP header registry) to their kinds.
var refCompactKind = [256]HeaderKind{
	'a': HdrAcceptContact,
	'b': HdrReferredBy,
	'c': HdrContentType,
	'e': HdrContentEncoding,
	'f': HdrFrom,
	'i': HdrCallID,
	'k': HdrSupported,
	'l': HdrContentLength,
	'm': HdrContact,
	'o': HdrEvent,
	'r': HdrReferTo,
	's': HdrSubject,
	't': HdrTo,
	'u': HdrAllowEvents,
	'v': HdrVia,
	'x': HdrSessionExpires,
	'y': HdrIdentity,
}

// refMethodOf returns the Method of a method token. SIP methods are
// case-sensitive (RFC 3261 7.1), so "invite" is an unknown method.
func refMethodOf(b []byte) Method {
	switch string(b) { // compiled to comparisons: no allocation
	case "INVITE":
		return MethodINVITE
	case "ACK":
		return MethodACK
	case "BYE":
		return MethodBYE
	case "CANCEL":
		return MethodCANCEL
	case "REGISTER":
		return MethodREGISTER
	case "OPTIONS":
		return MethodOPTIONS
	case "PRACK":
		return MethodPRACK
	case "SUBSCRIBE":
		return MethodSUBSCRIBE
	case "NOTIFY":
		return MethodNOTIFY
	case "PUBLISH":
		return MethodPUBLISH
	case "INFO":
		return MethodINFO
	case "REFER":
		return MethodREFER
	case "MESSAGE":
		return MethodMESSAGE
	case "UPDATE":
		return MethodUPDATE
	}
	return MethodUnknown
}

// refNameCand is a header name folded to refLower case and packed little-endian
// into two words, for refKindAt's word compares.
type refNameCand struct {
	w0, w1 uint64
	kind   HeaderKind
}

// refKindByLen lists, per name length, the known names of that length.
var refKindByLen = refBuildKindByLen()

func refBuildKindByLen() (t [17][]refNameCand) {
	names := []struct {
		n string
		k HeaderKind
	}{
		{"to", HdrTo}, {"via", HdrVia}, {"from", HdrFrom}, {"cseq", HdrCSeq},
		{"route", HdrRoute}, {"event", HdrEvent}, {"call-id", HdrCallID},
		{"contact", HdrContact}, {"require", HdrRequire}, {"expires", HdrExpires},
		{"subject", HdrSubject}, {"refer-to", HdrReferTo}, {"identity", HdrIdentity},
		{"supported", HdrSupported}, {"user-agent", HdrUserAgent},
		{"referred-by", HdrReferredBy}, {"max-forwards", HdrMaxForwards},
		{"content-type", HdrContentType}, {"allow-events", HdrAllowEvents},
		{"record-route", HdrRecordRoute}, {"authorization", HdrAuthorization},
		{"proxy-require", HdrProxyRequire}, {"content-length", HdrContentLength},
		{"accept-contact", HdrAcceptContact}, {"session-expires", HdrSessionExpires},
		{"content-encoding", HdrContentEncoding},
	}
	for _, nm := range names {
		var pad [16]byte
		copy(pad[:], nm.n)
		w0, w1 := refFoldWords(pad[:], len(nm.n))
		t[len(nm.n)] = append(t[len(nm.n)], refNameCand{w0, w1, nm.k})
	}
	return t
}

// refFoldWords loads the first n (2..16) bytes of b, which must hold 16, as
// two little-endian words with ASCII letters folded to refLower case (|0x20)
// and the bytes past n cleared. Folding with |0x20 maps no token character
// onto another except a letter onto its other case, and header names are
// checked to be tokens before they get here.
func refFoldWords(b []byte, n int) (w0, w1 uint64) {
	w0 = binary.LittleEndian.Uint64(b) | 0x2020202020202020
	w1 = binary.LittleEndian.Uint64(b[8:]) | 0x2020202020202020
	if n < 8 {
		w0 &= 1<<(8*uint(n)) - 1
		w1 = 0
	} else {
		w1 &= 1<<(8*uint(n-8)) - 1
	}
	return w0, w1
}

// refKindAt classifies the header name b[pos:ne] (a token) with two word
// loads and compares instead of a byte loop; near the end of the buffer,
// or for names over 16 bytes, it falls back to refHeaderKind.
func refKindAt(b []byte, pos, ne int) HeaderKind {
	n := ne - pos
	if n == 1 {
		return refCompactKind[b[pos]|0x20]
	}
	if n > 16 || pos+16 > len(b) {
		return refHeaderKind(b[pos:ne])
	}
	w0, w1 := refFoldWords(b[pos:pos+16], n)
	for _, c := range refKindByLen[n] {
		if c.w0 == w0 && c.w1 == w1 {
			return c.kind
		}
	}
	return HdrOther
}

// Character classes of the RFC 3261 grammar, one 256-entry table each so
// that the scanners test a byte with a single load.
const (
	refCToken  = 1 << iota // token (RFC 3261 25.1)
	refCUser               // user: unreserved / user-unreserved / '%'
	refCPass               // password: unreserved / "&=+$," / '%'
	refCParam              // uri paramchar: unreserved / param-unreserved / '%'
	refCHost               // hostname and IPv4 characters
	refCIPv6               // inside an IPv6 reference
	refCScheme             // scheme after its first letter
	refCGenVal             // generic-param value: token / host (incl. IPv6 refs)
	refCWord               // Call-ID word
)

var refCharClass = refBuildCharClass()

func refBuildCharClass() (t [256]uint16) {
	set := func(class uint16, chars string) {
		for i := 0; i < len(chars); i++ {
			t[chars[i]] |= class
		}
	}
	const alnum = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
	const mark = "-_.!~*'()"
	set(refCToken, alnum+"-.!%*_+`'~")
	set(refCUser, alnum+mark+"&=+$,;?/%")
	set(refCPass, alnum+mark+"&=+$,%")
	set(refCParam, alnum+mark+"[]/:&+$%")
	set(refCHost, alnum+"-.")
	set(refCIPv6, "0123456789abcdefABCDEF:.")
	set(refCScheme, alnum+"+-.")
	set(refCGenVal, alnum+"-.!%*_+`'~:[]")
	set(refCWord, alnum+"-.!%*_+`'~()<>:\\\"/[]?{}")
	return t
}

func refIsWS(c byte) bool { return c == ' ' || c == '\t' }

func refIsDigit(c byte) bool { return c-'0' < 10 }

func refIsAlpha(c byte) bool { return (c|0x20)-'a' < 26 }

func refIsHex(c byte) bool { return c-'0' < 10 || (c|0x20)-'a' < 6 }

// refSkipWS returns the first index at or after p, below e, that is not SP or HT.
func refSkipWS(b []byte, p, e int) int {
	if p < e && p < len(b) && !refIsWS(b[p]) {
		return p // the usual case, kept cheap enough to inline
	}
	for p < e && refIsWS(b[p]) {
		p++
	}
	return p
}

// refScanClass returns the first index at or after p, below e, whose byte is
// not in class; ok is false when a '%' there does not start a %HH escape.
func refScanClass(b []byte, p, e int, class uint16) (int, bool) {
	for p < e {
		c := b[p]
		if refCharClass[c]&class == 0 {
			break
		}
		if c == '%' && class&(refCUser|refCPass|refCParam) != 0 {
			if p+2 >= e || !refIsHex(b[p+1]) || !refIsHex(b[p+2]) {
				return p, false
			}
			p += 3
			continue
		}
		p++
	}
	return p, true
}

// refScanToken returns the first index at or after p, below e, that is not a
// token character.
func refScanToken(b []byte, p, e int) int {
	if p >= e {
		return p
	}
	s := b[p:e]
	for i, c := range s {
		if refCharClass[c]&refCToken == 0 {
			return p + i
		}
	}
	return e
}

// refEndQuoted returns the index just past the quoted-string that starts with
// the '"' at b[p], or -1 when it is not closed before e.
func refEndQuoted(b []byte, p, e int) int {
	for q := p + 1; q < e; q++ {
		switch b[q] {
		case '\\':
			q++
		case '"':
			return q + 1
		}
	}
	return -1
}

// refLower folds an ASCII letter to refLower case and leaves other bytes alone.
func refLower(c byte) byte {
	if c-'A' < 26 {
		return c | 0x20
	}
	return c
}

// refEqualFold compares ASCII case-insensitively without allocating.
func refEqualFold[T ~string | ~[]byte](a []byte, b T) bool {
	if len(a) != len(b) {
		return false
	}
	for i := 0; i < len(a); i++ {
		if refLower(a[i]) != refLower(b[i]) {
			return false
		}
	}
	return true
}

// refEqLower reports whether n equals lit, a lower-case literal, ignoring the
// case of the letters of n.
func refEqLower[T ~string | ~[]byte](n T, lit string) bool {
	if len(n) != len(lit) {
		return false
	}
	for i := 0; i < len(lit); i++ {
		// Only a letter may match its other case: with |0x20 alone,
		// CR would match '-' and 0x0F '/', so "SIP\x0f2.0" passed as
		// "sip/2.0".
		c, l := n[i], lit[i]
		if c != l && (c|0x20 != l || l-'a' >= 26) {
			return false
		}
	}
	return true
}

func refSpan(from, to int) Span { return Span{Off: uint16(from), Len: uint16(to - from)} }

const (
	refSwarOnes = 0x0101010101010101
	refSwarHigh = 0x8080808080808080
	refSwarLow7 = 0x7f7f7f7f7f7f7f7f
)

// refSwarBetween sets the high bit of each byte b of x with m < b < n (b, m,
// n below 128; bytes with their own high bit set never match): eight range
// checks in a handful of word operations, no carry between bytes.
func refSwarBetween(x, m, n uint64) uint64 {
	return (refSwarOnes*(127+n) - x&refSwarLow7) & ^x & (x&refSwarLow7 + refSwarOnes*(127-m)) & refSwarHigh
}

// refScanHost returns the length of the leading run of host characters
// (letters, digits, '-', '.') of s, eight bytes per step: hosts are the
// longest runs the parser validates byte by byte on the hot path.
func refScanHost(s []byte) int {
	q := 0
	for ; q+8 <= len(s); q += 8 {
		x := binary.LittleEndian.Uint64(s[q:])
		in := refSwarBetween(x|0x2020202020202020, 'a'-1, 'z'+1) |
			refSwarBetween(x, '0'-1, '9'+1) | refSwarBetween(x, ',', '/')
		if in != refSwarHigh {
			return q + bits.TrailingZeros64(^in&refSwarHigh)/8
		}
	}
	for ; q < len(s) && refCharClass[s[q]]&refCHost != 0; q++ {
	}
	return q
}
