package guard

import "bytes"

// Start-line kinds found by looking at the first bytes only.
const (
	kindNotSIP = iota
	kindKeepalive
	kindRequest
	kindResponse
)

// Methods the guard tells apart (the others are just "a request").
const (
	methodOther = iota
	methodINVITE
	methodREGISTER
	methodACK
)

// shape is what the guard reads from the raw datagram before any parse:
// enough to limit, match signatures and shed load, in one pass over the
// header lines.
type shape struct {
	kind, method int
	headers      int
	vias         int
	toTag        bool
	ua, from, to []byte
}

var tokenChar = func() (t [256]bool) {
	for c := 'a'; c <= 'z'; c++ {
		t[c] = true
		t[c-'a'+'A'] = true
	}
	for c := '0'; c <= '9'; c++ {
		t[c] = true
	}
	for _, c := range "-.!%*_+`'~" {
		t[c] = true
	}
	return t
}()

var lower = func() (t [256]byte) {
	for i := range t {
		t[i] = byte(i)
		if 'A' <= i && i <= 'Z' {
			t[i] = byte(i + 'a' - 'A')
		}
	}
	return t
}()

// startLine classifies b from its first bytes: "SIP/2.0 " starts a
// response, a method token and a space a request; CR/LF alone is a
// keepalive (RFC 5626 4.4.1); anything else is not SIP.
func (s *shape) startLine(b []byte) {
	s.kind, s.method = kindNotSIP, methodOther
	if len(b) >= 8 && string(b[:8]) == "SIP/2.0 " {
		s.kind = kindResponse
		return
	}
	i := 0
	for i < len(b) && i < 32 && tokenChar[b[i]] {
		i++
	}
	if i >= 3 && i < len(b) && b[i] == ' ' {
		s.kind = kindRequest
		switch string(b[:i]) {
		case "INVITE":
			s.method = methodINVITE
		case "REGISTER":
			s.method = methodREGISTER
		case "ACK":
			s.method = methodACK
		}
		return
	}
	if len(b) > 0 && len(b) <= 4 {
		for _, c := range b {
			if c != '\r' && c != '\n' {
				return
			}
		}
		s.kind = kindKeepalive
	}
}

// headerLines walks the header lines after the start line, counting
// headers and Via values (a comma in a Via line starts another value) and
// keeping the first User-Agent, From and To values. It stops counting past
// limit headers: the message is dropped then anyway.
func (s *shape) headerLines(b []byte, limit int) {
	s.headers, s.vias, s.toTag = 0, 0, false
	s.ua, s.from, s.to = nil, nil, nil
	p := bytes.IndexByte(b, '\n') + 1
	if p == 0 {
		return
	}
	for p < len(b) {
		c := b[p]
		if c == '\r' || c == '\n' {
			return // end of headers
		}
		end := len(b)
		if k := bytes.IndexByte(b[p:], '\n'); k >= 0 {
			end = p + k
		}
		if c == ' ' || c == '\t' {
			p = end + 1 // folded continuation of the previous header
			continue
		}
		s.headers++
		if s.headers > limit {
			return
		}
		line := b[p:end]
		if k := bytes.IndexByte(line, ':'); k > 0 {
			name := trimRight(line[:k])
			value := trimSpace(line[k+1:])
			switch len(name) {
			case 1:
				switch lower[name[0]] {
				case 'v':
					s.vias += 1 + bytes.Count(value, comma)
				case 'f':
					s.from = first(s.from, value)
				case 't':
					s.to = first(s.to, value)
				}
			case 2:
				if eqFold(name, "to") {
					s.to = first(s.to, value)
				}
			case 3:
				if eqFold(name, "via") {
					s.vias += 1 + bytes.Count(value, comma)
				}
			case 4:
				if eqFold(name, "from") {
					s.from = first(s.from, value)
				}
			case 10:
				if eqFold(name, "user-agent") {
					s.ua = first(s.ua, value)
				}
			}
		}
		p = end + 1
	}
}

var comma = []byte{','}

func first(cur, v []byte) []byte {
	if cur != nil {
		return cur
	}
	return v
}

func trimRight(b []byte) []byte {
	for len(b) > 0 && (b[len(b)-1] == ' ' || b[len(b)-1] == '\t') {
		b = b[:len(b)-1]
	}
	return b
}

func trimSpace(b []byte) []byte {
	for len(b) > 0 && (b[0] == ' ' || b[0] == '\t') {
		b = b[1:]
	}
	for len(b) > 0 && (b[len(b)-1] == ' ' || b[len(b)-1] == '\t' || b[len(b)-1] == '\r') {
		b = b[:len(b)-1]
	}
	return b
}

// eqFold compares b with a lower-case ASCII string, ignoring b's case.
func eqFold(b []byte, s string) bool {
	if len(b) != len(s) {
		return false
	}
	for i := range b {
		if lower[b[i]] != s[i] {
			return false
		}
	}
	return true
}

// containsFold reports whether needle (lower case) occurs in hay, ignoring
// hay's case.
func containsFold(hay, needle []byte) bool {
	n := len(needle)
	if n == 0 {
		return false
	}
	c0 := needle[0]
	for i := 0; i+n <= len(hay); i++ {
		if lower[hay[i]] != c0 {
			continue
		}
		j := 1
		for j < n && lower[hay[i+j]] == needle[j] {
			j++
		}
		if j == n {
			return true
		}
	}
	return false
}

// matcher finds any of a set of lower-case patterns in a header value,
// ignoring case, in one pass: each byte of the value is looked up once in a
// table of the patterns starting with it, so the cost hardly grows with the
// number of signatures.
type matcher struct {
	pats  [][]byte
	start [256][]uint16 // indices into pats, by first byte
}

func newMatcher(pats [][]byte) *matcher {
	m := &matcher{pats: pats}
	for i, p := range pats {
		if len(p) > 0 {
			m.start[p[0]] = append(m.start[p[0]], uint16(i))
		}
	}
	return m
}

func (m *matcher) match(v []byte) bool {
	for i := 0; i < len(v); i++ {
		for _, k := range m.start[lower[v[i]]] {
			p := m.pats[k]
			if len(v)-i < len(p) {
				continue
			}
			j := 1
			for j < len(p) && lower[v[i+j]] == p[j] {
				j++
			}
			if j == len(p) {
				return true
			}
		}
	}
	return false
}

var tagParam = []byte(";tag=")
