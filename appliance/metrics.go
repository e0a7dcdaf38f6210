package appliance

import (
	"bufio"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"

	"sipedge/pipeline"
	"sipedge/pipeline/port/socketport"
	"sipedge/pipeline/port/xdpport"
)

// The one exporter. Workers and their stages count in plain per-core
// counters (pipeline.Counters); at scrape time this file reads what each
// worker published, sums over workers, and names the families from the
// declarations: the worker's own below, each stage's from its StageDef
// (Counters, Drops/DropsMetric). Modules add what they count outside the
// workers (Module.WriteMetrics). Nothing here runs on the packet path.

func (d *Daemon) serveMetrics(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "text/plain; version=0.0.4; charset=utf-8")
	bw := bufio.NewWriter(w)
	d.WriteMetrics(bw)
	bw.Flush()
}

// promWriter writes the Prometheus text exposition format: one HELP and
// TYPE per family, then its samples.
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
			b.WriteString(labelEscaper.Replace(labels[i+1]))
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

func (p promWriter) gauge(name, help string, v float64) {
	p.family(name, "gauge", help)
	p.sample(name, v)
}

var labelEscaper = strings.NewReplacer(`\`, `\\`, "\n", `\n`, `"`, `\"`)

// WriteMetrics writes every metric in the Prometheus text format.
func (d *Daemon) WriteMetrics(w io.Writer) {
	p := promWriter{w}
	stats := make([]pipeline.Stats, len(d.workers))
	for i, wk := range d.workers {
		stats[i] = wk.Stats()
	}
	p.family("sipedge_build_info", "gauge", "Version and port mode of the running appliance.")
	cfg := d.live.Load() // not d.cfg: a SIGHUP may be swapping it
	p.sample("sipedge_build_info", 1, "version", d.version, "mode", d.mode, "node", cfg.Node.Name)
	p.gauge("sipedge_uptime_seconds", "Seconds since the workers started.", time.Since(d.started).Seconds())
	p.family("sipedge_workers", "gauge", "Workers configured and running.")
	p.sample("sipedge_workers", float64(len(d.workers)), "state", "configured")
	p.sample("sipedge_workers", float64(d.running.Load()), "state", "running")
	writeWorkerMetrics(p, stats, cfg.IO.Cores)
	threads := make([]pipeline.ThreadStats, len(d.workers))
	for i, w := range d.workers {
		threads[i], _ = w.Thread()
	}
	p.family("sipedge_worker_thread_context_switches_total", "counter", "Context switches of each worker's OS thread, from /proc: voluntary (it slept) and involuntary (preempted on its core).")
	for i, t := range threads {
		p.sample("sipedge_worker_thread_context_switches_total", float64(t.Voluntary), "worker", strconv.Itoa(i), "kind", "voluntary")
		p.sample("sipedge_worker_thread_context_switches_total", float64(t.Involuntary), "worker", strconv.Itoa(i), "kind", "involuntary")
	}
	p.family("sipedge_worker_thread_cpu_seconds_total", "counter", "CPU time of each worker's OS thread, exact (/proc schedstat).")
	for i, t := range threads {
		p.sample("sipedge_worker_thread_cpu_seconds_total", float64(t.CPUNs)/1e9, "worker", strconv.Itoa(i))
	}
	if len(d.workers) > 0 {
		writeStageMetrics(p, d.workers[0].StageDefs(), stats)
	}
	p.family("sipedge_config_reloads_total", "counter", "SIGHUP reloads, by result.")
	p.sample("sipedge_config_reloads_total", float64(d.reloadOK.Load()), "result", "ok")
	p.sample("sipedge_config_reloads_total", float64(d.reloadNo.Load()), "result", "refused")
	d.writePortMetrics(p)
	d.writeXDPProgramMetrics(p)
	if d.node != nil {
		d.node.writeMetrics(p)
	}
}

// writeWorkerMetrics writes the worker's own counters: summed over the
// workers, or one sample per worker where an operator looks per core.
func writeWorkerMetrics(p promWriter, stats []pipeline.Stats, cores []int) {
	var sum pipeline.Stats
	sum.ParseErrors = make([]uint64, pipeline.NumParseErrors)
	var forwarded, responded uint64
	for _, s := range stats {
		sum.Rx += s.Rx
		sum.Tx += s.Tx
		sum.TxUnsent += s.TxUnsent
		sum.TxErrors += s.TxErrors
		sum.RxErrors += s.RxErrors
		sum.Parked += s.Parked
		sum.ParkTimeouts += s.ParkTimeouts
		sum.Fallback503 += s.Fallback503
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
		}
	}
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

	perWorker := func(name, help string, v func(*pipeline.Stats) float64, core bool) {
		p.family(name, "counter", help)
		for i := range stats {
			if core && i < len(cores) {
				p.sample(name, v(&stats[i]), "worker", strconv.Itoa(i), "core", strconv.Itoa(cores[i]))
			} else {
				p.sample(name, v(&stats[i]), "worker", strconv.Itoa(i))
			}
		}
	}
	perWorker("sipedge_worker_busy_seconds_total", "Time each worker spent on batches with traffic; its rate is the busy ratio.",
		func(s *pipeline.Stats) float64 { return float64(s.BusyNs) / 1e9 }, true)
	perWorker("sipedge_worker_loops_total", "Worker loop iterations (busy or idle).",
		func(s *pipeline.Stats) float64 { return float64(s.Loops) }, false)
	perWorker("sipedge_worker_wakeups_total", "Times each worker slept in the kernel and was woken (by a datagram, a helper's answer, a timer or a stop).",
		func(s *pipeline.Stats) float64 { return float64(s.Sleeps) }, false)
	perWorker("sipedge_worker_wakeup_datagrams_total", "Datagrams the first receive after a wake-up found; over sipedge_worker_wakeups_total it is datagrams per wake-up.",
		func(s *pipeline.Stats) float64 { return float64(s.WakeRx) }, false)
	perWorker("sipedge_worker_spins_total", "Empty polls of the port a worker made instead of sleeping ([io] wait busy or adaptive).",
		func(s *pipeline.Stats) float64 { return float64(s.Spins) }, false)
	perWorker("sipedge_worker_migrations_total", "Times the Go runtime moved a worker to another OS thread (it is pinned again there).",
		func(s *pipeline.Stats) float64 { return float64(s.Migrations) }, false)
}

// writeStageMetrics writes what every stage counted, named by its
// declaration: the verdicts of each (sipedge_stage_messages_total), its own
// drop reasons (StageDef.DropsMetric) and its own counters
// (StageDef.Counters), summed over the workers unless declared PerWorker.
func writeStageMetrics(p promWriter, defs []*pipeline.StageDef, stats []pipeline.Stats) {
	p.family("sipedge_stage_messages_total", "counter", "Messages each stage decided on, by verdict.")
	for i, d := range defs {
		for v := 0; v < pipeline.NumVerdicts; v++ {
			var n uint64
			for _, s := range stats {
				n += s.Stages[i].Verdicts[v]
			}
			p.sample("sipedge_stage_messages_total", float64(n), "stage", d.Name, "verdict", pipeline.Verdict(v).String())
		}
	}
	for i, d := range defs {
		if d.DropsMetric != "" {
			p.family(d.DropsMetric, "counter", d.DropsHelp)
			for k, reason := range d.Drops {
				var n uint64
				for _, s := range stats {
					n += s.Stages[i].OwnDrops[k]
				}
				p.sample(d.DropsMetric, float64(n), "reason", reason)
			}
		}
		slot := 0
		for _, c := range d.Counters {
			typ := "counter"
			if c.Gauge {
				typ = "gauge"
			}
			p.family(c.Name, typ, c.Help)
			for k := 0; k < c.Slots(); k++ {
				var labels []string
				if len(c.Values) > 0 {
					labels = []string{c.Label, c.Values[k]}
				}
				if c.PerWorker {
					for w, s := range stats {
						p.sample(c.Name, float64(s.Stages[i].Counters[slot+k]), append([]string{"worker", strconv.Itoa(w)}, labels...)...)
					}
					continue
				}
				var n uint64
				for _, s := range stats {
					n += s.Stages[i].Counters[slot+k]
				}
				p.sample(c.Name, float64(n), labels...)
			}
			slot += c.Slots()
		}
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
		writeLargeMetrics(p, xdp)
	}
}

// latency writes a helper latency histogram in seconds (Prometheus
// buckets are cumulative).
func (p promWriter) latency(name, help string, s pipeline.LatencySnapshot) {
	p.family(name, "histogram", help)
	var cum uint64
	for i, c := range s.Counts {
		cum += c
		le := "+Inf"
		if i < len(pipeline.LatencyBounds) {
			le = strconv.FormatFloat(pipeline.LatencyBounds[i].Seconds(), 'g', -1, 64)
		}
		p.sample(name+"_bucket", float64(cum), "le", le)
	}
	p.sample(name+"_sum", s.Sum.Seconds())
	p.sample(name+"_count", float64(cum))
}
