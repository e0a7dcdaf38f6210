package appliance

import (
	"context"
	"fmt"
	"net/http"
	"net/netip"
	"reflect"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"sipedge/appliance/config"
	"sipedge/pipeline"
	"sipedge/pipeline/stages/guard"
)

// guardModule is [guard]: the guard stage of every worker, the goroutine
// that collects their bans (and writes them to the XDP program), and the
// /bans and /allow admin routes. g is nil when [guard] is disabled; the
// routes then answer 409 saying so.
type guardModule struct {
	nop
	admin   config.Admin // [admin] as opened (a change needs a restart): /allow's minimum prefixes
	env     *ModuleEnv
	g       *guard.Guard
	applied []netip.Prefix // the allow-list the configuration asked for
	allowMu sync.Mutex     // applied: reloads and DNS backend changes (guard_dns.go)
	live    atomic.Pointer[config.Config]
}

func openGuard(env *ModuleEnv) (Module, error) {
	m := &guardModule{env: env, admin: env.Cfg.Admin}
	// Set here, not in Start: a reload may come while Start runs, and
	// the daemon swaps env.Cfg under its own lock, not the module's.
	m.live.Store(env.Cfg)
	if !env.Cfg.Guard.Enabled {
		return m, nil
	}
	m.applied = configAllow(env.Cfg, proxySpecs(env))
	gc := guardConfig(env.Cfg, m.applied, env.Banner)
	gc.Backends, gc.NeverBan = guardTrust(env.Cfg, proxySpecs(env))
	g, err := guard.New(gc)
	if err != nil {
		return nil, fmt.Errorf("appliance: [guard]: %w", err)
	}
	m.g = g
	return m, nil
}

func proxySpecs(env *ModuleEnv) []pipeline.BackendSpec {
	if p, ok := env.Module("proxy").(*proxyModule); ok {
		return p.dns.Specs() // as DNS has them now
	}
	return nil
}

// guardConfig maps [guard] to guard.Config. banner is the XDP program in
// afxdp mode, nil otherwise.
func guardConfig(cfg *config.Config, allow []netip.Prefix, banner guard.Banner) guard.Config {
	g := cfg.Guard
	over := guard.Reject
	if g.OverLimit == "drop" {
		over = guard.Silent
	}
	banAfter := g.BanAfter.Std()
	if banAfter == 0 {
		banAfter = -1 // the guard's "ban on the first excess"; 0 would mean its default
	}
	gc := guard.Config{
		MaxMessageSize: g.MaxMessageSize,
		IPv6Prefix:     g.IPv6SourcePrefix,
		MaxHeaders:     g.MaxHeaders,
		MaxVias:        g.MaxVias,
		All:            guard.Limit{Rate: float64(g.Rate), Burst: g.Burst},
		Invite:         guard.Limit{Rate: float64(g.InviteRate), Burst: g.InviteBurst},
		Register:       guard.Limit{Rate: float64(g.RegisterRate), Burst: g.RegisterBurst},
		OverLimit:      over,
		RetryAfter:     g.RetryAfter.Std(),
		BanAfter:       banAfter,
		BanTTL:         g.BanTTL.Std(),
		// Non-nil even when empty: an empty list in the file means no
		// signatures, not the package defaults.
		UserAgents:      append([]string{}, g.UserAgents...),
		FromTo:          append([]string{}, g.FromTo...),
		AuthFailures:    g.AuthFailures,
		AuthWindow:      g.AuthWindow.Std(),
		Allow:           allow,
		TableSize:       g.TableSize,
		MaxBans:         g.MaxBans,
		Batch:           cfg.IO.Batch,
		OverloadBatches: g.OverloadBatches,
		OverloadFill:    g.OverloadFill,
	}
	if banner != nil {
		gc.Banner = banner
	}
	guardTrustLimits(cfg, &gc)
	return gc
}

// configAllow is the allow-list the configuration asks for: [guard] allow,
// plus each backend's address when allow_backends is set.
func configAllow(cfg *config.Config, specs []pipeline.BackendSpec) []netip.Prefix {
	out := cfg.Guard.AllowPrefixes()
	if cfg.Guard.AllowBackends {
		for _, s := range specs {
			a := s.Addr.Addr().Unmap()
			p := netip.PrefixFrom(a, a.BitLen())
			if !slices.Contains(out, p) {
				out = append(out, p)
			}
		}
	}
	return out
}

func (m *guardModule) Stages() []pipeline.StageMaker {
	if m.g == nil {
		return nil
	}
	return []pipeline.StageMaker{m.g}
}

// workerSink is what worker i's auth stage reports failures to: that
// worker's guard stage, or nil without a guard.
func (m *guardModule) workerSink(i int) *guard.WorkerSink {
	if m.g == nil {
		return nil
	}
	return m.g.WorkerSink(i)
}

func (m *guardModule) Start(ctx context.Context, goFn func(func())) error {
	if m.g != nil {
		goFn(func() { m.g.Run(ctx) })
		goFn(func() { m.followBackends(ctx) })
	}
	return nil
}

// Reload applies the allow-list entries the file added or removed (the
// operator's own stay); everything else in [guard] is compiled once.
func (m *guardModule) Reload(old, cfg *config.Config) []string {
	m.reloadTrust(cfg)
	var restart []string
	og, ng := old.Guard, cfg.Guard
	og.Allow, ng.Allow = nil, nil
	og.AllowBackends, ng.AllowBackends = false, false
	if !reflect.DeepEqual(og, ng) {
		restart = append(restart, "[guard] (all but allow and allow_backends)")
	}
	if old.Guard.Enabled != cfg.Guard.Enabled {
		restart = append(restart, "guard.allow (the guard is not running)")
	}
	if m.g == nil || !cfg.Guard.Enabled {
		return restart
	}
	m.live.Store(cfg)
	m.applyAllow(configAllow(cfg, proxySpecs(m.env)))
	return restart
}

// applyAllow makes the configured allow-list now (the operator's own
// entries stay): what a reload or a DNS change of the backends asks for.
func (m *guardModule) applyAllow(now []netip.Prefix) {
	m.allowMu.Lock()
	defer m.allowMu.Unlock()
	for _, p := range m.applied {
		if !slices.Contains(now, p) && m.g.Disallow(p) {
			m.env.Log.Info("reload: allow-list entry removed", "prefix", p.String())
		}
	}
	for _, p := range now {
		if !slices.Contains(m.applied, p) {
			if err := m.g.Allow(p); err != nil {
				m.env.Log.Error("reload: allow-list entry not added", "prefix", p.String(), "err", err)
			} else {
				m.env.Log.Info("reload: allow-list entry added", "prefix", p.String())
			}
		}
	}
	m.applied = now
}

// WriteMetrics writes what the guard counts outside the workers: the XDP
// ban map's updates and the bans in force.
func (m *guardModule) WriteMetrics(p promWriter) {
	if m.g == nil {
		return
	}
	st := m.g.Stats()
	p.counter("sipedge_guard_xdp_bans_total", "Bans written to the XDP banned map.", st.XDPBans)
	p.counter("sipedge_guard_xdp_unbans_total", "Bans lifted from the XDP banned map.", st.XDPUnbans)
	p.counter("sipedge_guard_xdp_errors_total", "Failed XDP banned map updates.", st.XDPErrors)
	writeRegistryRefused(p, st)
	p.family("sipedge_guard_bans_active", "gauge", "Bans in force (automatic and operator).")
	p.sample("sipedge_guard_bans_active", float64(len(m.g.Bans())))
}

func (m *guardModule) Routes(mux *http.ServeMux) {
	// on wraps a handler: 409 when the guard is not running; sleeping
	// workers are woken after a change so they apply it now.
	on := func(change bool, h func(http.ResponseWriter, *http.Request)) func(http.ResponseWriter, *http.Request) {
		return func(w http.ResponseWriter, r *http.Request) {
			if m.g == nil {
				apiError(w, http.StatusConflict, "the guard is disabled: set [guard] enabled = true and restart the appliance to use bans and the allow-list")
				return
			}
			if change {
				defer m.env.wake()
			}
			h(w, r)
		}
	}
	mux.HandleFunc("GET /bans", on(false, m.serveBans))
	mux.HandleFunc("POST /bans", on(true, m.addBan))
	mux.HandleFunc("DELETE /bans", on(true, m.removeBan))
	mux.HandleFunc("GET /allow", on(false, m.serveAllow))
	mux.HandleFunc("POST /allow", on(true, m.addAllow))
	mux.HandleFunc("DELETE /allow", on(true, m.removeAllow))
}

func (m *guardModule) serveBans(w http.ResponseWriter, _ *http.Request) {
	bans := m.g.Bans()
	out := make([]BanJSON, len(bans))
	for i, b := range bans {
		out[i] = BanJSON{Source: b.Addr.String(), Reason: b.Reason.String(), Left: b.Left.Round(time.Second).String(),
			LeftSeconds: b.Left.Seconds(), Dropped: b.Dropped}
	}
	writeJSON(w, http.StatusOK, out)
}

func (m *guardModule) addBan(w http.ResponseWriter, r *http.Request) {
	var req BanRequest
	if !readBody(w, r, &req) {
		return
	}
	a, err := parseSource(req.Source)
	if err != nil {
		apiError(w, http.StatusBadRequest, "%v", err)
		return
	}
	ttl := m.g.Config().BanTTL
	if req.TTL != "" {
		if ttl, err = time.ParseDuration(req.TTL); err != nil || ttl < time.Second || ttl > maxOperatorBan {
			apiError(w, http.StatusBadRequest, "ttl %q: give a duration from 1s to %v, such as \"10m\" (or leave it out for [guard] ban_ttl)", req.TTL, maxOperatorBan)
			return
		}
	}
	for _, p := range m.g.AllowList() {
		if p.Contains(a) {
			apiError(w, http.StatusConflict, "%v is in the allow-list (%v): DELETE /allow?cidr=%v first, then ban it", a, p, p)
			return
		}
	}
	if err := m.g.Ban(a, ttl); err != nil {
		apiError(w, http.StatusServiceUnavailable, "%v", err)
		return
	}
	m.env.Log.Info("operator ban", "source", a.String(), "ttl", ttl.String())
	writeJSON(w, http.StatusOK, BanJSON{Source: a.String(), Reason: "operator", Left: ttl.String(), LeftSeconds: ttl.Seconds()})
}

func (m *guardModule) removeBan(w http.ResponseWriter, r *http.Request) {
	a, err := parseSource(r.URL.Query().Get("source"))
	if err != nil {
		apiError(w, http.StatusBadRequest, "%v (DELETE /bans?source=ADDRESS)", err)
		return
	}
	found := false
	for _, b := range m.g.Bans() {
		if b.Addr == a {
			found = true
			break
		}
	}
	if !found {
		apiError(w, http.StatusNotFound, "%v is not banned: GET /bans lists the bans in force", a)
		return
	}
	if err := m.g.Unban(a); err != nil {
		apiError(w, http.StatusServiceUnavailable, "%v", err)
		return
	}
	m.env.Log.Info("operator unban", "source", a.String())
	writeJSON(w, http.StatusOK, map[string]string{"unbanned": a.String()})
}

func (m *guardModule) serveAllow(w http.ResponseWriter, _ *http.Request) {
	list := m.g.AllowList()
	out := make([]string, len(list))
	for i, p := range list {
		out[i] = p.String()
	}
	writeJSON(w, http.StatusOK, out)
}

func (m *guardModule) addAllow(w http.ResponseWriter, r *http.Request) {
	var req AllowRequest
	if !readBody(w, r, &req) {
		return
	}
	p, err := parseCIDR(req.CIDR)
	if err != nil {
		apiError(w, http.StatusBadRequest, "%v", err)
		return
	}
	if why, ok := checkAllowPrefix(p, &m.admin); !ok {
		apiError(w, http.StatusForbidden, "%v: %s", p, why)
		return
	}
	if err := m.g.Allow(p); err != nil {
		apiError(w, http.StatusServiceUnavailable, "%v", err)
		return
	}
	m.env.Log.Info("operator allow", "cidr", p.String())
	writeJSON(w, http.StatusOK, map[string]string{"allowed": p.String()})
}

func (m *guardModule) removeAllow(w http.ResponseWriter, r *http.Request) {
	p, err := parseCIDR(r.URL.Query().Get("cidr"))
	if err != nil {
		apiError(w, http.StatusBadRequest, "%v (DELETE /allow?cidr=CIDR)", err)
		return
	}
	if !m.g.Disallow(p) {
		apiError(w, http.StatusNotFound, "%v is not in the allow-list: GET /allow lists it", p)
		return
	}
	m.env.Log.Info("operator disallow", "cidr", p.String())
	writeJSON(w, http.StatusOK, map[string]string{"removed": p.String()})
}
