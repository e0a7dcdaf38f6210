package sipcore

import "net/netip"

// ParseIP parses an IPv4 dotted quad or an IPv6 address (with or without the
// brackets of an IPv6 reference, no zone) from message bytes. netip.ParseAddr
// needs a string and the conversion allocates; this does not.
func ParseIP(b []byte) (netip.Addr, bool) {
	if len(b) >= 2 && b[0] == '[' && b[len(b)-1] == ']' {
		b = b[1 : len(b)-1]
	}
	for _, c := range b {
		if c == ':' {
			return parseIPv6(b)
		}
	}
	var a [4]byte
	if !parseIPv4Into(b, a[:]) {
		return netip.Addr{}, false
	}
	return netip.AddrFrom4(a), true
}

func parseIPv4Into(b []byte, out []byte) bool {
	part, digits, val := 0, 0, 0
	for i := 0; i <= len(b); i++ {
		if i == len(b) || b[i] == '.' {
			if digits == 0 || part > 3 {
				return false
			}
			out[part] = byte(val)
			part++
			digits, val = 0, 0
			continue
		}
		c := b[i]
		if c < '0' || c > '9' {
			return false
		}
		if digits > 0 && val == 0 { // no leading zeros: "01" is ambiguous (octal in some stacks)
			return false
		}
		val = val*10 + int(c-'0')
		digits++
		if val > 255 {
			return false
		}
	}
	return part == 4
}

func parseIPv6(b []byte) (netip.Addr, bool) {
	var ip [16]byte
	ellipsis := -1 // byte index in ip where "::" was
	i, n := 0, 0   // position in b, bytes written to ip
	if len(b) >= 2 && b[0] == ':' && b[1] == ':' {
		ellipsis = 0
		i = 2
		if i == len(b) {
			return netip.AddrFrom16(ip), true
		}
	}
	for i < len(b) && n < 16 {
		// Either a hex group or, at the end, an embedded IPv4 address.
		j, v := i, 0
		for j < len(b) && j-i < 4 {
			d, ok := hexVal(b[j])
			if !ok {
				break
			}
			v = v<<4 | d
			j++
		}
		if j == i {
			return netip.Addr{}, false
		}
		if j < len(b) && b[j] == '.' {
			if n > 12 || !parseIPv4Into(b[i:], ip[n:n+4]) {
				return netip.Addr{}, false
			}
			n += 4
			i = len(b)
			break
		}
		ip[n] = byte(v >> 8)
		ip[n+1] = byte(v)
		n += 2
		i = j
		if i == len(b) {
			break
		}
		if b[i] != ':' {
			return netip.Addr{}, false
		}
		i++
		if i < len(b) && b[i] == ':' {
			if ellipsis >= 0 {
				return netip.Addr{}, false
			}
			ellipsis = n
			i++
			if i == len(b) {
				break
			}
		} else if i == len(b) {
			return netip.Addr{}, false // trailing single colon
		}
	}
	if i != len(b) {
		return netip.Addr{}, false
	}
	if n < 16 {
		if ellipsis < 0 {
			return netip.Addr{}, false
		}
		shift := 16 - n
		for k := n - 1; k >= ellipsis; k-- {
			ip[k+shift] = ip[k]
		}
		for k := ellipsis; k < ellipsis+shift; k++ {
			ip[k] = 0
		}
	} else if ellipsis >= 0 {
		// "::" must stand for at least one group of zeros (RFC 4291 2.2).
		return netip.Addr{}, false
	}
	return netip.AddrFrom16(ip), true
}

func hexVal(c byte) (int, bool) {
	switch {
	case c >= '0' && c <= '9':
		return int(c - '0'), true
	case c >= 'a' && c <= 'f':
		return int(c-'a') + 10, true
	case c >= 'A' && c <= 'F':
		return int(c-'A') + 10, true
	}
	return 0, false
}
