package appliance

import (
	"fmt"
	"net/netip"

	"sipedge/afxdp"
	"sipedge/appliance/config"
	"sipedge/pipeline/port/xdpport"
)

// foreignSources is the afxdp port's reverse-path check: the trusted
// sources (backends, [guard] allow, [auth] trusted) that the kernel routes
// through another interface than ifindex. Trust by source address holds
// only with the expected ingress, and XDP redirects before the kernel's
// rp_filter could refuse a frame claiming one of them on this interface.
func foreignSources(cfg *config.Config, ifindex int) ([]netip.Prefix, error) {
	specs, err := backendSpecs(cfg)
	if err != nil {
		return nil, err
	}
	var trusted []netip.Prefix
	for _, b := range specs {
		a := b.Addr.Addr().Unmap()
		trusted = append(trusted, netip.PrefixFrom(a, a.BitLen()))
	}
	trusted = append(trusted, cfg.Guard.AllowPrefixes()...)
	for _, s := range cfg.Auth.Trusted {
		if p, err := netip.ParsePrefix(s); err == nil {
			trusted = append(trusted, p)
		}
	}
	out, err := xdpport.ForeignSources(ifindex, trusted)
	if err != nil {
		return nil, fmt.Errorf("appliance: %w", err)
	}
	return out, nil
}

// openSocketBans makes the socket port's ban filter, whose Attach every
// socket gets: bans then drop a flood in the kernel, before it fills the
// socket buffer and crowds legitimate datagrams out. Without CAP_BPF the
// bans stay in the workers, as the log says.
func (d *Daemon) openSocketBans(cfg *config.Config) func(fd int) error {
	// An IPv6 ban covers the prefix the guard counts as one source.
	sb, err := afxdp.NewSocketBans(0, cfg.Guard.IPv6SourcePrefix)
	if err != nil {
		d.log.Warn("bans stay in the workers: no socket filter (needs CAP_BPF)", "err", err)
		return nil
	}
	d.sockBans = sb
	return sb.Attach
}

// reloadForeignSources recomputes the afxdp reverse-path check after a
// reload changed the backends or the allow-list; on failure the previous
// list stays, as the log says.
func (d *Daemon) reloadForeignSources(cfg *config.Config) {
	if d.group == nil {
		return
	}
	f, err := foreignSources(cfg, d.group.Program().Ifindex())
	if err != nil {
		d.log.Error("reload: reverse-path check not updated", "err", err)
		return
	}
	d.group.SetForeignSources(f)
}
