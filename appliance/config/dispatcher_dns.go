package config

import (
	"net/netip"
	"strings"
	"time"
)

// DNS is [dispatcher.dns]: how backends given by name (a domain, a SIP
// URI, host:port) are found and kept fresh, per RFC 3263 (NAPTR, SRV,
// A/AAAA), off the hot path.
type DNS struct {
	// Servers are the DNS servers asked, "ip" or "ip:port"; empty uses
	// the nameservers of /etc/resolv.conf.
	Servers []string `toml:"servers"`
	// Timeout bounds one query to one server.
	Timeout Duration `toml:"timeout"`
	// TTLFloor and TTLCeiling clamp how long looked-up records are kept
	// before they are asked again.
	TTLFloor   Duration `toml:"ttl_floor"`
	TTLCeiling Duration `toml:"ttl_ceiling"`
	// Linger is how long a backend that left the DNS stays known, with
	// no new calls, so the in-dialog requests of its calls are relayed.
	Linger Duration `toml:"linger"`
}

func defaultDNS() DNS {
	return DNS{Servers: []string{}, Timeout: Duration(2 * time.Second),
		TTLFloor: Duration(5 * time.Second), TTLCeiling: Duration(5 * time.Minute), Linger: Duration(time.Hour)}
}

func (d *DNS) check(p *problems) {
	for i, s := range d.Servers {
		if _, err := netip.ParseAddrPort(s); err == nil {
			continue
		}
		if _, err := netip.ParseAddr(s); err != nil {
			p.addv("dispatcher.dns.servers["+itoa(i)+"]", s, "want an IP address or IP:port (a DNS server by name would need a DNS server)")
		}
	}
	if t := d.Timeout.Std(); t < 10*time.Millisecond || t > 30*time.Second {
		p.addv("dispatcher.dns.timeout", d.Timeout, "want 10ms to 30s")
	}
	if f := d.TTLFloor.Std(); f < 100*time.Millisecond || f > time.Hour {
		p.addv("dispatcher.dns.ttl_floor", d.TTLFloor, "want 100ms to 1h: the least time records are kept, even with a TTL of 0")
	}
	if c := d.TTLCeiling.Std(); c < d.TTLFloor.Std() || c > 24*time.Hour {
		p.addv("dispatcher.dns.ttl_ceiling", d.TTLCeiling, "want from dispatcher.dns.ttl_floor (%v) to 24h", d.TTLFloor)
	}
	if l := d.Linger.Std(); l < 0 || l > 24*time.Hour {
		p.addv("dispatcher.dns.linger", d.Linger, "want 0 (forget at once) to 24h; as long as the longest calls keeps their in-dialog requests relayed")
	}
}

// backendAddressProblem says what is wrong with a backend address, ""
// when it is one of the accepted forms: an IP, host:port, a domain, or a
// sip: URI (sips and transports other than UDP are refused: the appliance
// speaks SIP over UDP). The resolver parses it fully when it opens.
func backendAddressProblem(s string) string {
	const forms = "want an IP, host:port, a domain or a sip: URI (such as \"10.0.0.1:5080\" or \"sip:pbx.example.com\")"
	rest := s
	if scheme, after, ok := strings.Cut(s, ":"); ok && (strings.EqualFold(scheme, "sip") || strings.EqualFold(scheme, "sips")) {
		if strings.EqualFold(scheme, "sips") {
			return "sips needs TLS, which the appliance does not speak: use a sip: URI (UDP)"
		}
		rest = after[strings.IndexByte(after, '@')+1:]
		var params string
		rest, params, _ = strings.Cut(rest, ";")
		for _, prm := range strings.Split(params, ";") {
			k, v, _ := strings.Cut(prm, "=")
			if strings.EqualFold(k, "transport") && !strings.EqualFold(v, "udp") {
				return "transport=" + v + ": the appliance sends SIP over UDP only; leave the parameter out or write transport=udp"
			}
		}
	}
	if _, err := netip.ParseAddr(strings.Trim(rest, "[]")); err == nil {
		return ""
	}
	if isHostPort(rest) || isHostname(rest) || isSRVName(rest) {
		return ""
	}
	return forms
}

// isSRVName accepts "_sip._udp.example.com": an SRV name given directly.
func isSRVName(s string) bool {
	svc, rest, ok := strings.Cut(s, ".")
	proto, host, ok2 := strings.Cut(rest, ".")
	return ok && ok2 && strings.HasPrefix(svc, "_") && strings.HasPrefix(proto, "_") && isToken(svc[1:], 63) && isToken(proto[1:], 63) && isHostname(host)
}
