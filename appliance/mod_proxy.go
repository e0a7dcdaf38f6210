package appliance

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/netip"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"sipedge/appliance/config"
	"sipedge/pipeline"
	"sipedge/pipeline/chain"
)

// proxyModule is the stateless proxy: its four stages, the backend set they
// route to, and the prober that keeps the set's health.
type proxyModule struct {
	nop
	env      *ModuleEnv
	backends *pipeline.Backends
	dns      *backendDNS // resolves and refreshes the backends (backends_dns.go); the guard's allow-list reads it
	makers   []pipeline.StageMaker

	mu           sync.Mutex // the prober across reloads
	proberCancel context.CancelFunc
	proberDone   chan struct{}
	proberCfg    pipeline.ProbeConfig
	probeErrors  atomic.Uint64 // socket errors of every prober this module ran
}

func openProxy(env *ModuleEnv) (Module, error) {
	if !env.Self.IsValid() {
		return nil, errNoSelf
	}
	cfg := env.Cfg
	m := &proxyModule{env: env, proberCfg: probeConfig(cfg)}
	var err error
	if m.backends, err = pipeline.NewBackends(nil); err != nil {
		return nil, fmt.Errorf("appliance: %w", err)
	}
	if m.dns, err = openBackendDNS(cfg, env.Log, m.backends, env.Self.Addr()); err != nil {
		return nil, err
	}
	sentBy := env.Self.String()
	pc := chain.ProxyConfig{
		Key:        env.Key,
		SentBy:     sentBy,
		Names:      append([]string{env.Self.Addr().String()}, cfg.Node.Addresses...),
		Ports:      []uint16{env.Self.Port()},
		Backends:   m.backends,
		RetryAfter: int(cfg.Dispatcher.RetryAfter.Std() / time.Second),
		// Longer requests get 513 even with the guard off.
		MaxMessageSize: cfg.Guard.MaxMessageSize,
		// Phones often register at the node's address: the registrar
		// stage answers, not self's 404.
		PassRegister: cfg.Registrar.HasRole("registrar"),
		// The media stages tell a late offer's 2xx by our Via's mark.
		MarkLateOffer: cfg.Media.Enabled,

		BackendDestinations: cfg.Dispatcher.BackendDestinationPrefixes(),
	}
	if cfg.Dispatcher.RecordRoute {
		pc.RecordRoute = "sip:" + sentBy + ";lr"
	}
	if m.makers, err = chain.Proxy(pc); err != nil {
		return nil, fmt.Errorf("appliance: %w", err)
	}
	return m, nil
}

func probeConfig(cfg *config.Config) pipeline.ProbeConfig {
	p := cfg.Dispatcher.Probe
	return pipeline.ProbeConfig{Interval: p.Interval.Std(), Timeout: p.Timeout.Std(), DownAfter: p.DownAfter, UpAfter: p.UpAfter}
}

func (m *proxyModule) Stages() []pipeline.StageMaker { return m.makers }

func (m *proxyModule) Start(ctx context.Context, goFn func(func())) error {
	if m.env.Probe {
		m.mu.Lock()
		err := m.startProberLocked(m.proberCfg)
		m.mu.Unlock()
		if err != nil {
			return err
		}
	} else {
		m.env.Log.Info("backends are not probed (offline replay): all count as up")
	}
	goFn(func() { m.watchBackends(ctx) })
	m.dns.start()
	return nil
}

func (m *proxyModule) startProberLocked(pc pipeline.ProbeConfig) error {
	run := pc // pc stays comparable with the next reload's
	run.Errors = &m.probeErrors
	pr, err := pipeline.NewProber(m.backends, run)
	if err != nil {
		return fmt.Errorf("appliance: %w", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := pr.Run(ctx); err != nil {
			m.env.Log.Error("prober stopped", "err", err)
		}
	}()
	m.proberCancel, m.proberDone, m.proberCfg = cancel, done, pc
	return nil
}

func (m *proxyModule) stopProberLocked() {
	if m.proberCancel != nil {
		m.proberCancel()
		<-m.proberDone
		m.proberCancel, m.proberDone = nil, nil
	}
}

// watchBackends logs every backend going up or down, waiting on the
// snapshot's Changed channel (no polling).
func (m *proxyModule) watchBackends(ctx context.Context) {
	prev := m.backends.Load()
	for {
		select {
		case <-ctx.Done():
			return
		case <-prev.Changed():
		}
		cur := m.backends.Load()
		was := map[netip.AddrPort]bool{}
		for _, b := range prev.Backends {
			was[b.Addr] = b.Up
		}
		for _, b := range cur.Backends {
			if up, ok := was[b.Addr]; ok && up != b.Up {
				if b.Up {
					m.env.Log.Info("backend up", "backend", b.Addr.String())
				} else {
					m.env.Log.Warn("backend down", "backend", b.Addr.String())
				}
			}
		}
		prev = cur
	}
}

// Reload replaces the backend list (health carried for unchanged
// addresses) and the probe settings.
func (m *proxyModule) Reload(old, cfg *config.Config) []string {
	var restart []string
	if old.Node.Name != cfg.Node.Name || !slices.Equal(old.Node.Addresses, cfg.Node.Addresses) ||
		(old.Node.Secret != cfg.Node.Secret && !(old.Node.SecretGenerated && cfg.Node.SecretGenerated)) {
		restart = append(restart, "[node]")
	}
	if old.Dispatcher.Hashing != cfg.Dispatcher.Hashing || old.Dispatcher.RecordRoute != cfg.Dispatcher.RecordRoute ||
		old.Dispatcher.RetryAfter != cfg.Dispatcher.RetryAfter {
		restart = append(restart, "dispatcher.hashing, record_route, retry_after")
	}
	if err := m.dns.replace(cfg); err != nil {
		m.env.Log.Error("reload: backend list refused, the running one stays", "err", err)
		return restart
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if pc := probeConfig(cfg); pc != m.proberCfg {
		if m.proberCancel != nil {
			m.stopProberLocked()
			if err := m.startProberLocked(pc); err != nil {
				m.env.Log.Error("reload: new probe settings refused, probing stopped", "err", err)
			}
		} else {
			m.proberCfg = pc
		}
	}
	return restart
}

// BackendJSON is one entry of /backends.
type BackendJSON struct {
	Address      string  `json:"address"`
	Weight       float64 `json:"weight"`
	State        string  `json:"state"` // "up" or "down"
	ProbesOK     uint64  `json:"probes_ok"`
	ProbesFailed uint64  `json:"probes_failed"`
	Requests     uint64  `json:"requests"`
	Priority     uint16  `json:"priority"`
}

func (m *proxyModule) Routes(mux *http.ServeMux) {
	mux.HandleFunc("GET /backends", func(w http.ResponseWriter, _ *http.Request) {
		st := m.backends.Status()
		out := make([]BackendJSON, len(st))
		for i, b := range st {
			out[i] = BackendJSON{Address: b.Addr.String(), Weight: b.Weight, State: "down",
				ProbesOK: b.ProbesOK, ProbesFailed: b.ProbesFailed, Requests: b.Requests, Priority: b.Priority}
			if b.Up {
				out[i].State = "up"
			}
		}
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Cache-Control", "no-store")
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		enc.Encode(out)
	})
}

func (m *proxyModule) WriteMetrics(p promWriter) {
	m.dns.writeMetrics(p)
	bs := m.backends.Status()
	p.family("sipedge_backend_up", "gauge", "1 when the backend is up (probes answered), 0 when down.")
	for _, b := range bs {
		v := 0.0
		if b.Up {
			v = 1
		}
		p.sample("sipedge_backend_up", v, "backend", b.Addr.String())
	}
	p.family("sipedge_backend_weight", "gauge", "Configured weight of the backend.")
	for _, b := range bs {
		p.sample("sipedge_backend_weight", b.Weight, "backend", b.Addr.String())
	}
	p.family("sipedge_backend_requests_total", "counter", "Requests the dispatcher sent to the backend.")
	for _, b := range bs {
		p.sample("sipedge_backend_requests_total", float64(b.Requests), "backend", b.Addr.String())
	}
	p.family("sipedge_probe_socket_errors_total", "counter", "Socket errors the backend prober counted and went on after.")
	p.sample("sipedge_probe_socket_errors_total", float64(m.probeErrors.Load()))
	p.family("sipedge_backend_probes_total", "counter", "Health probes of the backend, by result.")
	for _, b := range bs {
		p.sample("sipedge_backend_probes_total", float64(b.ProbesOK), "backend", b.Addr.String(), "result", "ok")
		p.sample("sipedge_backend_probes_total", float64(b.ProbesFailed), "backend", b.Addr.String(), "result", "failed")
	}
}

func (m *proxyModule) Close() {
	m.dns.stop()
	m.mu.Lock()
	m.stopProberLocked()
	m.mu.Unlock()
}
