package appliance

import (
	"context"
	"net/netip"
	"slices"

	"sipedge/pipeline"
)

// followBackends keeps the guard in step with backends that DNS adds or
// removes between reloads: a backend (address and port) gets its own
// limits and is never banned, and with allow_backends its IP is
// allow-listed, so its responses never meet the limits meant for callers. It
// waits on the backend set's Changed channel (health changes wake it too,
// and change nothing here).
func (m *guardModule) followBackends(ctx context.Context) {
	p, ok := m.env.Module("proxy").(*proxyModule)
	if !ok {
		return
	}
	set := p.backends.Load()
	addrs := backendAddrs(set.Backends)
	for {
		select {
		case <-ctx.Done():
			return
		case <-set.Changed():
		}
		set = p.backends.Load()
		now := backendAddrs(set.Backends)
		if slices.Equal(now, addrs) {
			continue
		}
		addrs = now
		cfg := m.live.Load()
		m.reloadTrust(cfg)
		if cfg.Guard.AllowBackends {
			m.applyAllow(configAllow(cfg, proxySpecs(m.env)))
		}
		m.env.wake()
	}
}

func backendAddrs(bs []pipeline.Backend) []netip.AddrPort {
	out := make([]netip.AddrPort, 0, len(bs))
	for _, b := range bs {
		out = append(out, b.Addr)
	}
	slices.SortFunc(out, netip.AddrPort.Compare)
	return slices.Compact(out)
}
