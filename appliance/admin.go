package appliance

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/pprof"
)

func (d *Daemon) adminHandler(withPprof bool) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /metrics", d.serveMetrics)
	mux.HandleFunc("GET /healthz", d.serveHealth)
	d.node.Routes(mux)
	if withPprof {
		mux.HandleFunc("/debug/pprof/", pprof.Index)
		mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
		mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
		mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
		mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	}
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/" {
			http.Error(w, "not found: try /metrics, /healthz, /backends, /bans, /allow", http.StatusNotFound)
			return
		}
		fmt.Fprintln(w, "sipedge appliance admin: /metrics /healthz /backends /bans /allow")
		if withPprof {
			fmt.Fprintln(w, "/debug/pprof/")
		}
	})
	return mux
}

// Health is the /healthz body.
type Health struct {
	Status     string `json:"status"` // "ok" or "unavailable"
	Reason     string `json:"reason,omitempty"`
	Workers    int    `json:"workers"`
	Running    int    `json:"workers_running"`
	BackendsUp int    `json:"backends_up"`
	Backends   int    `json:"backends"`
}

// HealthNow reports whether the appliance can take calls: every worker
// running and at least one backend up.
func (d *Daemon) HealthNow() Health {
	h := Health{Workers: len(d.workers), Running: int(d.running.Load())}
	for _, b := range d.node.Backends().Load().Backends {
		h.Backends++
		if b.Up {
			h.BackendsUp++
		}
	}
	switch {
	case d.draining(): // first: the load balancer or BGP speaker must withdraw the node
		h.Reason = "draining: " + d.DrainStatus().State
	case h.Running < h.Workers:
		h.Reason = fmt.Sprintf("%d of %d workers running", h.Running, h.Workers)
	case h.BackendsUp == 0:
		h.Reason = fmt.Sprintf("no backend up (of %d): calls get 503", h.Backends)
	}
	h.Status = "ok"
	if h.Reason != "" {
		h.Status = "unavailable"
	}
	return h
}

func (d *Daemon) serveHealth(w http.ResponseWriter, _ *http.Request) {
	h := d.HealthNow()
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	if h.Status != "ok" {
		w.WriteHeader(http.StatusServiceUnavailable)
	}
	json.NewEncoder(w).Encode(h)
}
