package appliance

import (
	"context"
	"fmt"
	"log/slog"
	"net/netip"
	"sync"

	"sipedge/appliance/config"
	"sipedge/appliance/resolve"
	"sipedge/pipeline"
)

// backendDNS keeps the backend set in step with [dispatcher] backends as
// DNS says they are: it resolves every entry at open and on reload, and
// while the daemon runs a resolve.Watcher refreshes the names as their TTLs
// run out. Each new set is published with Backends.Replace (one atomic
// swap; a backend kept by a refresh keeps its health and counters), so
// workers never wait on a lookup.
type backendDNS struct {
	log      *slog.Logger
	backends *pipeline.Backends
	family   resolve.Family

	mu     sync.Mutex // w and its goroutine across reloads
	w      *resolve.Watcher
	cancel context.CancelFunc
	done   chan struct{}
	prior  resolve.Stats // counts of the watchers a reload replaced
}

// backendEntries parses [dispatcher] backends; an error names the key.
func backendEntries(cfg *config.Config) ([]resolve.Entry, error) {
	out := make([]resolve.Entry, 0, len(cfg.Dispatcher.Backends))
	for i, b := range cfg.Dispatcher.Backends {
		n, err := resolve.ParseName(b.Address)
		if err != nil {
			return nil, fmt.Errorf("appliance: dispatcher.backends[%d].address: %v", i, err)
		}
		out = append(out, resolve.Entry{Name: n, Weight: float64(b.Weight), Priority: uint16(b.Priority)})
	}
	return out, nil
}

// newWatcher makes the watcher of cfg's backends publishing with publish.
func newWatcher(cfg *config.Config, fam resolve.Family, log *slog.Logger, publish func([]resolve.Member) error) (*resolve.Watcher, error) {
	entries, err := backendEntries(cfg)
	if err != nil {
		return nil, err
	}
	d := cfg.Dispatcher.DNS
	var r *resolve.Resolver
	for _, e := range entries {
		if !e.Name.Static() { // only names need a resolver (and resolv.conf)
			r, err = resolve.New(resolve.Config{Servers: d.Servers, Timeout: d.Timeout.Std(), TTLFloor: d.TTLFloor.Std(), TTLCeiling: d.TTLCeiling.Std(), Linger: d.Linger.Std(), Family: fam})
			if err != nil {
				return nil, fmt.Errorf("appliance: [dispatcher.dns]: %w", err)
			}
			break
		}
	}
	if r == nil {
		r, _ = resolve.New(resolve.Config{Servers: []string{"127.0.0.1"}}) // never asked: every entry is numeric
	}
	return resolve.NewWatcher(r, entries, publish, log), nil
}

func memberSpecs(ms []resolve.Member) []pipeline.BackendSpec {
	specs := make([]pipeline.BackendSpec, len(ms))
	for i, m := range ms {
		specs[i] = pipeline.BackendSpec{Addr: m.Addr, Weight: m.Weight, Priority: m.Priority}
	}
	return specs
}

// backendSpecs resolves [dispatcher] backends once: what the daemon checks
// a reload with before applying it. A name that does not resolve now is
// left out (logged); it does not refuse the reload, as the running
// watcher keeps last good sets rather than none.
func backendSpecs(cfg *config.Config) ([]pipeline.BackendSpec, error) {
	w, err := newWatcher(cfg, resolve.AnyFamily, nil, func([]resolve.Member) error { return nil })
	if err != nil {
		return nil, err
	}
	return memberSpecs(w.ResolveAll(context.Background())), nil
}

// openBackendDNS resolves cfg's backends into bk (an empty set when none
// resolves yet: calls get 503 until one does). Names give only addresses
// of self's family: the node sends from one address (AnyFamily: both).
func openBackendDNS(cfg *config.Config, log *slog.Logger, bk *pipeline.Backends, self netip.Addr) (*backendDNS, error) {
	d := &backendDNS{log: log, backends: bk, family: resolve.FamilyOf(self)}
	if err := d.replace(cfg); err != nil {
		return nil, err
	}
	return d, nil
}

// replace makes a watcher for cfg, resolves it and publishes; a running
// refresh loop moves to the new watcher.
func (d *backendDNS) replace(cfg *config.Config) error {
	w, err := newWatcher(cfg, d.family, d.log, func(ms []resolve.Member) error {
		return d.backends.Replace(memberSpecs(ms))
	})
	if err != nil {
		return err
	}
	d.mu.Lock()
	running := d.cancel != nil
	d.stopLocked() // first: the old watcher must not publish after the new one
	if d.w != nil {
		st := d.w.Stats()
		d.prior.Lookups += st.Lookups
		d.prior.Failures += st.Failures
		d.prior.Empty += st.Empty
		d.prior.Publishes += st.Publishes
	}
	d.w = w
	d.mu.Unlock()
	// Outside the lock: /metrics and /backends readers do not wait on the
	// lookups. Reloads are serialised by the daemon.
	if len(w.ResolveAll(context.Background())) == 0 {
		d.log.Warn("no backend resolved yet: calls get 503 until one does", "backends", len(cfg.Dispatcher.Backends))
	}
	if running {
		d.start()
	}
	return nil
}

// start runs the refresh loop until stop.
func (d *backendDNS) start() {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.startLocked()
}

func (d *backendDNS) startLocked() {
	if !d.w.Dynamic() {
		return
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	w := d.w
	go func() { defer close(done); w.Run(ctx) }()
	d.cancel, d.done = cancel, done
}

func (d *backendDNS) stop() {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.stopLocked()
}

func (d *backendDNS) stopLocked() {
	if d.cancel != nil {
		d.cancel()
		<-d.done
		d.cancel, d.done = nil, nil
	}
}

// Specs is the set published last.
func (d *backendDNS) Specs() []pipeline.BackendSpec {
	d.mu.Lock()
	w := d.w
	d.mu.Unlock()
	return memberSpecs(w.Current())
}

// stats are the lookups of every watcher so far.
func (d *backendDNS) stats() resolve.Stats {
	d.mu.Lock()
	defer d.mu.Unlock()
	st, p := d.w.Stats(), d.prior
	return resolve.Stats{Lookups: st.Lookups + p.Lookups, Failures: st.Failures + p.Failures, Empty: st.Empty + p.Empty, Publishes: st.Publishes + p.Publishes}
}

// writeMetrics writes the resolver's counts.
func (d *backendDNS) writeMetrics(p promWriter) {
	st := d.stats()
	p.family("sipedge_dns_lookups_total", "counter", "DNS resolutions of backend names, by result: ok, failed or empty (the last two keep the name's last good backends).")
	p.sample("sipedge_dns_lookups_total", float64(st.Lookups-st.Failures-st.Empty), "result", "ok")
	p.sample("sipedge_dns_lookups_total", float64(st.Failures), "result", "failed")
	p.sample("sipedge_dns_lookups_total", float64(st.Empty), "result", "empty")
	p.family("sipedge_dns_backend_sets_total", "counter", "Backend sets published because DNS answers changed them.")
	p.sample("sipedge_dns_backend_sets_total", float64(st.Publishes))
}
