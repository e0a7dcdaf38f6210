package resolve

import (
	"fmt"
	"net/netip"
	"strconv"
	"strings"
)

// DefaultPort is the SIP port used when neither the name nor an SRV record
// gives one (RFC 3261 19.1.2, UDP).
const DefaultPort = 5060

// Name is what the configuration names a server by, parsed.
type Name struct {
	// Host is the host part: a domain (lower case, no trailing dot) or,
	// when IP is valid, the address as written.
	Host string
	// IP is the host when it is numeric: no lookup at all.
	IP netip.Addr
	// Port is the explicit port, 0 when none was given: with a port, RFC
	// 3263 looks up A/AAAA only.
	Port uint16
	// Transport is the URI's transport parameter ("udp"), "" when absent:
	// with a transport, NAPTR is skipped.
	Transport string
	// Input is the text as configured, for logs and errors.
	Input string
}

// Static reports whether the name needs no lookup (a numeric host).
func (n Name) Static() bool { return n.IP.IsValid() }

func (n Name) String() string { return n.Input }

// ParseName parses a server as the configuration gives it: a SIP URI
// ("sip:pbx.example.com", "sip:10.0.0.1:5080;transport=udp"), a domain
// ("example.com"), host:port ("pbx.example.com:5080", "[2001:db8::1]:5060")
// or an IP address. The appliance speaks UDP: sips URIs and any other
// transport are refused with the reason.
func ParseName(s string) (Name, error) {
	n := Name{Input: s}
	rest := strings.TrimSpace(s)
	if rest == "" {
		return n, fmt.Errorf("empty: give an IP:port, a domain or a SIP URI such as sip:pbx.example.com")
	}
	if scheme, after, ok := strings.Cut(rest, ":"); ok && (strings.EqualFold(scheme, "sip") || strings.EqualFold(scheme, "sips")) {
		if strings.EqualFold(scheme, "sips") {
			return n, fmt.Errorf("%q: sips needs TLS, which the appliance does not speak: use a sip: URI (UDP)", s)
		}
		rest = after
		if i := strings.IndexByte(rest, '@'); i >= 0 {
			rest = rest[i+1:] // a user part names no server
		}
		var params string
		rest, params, _ = strings.Cut(rest, ";")
		if i := strings.IndexAny(rest, "?>"); i >= 0 {
			rest = rest[:i]
		}
		for p := range strings.SplitSeq(params, ";") {
			k, v, _ := strings.Cut(p, "=")
			switch strings.ToLower(strings.TrimSpace(k)) {
			case "transport":
				v = strings.ToLower(strings.TrimSpace(v))
				if v != "udp" {
					return n, fmt.Errorf("%q: transport=%s: the appliance sends SIP over UDP only; leave the parameter out or write transport=udp", s, v)
				}
				n.Transport = v
			case "maddr":
				return n, fmt.Errorf("%q: maddr is not supported: put the address in the host part", s)
			}
		}
	} else if strings.ContainsAny(rest, ";@/?") {
		return n, fmt.Errorf("%q: not a host, host:port or SIP URI", s)
	}
	host, port, err := splitHostPort(rest)
	if err != nil {
		return n, fmt.Errorf("%q: %v", s, err)
	}
	n.Port = port
	if ip, err := netip.ParseAddr(host); err == nil {
		if ip.Zone() != "" {
			return n, fmt.Errorf("%q: an address with a zone cannot be a backend", s)
		}
		n.IP, n.Host = ip.Unmap(), host
		return n, nil
	}
	host = strings.ToLower(strings.TrimSuffix(host, "."))
	if !validDomain(host) {
		return n, fmt.Errorf("%q: %q is neither an IP address nor a domain name", s, host)
	}
	n.Host = host
	return n, nil
}

// splitHostPort splits "host", "host:port", "[v6]" and "[v6]:port", and
// also takes a bare IPv6 address.
func splitHostPort(s string) (string, uint16, error) {
	if strings.HasPrefix(s, "[") {
		end := strings.IndexByte(s, ']')
		if end < 0 {
			return "", 0, fmt.Errorf("unclosed [ in an IPv6 host")
		}
		host, tail := s[1:end], s[end+1:]
		if tail == "" {
			return host, 0, nil
		}
		if tail[0] != ':' {
			return "", 0, fmt.Errorf("unexpected %q after ]", tail)
		}
		p, err := parsePort(tail[1:])
		return host, p, err
	}
	if strings.Count(s, ":") > 1 {
		return s, 0, nil // a bare IPv6 address: checked by the caller
	}
	host, ps, ok := strings.Cut(s, ":")
	if !ok {
		return host, 0, nil
	}
	p, err := parsePort(ps)
	return host, p, err
}

func parsePort(s string) (uint16, error) {
	p, err := strconv.ParseUint(s, 10, 16)
	if err != nil || p == 0 {
		return 0, fmt.Errorf("port %q: want 1 to 65535", s)
	}
	return uint16(p), nil
}

// validDomain checks RFC 1035 shape loosely (letters, digits, hyphens and
// underscores, for _sip._udp names), so that a typo is caught by the
// configuration check rather than by a lookup that can only fail.
func validDomain(h string) bool {
	if h == "" || len(h) > 253 {
		return false
	}
	for label := range strings.SplitSeq(h, ".") {
		if label == "" || len(label) > 63 {
			return false
		}
		for _, c := range []byte(label) {
			if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
				return false
			}
		}
	}
	return true
}
