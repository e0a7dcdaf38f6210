package sipcore

import (
	"crypto/md5"
	"crypto/sha256"
	"crypto/sha512"
	"crypto/subtle"
	"encoding/hex"
)

// Digest authentication (RFC 7616 with the SIP profile of RFC 8760, and the
// RFC 2617 / RFC 2069 forms older phones still send). The per-packet part,
// ParseCredentials and Credentials.Verify, works on the raw header value and
// allocates nothing: every hash input is assembled in a fixed stack buffer,
// which is why field lengths are bounded and over-long fields are refused at
// parse time instead of growing a buffer.

// Bounds on credential fields. They keep every hash input inside a fixed
// stack buffer; real clients stay far below them (a SHA-256 userhash is 64
// bytes, nonces and cnonces are rarely over 64).
const (
	// MaxDigestField bounds username, realm, nonce, cnonce and opaque, as
	// written (escapes included).
	MaxDigestField = 256
	// MaxDigestURI bounds the digest-uri, which in SIP is a full Request-URI.
	MaxDigestURI = 512
	// MaxDigestMethod bounds the method given to Verify.
	MaxDigestMethod = 64
)

// digestBufLen fits the longest hash input Verify builds: the response input
// HA1:nonce:nc:cnonce:qop:HA2 is 64+1+256+1+8+1+256+1+4+1+64 = 657 bytes;
// HA2 (method:uri) is at most 64+1+512 = 577.
const digestBufLen = 704

// Algorithm is a digest algorithm (RFC 7616 3.2, RFC 8760). The zero value is
// MD5, which is what an absent algorithm parameter means.
type Algorithm uint8

// Digest algorithms. The -sess variants hash the nonce and cnonce into HA1
// (RFC 7616 3.4.2).
const (
	AlgMD5 Algorithm = iota
	AlgMD5Sess
	AlgSHA256
	AlgSHA256Sess
	AlgSHA512_256
	AlgSHA512_256Sess
	// AlgUnknown is set by ParseCredentials when the client names an
	// algorithm this package does not implement.
	AlgUnknown Algorithm = 255
)

var algNames = [...]string{
	AlgMD5:            "MD5",
	AlgMD5Sess:        "MD5-sess",
	AlgSHA256:         "SHA-256",
	AlgSHA256Sess:     "SHA-256-sess",
	AlgSHA512_256:     "SHA-512-256",
	AlgSHA512_256Sess: "SHA-512-256-sess",
}

// String is the algorithm's name as written in the algorithm parameter.
func (a Algorithm) String() string {
	if int(a) < len(algNames) {
		return algNames[a]
	}
	return "unknown"
}

// Sess reports whether a is a -sess variant.
func (a Algorithm) Sess() bool {
	return a == AlgMD5Sess || a == AlgSHA256Sess || a == AlgSHA512_256Sess
}

// HexLen is the length of a hex digest (HA1, response, userhash) for a, or 0
// for an algorithm this package does not implement.
func (a Algorithm) HexLen() int {
	switch a {
	case AlgMD5, AlgMD5Sess:
		return 2 * md5.Size
	case AlgSHA256, AlgSHA256Sess, AlgSHA512_256, AlgSHA512_256Sess:
		return 2 * sha256.Size
	}
	return 0
}

// hexSum writes the lowercase hex digest of data under a's hash function into
// dst and returns its length (0 for an unknown algorithm). The one-shot Sum
// functions are used because the hash.Hash constructors allocate.
func (a Algorithm) hexSum(dst *[64]byte, data []byte) int {
	switch a {
	case AlgMD5, AlgMD5Sess:
		s := md5.Sum(data)
		return hex.Encode(dst[:], s[:])
	case AlgSHA256, AlgSHA256Sess:
		s := sha256.Sum256(data)
		return hex.Encode(dst[:], s[:])
	case AlgSHA512_256, AlgSHA512_256Sess:
		s := sha512.Sum512_256(data)
		return hex.Encode(dst[:], s[:])
	}
	return 0
}

// parseAlgorithm matches an algorithm name case-insensitively.
func parseAlgorithm(b []byte) Algorithm {
	for i, n := range algNames {
		if asciiEqualFold(b, n) {
			return Algorithm(i)
		}
	}
	return AlgUnknown
}

// Qop is the quality of protection the client chose.
type Qop uint8

// Qop values. QopNone is the RFC 2069 form (no qop, nc or cnonce).
const (
	QopNone Qop = iota
	QopAuth
	// QopAuthInt is recognised so that it can be refused clearly: it needs
	// the body hashed, which a stateless edge does not do.
	QopAuthInt
	// QopUnknown is any other token.
	QopUnknown
)

// Credentials is one parsed Authorization or Proxy-Authorization value. The
// byte fields are slices into the value given to ParseCredentials (no copies):
// they are valid while that buffer is unchanged.
//
// Quoted fields hold the bytes between the quotes as written. If Escaped is
// true, at least one of them contains a backslash escape (quoted-pair); use
// AppendUnescaped to get the value itself. Verify unescapes on its own.
type Credentials struct {
	Username []byte // the user name, or H(user:realm) when UserHash is set
	Realm    []byte
	Nonce    []byte
	URI      []byte // digest-uri: in SIP the Request-URI
	Response []byte // hex, length Algorithm.HexLen()
	Cnonce   []byte
	Opaque   []byte
	NC       []byte // nonce-count as written: 8 hex digits
	NCValue  uint32 // NC as a number

	Algorithm Algorithm
	Qop       Qop
	UserHash  bool // username is H(user:realm) (RFC 7616 3.4.4)
	Escaped   bool // some quoted field contains a backslash escape
}

// DigestProblem classifies what is wrong with a digest parameter.
type DigestProblem uint8

// Problems a credential can have.
const (
	DigestMissing     DigestProblem = iota // a required parameter is absent
	DigestDuplicate                        // a parameter is given twice
	DigestMalformed                        // the value or the syntax around it is wrong
	DigestTooLong                          // longer than the bounds above
	DigestUnsupported                      // well-formed but not implemented: re-challenge
	numDigestProblems
)

// DigestError is the error ParseCredentials returns. All values are allocated
// once at init and returned by pointer, so returning one allocates nothing.
// Inspect it with errors.As (or a type assertion) to pick the answer: a
// DigestUnsupported problem means the client should get a fresh challenge
// (401/407); any other problem means a malformed request (400).
type DigestError struct {
	Param   string // the parameter at fault: "username", "nc", ... ; "scheme" or "auth-param" for syntax outside one parameter
	Problem DigestProblem
	msg     string
}

func (e *DigestError) Error() string { return e.msg }

// Unsupported reports whether the credentials were well-formed but ask for
// something this package does not implement (another scheme, auth-int, an
// unknown algorithm): the right answer is a new challenge, not 400.
func (e *DigestError) Unsupported() bool { return e.Problem == DigestUnsupported }

// Parameters, indexing the error table and the seen-set in ParseCredentials.
type digestParam uint8

const (
	dpScheme digestParam = iota
	dpSyntax
	dpUsername
	dpRealm
	dpNonce
	dpURI
	dpResponse
	dpAlgorithm
	dpQop
	dpNC
	dpCnonce
	dpOpaque
	dpUserhash
	dpUsernameStar
	numDigestParams
	dpUnknown = numDigestParams
)

var digestParamNames = [numDigestParams]string{
	dpScheme:       "scheme",
	dpSyntax:       "auth-param",
	dpUsername:     "username",
	dpRealm:        "realm",
	dpNonce:        "nonce",
	dpURI:          "uri",
	dpResponse:     "response",
	dpAlgorithm:    "algorithm",
	dpQop:          "qop",
	dpNC:           "nc",
	dpCnonce:       "cnonce",
	dpOpaque:       "opaque",
	dpUserhash:     "userhash",
	dpUsernameStar: "username*",
}

// digestMalformedHint says what a well-formed value looks like, so that the
// error tells the reader what to fix.
var digestMalformedHint = [numDigestParams]string{
	dpScheme:   `: expected "Digest" followed by parameters`,
	dpSyntax:   `: expected name=token or name="quoted string", separated by commas`,
	dpResponse: ": expected the hex digest of the chosen algorithm (32 hex digits for MD5, 64 for SHA-256 and SHA-512-256)",
	dpNC:       ": expected exactly 8 hex digits",
	dpUserhash: ": expected true or false",
}

var digestErrs = func() (t [numDigestParams][numDigestProblems]DigestError) {
	for p := range t {
		name := digestParamNames[p]
		for k := range t[p] {
			e := &t[p][k]
			e.Param, e.Problem = name, DigestProblem(k)
			switch DigestProblem(k) {
			case DigestMissing:
				e.msg = "sip digest: required parameter " + name + " is missing"
			case DigestDuplicate:
				e.msg = "sip digest: parameter " + name + " is given more than once"
			case DigestMalformed:
				e.msg = "sip digest: parameter " + name + " is malformed" + digestMalformedHint[p]
			case DigestTooLong:
				e.msg = "sip digest: parameter " + name + " is longer than this proxy accepts (see sipcore.MaxDigestField and MaxDigestURI)"
			case DigestUnsupported:
				e.msg = "sip digest: parameter " + name + " asks for something this proxy does not support; send a new challenge"
			}
		}
	}
	t[dpScheme][DigestUnsupported].msg = "sip digest: the authorization scheme is not Digest; send a Digest challenge"
	t[dpQop][DigestUnsupported].msg = "sip digest: qop is not auth (auth-int and others are not supported); send a new challenge offering qop=auth"
	t[dpAlgorithm][DigestUnsupported].msg = "sip digest: unknown algorithm (supported: MD5, SHA-256, SHA-512-256 and their -sess variants); send a new challenge"
	t[dpUsernameStar][DigestUnsupported].msg = "sip digest: username* (RFC 8187 encoding) is not supported; the client should send username or userhash"
	return t
}()

func digestErr(p digestParam, k DigestProblem) *DigestError { return &digestErrs[p][k] }

// ErrDigestScheme is returned when the value is not Digest credentials.
var ErrDigestScheme error = digestErr(dpScheme, DigestUnsupported)

func lookupDigestParam(name []byte) digestParam {
	// Dispatch on length and a letter first: this runs for every parameter
	// of every credential. The full comparison below confirms the guess.
	var p digestParam
	switch len(name) {
	case 2:
		p = dpNC
	case 3:
		p = dpURI
		if name[0]|0x20 == 'q' {
			p = dpQop
		}
	case 5:
		p = dpRealm
		if name[0]|0x20 == 'n' {
			p = dpNonce
		}
	case 6:
		p = dpCnonce
		if name[0]|0x20 == 'o' {
			p = dpOpaque
		}
	case 8:
		p = dpResponse
		if name[0]|0x20 == 'u' {
			p = dpUsername
			if name[4]|0x20 == 'h' {
				p = dpUserhash
			}
		}
	case 9:
		p = dpAlgorithm
		if name[0]|0x20 == 'u' {
			p = dpUsernameStar
		}
	default:
		return dpUnknown
	}
	if tokenEqualLower(name, digestParamNames[p]) {
		return p
	}
	return dpUnknown
}

// tokenEqualLower compares a token (tchar bytes only) with a lowercase name.
// Setting bit 0x20 lowercases letters and leaves every other tchar that can
// equal a name byte ('-', '*', digits) unchanged, so one OR per byte does.
func tokenEqualLower(tok []byte, lower string) bool {
	if len(tok) != len(lower) {
		return false
	}
	for i := 0; i < len(tok); i++ {
		if tok[i]|0x20 != lower[i] {
			return false
		}
	}
	return true
}

// ParseCredentials parses an Authorization or Proxy-Authorization header
// value ("Digest username=..., ...") into c, which it resets first.
//
// It accepts parameters in any order, linear white space around '=' and ',',
// empty list elements, quoted or bare values, and quoted algorithm, qop and
// nc values (which RFC 7616 forbids but deployed phones send); unknown
// parameters are ignored. username, realm, nonce, uri and response are
// required, and cnonce and nc too when qop is present; cnonce also for -sess
// algorithms.
//
// The error is a *DigestError naming the parameter at fault. On an
// Unsupported error (qop=auth-int, an unknown algorithm) c is still filled,
// so the caller can log who asked. It allocates nothing.
func ParseCredentials(v []byte, c *Credentials) error {
	*c = Credentials{}
	i := skipDigestLWS(v, 0)
	j := i
	for j < len(v) && isDigestTokenChar(v[j]) {
		j++
	}
	if j == i {
		return digestErr(dpScheme, DigestMalformed)
	}
	if !asciiEqualFold(v[i:j], "Digest") {
		return ErrDigestScheme
	}
	if j < len(v) && !isDigestLWS(v[j]) {
		return digestErr(dpScheme, DigestMalformed)
	}
	i = j

	var seen uint32
	var unsupported *DigestError
	for {
		i = skipDigestLWS(v, i)
		if i == len(v) {
			break
		}
		if v[i] == ',' { // empty list element (RFC 9110 5.6.1)
			i++
			continue
		}
		j = i
		for j < len(v) && isDigestTokenChar(v[j]) {
			j++
		}
		if j == i {
			return digestErr(dpSyntax, DigestMalformed)
		}
		p := lookupDigestParam(v[i:j])
		perr := p
		if perr == dpUnknown {
			perr = dpSyntax
		}
		i = skipDigestLWS(v, j)
		if i == len(v) || v[i] != '=' {
			return digestErr(perr, DigestMalformed)
		}
		i = skipDigestLWS(v, i+1)
		var val []byte
		if i < len(v) && v[i] == '"' {
			start := i + 1
			k := start
			esc := false
			for k < len(v) && v[k] != '"' {
				if digestQdtext[v[k]] {
					k++
					continue
				}
				b := v[k]
				if b == '\\' {
					esc = true
					k++
					if k == len(v) {
						break
					}
					b = v[k]
				}
				if b < 0x20 && b != '\t' || b == 0x7f {
					return digestErr(perr, DigestMalformed)
				}
				k++
			}
			if k >= len(v) {
				return digestErr(perr, DigestMalformed) // unterminated quoted string
			}
			val, i = v[start:k], k+1
			if esc && p != dpUnknown {
				c.Escaped = true
			}
		} else {
			start := i
			for i < len(v) && isDigestTokenChar(v[i]) {
				i++
			}
			if i == start {
				return digestErr(perr, DigestMalformed)
			}
			val = v[start:i]
		}
		i = skipDigestLWS(v, i)
		if i < len(v) {
			if v[i] != ',' {
				return digestErr(perr, DigestMalformed)
			}
			i++
		}
		if p == dpUnknown {
			continue
		}
		if seen&(1<<p) != 0 {
			return digestErr(p, DigestDuplicate)
		}
		seen |= 1 << p
		switch p {
		case dpUsername, dpRealm, dpNonce, dpCnonce, dpURI:
			// An empty one can never be right; say so rather than
			// fail later as a wrong password.
			if len(val) == 0 {
				return digestErr(p, DigestMalformed)
			}
		}
		switch p {
		case dpUsername, dpRealm, dpNonce, dpCnonce, dpOpaque:
			if len(val) > MaxDigestField {
				return digestErr(p, DigestTooLong)
			}
			switch p {
			case dpUsername:
				c.Username = val
			case dpRealm:
				c.Realm = val
			case dpNonce:
				c.Nonce = val
			case dpCnonce:
				c.Cnonce = val
			case dpOpaque:
				c.Opaque = val
			}
		case dpURI:
			if len(val) > MaxDigestURI {
				return digestErr(p, DigestTooLong)
			}
			c.URI = val
		case dpResponse:
			c.Response = val // checked against the algorithm below
		case dpAlgorithm:
			c.Algorithm = parseAlgorithm(val)
			if c.Algorithm == AlgUnknown && unsupported == nil {
				unsupported = digestErr(dpAlgorithm, DigestUnsupported)
			}
		case dpQop:
			switch {
			case asciiEqualFold(val, "auth"):
				c.Qop = QopAuth
			case asciiEqualFold(val, "auth-int"):
				c.Qop = QopAuthInt
			default:
				c.Qop = QopUnknown
			}
			if c.Qop != QopAuth && unsupported == nil {
				unsupported = digestErr(dpQop, DigestUnsupported)
			}
		case dpNC:
			n, ok := parseDigestNC(val)
			if !ok {
				return digestErr(dpNC, DigestMalformed)
			}
			c.NC, c.NCValue = val, n
		case dpUserhash:
			switch {
			case asciiEqualFold(val, "true"):
				c.UserHash = true
			case asciiEqualFold(val, "false"):
			default:
				return digestErr(dpUserhash, DigestMalformed)
			}
		case dpUsernameStar:
			// Only recorded: reported below if username is absent.
		}
	}

	if seen&(1<<dpUsername) == 0 && seen&(1<<dpUsernameStar) != 0 {
		return digestErr(dpUsernameStar, DigestUnsupported)
	}
	for _, p := range [...]digestParam{dpUsername, dpRealm, dpNonce, dpURI, dpResponse} {
		if seen&(1<<p) == 0 {
			return digestErr(p, DigestMissing)
		}
	}
	if unsupported != nil {
		return unsupported
	}
	if c.Qop != QopNone {
		if seen&(1<<dpCnonce) == 0 {
			return digestErr(dpCnonce, DigestMissing)
		}
		if seen&(1<<dpNC) == 0 {
			return digestErr(dpNC, DigestMissing)
		}
	} else {
		// RFC 2069 form: nc and cnonce mean nothing without qop (some
		// phones send nc anyway); -sess still needs cnonce below.
		c.NC, c.NCValue = nil, 0
	}
	if c.Algorithm.Sess() && seen&(1<<dpCnonce) == 0 {
		return digestErr(dpCnonce, DigestMissing)
	}
	if len(c.Response) != c.Algorithm.HexLen() || !allHex(c.Response) {
		return digestErr(dpResponse, DigestMalformed)
	}
	return nil
}

// Verify reports whether the credentials' response is right for the request
// method and the user's stored HA1 = H(username:realm:password), as hex of the
// algorithm's length (either case; CheckHA1 validates stored values). For
// -sess algorithms the session HA1 is derived here from the stored one.
//
// It computes HA2 = H(method:uri) and response = H(HA1:nonce:HA2), or
// H(HA1:nonce:nc:cnonce:qop:HA2) with qop=auth, and compares in constant
// time. It checks only the arithmetic: the caller checks the nonce
// (NonceKey.Check), the realm and that uri matches the Request-URI. It
// returns false, never panics, for an HA1 of the wrong length, a method
// longer than MaxDigestMethod, or credentials ParseCredentials refused. It
// allocates nothing.
func (c *Credentials) Verify(method, ha1 []byte) bool {
	alg := c.Algorithm
	n := alg.HexLen()
	if n == 0 || c.Qop > QopAuth || len(ha1) != n || len(c.Response) != n ||
		len(method) > MaxDigestMethod || len(c.URI) > MaxDigestURI ||
		len(c.Nonce) > MaxDigestField || len(c.Cnonce) > MaxDigestField ||
		(c.Qop == QopAuth && len(c.NC) != 8) {
		return false
	}
	var a1, a2, want, got [64]byte
	if !lowerHexInto(a1[:n], ha1) || !lowerHexInto(got[:n], c.Response) {
		return false
	}
	esc := c.Escaped
	var buf [digestBufLen]byte
	if alg.Sess() {
		b := append(buf[:0], a1[:n]...)
		b = append(b, ':')
		b = appendDigestField(b, c.Nonce, esc)
		b = append(b, ':')
		b = appendDigestField(b, c.Cnonce, esc)
		alg.hexSum(&a1, b)
	}

	b := append(buf[:0], method...)
	b = append(b, ':')
	b = appendDigestField(b, c.URI, esc)
	alg.hexSum(&a2, b)

	b = append(buf[:0], a1[:n]...)
	b = append(b, ':')
	b = appendDigestField(b, c.Nonce, esc)
	b = append(b, ':')
	if c.Qop == QopAuth {
		b = append(b, c.NC...)
		b = append(b, ':')
		b = appendDigestField(b, c.Cnonce, esc)
		b = append(b, ":auth:"...)
	}
	b = append(b, a2[:n]...)
	alg.hexSum(&want, b)
	return subtle.ConstantTimeCompare(want[:n], got[:n]) == 1
}

// AppendUnescaped appends a quoted-string's content with its backslash
// escapes (quoted-pair) removed, e.g. to look up a Username when
// Credentials.Escaped is set.
func AppendUnescaped(dst, raw []byte) []byte { return appendUnescaped(dst, raw) }

// appendDigestField copies a field into a hash input. Unescaping walks byte
// by byte and almost no credential has an escape, so it copies in bulk
// unless the parser saw one.
func appendDigestField(dst, raw []byte, escaped bool) []byte {
	if !escaped {
		return append(dst, raw...)
	}
	return appendUnescaped(dst, raw)
}

func appendUnescaped(dst, raw []byte) []byte {
	for i := 0; i < len(raw); i++ {
		if raw[i] == '\\' && i+1 < len(raw) {
			i++
		}
		dst = append(dst, raw[i])
	}
	return dst
}

// HA1 returns hex(H(user:realm:password)) under alg's hash function: the value
// a credential store keeps instead of the password. For -sess algorithms it is
// the same as for the base algorithm (Verify derives the session key). It is
// for tools and provisioning, not the packet path: it allocates. Realm must be
// the one the proxy challenges with.
func HA1(alg Algorithm, user, realm, password string) string {
	return digestHexString(alg, user+":"+realm+":"+password)
}

// UserHash returns hex(H(user:realm)), the username a client sends with
// userhash=true (RFC 7616 3.4.4); a store indexes users by it to answer such
// requests. It allocates.
func UserHash(alg Algorithm, user, realm string) string {
	return digestHexString(alg, user+":"+realm)
}

func digestHexString(alg Algorithm, s string) string {
	var out [64]byte
	n := alg.hexSum(&out, []byte(s))
	return string(out[:n])
}

// CheckHA1 reports whether ha1 is usable as a stored HA1 for alg: hex of the
// algorithm's digest length. Stores call it when loading credentials, so that
// a wrong value is reported there instead of failing every Verify.
func CheckHA1(alg Algorithm, ha1 []byte) error {
	n := alg.HexLen()
	if n == 0 {
		return errDigestHA1Alg
	}
	if len(ha1) != n || !allHex(ha1) {
		if n == 32 {
			return errDigestHA1MD5
		}
		return errDigestHA1SHA
	}
	return nil
}

var (
	errDigestHA1Alg = &DigestError{Param: "HA1", Problem: DigestUnsupported,
		msg: "sip digest: HA1 given for an unknown algorithm; use MD5, SHA-256 or SHA-512-256"}
	errDigestHA1MD5 = &DigestError{Param: "HA1", Problem: DigestMalformed,
		msg: "sip digest: stored HA1 is not 32 hex digits, as MD5 needs; recompute it as hex(MD5(user:realm:password))"}
	errDigestHA1SHA = &DigestError{Param: "HA1", Problem: DigestMalformed,
		msg: "sip digest: stored HA1 is not 64 hex digits, as SHA-256 and SHA-512-256 need; recompute it as hex(H(user:realm:password))"}
)

// parseDigestNC parses exactly 8 hex digits (RFC 7616 3.4: nc-value = 8LHEX).
func parseDigestNC(b []byte) (uint32, bool) {
	if len(b) != 8 {
		return 0, false
	}
	var n uint32
	for _, ch := range b {
		d, ok := hexDigitVal(ch)
		if !ok {
			return 0, false
		}
		n = n<<4 | uint32(d)
	}
	return n, true
}

func hexDigitVal(ch byte) (byte, bool) {
	switch {
	case ch >= '0' && ch <= '9':
		return ch - '0', true
	case ch >= 'a' && ch <= 'f':
		return ch - 'a' + 10, true
	case ch >= 'A' && ch <= 'F':
		return ch - 'A' + 10, true
	}
	return 0, false
}

func allHex(b []byte) bool {
	for _, ch := range b {
		if _, ok := hexDigitVal(ch); !ok {
			return false
		}
	}
	return true
}

// lowerHexInto copies hex src into dst (same length) in lowercase, the form
// every digest computation hashes; false if src is not hex.
func lowerHexInto(dst, src []byte) bool {
	dst = dst[:len(src)]
	for i, ch := range src {
		l := digestHexLower[ch]
		if l == 0 {
			return false
		}
		dst[i] = l
	}
	return true
}

// digestHexLower maps hex digits to their lowercase form and all else to 0.
var digestHexLower = func() (t [256]byte) {
	for _, c := range "0123456789abcdef" {
		t[c] = byte(c)
	}
	for _, c := range "ABCDEF" {
		t[c] = byte(c) + 'a' - 'A'
	}
	return t
}()

// asciiEqualFold compares b with the ASCII string s ignoring case.
func asciiEqualFold(b []byte, s string) bool {
	if len(b) != len(s) {
		return false
	}
	for i := 0; i < len(b); i++ {
		x, y := b[i], s[i]
		if x >= 'A' && x <= 'Z' {
			x += 'a' - 'A'
		}
		if y >= 'A' && y <= 'Z' {
			y += 'a' - 'A'
		}
		if x != y {
			return false
		}
	}
	return true
}

// isDigestLWS accepts CR and LF as well as SP and HTAB, so that a header
// value handed over with its line folding intact still parses.
func isDigestLWS(b byte) bool { return b == ' ' || b == '\t' || b == '\r' || b == '\n' }

func skipDigestLWS(v []byte, i int) int {
	for i < len(v) && isDigestLWS(v[i]) {
		i++
	}
	return i
}

// isDigestTokenChar is RFC 9110 tchar. It also admits '*' for username*.
func isDigestTokenChar(b byte) bool {
	return digestTchar[b]
}

var digestTchar = func() (t [256]bool) {
	for c := '0'; c <= '9'; c++ {
		t[c] = true
	}
	for c := 'a'; c <= 'z'; c++ {
		t[c] = true
		t[c-'a'+'A'] = true
	}
	for _, c := range "!#$%&'*+-.^_`|~" {
		t[c] = true
	}
	return t
}()

// digestQdtext marks the quoted-string bytes that need no attention: all but
// DQUOTE, backslash and control characters other than HTAB.
var digestQdtext = func() (t [256]bool) {
	for c := range t {
		t[c] = c >= 0x20 && c != 0x7f && c != '"' && c != '\\' || c == '\t'
	}
	return t
}()
