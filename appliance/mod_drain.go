package appliance

import (
	"context"
	"encoding/json"
	"net/http"
	"sync"
	"time"

	"sipedge/appliance/config"
	"sipedge/pipeline"
	"sipedge/pipeline/stages/drain"
)

// Drain phases, as sipedge_drain_state reports them.
const (
	phaseServing  = 0
	phaseDraining = 1
	phaseDrained  = 2
)

var phaseNames = [...]string{"serving", "draining", "drained"}

// drainModule takes the node out of service gracefully: the drain stage
// refuses new INVITEs while it drains, /healthz answers 503 so the load
// balancer or BGP speaker withdraws the node, and a watcher declares the
// node drained once no call message has passed for [drain] idle (or the
// timeout passed): then SIGTERM is safe.
type drainModule struct {
	nop
	env   *ModuleEnv
	st    *drain.State
	maker *drain.Drain

	mu        sync.Mutex
	cfg       config.Drain
	phase     int
	since     time.Time // when the phase began
	startNs   int64     // pipeline.Nanotime at the drain's start
	lastAfter time.Duration
	reason    string
	drains    uint64
	changed   chan struct{} // closed at every phase change
	stopWatch context.CancelFunc
}

func openDrain(env *ModuleEnv) (Module, error) {
	c := env.Cfg.Drain
	m := &drainModule{env: env, st: drain.NewState(), cfg: c, since: time.Now(), changed: make(chan struct{})}
	var err error
	m.maker, err = drain.New(drain.Config{State: m.st, Status: c.Answer, Peer: c.Peer, RetryAfter: int(c.RetryAfter.Std() / time.Second)})
	if err != nil {
		return nil, err
	}
	return m, nil
}

func (m *drainModule) Stages() []pipeline.StageMaker { return []pipeline.StageMaker{m.maker} }

// drainModuleOf is the node's drain module.
func (n *Node) drainModuleOf() *drainModule { return n.Module("drain").(*drainModule) }

// setPhaseLocked moves to phase p and wakes whoever waits on a change.
func (m *drainModule) setPhaseLocked(p int) {
	m.phase, m.since = p, time.Now()
	close(m.changed)
	m.changed = make(chan struct{})
}

// start drains the node; it reports false when it already drained.
func (m *drainModule) start(reason string) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.phase != phaseServing {
		return false
	}
	m.st.Set(true)
	m.env.wake() // workers see the switch at their next batch, now
	m.startNs, m.reason, m.lastAfter = pipeline.Nanotime(), reason, 0
	m.drains++
	m.setPhaseLocked(phaseDraining)
	m.env.Log.Warn("draining: /healthz answers 503, new INVITEs are refused, calls under way go on",
		"reason", reason, "answer", m.cfg.Answer, "idle", m.cfg.Idle.Std().String(), "timeout", m.cfg.Timeout.Std().String())
	ctx, cancel := context.WithCancel(context.Background())
	m.stopWatch = cancel
	go m.watch(ctx, m.startNs, m.cfg.Idle.Std(), m.cfg.Timeout.Std())
	return true
}

// watch declares the node drained once no call message has passed for
// idle, or when timeout has passed. It sleeps until the first instant
// idleness could hold, so it wakes a few times per drain, not per message.
func (m *drainModule) watch(ctx context.Context, start int64, idle, timeout time.Duration) {
	deadline := start + int64(timeout)
	t := time.NewTimer(0)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		now := pipeline.Nanotime()
		last := m.st.LastActivity()
		quietUntil := last + int64(idle)
		if now >= quietUntil || now >= deadline {
			m.finish(ctx, last, now >= deadline && now < quietUntil)
			return
		}
		t.Reset(time.Duration(min(quietUntil, deadline) - now))
	}
}

func (m *drainModule) finish(ctx context.Context, last int64, timedOut bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if ctx.Err() != nil || m.phase != phaseDraining {
		return // undrained meanwhile
	}
	m.lastAfter = max(0, time.Duration(last-m.startNs))
	took := time.Since(m.since)
	m.setPhaseLocked(phaseDrained)
	if timedOut {
		m.env.Log.Warn("drained: drain.timeout passed with calls still sending; stopping now may cut them",
			"took", took.Round(time.Millisecond).String(), "last_call_message_after", m.lastAfter.Round(time.Millisecond).String())
		return
	}
	m.env.Log.Info("drained: no call message for drain.idle; the node can stop",
		"took", took.Round(time.Millisecond).String(), "last_call_message_after", m.lastAfter.Round(time.Millisecond).String())
}

// undrain puts the node back in service; false when it was serving.
func (m *drainModule) undrain() bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.phase == phaseServing {
		return false
	}
	if m.stopWatch != nil {
		m.stopWatch()
		m.stopWatch = nil
	}
	m.st.Set(false)
	m.env.wake()
	m.setPhaseLocked(phaseServing)
	m.env.Log.Info("undrained: taking new calls again")
	return true
}

// DrainStatus is the body of GET/POST /drain and /undrain.
type DrainStatus struct {
	// State is "serving", "draining" or "drained".
	State string `json:"state"`
	// Since is when the state began (RFC 3339).
	Since  string `json:"since"`
	Reason string `json:"reason,omitempty"`
	// LastCallMessageMs is, once drained, how long after the drain began
	// the last message of a call passed (ms).
	LastCallMessageMs int64 `json:"last_call_message_ms"`
	// Drains counts drains since start.
	Drains uint64 `json:"drains"`
}

func (m *drainModule) status() DrainStatus {
	m.mu.Lock()
	defer m.mu.Unlock()
	s := DrainStatus{State: phaseNames[m.phase], Since: m.since.UTC().Format(time.RFC3339Nano), Drains: m.drains}
	if m.phase != phaseServing {
		s.Reason = m.reason
	}
	if m.phase == phaseDrained {
		s.LastCallMessageMs = m.lastAfter.Milliseconds()
	}
	return s
}

// waitDrained waits until the node is drained, undrained or ctx ends; it
// reports whether it is drained.
func (m *drainModule) waitDrained(ctx context.Context) bool {
	for {
		m.mu.Lock()
		p, ch := m.phase, m.changed
		m.mu.Unlock()
		if p != phaseDraining {
			return p == phaseDrained
		}
		select {
		case <-ctx.Done():
			return false
		case <-ch:
		}
	}
}

// quietFor reports whether no call message has passed for d.
func (m *drainModule) quietFor(d time.Duration) bool {
	return pipeline.Nanotime()-m.st.LastActivity() >= int64(d)
}

func (m *drainModule) Reload(old, cfg *config.Config) []string {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.cfg.Idle, m.cfg.Timeout, m.cfg.OnSigterm = cfg.Drain.Idle, cfg.Drain.Timeout, cfg.Drain.OnSigterm
	a, b := old.Drain, cfg.Drain
	if a.Answer != b.Answer || a.Peer != b.Peer || a.RetryAfter != b.RetryAfter {
		return []string{"drain.answer, peer, retry_after"}
	}
	return nil
}

func (m *drainModule) Routes(mux *http.ServeMux) {
	reply := func(w http.ResponseWriter, code int) {
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Cache-Control", "no-store")
		w.WriteHeader(code)
		json.NewEncoder(w).Encode(m.status())
	}
	mux.HandleFunc("GET /drain", func(w http.ResponseWriter, _ *http.Request) { reply(w, http.StatusOK) })
	mux.HandleFunc("POST /drain", func(w http.ResponseWriter, r *http.Request) {
		m.start("admin " + r.RemoteAddr)
		reply(w, http.StatusAccepted)
	})
	mux.HandleFunc("POST /undrain", func(w http.ResponseWriter, _ *http.Request) {
		m.undrain()
		reply(w, http.StatusOK)
	})
}

func (m *drainModule) WriteMetrics(p promWriter) {
	s := m.status()
	st := 0
	for i, n := range phaseNames {
		if n == s.State {
			st = i
		}
	}
	p.gauge("sipedge_drain_state", "Drain state: 0 serving, 1 draining (new INVITEs refused, /healthz 503), 2 drained (idle: safe to stop).", float64(st))
	p.counter("sipedge_drains_total", "Drains started (admin, signal, SIGTERM).", s.Drains)
}

func (m *drainModule) Close() {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.stopWatch != nil {
		m.stopWatch()
		m.stopWatch = nil
	}
}
