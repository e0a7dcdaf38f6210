package appliance

import (
	"context"
	"net/netip"
	"slices"

	"sipedge/pipeline"
)

// followBackends keeps the guard's allow-list in step with backends that
// DNS adds or removes between reloads (allow_backends): a backend's
// responses must not meet the per-source limits meant for callers. It
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
		if cfg := m.live.Load(); cfg.Guard.AllowBackends {
			m.applyAllow(configAllow(cfg, proxySpecs(m.env)))
			m.env.wake()
		}
	}
}

func backendAddrs(bs []pipeline.Backend) []netip.Addr {
	out := make([]netip.Addr, 0, len(bs))
	for _, b := range bs {
		out = append(out, b.Addr.Addr())
	}
	slices.SortFunc(out, netip.Addr.Compare)
	return slices.Compact(out)
}
