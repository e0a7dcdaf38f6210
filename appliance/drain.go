package appliance

import (
	"context"
	"time"
)

// Drain puts the node in drain (reason goes to the log): /healthz answers
// 503, new INVITEs are refused, calls under way go on. It reports false
// when the node already drains.
func (d *Daemon) Drain(reason string) bool { return d.node.drainModuleOf().start(reason) }

// Undrain puts the node back in service; false when it was serving.
func (d *Daemon) Undrain() bool { return d.node.drainModuleOf().undrain() }

// DrainStatus reports the drain state.
func (d *Daemon) DrainStatus() DrainStatus { return d.node.drainModuleOf().status() }

// draining reports whether the node drains or has drained (/healthz).
func (d *Daemon) draining() bool {
	return d.node.drainModuleOf().status().State != phaseNames[phaseServing]
}

// DrainBeforeStop is SIGTERM's short drain ([drain] on_sigterm): when
// calls are under way (a call message within drain.idle), it drains and
// waits until the node is idle or on_sigterm has passed. It returns at
// once when on_sigterm is 0, when the node is quiet, or when it has
// already drained.
func (d *Daemon) DrainBeforeStop(ctx context.Context) {
	m := d.node.drainModuleOf()
	m.mu.Lock()
	limit, idle := m.cfg.OnSigterm.Std(), m.cfg.Idle.Std()
	m.mu.Unlock()
	if limit <= 0 {
		return
	}
	if m.status().State == phaseNames[phaseServing] && m.quietFor(idle) {
		d.log.Info("no call under way: stopping without a drain")
		return
	}
	m.start("SIGTERM")
	ctx, cancel := context.WithTimeout(ctx, limit)
	defer cancel()
	t0 := time.Now()
	if !m.waitDrained(ctx) {
		d.log.Warn("drain.on_sigterm passed before the node was idle: stopping anyway", "waited", time.Since(t0).Round(time.Millisecond).String())
	}
}
