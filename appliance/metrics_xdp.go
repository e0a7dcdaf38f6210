package appliance

import "sipedge/afxdp"

// writeXDPProgramMetrics exports the XDP program's verdict counters
// (afxdp.Program.Counters, per-CPU sums): without them an operator sees
// the drops of banned sources in the driver only with `ethtool -S`.
func (d *Daemon) writeXDPProgramMetrics(p promWriter) {
	if d.group == nil || d.group.Program() == nil {
		return
	}
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
