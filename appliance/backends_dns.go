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

// dnsSet keeps a server set (the dispatcher's backends, the media relays)
// in step with the names configured for it as DNS says they are: it
// resolves every entry at open and on reload, and while the daemon runs a
// resolve.Watcher refreshes the names as their TTLs run out. Each new set
// goes to apply (one atomic swap in a pipeline.Backends, which keeps the
// health and counters of the servers a refresh keeps), so workers never
// wait on a lookup.
type dnsSet struct {
	log     *slog.Logger
	family  resolve.Family
	service resolve.Service
	apply   func([]pipeline.BackendSpec) error
	// what names the servers in logs and metrics ("backend", "relay");
	// metric prefixes the metric names ("sipedge_dns").
	what, metric string

	mu     sync.Mutex // w and its goroutine across reloads
	w      *resolve.Watcher
	cancel context.CancelFunc
	done   chan struct{}
	prior  resolve.Stats // counts of the watchers a reload replaced
}

// backendDNS is the dnsSet of [dispatcher] backends.
type backendDNS struct {
	dnsSet
	backends *pipeline.Backends
}

// backendEntries parses [dispatcher] backends; an error names the key.
func backendEntries(cfg *config.Config) ([]resolve.Entry, error) {
	out := make([]resolve.Entry, 0, len(cfg.Dispatcher.Backends))
	for i, b := range cfg.Dispatcher.Backends {
		e, err := parseEntry("dispatcher.backends", i, b.Address, b.Weight, b.Priority)
		if err != nil {
			return nil, err
		}
		out = append(out, e)
	}
	return out, nil
}

// parseEntry parses entry i of the list key; an error names the key.
func parseEntry(key string, i int, address string, weight, priority int) (resolve.Entry, error) {
	n, err := resolve.ParseName(address)
	if err != nil {
		return resolve.Entry{}, fmt.Errorf("appliance: %s[%d].address: %v", key, i, err)
	}
	return resolve.Entry{Name: n, Weight: float64(weight), Priority: uint16(priority)}, nil
}

// newWatcher makes the watcher of entries, looked up as svc with the
// [dispatcher.dns] settings d, publishing with publish.
func newWatcher(entries []resolve.Entry, d config.DNS, svc resolve.Service, fam resolve.Family, log *slog.Logger, publish func([]resolve.Member) error) (*resolve.Watcher, error) {
	var r *resolve.Resolver
	var err error
	for _, e := range entries {
		if !e.Name.Static() { // only names need a resolver (and resolv.conf)
			r, err = resolve.New(resolve.Config{Servers: d.Servers, Timeout: d.Timeout.Std(), TTLFloor: d.TTLFloor.Std(), TTLCeiling: d.TTLCeiling.Std(), Linger: d.Linger.Std(), Family: fam, Service: svc})
			if err != nil {
				return nil, fmt.Errorf("appliance: [dispatcher.dns]: %w", err)
			}
			break
		}
	}
	if r == nil {
		r, _ = resolve.New(resolve.Config{Servers: []string{"127.0.0.1"}, Service: svc}) // never asked: every entry is numeric
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
	entries, err := backendEntries(cfg)
	if err != nil {
		return nil, err
	}
	w, err := newWatcher(entries, cfg.Dispatcher.DNS, resolve.SIPUDP, resolve.AnyFamily, nil, func([]resolve.Member) error { return nil })
	if err != nil {
		return nil, err
	}
	return memberSpecs(w.ResolveAll(context.Background())), nil
}

// openBackendDNS resolves cfg's backends into bk (an empty set when none
// resolves yet: calls get 503 until one does). Names give only addresses
// of self's family: the node sends from one address (AnyFamily: both).
func openBackendDNS(cfg *config.Config, log *slog.Logger, bk *pipeline.Backends, self netip.Addr) (*backendDNS, error) {
	d := &backendDNS{backends: bk, dnsSet: dnsSet{log: log, family: resolve.FamilyOf(self), service: resolve.SIPUDP,
		apply: bk.Replace, what: "backend", metric: "sipedge_dns"}}
	if err := d.replace(cfg); err != nil {
		return nil, err
	}
	return d, nil
}

// replace takes cfg's backends (open, reload).
func (d *backendDNS) replace(cfg *config.Config) error {
	entries, err := backendEntries(cfg)
	if err != nil {
		return err
	}
	if ok, err := d.reset(entries, cfg.Dispatcher.DNS); err != nil {
		return err
	} else if !ok {
		d.log.Warn("no backend resolved yet: calls get 503 until one does", "backends", len(entries))
	}
	return nil
}

// reset makes a watcher for entries, resolves it and publishes; a running
// refresh loop moves to the new watcher. It reports whether any entry
// resolved.
func (d *dnsSet) reset(entries []resolve.Entry, dc config.DNS) (bool, error) {
	w, err := newWatcher(entries, dc, d.service, d.family, d.log, func(ms []resolve.Member) error {
		return d.apply(memberSpecs(ms))
	})
	if err != nil {
		return false, err
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
	resolved := len(w.ResolveAll(context.Background())) > 0
	if running {
		d.start()
	}
	return resolved, nil
}

// dynamic reports whether any entry is a name (a refresh loop runs).
func (d *dnsSet) dynamic() bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.w.Dynamic()
}

// start runs the refresh loop until stop.
func (d *dnsSet) start() {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.startLocked()
}

func (d *dnsSet) startLocked() {
	if !d.w.Dynamic() {
		return
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	w := d.w
	go func() { defer close(done); w.Run(ctx) }()
	d.cancel, d.done = cancel, done
}

func (d *dnsSet) stop() {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.stopLocked()
}

func (d *dnsSet) stopLocked() {
	if d.cancel != nil {
		d.cancel()
		<-d.done
		d.cancel, d.done = nil, nil
	}
}

// Specs is the set published last.
func (d *dnsSet) Specs() []pipeline.BackendSpec {
	d.mu.Lock()
	w := d.w
	d.mu.Unlock()
	return memberSpecs(w.Current())
}

// stats are the lookups of every watcher so far.
func (d *dnsSet) stats() resolve.Stats {
	d.mu.Lock()
	defer d.mu.Unlock()
	st, p := d.w.Stats(), d.prior
	return resolve.Stats{Lookups: st.Lookups + p.Lookups, Failures: st.Failures + p.Failures, Empty: st.Empty + p.Empty, Publishes: st.Publishes + p.Publishes}
}

// writeMetrics writes the resolver's counts.
func (d *dnsSet) writeMetrics(p promWriter) {
	st := d.stats()
	lookups, sets := d.metric+"_lookups_total", d.metric+"_"+d.what+"_sets_total"
	p.family(lookups, "counter", "DNS resolutions of "+d.what+" names, by result: ok, failed or empty (the last two keep the name's last good "+d.what+"s).")
	p.sample(lookups, float64(st.Lookups-st.Failures-st.Empty), "result", "ok")
	p.sample(lookups, float64(st.Failures), "result", "failed")
	p.sample(lookups, float64(st.Empty), "result", "empty")
	p.family(sets, "counter", "The "+d.what+" sets published because DNS answers changed them.")
	p.sample(sets, float64(st.Publishes))
}
