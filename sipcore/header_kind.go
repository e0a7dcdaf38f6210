package sipcore

import "encoding/binary"

// headerKind classifies a header name, long or compact, case-insensitively.
// It dispatches on length and first letter so that a name costs at most a
// couple of byte comparisons: no map, no lower-casing copy.
func headerKind[T ~string | ~[]byte](n T) HeaderKind {
	if len(n) == 0 {
		return HdrOther
	}
	c := n[0] | 0x20
	switch len(n) {
	case 1:
		return compactKind[c]
	case 2:
		if eqLower(n, "to") {
			return HdrTo
		}
	case 3:
		if eqLower(n, "via") {
			return HdrVia
		}
	case 4:
		switch {
		case c == 'f' && eqLower(n, "from"):
			return HdrFrom
		case c == 'c' && eqLower(n, "cseq"):
			return HdrCSeq
		}
	case 5:
		switch {
		case c == 'r' && eqLower(n, "route"):
			return HdrRoute
		case c == 'e' && eqLower(n, "event"):
			return HdrEvent
		}
	case 7:
		switch c {
		case 'c':
			if eqLower(n, "call-id") {
				return HdrCallID
			}
			if eqLower(n, "contact") {
				return HdrContact
			}
		case 'r':
			if eqLower(n, "require") {
				return HdrRequire
			}
		case 'e':
			if eqLower(n, "expires") {
				return HdrExpires
			}
		case 's':
			if eqLower(n, "subject") {
				return HdrSubject
			}
		}
	case 8:
		switch {
		case c == 'r' && eqLower(n, "refer-to"):
			return HdrReferTo
		case c == 'i' && eqLower(n, "identity"):
			return HdrIdentity
		}
	case 9:
		if eqLower(n, "supported") {
			return HdrSupported
		}
	case 10:
		if eqLower(n, "user-agent") {
			return HdrUserAgent
		}
	case 11:
		if eqLower(n, "referred-by") {
			return HdrReferredBy
		}
	case 12:
		switch {
		case c == 'm' && eqLower(n, "max-forwards"):
			return HdrMaxForwards
		case c == 'c' && eqLower(n, "content-type"):
			return HdrContentType
		case c == 'a' && eqLower(n, "allow-events"):
			return HdrAllowEvents
		case c == 'r' && eqLower(n, "record-route"):
			return HdrRecordRoute
		}
	case 13:
		switch {
		case c == 'a' && eqLower(n, "authorization"):
			return HdrAuthorization
		case c == 'p' && eqLower(n, "proxy-require"):
			return HdrProxyRequire
		}
	case 14:
		switch {
		case c == 'c' && eqLower(n, "content-length"):
			return HdrContentLength
		case c == 'a' && eqLower(n, "accept-contact"):
			return HdrAcceptContact
		}
	case 15:
		if eqLower(n, "session-expires") {
			return HdrSessionExpires
		}
	case 16:
		if eqLower(n, "content-encoding") {
			return HdrContentEncoding
		}
	case 19:
		if eqLower(n, "proxy-authorization") {
			return HdrProxyAuthorization
		}
	}
	return HdrOther
}

// compactKind maps the lower-cased single-letter compact forms (RFC 3261
// 7.3.3 and the IANA SIP header registry) to their kinds.
var compactKind = [256]HeaderKind{
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

// methodOf returns the Method of a method token. SIP methods are
// case-sensitive (RFC 3261 7.1), so "invite" is an unknown method.
func methodOf(b []byte) Method {
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

// nameCand is a header name folded to lower case and packed little-endian
// into two words, for kindAt's word compares.
type nameCand struct {
	w0, w1 uint64
	kind   HeaderKind
}

// kindByLen lists, per name length, the known names of that length.
var kindByLen = buildKindByLen()

func buildKindByLen() (t [17][]nameCand) {
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
		w0, w1 := foldWords(pad[:], len(nm.n))
		t[len(nm.n)] = append(t[len(nm.n)], nameCand{w0, w1, nm.k})
	}
	return t
}

// foldWords loads the first n (2..16) bytes of b, which must hold 16, as
// two little-endian words with ASCII letters folded to lower case (|0x20)
// and the bytes past n cleared. Folding with |0x20 maps no token character
// onto another except a letter onto its other case, and header names are
// checked to be tokens before they get here.
func foldWords(b []byte, n int) (w0, w1 uint64) {
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

// kindAt classifies the header name b[pos:ne] (a token) with two word
// loads and compares instead of a byte loop; near the end of the buffer,
// or for names over 16 bytes, it falls back to headerKind.
func kindAt(b []byte, pos, ne int) HeaderKind {
	n := ne - pos
	if n == 1 {
		return compactKind[b[pos]|0x20]
	}
	if n > 16 || pos+16 > len(b) {
		return headerKind(b[pos:ne])
	}
	w0, w1 := foldWords(b[pos:pos+16], n)
	for _, c := range kindByLen[n] {
		if c.w0 == w0 && c.w1 == w1 {
			return c.kind
		}
	}
	return HdrOther
}

// fastName is a common header name followed directly by ':' as two
// little-endian words: a message's names are nearly always written this
// way, and one masked compare then replaces the token scan, the colon
// search and kindAt.
type fastName struct {
	p0, p1 uint64 // lower-case name and ':'
	f0, f1 uint64 // 0x20 on letter bytes: folds the case of letters only
	m0, m1 uint64 // keeps the n+1 bytes of the pattern
	n      int    // length of the name, without ':'
	kind   HeaderKind
}

// fastNames lists, by lower-cased first letter, the names fastNameAt tries.
var fastNames = buildFastNames()

func buildFastNames() (t [26][]fastName) {
	for _, nm := range []struct {
		n string
		k HeaderKind
	}{
		{"via", HdrVia}, {"v", HdrVia}, {"from", HdrFrom}, {"f", HdrFrom}, {"to", HdrTo}, {"t", HdrTo},
		{"call-id", HdrCallID}, {"i", HdrCallID}, {"cseq", HdrCSeq}, {"contact", HdrContact}, {"m", HdrContact},
		{"max-forwards", HdrMaxForwards}, {"content-length", HdrContentLength}, {"l", HdrContentLength},
		{"content-type", HdrContentType}, {"c", HdrContentType}, {"record-route", HdrRecordRoute},
		{"route", HdrRoute}, {"allow", HdrOther}, {"supported", HdrSupported}, {"k", HdrSupported},
		{"user-agent", HdrUserAgent}, {"server", HdrOther}, {"expires", HdrExpires}, {"require", HdrRequire},
		{"proxy-require", HdrProxyRequire}, {"authorization", HdrAuthorization}, {"date", HdrOther},
		{"accept", HdrOther}, {"session-expires", HdrSessionExpires}, {"event", HdrEvent},
	} {
		var pat, fold, mask [16]byte
		s := nm.n + ":"
		for i := 0; i < len(s); i++ {
			pat[i], mask[i] = s[i], 0xff
			if isAlpha(s[i]) {
				fold[i] = 0x20
			}
		}
		le := binary.LittleEndian
		t[nm.n[0]-'a'] = append(t[nm.n[0]-'a'], fastName{
			p0: le.Uint64(pat[:]), p1: le.Uint64(pat[8:]),
			f0: le.Uint64(fold[:]), f1: le.Uint64(fold[8:]),
			m0: le.Uint64(mask[:]), m1: le.Uint64(mask[8:]),
			n: len(nm.n), kind: nm.k,
		})
	}
	return t
}

// fastNameAt returns the length of the common header name that starts at
// b[pos] and is followed directly by ':', and its kind; 0 when the name is
// not one of fastNames or the buffer is too short to load two words there.
func fastNameAt(b []byte, pos int) (int, HeaderKind) {
	if pos+16 > len(b) {
		return 0, HdrOther
	}
	c := (b[pos] | 0x20) - 'a'
	if c >= 26 {
		return 0, HdrOther
	}
	w0 := binary.LittleEndian.Uint64(b[pos:])
	w1 := binary.LittleEndian.Uint64(b[pos+8:])
	for i := range fastNames[c] {
		f := &fastNames[c][i]
		if (w0|f.f0)&f.m0 == f.p0 && (w1|f.f1)&f.m1 == f.p1 {
			return f.n, f.kind
		}
	}
	return 0, HdrOther
}
