package sipcore

import (
	"encoding/binary"
	"math/bits"
)

// Character classes of the RFC 3261 grammar, one 256-entry table each so
// that the scanners test a byte with a single load.
const (
	cToken  = 1 << iota // token (RFC 3261 25.1)
	cUser               // user: unreserved / user-unreserved / '%'
	cPass               // password: unreserved / "&=+$," / '%'
	cParam              // uri paramchar: unreserved / param-unreserved / '%'
	cHost               // hostname and IPv4 characters
	cIPv6               // inside an IPv6 reference
	cScheme             // scheme after its first letter
	cGenVal             // generic-param value: token / host (incl. IPv6 refs)
	cWord               // Call-ID word
)

var charClass = buildCharClass()

func buildCharClass() (t [256]uint16) {
	set := func(class uint16, chars string) {
		for i := 0; i < len(chars); i++ {
			t[chars[i]] |= class
		}
	}
	const alnum = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
	const mark = "-_.!~*'()"
	set(cToken, alnum+"-.!%*_+`'~")
	set(cUser, alnum+mark+"&=+$,;?/%")
	set(cPass, alnum+mark+"&=+$,%")
	set(cParam, alnum+mark+"[]/:&+$%")
	set(cHost, alnum+"-.")
	set(cIPv6, "0123456789abcdefABCDEF:.")
	set(cScheme, alnum+"+-.")
	set(cGenVal, alnum+"-.!%*_+`'~:[]")
	set(cWord, alnum+"-.!%*_+`'~()<>:\\\"/[]?{}")
	return t
}

func isWS(c byte) bool { return c == ' ' || c == '\t' }

func isDigit(c byte) bool { return c-'0' < 10 }

func isAlpha(c byte) bool { return (c|0x20)-'a' < 26 }

func isHex(c byte) bool { return c-'0' < 10 || (c|0x20)-'a' < 6 }

// skipWS returns the first index at or after p, below e, that is not SP or HT.
func skipWS(b []byte, p, e int) int {
	if p < e && p < len(b) && !isWS(b[p]) {
		return p // the usual case, kept cheap enough to inline
	}
	for p < e && isWS(b[p]) {
		p++
	}
	return p
}

// scanClass returns the first index at or after p, below e, whose byte is
// not in class; ok is false when a '%' there does not start a %HH escape.
func scanClass(b []byte, p, e int, class uint16) (int, bool) {
	for p < e {
		c := b[p]
		if charClass[c]&class == 0 {
			break
		}
		if c == '%' && class&(cUser|cPass|cParam) != 0 {
			if p+2 >= e || !isHex(b[p+1]) || !isHex(b[p+2]) {
				return p, false
			}
			p += 3
			continue
		}
		p++
	}
	return p, true
}

// scanToken returns the first index at or after p, below e, that is not a
// token character.
func scanToken(b []byte, p, e int) int {
	if p >= e {
		return p
	}
	s := b[p:e]
	for i, c := range s {
		if charClass[c]&cToken == 0 {
			return p + i
		}
	}
	return e
}

// endQuoted returns the index just past the quoted-string that starts with
// the '"' at b[p], or -1 when it is not closed before e.
func endQuoted(b []byte, p, e int) int {
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

// lower folds an ASCII letter to lower case and leaves other bytes alone.
func lower(c byte) byte {
	if c-'A' < 26 {
		return c | 0x20
	}
	return c
}

// equalFold compares ASCII case-insensitively without allocating.
func equalFold[T ~string | ~[]byte](a []byte, b T) bool {
	if len(a) != len(b) {
		return false
	}
	for i := 0; i < len(a); i++ {
		if lower(a[i]) != lower(b[i]) {
			return false
		}
	}
	return true
}

// eqLower reports whether n equals lit, a lower-case literal, ignoring the
// case of the letters of n.
func eqLower[T ~string | ~[]byte](n T, lit string) bool {
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

func span(from, to int) Span { return Span{Off: uint16(from), Len: uint16(to - from)} }

const (
	swarOnes = 0x0101010101010101
	swarHigh = 0x8080808080808080
	swarLow7 = 0x7f7f7f7f7f7f7f7f
)

// swarBetween sets the high bit of each byte b of x with m < b < n (b, m,
// n below 128; bytes with their own high bit set never match): eight range
// checks in a handful of word operations, no carry between bytes.
func swarBetween(x, m, n uint64) uint64 {
	return (swarOnes*(127+n) - x&swarLow7) & ^x & (x&swarLow7 + swarOnes*(127-m)) & swarHigh
}

// scanHost returns the length of the leading run of host characters
// (letters, digits, '-', '.') of s, eight bytes per step: hosts are the
// longest runs the parser validates byte by byte on the hot path.
func scanHost(s []byte) int {
	q := 0
	for ; q+8 <= len(s); q += 8 {
		x := binary.LittleEndian.Uint64(s[q:])
		in := swarBetween(x|0x2020202020202020, 'a'-1, 'z'+1) |
			swarBetween(x, '0'-1, '9'+1) | swarBetween(x, ',', '/')
		if in != swarHigh {
			return q + bits.TrailingZeros64(^in&swarHigh)/8
		}
	}
	for ; q < len(s) && charClass[s[q]]&cHost != 0; q++ {
	}
	return q
}
