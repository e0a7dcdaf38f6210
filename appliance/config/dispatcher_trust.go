package config

import "net/netip"

// checkBackendDestinations checks dispatcher.backend_destinations: each a
// CIDR or an address, as guard.allow.
func (d *Dispatcher) checkBackendDestinations(p *problems) {
	for i, s := range d.BackendDestinations {
		if a, ok := parseAllow(s); !ok || a.Addr().Is4In6() {
			p.addv("dispatcher.backend_destinations["+itoa(i)+"]", s, `want a CIDR such as "198.51.100.0/24" or an address such as "2001:db8::5" (IPv4 not v4-mapped)`)
		}
	}
}

// BackendDestinationPrefixes returns backend_destinations as prefixes (a
// bare address is a /32 or /128); call it on a validated Config.
func (d *Dispatcher) BackendDestinationPrefixes() []netip.Prefix {
	return prefixList(d.BackendDestinations)
}

// prefixList parses a validated list of CIDRs and addresses.
func prefixList(list []string) []netip.Prefix {
	var out []netip.Prefix
	for _, s := range list {
		if p, ok := parseAllow(s); ok {
			out = append(out, p)
		}
	}
	return out
}

// normalizeBackendDestinations makes an empty list nil, the default's
// form, so a file that lists none equals the defaults.
func (d *Dispatcher) normalizeBackendDestinations() {
	if len(d.BackendDestinations) == 0 {
		d.BackendDestinations = nil
	}
}
