package appliance

import (
	"sipedge/afxdp"
	"sipedge/pipeline/port/xdpport"
)

// writeXDPProgramMetrics exports the XDP program's verdict counters
// (afxdp.Program.Counters, per-CPU sums): without them an operator sees
// the drops of banned sources in the driver only with `ethtool -S`. And
// the afxdp ports' reverse-path drops.
func (d *Daemon) writeXDPProgramMetrics(p promWriter) {
	if d.sockBans != nil {
		n, err := d.sockBans.Dropped()
		if err != nil {
			d.log.Warn("metrics: reading the socket filter's counter", "err", err)
		}
		p.counter("sipedge_socket_filter_dropped_banned_total", "Datagrams from banned sources the sockets' eBPF filter dropped before they were queued (socket port).", n)
	}
	if d.group == nil || d.group.Program() == nil {
		return
	}
	var rp uint64
	for _, w := range d.workers {
		if pt, ok := w.Port().(*xdpport.Port); ok {
			rp += pt.Stats().Drops.ReversePath
		}
	}
	p.counter("sipedge_afxdp_reverse_path_drops_total", "Frames claiming a trusted source (backend, allow-listed, [auth] trusted) that the kernel routes through another interface: spoofed, dropped.", rp)
	c, err := d.group.Program().Counters()
	if err != nil {
		d.log.Warn("metrics: reading the XDP program's counters", "err", err)
		return
	}
	writeXDPCounters(p, c)
}

func writeXDPCounters(p promWriter, c afxdp.Counters) {
	name := "sipedge_xdp_packets_total"
	p.family(name, "counter", "Packets the XDP program decided on, by verdict: redirected to the workers' AF_XDP sockets, dropped as from a banned source (SIP ports only), passed to the kernel, or SIP on a queue without a socket (passed).")
	p.sample(name, float64(c.Redirected), "verdict", "redirected")
	p.sample(name, float64(c.DroppedBanned), "verdict", "dropped-banned")
	p.sample(name, float64(c.Passed), "verdict", "passed")
	p.sample(name, float64(c.NoSocket), "verdict", "no-socket")
}
