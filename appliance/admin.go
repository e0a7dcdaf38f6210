package appliance

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/pprof"
	"strconv"
	"strings"
	"time"

	"sipedge/pipeline"
	"sipedge/pipeline/port/socketport"
	"sipedge/pipeline/port/xdpport"
)

func (d *Daemon) adminHandler(withPprof bool) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /metrics", d.serveMetrics)
	mux.HandleFunc("GET /healthz", d.serveHealth)
	mux.HandleFunc("GET /backends", d.serveBackends)
	mux.HandleFunc("GET /bans", d.serveBans)
	mux.HandleFunc("POST /bans", d.addBan)
	mux.HandleFunc("DELETE /bans", d.removeBan)
	mux.HandleFunc("GET /allow", d.serveAllow)
	mux.HandleFunc("POST /allow", d.addAllow)
	mux.HandleFunc("DELETE /allow", d.removeAllow)
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
	for _, b := range d.backends.Load().Backends {
		h.Backends++
		if b.Up {
			h.BackendsUp++
		}
	}
	switch {
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

// BackendJSON is one entry of /backends.
type BackendJSON struct {
	Address      string  `json:"address"`
	Weight       float64 `json:"weight"`
	State        string  `json:"state"` // "up" or "down"
	ProbesOK     uint64  `json:"probes_ok"`
	ProbesFailed uint64  `json:"probes_failed"`
	Requests     uint64  `json:"requests"`
}

func (d *Daemon) serveBackends(w http.ResponseWriter, _ *http.Request) {
	st := d.backends.Status()
	out := make([]BackendJSON, len(st))
	for i, b := range st {
		out[i] = BackendJSON{Address: b.Addr.String(), Weight: b.Weight, State: "down",
			ProbesOK: b.ProbesOK, ProbesFailed: b.ProbesFailed, Requests: b.Requests}
		if b.Up {
			out[i].State = "up"
		}
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.Encode(out)
}

func (d *Daemon) serveMetrics(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "text/plain; version=0.0.4; charset=utf-8")
	bw := bufio.NewWriter(w)
	d.WriteMetrics(bw)
	bw.Flush()
}

// promWriter writes the Prometheus text exposition format by hand: one
// HELP and TYPE per family, then its samples.
type promWriter struct{ w io.Writer }

func (p promWriter) family(name, typ, help string) {
	fmt.Fprintf(p.w, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, typ)
}

// sample writes name{labels} v; labels alternate key, value.
func (p promWriter) sample(name string, v float64, labels ...string) {
	var b strings.Builder
	b.WriteString(name)
	if len(labels) > 0 {
		b.WriteByte('{')
		for i := 0; i+1 < len(labels); i += 2 {
			if i > 0 {
				b.WriteByte(',')
			}
			b.WriteString(labels[i])
			b.WriteString(`="`)
			b.WriteString(escapeLabel(labels[i+1]))
			b.WriteByte('"')
		}
		b.WriteByte('}')
	}
	b.WriteByte(' ')
	b.WriteString(strconv.FormatFloat(v, 'g', -1, 64))
	b.WriteByte('\n')
	io.WriteString(p.w, b.String())
}

func (p promWriter) counter(name, help string, v uint64) {
	p.family(name, "counter", help)
	p.sample(name, float64(v))
}

var labelEscaper = strings.NewReplacer(`\`, `\\`, "\n", `\n`, `"`, `\"`)

func escapeLabel(s string) string { return labelEscaper.Replace(s) }

// WriteMetrics writes every metric in the Prometheus text format. Per-core
// counters are summed here, at scrape time, never on the packet path.
func (d *Daemon) WriteMetrics(w io.Writer) {
	p := promWriter{w}
	stats := make([]pipeline.Stats, len(d.workers))
	var sum pipeline.Stats
	var forwarded, responded uint64
	stageIn := map[string]*pipeline.StageStats{}
	var stageOrder []string
	for i, wk := range d.workers {
		s := wk.Stats()
		stats[i] = s
		sum.Loops += s.Loops
		sum.Rx += s.Rx
		sum.Tx += s.Tx
		sum.TxUnsent += s.TxUnsent
		sum.TxErrors += s.TxErrors
		sum.RxErrors += s.RxErrors
		sum.Parked += s.Parked
		sum.Resumed += s.Resumed
		sum.ParkTimeouts += s.ParkTimeouts
		sum.Fallback503 += s.Fallback503
		sum.BusyLoops += s.BusyLoops
		for r := range s.Drops {
			sum.Drops[r] += s.Drops[r]
		}
		for r := range s.ParseErrors {
			sum.ParseErrors[r] += s.ParseErrors[r]
		}
		for r := range s.Batches {
			sum.Batches[r] += s.Batches[r]
		}
		for _, st := range s.Stages {
			forwarded += st.Verdicts[pipeline.Forward]
			responded += st.Verdicts[pipeline.Respond]
			acc := stageIn[st.Name]
			if acc == nil {
				acc = &pipeline.StageStats{Name: st.Name}
				stageIn[st.Name] = acc
				stageOrder = append(stageOrder, st.Name)
			}
			acc.In += st.In
			for v := range st.Verdicts {
				acc.Verdicts[v] += st.Verdicts[v]
			}
		}
	}
	p.family("sipedge_build_info", "gauge", "Version and port mode of the running appliance.")
	p.sample("sipedge_build_info", 1, "version", d.version, "mode", d.mode, "node", d.cfg.Node.Name)
	p.family("sipedge_uptime_seconds", "gauge", "Seconds since the workers started.")
	p.sample("sipedge_uptime_seconds", time.Since(d.started).Seconds())
	p.family("sipedge_workers", "gauge", "Workers configured and running.")
	p.sample("sipedge_workers", float64(len(d.workers)), "state", "configured")
	p.sample("sipedge_workers", float64(d.running.Load()), "state", "running")
	p.counter("sipedge_received_total", "SIP datagrams received by the workers.", sum.Rx)
	p.counter("sipedge_transmitted_total", "Datagrams the ports accepted for sending.", sum.Tx)
	p.counter("sipedge_transmit_unsent_total", "Datagrams built but not sent by the port.", sum.TxUnsent)
	p.counter("sipedge_forwarded_total", "Messages forwarded (requests to backends or callers, responses back).", forwarded)
	p.counter("sipedge_responded_total", "Requests answered by the appliance itself.", responded)
	p.counter("sipedge_port_errors_total", "Receive and transmit errors reported by the ports.", sum.RxErrors+sum.TxErrors)
	p.family("sipedge_dropped_total", "counter", "Messages dropped, by reason.")
	for r, n := range sum.Drops {
		if pipeline.DropReason(r) == pipeline.DropNone {
			continue
		}
		p.sample("sipedge_dropped_total", float64(n), "reason", pipeline.DropReason(r).String())
	}
	p.family("sipedge_parse_errors_total", "counter", "Messages that failed to parse, by broken rule.")
	for r, n := range sum.ParseErrors {
		p.sample("sipedge_parse_errors_total", float64(n), "rule", pipeline.ParseErrorName(r))
	}
	p.family("sipedge_stage_messages_total", "counter", "Messages each stage decided on, by verdict.")
	for _, name := range stageOrder {
		st := stageIn[name]
		for v, n := range st.Verdicts {
			p.sample("sipedge_stage_messages_total", float64(n), "stage", name, "verdict", pipeline.Verdict(v).String())
		}
	}
	p.counter("sipedge_parked_total", "Messages parked waiting on an async helper.", sum.Parked)
	p.counter("sipedge_park_timeouts_total", "Parked messages whose helper did not answer in time.", sum.ParkTimeouts)
	p.counter("sipedge_fallback_503_total", "503s sent because a message could not be parked or its answer was late.", sum.Fallback503)

	p.family("sipedge_rx_batch_size", "histogram", "Datagrams per receive batch (busy loops only).")
	var cum uint64
	for i, n := range sum.Batches {
		cum += n
		le := "+Inf"
		if m := pipeline.BatchBucketMax(i); m >= 0 {
			le = strconv.Itoa(m)
		}
		p.sample("sipedge_rx_batch_size_bucket", float64(cum), "le", le)
	}
	p.sample("sipedge_rx_batch_size_sum", float64(sum.Rx))
	p.sample("sipedge_rx_batch_size_count", float64(cum))
	p.family("sipedge_worker_busy_seconds_total", "counter", "Time each worker spent on batches with traffic; its rate is the busy ratio.")
	for i, s := range stats {
		p.sample("sipedge_worker_busy_seconds_total", float64(s.BusyNs)/1e9, "worker", strconv.Itoa(i), "core", strconv.Itoa(d.cfg.IO.Cores[i]))
	}
	p.family("sipedge_worker_loops_total", "counter", "Worker loop iterations (busy or idle).")
	for i, s := range stats {
		p.sample("sipedge_worker_loops_total", float64(s.Loops), "worker", strconv.Itoa(i))
	}
	p.family("sipedge_worker_wakeups_total", "counter", "Times each worker slept in the kernel and was woken (by a datagram, a helper's answer, a timer or a stop).")
	for i, s := range stats {
		p.sample("sipedge_worker_wakeups_total", float64(s.Sleeps), "worker", strconv.Itoa(i))
	}
	p.family("sipedge_worker_wakeup_datagrams_total", "counter", "Datagrams the first receive after a wake-up found; over sipedge_worker_wakeups_total it is datagrams per wake-up.")
	for i, s := range stats {
		p.sample("sipedge_worker_wakeup_datagrams_total", float64(s.WakeRx), "worker", strconv.Itoa(i))
	}
	p.family("sipedge_worker_spins_total", "counter", "Empty polls of the port a worker made instead of sleeping ([io] wait busy or adaptive).")
	for i, s := range stats {
		p.sample("sipedge_worker_spins_total", float64(s.Spins), "worker", strconv.Itoa(i))
	}
	p.family("sipedge_worker_migrations_total", "counter", "Times the Go runtime moved a worker to another OS thread (it is pinned again there).")
	for i, s := range stats {
		p.sample("sipedge_worker_migrations_total", float64(s.Migrations), "worker", strconv.Itoa(i))
	}
	p.family("sipedge_worker_thread_context_switches_total", "counter", "Context switches of each worker's OS thread, from /proc: voluntary (it slept) and involuntary (preempted on its core).")
	threads := make([]pipeline.ThreadStats, len(d.workers))
	for i, w := range d.workers {
		threads[i], _ = w.Thread()
	}
	for i, t := range threads {
		p.sample("sipedge_worker_thread_context_switches_total", float64(t.Voluntary), "worker", strconv.Itoa(i), "kind", "voluntary")
		p.sample("sipedge_worker_thread_context_switches_total", float64(t.Involuntary), "worker", strconv.Itoa(i), "kind", "involuntary")
	}
	p.family("sipedge_worker_thread_cpu_seconds_total", "counter", "CPU time of each worker's OS thread, exact (/proc schedstat).")
	for i, t := range threads {
		p.sample("sipedge_worker_thread_cpu_seconds_total", float64(t.CPUNs)/1e9, "worker", strconv.Itoa(i))
	}

	bs := d.backends.Status()
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
	p.family("sipedge_backend_probes_total", "counter", "Health probes of the backend, by result.")
	for _, b := range bs {
		p.sample("sipedge_backend_probes_total", float64(b.ProbesOK), "backend", b.Addr.String(), "result", "ok")
		p.sample("sipedge_backend_probes_total", float64(b.ProbesFailed), "backend", b.Addr.String(), "result", "failed")
	}
	p.family("sipedge_config_reloads_total", "counter", "SIGHUP reloads, by result.")
	p.sample("sipedge_config_reloads_total", float64(d.reloadOK.Load()), "result", "ok")
	p.sample("sipedge_config_reloads_total", float64(d.reloadNo.Load()), "result", "refused")
	d.writePortMetrics(p)
	if d.guard != nil {
		d.guard.WriteMetrics(w)
	}
	if d.auth != nil {
		d.auth.WriteMetrics(w)
	}
}

// writePortMetrics adds what the ports themselves count (safe from any
// goroutine for socket and afxdp ports).
func (d *Daemon) writePortMetrics(p promWriter) {
	var sock []socketport.Stats
	var xdp []xdpport.Stats
	for _, w := range d.workers {
		switch pt := w.Port().(type) {
		case *socketport.Port:
			sock = append(sock, pt.Stats())
		case *xdpport.Port:
			xdp = append(xdp, pt.Stats())
		}
	}
	if len(sock) > 0 {
		var t socketport.Stats
		for _, s := range sock {
			t.Truncated += s.Truncated
			t.NoBuffer += s.NoBuffer
			t.Unsent += s.Unsent
		}
		p.counter("sipedge_socket_truncated_total", "Datagrams longer than the socket buffer, dropped.", t.Truncated)
		p.counter("sipedge_socket_no_buffer_total", "Receive calls that found the buffer pool empty.", t.NoBuffer)
		p.counter("sipedge_socket_unsent_total", "Datagrams the kernel did not accept.", t.Unsent)
	}
	if len(xdp) > 0 {
		var dec, slow, txd uint64
		for _, s := range xdp {
			dec += s.Drops.Total()
			slow += s.SlowPath
			txd += s.TxDrops.Total()
		}
		p.counter("sipedge_afxdp_decode_drops_total", "Frames received on the AF_XDP sockets that were not SIP over UDP/IP.", dec)
		p.counter("sipedge_afxdp_slow_path_total", "Datagrams sent through the kernel (next hop MAC unknown or too large).", slow)
		p.counter("sipedge_afxdp_tx_drops_total", "Datagrams the AF_XDP port could not send.", txd)
	}
}
