package sipcore

import (
	"bytes"
	"encoding/binary"
)

// MaxLineLength bounds one header line in bytes, its folded continuation
// lines and line ending included. 8 KiB holds any honest header (RFC 4475
// longreq's longest is under 600 bytes) while capping the work a hostile
// line can cause; a longer line fails with ErrLineTooLong.
const MaxLineLength = 8192

// Parse parses one UDP datagram into m, which then holds offsets into buf.
// It makes one pass, allocates nothing and copies nothing.
//
// Header folding (a line starting with SP or HT continues the previous one,
// RFC 3261 7.3.1) is undone in place: Parse overwrites the CR and LF before
// each continuation line with spaces, which keeps the message equivalent and
// lets every value be a single Span. buf must therefore be writable, and a
// folded message reads differently after Parse (only in those bytes).
//
// Bytes after the message are ignored: with a Content-Length, the message
// ends at m.End = start of body + Content-Length (RFC 3261 18.3); without
// one, the body is the rest of the datagram.
//
// Parse validates strictly only what a proxy reads, as RFC 3261 16.3
// allows: "Any components involved in the remainder of these Request
// Validation steps or the Request Forwarding section MUST be well-formed.
// Any other components, well-formed or not, SHOULD be ignored and remain
// unchanged when the message is forwarded." Eager (set and checked by
// Parse): the start line and Request-URI, every Via, From and To Value,
// Params and Tag (the tag found after the '>' of a name-addr or among the
// header parameters of an addr-spec, quoted strings respected), Call-ID,
// CSeq, Max-Forwards, Content-Length and framing, every Route value in
// full, the indexes of Authorization, Proxy-Authorization, Require,
// Proxy-Require and the other single headers (raw values), Contact and
// Record-Route split into one NameAddr per value (Value and Header set,
// NContact, NRecordRoute, StarContact right). Lazy (NameAddr.Parsed false
// until m.ParseAddress or m.Validate fills them): the Display and URI of
// From and To, and Display, URI and Params of every Contact and
// Record-Route. A fault there is reported by ParseAddress or Validate with
// the error kind Parse would otherwise have returned.
//
// On error Parse returns a *ParseError (stored inside m, valid until the
// next Parse) whose Kind says which rule broke; ResponseFor turns it into
// the response to send, if any. Fields parsed before the error are set.
func Parse(buf []byte, m *Msg) error {
	m.reset(buf)
	if len(buf) > MaxMessageSize {
		return m.fail(ErrMessageTooLarge, MaxMessageSize)
	}
	nl := bytes.IndexByte(buf, '\n')
	if nl < 0 {
		if len(buf) > MaxLineLength {
			return m.fail(ErrStartLine, 0)
		}
		return m.fail(ErrStartLine, len(buf))
	}
	le := nl
	if le > 0 && buf[le-1] == '\r' {
		le--
	}
	// A request of another SIP version is read on, so that its Via is
	// known and it can be answered 505 (RFC 3261 8.2.2.x, RFC 4475
	// badvers) instead of dropped as if it were not SIP at all.
	verOff := -1
	if err := m.parseStartLine(le); err != nil {
		if m.err.Kind != ErrVersion || !m.IsRequest {
			return err
		}
		verOff = m.err.Offset
	}
	if nl+1 > MaxLineLength {
		return m.fail(ErrLineTooLong, 0)
	}

	pos := nl + 1
	for {
		if pos >= len(buf) {
			return m.fail(ErrNoHeaderEnd, pos)
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
			return m.fail(ErrNoHeaderEnd, pos)
		}
		next := pos + i + 1
		for next < len(buf) && isWS(buf[next]) {
			if next-pos > MaxLineLength {
				return m.fail(ErrLineTooLong, pos)
			}
			buf[next-1] = ' '
			if buf[next-2] == '\r' {
				buf[next-2] = ' '
			}
			i = bytes.IndexByte(buf[next:], '\n')
			if i < 0 {
				return m.fail(ErrNoHeaderEnd, pos)
			}
			next += i + 1
		}
		if next-pos > MaxLineLength {
			return m.fail(ErrLineTooLong, pos)
		}
		end := next - 1
		if end > pos && buf[end-1] == '\r' {
			end--
		}
		if err := m.parseHeader(pos, end, next); err != nil {
			return err
		}
		pos = next
	}

	switch {
	case !m.Has(HdrVia):
		return m.fail(ErrMissingVia, pos)
	case !m.Has(HdrFrom):
		return m.fail(ErrMissingFrom, pos)
	case !m.Has(HdrTo):
		return m.fail(ErrMissingTo, pos)
	case !m.Has(HdrCallID):
		return m.fail(ErrMissingCallID, pos)
	case !m.Has(HdrCSeq):
		return m.fail(ErrMissingCSeq, pos)
	}

	// RFC 3261 18.3 on UDP: no Content-Length means the rest of the
	// datagram; a shorter one truncates; a longer one is an error.
	end := len(buf)
	if m.ContentLength >= 0 {
		if m.ContentLength > len(buf)-pos {
			return m.fail(ErrContentLengthExceeds, pos)
		}
		end = pos + m.ContentLength
	}
	m.Body = span(pos, end)
	m.End = end
	if verOff >= 0 {
		return m.fail(ErrVersion, verOff)
	}
	return nil
}

// reset clears what Parse sets, except the big index arrays: only their
// counts, since entries past a count are never read.
func (m *Msg) reset(buf []byte) {
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

func (m *Msg) fail(k *ErrKind, off int) error {
	m.err.Kind = k
	m.err.Offset = off
	return &m.err
}

// parseStartLine parses buf[:le], the first line without its line ending.
func (m *Msg) parseStartLine(le int) error {
	b := m.buf
	if le >= 4 && eqLower(b[:4], "sip/") {
		return m.parseStatusLine(le)
	}
	// Request-Line = Method SP Request-URI SP SIP-Version
	i := scanToken(b, 0, le)
	if i == 0 || i >= le || b[i] != ' ' {
		return m.fail(ErrStartLine, i)
	}
	m.IsRequest = true
	m.MethodSpan = span(0, i)
	m.Method = methodOf(b[:i])
	u := i + 1
	last := bytes.LastIndexByte(b[u:le], ' ')
	if last < 0 {
		return m.fail(ErrRequestLine, u)
	}
	ue := u + last
	if v := b[ue+1 : le]; !eqLower(v, "sip/2.0") {
		if isVersion(v) {
			return m.fail(ErrVersion, ue+1)
		}
		return m.fail(ErrRequestLine, ue+1)
	}
	// One SP on each side of the Request-URI, nothing else: RFC 4475
	// lwsstart, lwsruri and trws are rejected rather than guessed at, so
	// that no stray whitespace is ever forwarded.
	if ue == u || bytes.IndexByte(b[u:ue], ' ') >= 0 {
		return m.fail(ErrRequestLine, u)
	}
	if !parseURI(b, u, ue, &m.RURI) {
		return m.fail(ErrRequestURI, u)
	}
	if !m.RURI.Headers.Empty() {
		// RFC 3261 19.1.5: headers are not allowed in a Request-URI
		// (RFC 4475 escruri); never apply or forward them.
		return m.fail(ErrRequestURIHdrs, u)
	}
	return nil
}

// isVersion reports whether v looks like "SIP/" 1*DIGIT "." 1*DIGIT.
func isVersion(v []byte) bool {
	if len(v) < 7 || !eqLower(v[:4], "sip/") {
		return false
	}
	dot := bytes.IndexByte(v[4:], '.')
	if dot <= 0 || 4+dot+1 >= len(v) {
		return false
	}
	for i, c := range v[4:] {
		if i != dot && !isDigit(c) {
			return false
		}
	}
	return true
}

// parseStatusLine parses "SIP/2.0 SP 3DIGIT SP Reason-Phrase".
func (m *Msg) parseStatusLine(le int) error {
	b := m.buf
	sp := bytes.IndexByte(b[:le], ' ')
	if sp < 0 {
		return m.fail(ErrStatusLine, 0)
	}
	if !eqLower(b[:sp], "sip/2.0") {
		if isVersion(b[:sp]) {
			return m.fail(ErrVersion, 0)
		}
		return m.fail(ErrStatusLine, 0)
	}
	p := sp + 1
	if p+3 > le || !isDigit(b[p]) || !isDigit(b[p+1]) || !isDigit(b[p+2]) {
		return m.fail(ErrStatusLine, p)
	}
	if p+3 < le && b[p+3] != ' ' {
		if isDigit(b[p+3]) {
			return m.fail(ErrStatusCode, p) // RFC 4475 bigcode
		}
		return m.fail(ErrStatusLine, p+3)
	}
	code := uint16(b[p]-'0')*100 + uint16(b[p+1]-'0')*10 + uint16(b[p+2]-'0')
	if code < 100 || code > 699 {
		return m.fail(ErrStatusCode, p)
	}
	m.StatusCode = code
	if p+4 <= le {
		m.Reason = span(p+4, le)
	} else {
		m.Reason = span(le, le)
	}
	return nil
}

// parseHeader parses the header line buf[pos:end] (folding undone, line
// ending excluded); next is just past its line ending.
func (m *Msg) parseHeader(pos, end, next int) error {
	b := m.buf
	n, kind := fastNameAt(b, pos)
	ne, p := pos+n, pos+n
	if n == 0 {
		ne = scanToken(b, pos, end)
		if ne == pos {
			return m.fail(ErrHeaderLine, pos)
		}
		p = skipWS(b, ne, end)
		if p >= end || b[p] != ':' {
			return m.fail(ErrHeaderLine, p)
		}
		kind = kindAt(b, pos, ne)
	}
	p = skipWS(b, p+1, end)
	e := end
	for e > p && isWS(b[e-1]) {
		e--
	}
	name, line := span(pos, ne), span(pos, next)

	switch kind {
	case HdrVia, HdrContact, HdrRoute, HdrRecordRoute:
		return m.parseList(kind, name, line, p, e)
	case HdrFrom, HdrTo:
		na, dup, bad := &m.From, ErrDupFrom, ErrBadFrom
		if kind == HdrTo {
			na, dup, bad = &m.To, ErrDupTo, ErrBadTo
		}
		if m.Has(kind) {
			return m.fail(dup, pos)
		}
		idx, err := m.addHeader(kind, name, span(p, e), line)
		if err != nil {
			return err
		}
		// Only the structure (where the URI ends, the parameters, the
		// tag) is checked here: the proxy reads the tag, never the URI or
		// the display name (RFC 3261 16.3). ParseAddress does the rest.
		if p == e || !m.parseNameAddr(p, e, na, false) {
			return m.fail(bad, p)
		}
		na.Header = uint8(idx)
		return nil
	case HdrCallID:
		if m.Has(kind) {
			return m.fail(ErrDupCallID, pos)
		}
		if _, err := m.addHeader(kind, name, span(p, e), line); err != nil {
			return err
		}
		if !validCallID(b, p, e) {
			return m.fail(ErrBadCallID, p)
		}
		m.CallID = span(p, e)
		return nil
	case HdrCSeq:
		if m.Has(kind) {
			return m.fail(ErrDupCSeq, pos)
		}
		if _, err := m.addHeader(kind, name, span(p, e), line); err != nil {
			return err
		}
		return m.parseCSeq(p, e)
	case HdrMaxForwards:
		if m.Has(kind) {
			return m.fail(ErrDupMaxForwards, pos)
		}
		if _, err := m.addHeader(kind, name, span(p, e), line); err != nil {
			return err
		}
		n, q := 0, p
		for q < e && isDigit(b[q]) {
			n = n*10 + int(b[q]-'0')
			if n > 255 { // RFC 3261 20.22: 0-255
				return m.fail(ErrBadMaxForwards, p)
			}
			q++
		}
		if q == p || q != e {
			return m.fail(ErrBadMaxForwards, p)
		}
		m.MaxForwards = n
		return nil
	case HdrContentLength:
		if m.Has(kind) {
			return m.fail(ErrDupContentLength, pos)
		}
		if _, err := m.addHeader(kind, name, span(p, e), line); err != nil {
			return err
		}
		n, q := 0, p
		for q < e && isDigit(b[q]) {
			if n <= MaxMessageSize { // saturate: anything larger exceeds the datagram
				n = n*10 + int(b[q]-'0')
			}
			q++
		}
		if q == p || q != e {
			return m.fail(ErrBadContentLength, p)
		}
		m.ContentLength = n
		return nil
	}

	idx, err := m.addHeader(kind, name, span(p, e), line)
	if err != nil {
		return err
	}
	var first *int16
	switch kind {
	case HdrContentType:
		if m.ContentType.Empty() {
			m.ContentType = span(p, e)
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

// addHeader appends one header value and returns its index.
func (m *Msg) addHeader(kind HeaderKind, name, value, line Span) (int, error) {
	n := m.NHeaders
	if n >= MaxHeaders {
		return -1, m.fail(ErrTooManyHeaders, int(line.Off))
	}
	m.Headers[n] = Header{Kind: kind, Name: name, Value: value, Line: line}
	m.NHeaders = n + 1
	m.seen |= 1 << kind
	return n, nil
}

// parseList splits a Via, Contact, Route or Record-Route line on the commas
// outside quoted strings and angle brackets, adding one Header per value.
func (m *Msg) parseList(kind HeaderKind, name, line Span, p, e int) error {
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
		return m.fail(bad, p)
	}
	if kind == HdrVia {
		// A Via value holds no ',' outside a quoted parameter value, so
		// parseVia finds where it ends as it goes: no separate scan for
		// the comma. Limits are checked in the order addHeader and
		// parseListValue check them for the other lists.
		for {
			if m.NHeaders >= MaxHeaders {
				return m.fail(ErrTooManyHeaders, int(line.Off))
			}
			if m.NVia >= MaxVias {
				return m.fail(ErrTooManyVias, p)
			}
			q, ok := m.parseVia(p, e, m.NHeaders)
			if !ok {
				return m.fail(ErrBadVia, p)
			}
			m.addHeader(kind, name, m.Vias[m.NVia-1].Value, line)
			if q == e {
				return nil
			}
			p = skipWS(b, q+1, e)
			if p >= e {
				return m.fail(ErrBadVia, q) // trailing comma
			}
		}
	}
	for {
		q := listElemEnd(b, p, e)
		if q < 0 {
			return m.fail(bad, p)
		}
		ve := q
		for ve > p && isWS(b[ve-1]) {
			ve--
		}
		if ve == p {
			return m.fail(bad, p) // empty value: RFC 4475 badinv01
		}
		idx, err := m.addHeader(kind, name, span(p, ve), line)
		if err != nil {
			return err
		}
		if err := m.parseListValue(kind, p, ve, idx, bad); err != nil {
			return err
		}
		if q == e {
			return nil
		}
		p = skipWS(b, q+1, e)
		if p >= e {
			return m.fail(bad, q) // trailing comma
		}
	}
}

func (m *Msg) parseListValue(kind HeaderKind, p, e, idx int, bad *ErrKind) error {
	var na *NameAddr
	switch kind {
	case HdrContact:
		if e-p == 1 && m.buf[p] == '*' {
			if m.NContact > 0 || m.StarContact {
				return m.fail(ErrStarContact, p)
			}
			m.StarContact = true
			return nil
		}
		if m.StarContact {
			return m.fail(ErrStarContact, p)
		}
		if m.NContact >= MaxContacts {
			return m.fail(ErrTooManyContacts, p)
		}
		na = &m.Contacts[m.NContact]
		m.NContact++
	case HdrRoute:
		if m.NRoute >= MaxRoutes {
			return m.fail(ErrTooManyRoutes, p)
		}
		na = &m.Routes[m.NRoute]
		m.NRoute++
	default:
		if m.NRecordRoute >= MaxRoutes {
			return m.fail(ErrTooManyRRoutes, p)
		}
		na = &m.RecordRoutes[m.NRecordRoute]
		m.NRecordRoute++
	}
	if kind != HdrRoute {
		// Contact and Record-Route are forwarded unchanged and never read
		// by a stateless proxy (RFC 3261 16.3): split, not parsed.
		*na = NameAddr{Value: span(p, e), Header: uint8(idx)}
		return nil
	}
	if !m.parseNameAddr(p, e, na, true) {
		return m.fail(bad, p)
	}
	na.Header = uint8(idx)
	return nil
}

// listElemEnd returns the index of the comma that ends the list element
// starting at p (or e when it is the last one), skipping commas inside
// quoted strings and <...>; -1 for an unterminated quoted string.
func listElemEnd(b []byte, p, e int) int {
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
				q = endQuoted(b, q, e)
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

// validCallID checks callid = word ["@" word] (RFC 3261 25.1).
func validCallID(b []byte, p, e int) bool {
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
		if charClass[c]&cWord == 0 {
			return false
		}
	}
	return true
}

// parseCSeq parses CSeq = 1*DIGIT LWS Method, the number at most 2^32-1.
func (m *Msg) parseCSeq(p, e int) error {
	b := m.buf
	var n uint64
	q := p
	for q < e && isDigit(b[q]) {
		n = n*10 + uint64(b[q]-'0')
		if n > 0xFFFFFFFF { // RFC 4475 scalar02
			return m.fail(ErrBadCSeq, p)
		}
		q++
	}
	if q == p || q >= e || !isWS(b[q]) {
		return m.fail(ErrBadCSeq, p)
	}
	ms := skipWS(b, q, e)
	me := scanToken(b, ms, e)
	if me == ms || me != e {
		return m.fail(ErrBadCSeq, p)
	}
	m.CSeq = uint32(n)
	m.CSeqSpan = span(ms, me)
	m.CSeqMethod = methodOf(b[ms:me])
	if m.IsRequest && (m.CSeqMethod != m.Method ||
		m.Method == MethodUnknown && !bytes.Equal(b[ms:me], m.B(m.MethodSpan))) {
		return m.fail(ErrCSeqMismatch, ms) // RFC 4475 mismatch01/02
	}
	return nil
}

// parseVia parses one via-parm (RFC 3261 20.42, RFC 3581 rport) starting
// at buf[p] into the next Vias entry. It stops at e or at a ',' (outside
// a quoted parameter value) that ends the value, and returns where.
func (m *Msg) parseVia(p, e, idx int) (int, bool) {
	b := m.buf
	v := &m.Vias[m.NVia]
	*v = Via{Header: uint8(idx)}
	// sent-protocol = name SLASH version SLASH transport, SLASH = SWS "/" SWS
	q := scanToken(b, p, e)
	if q == p {
		return 0, false
	}
	i := 0
	if q == p+3 && p+8 <= e && viaPrefix(b[p:p+8]) {
		// "SIP/2.0/" without whitespace, as every sender writes it: one
		// word compare instead of two token scans and four SWS skips.
		q, i = p+7, 1
	}
	for ; i < 2; i++ {
		q = skipWS(b, q, e)
		if q >= e || b[q] != '/' {
			return 0, false
		}
		q = skipWS(b, q+1, e)
		s := q
		q = scanToken(b, q, e)
		if q == s {
			return 0, false
		}
		if i == 1 {
			v.Transport = span(s, q)
		}
	}
	if q >= e || !isWS(b[q]) {
		return 0, false
	}
	q = skipWS(b, q, e)
	hs := q
	q, kind, ok := parseHost(b, q, e)
	if !ok {
		return 0, false
	}
	v.HostKind, v.Host = kind, span(hs, q)
	q = skipWS(b, q, e)
	if q < e && b[q] == ':' {
		port, r, ok := parsePort(b, skipWS(b, q+1, e), e)
		if !ok {
			return 0, false
		}
		v.Port, v.HasPort = port, true
		q = skipWS(b, r, e)
	}
	if q == e || b[q] == ',' {
		v.Value = span(p, trimWS(b, p, q))
		m.NVia++
		return q, true
	}
	if b[q] != ';' {
		return 0, false
	}
	ps := skipWS(b, q+1, e)
	for q < e && b[q] != ',' {
		ns, ne, vs, ve, r, ok := nextParam(b, q, e)
		if !ok {
			return 0, false
		}
		q = r
		name, val := b[ns:ne], span(vs, ve)
		switch len(name) {
		case 5:
			if eqLower(name, "rport") {
				v.RPort, v.HasRPort = val, true
			} else if eqLower(name, "maddr") {
				v.MAddr = val
			}
		case 6:
			if eqLower(name, "branch") {
				v.Branch = val
			}
		case 8:
			if eqLower(name, "received") {
				v.Received = val
			}
		}
	}
	ve := trimWS(b, p, q)
	v.Value, v.Params = span(p, ve), span(ps, ve)
	m.NVia++
	return q, true
}

// trimWS returns e moved back over the SP and HT that end b[p:e].
func trimWS(b []byte, p, e int) int {
	for e > p && isWS(b[e-1]) {
		e--
	}
	return e
}

// viaPrefix reports whether b (8 bytes) is "SIP/2.0/", the letters in any
// case.
func viaPrefix(b []byte) bool {
	const want = 's' | 'i'<<8 | 'p'<<16 | '/'<<24 | '2'<<32 | '.'<<40 | '0'<<48 | '/'<<56
	const fold = 0x20 | 0x20<<8 | 0x20<<16 // the three letters only
	return binary.LittleEndian.Uint64(b)|fold == want
}

// nextParam parses one "SEMI name [EQUAL value]" with the ';' at b[p]
// (SEMI and EQUAL allow whitespace around them, RFC 3261 25.1). The value
// is a token, a host or a quoted-string (kept with its quotes). It returns
// the name and value bounds and where the next parameter starts.
func nextParam(b []byte, p, e int) (ns, ne, vs, ve, next int, ok bool) {
	if b[p] != ';' {
		return
	}
	ns = skipWS(b, p+1, e)
	ne = scanToken(b, ns, e)
	if ne == ns {
		return
	}
	q := skipWS(b, ne, e)
	vs, ve = ne, ne
	if q < e && b[q] == '=' {
		vs = skipWS(b, q+1, e)
		if vs < e && b[vs] == '"' {
			ve = endQuoted(b, vs, e)
			if ve < 0 {
				return
			}
		} else {
			// Values (branch, received, tag) are mostly letters, digits,
			// '-' and '.': scanHost takes those a word at a time.
			ve = vs + scanHost(b[vs:e])
			for ve < e && charClass[b[ve]]&cGenVal != 0 {
				ve++
			}
		}
		if ve == vs {
			return
		}
		q = skipWS(b, ve, e)
	}
	// ',' ends a Via value; parseNameAddr's loop rejects it on the next
	// call, since it is not ';'.
	if q < e && b[q] != ';' && b[q] != ',' {
		return
	}
	return ns, ne, vs, ve, q, true
}

// parseNameAddr parses a From, To, Contact, Route or Record-Route value in
// b[p:e]: [display-name] <URI> or a bare addr-spec, then ;parameters. With
// full false it only finds where the display name and the URI end and
// parses the parameters (Params, Tag): the same walk, so the tag it finds
// is the one the full parse finds, but without the URI grammar.
func (m *Msg) parseNameAddr(p, e int, na *NameAddr, full bool) bool {
	b := m.buf
	*na = NameAddr{Value: span(p, e), Parsed: full}
	q := p
	if b[q] == '"' {
		qe := endQuoted(b, q, e)
		if qe < 0 {
			return false // RFC 4475 quotbal
		}
		if full {
			na.Display = span(q+1, qe-1)
		}
		q = skipWS(b, qe, e)
		if q >= e || b[q] != '<' {
			return false
		}
	} else {
		// display-name as *(token LWS): RFC 4475 lwsdisp has no LWS
		// before '<', which is accepted. "Bell, Alexander" (baddn) stops
		// at the comma, is then no addr-spec, and is rejected.
		r := q
		for r < e && (charClass[b[r]]&cToken != 0 || isWS(b[r])) {
			r++
		}
		if r < e && b[r] == '<' {
			de := r
			for de > q && isWS(b[de-1]) {
				de--
			}
			if full {
				na.Display = span(q, de)
			}
			q = r
		}
	}
	if b[q] == '<' {
		gt := bytes.IndexByte(b[q+1:e], '>')
		if gt < 0 {
			return false
		}
		ue := q + 1 + gt
		// No whitespace inside <> (RFC 4475 badaspec): parseURI rejects it.
		if full && !parseURI(b, q+1, ue, &na.URI) {
			return false
		}
		q = skipWS(b, ue+1, e)
	} else {
		r := q
		for r < e && b[r] != ';' && !isWS(b[r]) {
			r++
		}
		if full {
			if !parseURI(b, q, r, &na.URI) {
				return false
			}
			// RFC 3261 20: an addr-spec with '?' (or ',' or ';') must
			// be enclosed in <> (RFC 4475 regbadct).
			if !na.URI.Headers.Empty() {
				return false
			}
		} else if r == q {
			return false // no URI at all: nothing to forward to or tag
		}
		q = skipWS(b, r, e)
	}
	if q == e {
		return true
	}
	if b[q] != ';' {
		return false
	}
	na.Params = span(skipWS(b, q+1, e), e)
	for q < e {
		ns, ne, vs, ve, r, ok := nextParam(b, q, e)
		if !ok {
			return false
		}
		if ne-ns == 3 && eqLower(b[ns:ne], "tag") {
			na.Tag = span(vs, ve)
		}
		q = r
	}
	return true
}
