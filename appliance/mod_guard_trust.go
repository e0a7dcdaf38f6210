package appliance

import (
	"net/netip"

	"sipedge/appliance/config"
	"sipedge/pipeline"
	"sipedge/pipeline/stages/guard"
)

// guardTrust is what the guard trusts, and how far: the backends (address
// and port: their own limit, never banned) and the networks never banned
// ([auth] trusted).
func guardTrust(cfg *config.Config, specs []pipeline.BackendSpec) ([]netip.AddrPort, []netip.Prefix) {
	var backends []netip.AddrPort
	for _, s := range specs {
		backends = append(backends, s.Addr)
	}
	var never []netip.Prefix
	for _, s := range cfg.Auth.Trusted {
		if p, err := netip.ParsePrefix(s); err == nil {
			never = append(never, p)
		} else if a, err := netip.ParseAddr(s); err == nil {
			never = append(never, netip.PrefixFrom(a, a.BitLen()))
		}
	}
	return backends, never
}

// guardTrustLimits maps the trust keys of [guard] onto gc.
func guardTrustLimits(cfg *config.Config, gc *guard.Config) {
	gc.Backend = guard.Limit{Rate: float64(cfg.Guard.BackendRate), Burst: cfg.Guard.BackendBurst}
	gc.ScannerMatches = cfg.Guard.ScannerMatches
}

// writeRegistryRefused writes the bans the ban goroutine refused.
func writeRegistryRefused(p promWriter, st guard.Stats) {
	name := "sipedge_guard_registry_refused_total"
	p.family(name, "counter", "Ban requests the ban registry refused: full of live bans (guard max registry), or the source allow-listed or trusted by the time the request arrived.")
	p.sample(name, float64(st.RegistryFull), "reason", "full")
	p.sample(name, float64(st.RegistryAllowed), "reason", "allow-listed")
}

// reloadTrust gives the guard the reloaded backends (the proxy module
// reloads first) and trusted networks.
func (m *guardModule) reloadTrust(cfg *config.Config) {
	if m.g != nil && cfg.Guard.Enabled {
		m.g.SetTrusted(guardTrust(cfg, proxySpecs(m.env)))
	}
}
