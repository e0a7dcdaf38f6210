package sipcore

// Challenge is what a 401 (WWW-Authenticate) or 407 (Proxy-Authenticate)
// offers. The byte fields are the caller's; AppendChallenge only reads them.
type Challenge struct {
	// Proxy selects Proxy-Authenticate (for a 407) over WWW-Authenticate
	// (for a 401).
	Proxy bool
	Realm []byte
	Nonce []byte // from NonceKey.Append
	// Opaque is echoed by the client unchanged; omitted when empty.
	Opaque    []byte
	Algorithm Algorithm
	// Stale tells the client its nonce expired but its credentials were
	// right (NonceKey.Check said NonceStale): retry without asking the user.
	Stale bool
	// UserHash invites the client to send H(user:realm) instead of the user
	// name (RFC 7616 3.4.4); the store must then index users by UserHash.
	UserHash bool
}

// AppendChallenge appends one complete challenge header line, CRLF included:
//
//	WWW-Authenticate: Digest realm="r", nonce="n", algorithm=MD5, qop="auth"[, stale=true][, opaque="o"][, userhash=true]
//
// qop="auth" is always offered (RFC 7616 requires it; RFC 2069 clients ignore
// it). To offer several algorithms call it once per algorithm with the same
// nonce, most preferred first: RFC 8760 says SHA-256 before MD5.
//
// Quotes and backslashes in realm, nonce and opaque are escaped; control
// characters are dropped so that a bad configured value can never split the
// header. An Algorithm outside the defined ones writes nothing (dst is
// returned unchanged). It allocates nothing when dst has room.
func AppendChallenge(dst []byte, c *Challenge) []byte {
	if c.Algorithm.HexLen() == 0 {
		return dst
	}
	if c.Proxy {
		dst = append(dst, "Proxy-Authenticate: Digest realm=\""...)
	} else {
		dst = append(dst, "WWW-Authenticate: Digest realm=\""...)
	}
	dst = appendDigestQuoted(dst, c.Realm)
	dst = append(dst, "\", nonce=\""...)
	dst = appendDigestQuoted(dst, c.Nonce)
	dst = append(dst, "\", algorithm="...)
	dst = append(dst, c.Algorithm.String()...)
	dst = append(dst, ", qop=\"auth\""...)
	if c.Stale {
		dst = append(dst, ", stale=true"...)
	}
	if len(c.Opaque) > 0 {
		dst = append(dst, ", opaque=\""...)
		dst = appendDigestQuoted(dst, c.Opaque)
		dst = append(dst, '"')
	}
	if c.UserHash {
		dst = append(dst, ", userhash=true"...)
	}
	return append(dst, '\r', '\n')
}

// appendDigestQuoted writes s as quoted-string content (RFC 9110 5.6.4).
func appendDigestQuoted(dst, s []byte) []byte {
	for _, b := range s {
		switch {
		case b == '"' || b == '\\':
			dst = append(dst, '\\', b)
		case b < 0x20 && b != '\t' || b == 0x7f:
			// dropped: CR or LF here would end the header line
		default:
			dst = append(dst, b)
		}
	}
	return dst
}
