package sipcore

import "bytes"

// ParseURI parses the URI at buf[s] into u (RFC 3261 19.1 for sip and sips,
// RFC 3966 for tel; any other scheme is kept opaque with only Raw and
// SchemeSpan set). Spans in u point into buf. It returns ErrBadURI when the
// bytes are not a URI; it never allocates.
func ParseURI(buf []byte, s Span, u *URI) error {
	if s.End() > len(buf) || !parseURI(buf, int(s.Off), s.End(), u) {
		return ErrBadURI
	}
	return nil
}

// parseURI parses buf[s:e] into u and reports whether it is well formed.
func parseURI(b []byte, s, e int, u *URI) bool {
	*u = URI{}
	if s >= e || !isAlpha(b[s]) {
		return false
	}
	u.Raw = span(s, e)
	p := s + 1
	for p < e && charClass[b[p]]&cScheme != 0 {
		p++
	}
	if p >= e || b[p] != ':' {
		return false
	}
	u.SchemeSpan = span(s, p)
	switch sch := b[s:p]; len(sch) {
	case 3:
		if eqLower(sch, "sip") {
			u.Scheme = SchemeSIP
		} else if eqLower(sch, "tel") {
			u.Scheme = SchemeTel
		}
	case 4:
		if eqLower(sch, "sips") {
			u.Scheme = SchemeSIPS
		}
	}
	p++
	switch u.Scheme {
	case SchemeOther:
		// Opaque, but still one printable token: whitespace or control
		// bytes would mean the caller cut the URI in the wrong place.
		return printable(b, p, e)
	case SchemeTel:
		q := p
		for q < e && b[q] != ';' {
			q++
		}
		if q == p || !printable(b, p, e) {
			return false
		}
		u.User = span(p, q)
		if q < e {
			return parseURIParams(b, q, e, u) == e
		}
		return true
	}

	if at := bytes.IndexByte(b[p:e], '@'); at >= 0 {
		at += p
		ue := at
		if c := bytes.IndexByte(b[p:at], ':'); c >= 0 {
			ue = p + c
			q, ok := scanClass(b, ue+1, at, cPass)
			if !ok || q != at {
				return false
			}
			u.Password = span(ue+1, at)
		}
		q, ok := scanClass(b, p, ue, cUser)
		if !ok || q != ue || q == p {
			return false
		}
		u.User = span(p, ue)
		p = at + 1
	}
	q, kind, ok := parseHost(b, p, e)
	if !ok {
		return false
	}
	u.HostKind, u.Host = kind, span(p, q)
	p = q
	if p < e && b[p] == ':' {
		port, q, ok := parsePort(b, p+1, e)
		if !ok {
			return false
		}
		u.Port, u.HasPort = port, true
		p = q
	}
	if p < e && b[p] == ';' {
		p = parseURIParams(b, p, e, u)
	}
	if p < e && b[p] == '?' {
		if p+1 >= e || !printable(b, p+1, e) {
			return false
		}
		u.Headers = span(p+1, e)
		p = e
	}
	return p == e
}

// printable reports whether b[p:e] holds only visible ASCII.
func printable(b []byte, p, e int) bool {
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

// parseURIParams parses ";name[=value]" parameters starting at the ';' at
// b[p] and returns where they stop (e when all of b[p:e] was parameters).
// It records the ones the proxy acts on.
func parseURIParams(b []byte, p, e int, u *URI) int {
	start := p + 1
	for p < e && b[p] == ';' {
		ns := p + 1
		ne, ok := scanClass(b, ns, e, cParam)
		if !ok || ne == ns {
			return p // an empty or broken name: let the caller reject
		}
		vs, ve := ne, ne
		if ne < e && b[ne] == '=' {
			vs = ne + 1
			ve, ok = scanClass(b, vs, e, cParam)
			if !ok || ve == vs {
				return p
			}
		}
		name, val := b[ns:ne], span(vs, ve)
		switch len(name) {
		case 2:
			if eqLower(name, "lr") {
				u.LR = true
			}
		case 3:
			if eqLower(name, "ttl") {
				u.TTL = val
			}
		case 4:
			if eqLower(name, "user") {
				u.UserParam = val
			}
		case 5:
			if eqLower(name, "maddr") {
				u.MAddr = val
			}
		case 6:
			if eqLower(name, "method") {
				u.MethodPar = val
			}
		case 9:
			if eqLower(name, "transport") {
				u.Transport = val
			}
		}
		p = ve
	}
	u.Params = span(start, p)
	return p
}

// parseHost parses a host (hostname, IPv4 address or bracketed IPv6
// reference) at b[p] and returns the index just past it.
func parseHost(b []byte, p, e int) (int, HostKind, bool) {
	if p >= e {
		return p, HostNone, false
	}
	if b[p] == '[' {
		q := p + 1
		colons := 0
		for q < e && charClass[b[q]]&cIPv6 != 0 {
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
	q := scanHost(s)
	if q == 0 || s[0] == '.' || s[0] == '-' {
		return p, HostNone, false
	}
	if !isDigit(s[0]) {
		// RFC 3261 toplabel starts with a letter: a name.
		return p + q, HostName, true
	}
	if isIPv4(s[:q]) {
		return p + q, HostIPv4, true
	}
	for _, c := range s[:q] {
		if c != '.' && !isDigit(c) {
			return p + q, HostName, true // "1and1.example.com"
		}
	}
	// Digits and dots but no dotted quad, e.g. "2001" in front of a bare
	// IPv6 address (RFC 5118 ipv6-bad).
	return p, HostNone, false
}

// isIPv4 reports whether b is a dotted quad of decimal octets.
func isIPv4(b []byte) bool {
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

// parsePort parses 1*DIGIT at b[p] as a port (0..65535).
func parsePort(b []byte, p, e int) (uint16, int, bool) {
	n, q := 0, p
	for q < e && isDigit(b[q]) {
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
