package harness

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"sipedge/afxdp/vethtest"
)

// Kamailio is the proxy the appliance is compared with; the appliance's
// variants are named appliance-PORT-WAIT (see ParseVariant).
const Kamailio = "kamailio"

// MaxFailurePct is the failure ratio under which a rate counts as carried
// (0.1%).
const MaxFailurePct = 0.1

// E2EOptions shape the end-to-end part.
type E2EOptions struct {
	Proxies  []string      // in order; default kamailio, appliance-socket, appliance-afxdp
	Rates    []float64     // offered calls/s, rising
	Duration time.Duration // of the load at each rate
	// UACMaxRate is the most calls/s one sipp UAC process is asked for;
	// above it the load is split over several UAC processes.
	UACMaxRate float64
	// StopFailPct ends a proxy's sweep after a rate with at least this
	// failure percentage: higher rates only fail more and cost time.
	StopFailPct float64
	// ProxyCore and SippCore are the CPUs the proxy and every sipp run on.
	ProxyCore, SippCore int
	// KamailioChildren is Kamailio's UDP worker processes (-n).
	KamailioChildren int
	// QuietWait bounds how long to wait before each rate for both cores
	// to be under QuietBusyPct busy (other people's work on a shared
	// machine); 0 does not wait.
	QuietWait    time.Duration
	QuietBusyPct float64
	// IdleWindow is how long each proxy's idle CPU is measured, once per
	// proxy, after it started and its backends are up (0: not measured).
	IdleWindow time.Duration
	// OptionsRate is the OPTIONS a second the harness's own client sends
	// through the proxy while the call load runs (0: none).
	OptionsRate float64
	// ApplianceIO are extra [io] keys for every appliance variant
	// (spin, batch_delay, busy_poll, poll_interval, or the harness's own
	// such as frame_count, which they replace).
	ApplianceIO [][2]string

	idle bool // measure idle CPU in this start

	Appliance   string // appliance binary
	UASScenario string // sipp UAS answering OPTIONS
	UACScenario string
	KamailioCfg string
	Dir         string // scratch folder for configs, logs and sipp statistics

	Log func(format string, a ...any) // progress
}

// RatePoint is one proxy at one offered rate.
type RatePoint struct {
	OfferedCPS      float64 `json:"offered_cps"`
	Calls           int     `json:"calls"`
	UACs            int     `json:"uac_processes"`
	Completed       int     `json:"completed"`
	Failed          int     `json:"failed"` // failed by sipp, plus never finished
	Retransmissions int     `json:"retransmissions"`
	FailurePct      float64 `json:"failure_pct"`
	// CompletedCPS is completed calls over the time sipp took to create
	// them (the offered duration, longer when sipp fell behind).
	CompletedCPS float64 `json:"completed_cps"`
	// ProxyCPUPct is the proxy's time on CPU over the steady window from
	// schedstat, every thread (and for Kamailio every process of its
	// tree), in % of one core.
	ProxyCPUPct float64 `json:"proxy_cpu_pct"`
	// ProxyTickCPUPct is the same from utime+stime (tick-sampled, biased
	// for tasks that wake on the tick), for comparison only.
	ProxyTickCPUPct float64 `json:"proxy_tick_cpu_pct"`
	// CPUSecPer1000 is the proxy's CPU seconds per 1,000 completed calls
	// (schedstat), which is also ms per call; CPUUsPerCall the same in us.
	CPUSecPer1000 float64 `json:"proxy_cpu_s_per_1000_calls"`
	CPUUsPerCall  float64 `json:"proxy_cpu_us_per_call"`
	// VolPerCall and InvolPerCall are the proxy's voluntary and
	// involuntary context switches (all threads, all processes) over the
	// window per completed call.
	VolPerCall   float64 `json:"proxy_voluntary_switches_per_call"`
	InvolPerCall float64 `json:"proxy_involuntary_switches_per_call"`
	// ProxyThreads is how many threads (all processes) were summed.
	ProxyThreads int `json:"proxy_threads"`
	// Worker holds the appliance's own per-worker counters over the
	// window, per completed call (wakeups, spins, its thread's context
	// switches), by metric name, when its /metrics has them.
	Worker map[string]float64 `json:"appliance_worker_per_call,omitempty"`
	// Options is the OPTIONS client's round trips during the load.
	Options *OptionsStats `json:"options,omitempty"`
	// SippCPUPct is every sipp (UACs and UASes) on the load core, % of
	// it; UACMaxCPUPct the busiest UAC process.
	SippCPUPct   float64 `json:"sipp_cpu_pct"`
	UACMaxCPUPct float64 `json:"uac_max_cpu_pct"`
	// ProxyCoreBusyPct and SippCoreBusyPct are the two cores' busy time
	// over the window from /proc/stat, whoever used it: proxy core busy
	// well above proxy CPU means something else ran there (softirq work
	// for the proxy's packets, or another program on a shared machine).
	ProxyCoreBusyPct float64 `json:"proxy_core_busy_pct"`
	SippCoreBusyPct  float64 `json:"sipp_core_busy_pct"`
	// SippLimited says the load generator, not the proxy, was the limit.
	SippLimited bool `json:"sipp_limited"`
	// Contended says other programs took a good share of the proxy's or
	// sipp's core during the window (core busy well above what the
	// benchmark's own processes used): the point measures the machine's
	// neighbours as much as the proxy.
	Contended bool `json:"contended"`
	// QuietWait is how long the harness waited before this rate for both
	// cores to be idle enough (bounded by E2EOptions.QuietWait).
	QuietWait float64 `json:"quiet_wait_s,omitempty"`
	// FirstFailurePct is set when the rate failed once and was run again
	// (the figures are the second run's): on a shared machine one burst
	// of someone else's work should not end a sweep.
	FirstFailurePct float64 `json:"first_try_failure_pct,omitempty"`
	Note            string  `json:"note,omitempty"`
}

// ProxyRun is one proxy's sweep.
type ProxyRun struct {
	Proxy       string `json:"proxy"`
	Port        string `json:"port,omitempty"` // appliance io.port
	Wait        string `json:"wait,omitempty"` // appliance io.wait as written ("" none)
	Description string `json:"description"`
	// Idle is the proxy's use with no traffic, backends up.
	Idle    *IdleUsage  `json:"idle,omitempty"`
	Skipped string      `json:"skipped,omitempty"`
	Error   string      `json:"error,omitempty"`
	Points  []RatePoint `json:"points"`
	// MaxCPS is the highest offered rate carried with under 0.1% failures.
	MaxCPS float64 `json:"max_cps_under_0.1pct_failures"`
	// LimitFound is false when the highest rate offered was still carried:
	// MaxCPS is then a floor of the proxy's capacity, not its ceiling.
	LimitFound bool `json:"limit_found"`
}

// IdleUsage is a proxy's use of the machine with no traffic, after it
// started and its backends were up (the appliance still probes them).
type IdleUsage struct {
	Seconds float64 `json:"seconds"`
	// CPUPct is schedstat time on CPU in % of one core; the issue's
	// target is under 0.5 in the adaptive and block modes.
	CPUPct float64 `json:"cpu_pct"`
	// VolPerS and InvolPerS are context switches a second.
	VolPerS   float64 `json:"voluntary_switches_per_s"`
	InvolPerS float64 `json:"involuntary_switches_per_s"`
	Threads   int     `json:"threads"`
}

// topo is where a proxy and its sipps live.
type topo struct {
	pair           *vethtest.Pair // holds the sipps in its namespace; nil: on the host
	proxy          netip.AddrPort
	uacIP, uasIP   netip.Addr
	uasPorts       [2]int
	appIface       string
	prefix         []string // runs a sipp where it belongs
	pingFromIP     netip.Addr
	applianceAdmin string
}

// RunE2E runs the sweep rate by rate: at each rate every proxy still in
// the race is started afresh (with its backends), loaded, and stopped, the
// proxies taking turns to go first. On a shared machine this spreads
// other people's bursts over all proxies instead of over whichever ran
// during them. A proxy leaves the race after a rate failing StopFailPct
// or more, or on an error. ctx cancellation stops it early.
func RunE2E(ctx context.Context, g *Group, o E2EOptions) []ProxyRun {
	out := make([]ProxyRun, len(o.Proxies))
	done := make([]bool, len(o.Proxies))
	for i, p := range o.Proxies {
		out[i].Proxy = p
	}
	for ri, rate := range o.Rates {
		for k := range o.Proxies {
			i := (ri + k) % len(o.Proxies)
			if done[i] || ctx.Err() != nil {
				continue
			}
			one := o
			one.Rates = []float64{rate}
			one.idle = o.IdleWindow > 0 && out[i].Idle == nil
			r := runProxy(ctx, g, one, o.Proxies[i])
			run := &out[i]
			run.Description, run.Skipped, run.Error = r.Description, r.Skipped, r.Error
			run.Port, run.Wait = r.Port, r.Wait
			if r.Idle != nil {
				run.Idle = r.Idle
			}
			run.Points = append(run.Points, r.Points...)
			switch {
			case r.Skipped != "" || r.Error != "":
				done[i] = true
			case len(r.Points) > 0 && o.StopFailPct > 0 && r.Points[0].FailurePct >= o.StopFailPct:
				o.Log("e2e %s: %.1f%% failed at %.0f calls/s: higher rates skipped", r.Proxy, r.Points[0].FailurePct, rate)
				done[i] = true
			}
		}
	}
	for i := range out {
		r := &out[i]
		r.MaxCPS = maxCarried(r.Points)
		if n := len(r.Points); n > 0 {
			r.LimitFound = r.Points[n-1].FailurePct >= MaxFailurePct
		}
	}
	return out
}

func maxCarried(ps []RatePoint) float64 {
	best := 0.0
	for _, p := range ps {
		if p.FailurePct < MaxFailurePct && p.OfferedCPS > best {
			best = p.OfferedCPS
		}
	}
	return best
}

// errSkip marks a proxy that cannot run here for a reason that is not a
// harness failure (the daemon not built yet on this branch).
type errSkip struct{ reason string }

func (e errSkip) Error() string { return e.reason }

// skipOrError sorts a start-up error into a skip (the machine cannot do
// it: say why) or a failure, for a run's Skipped and Error fields.
func skipOrError(err error) (skipped, failed string) {
	var s errSkip
	if errors.As(err, &s) {
		return s.reason, ""
	}
	return "", err.Error()
}

func runProxy(ctx context.Context, g *Group, o E2EOptions, proxy string) (run ProxyRun) {
	run.Proxy = proxy
	v, err := ParseVariant(proxy)
	if err != nil {
		run.Error = err.Error()
		return
	}
	run.Port = v.Port
	dir := filepath.Join(o.Dir, proxy)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		run.Error = err.Error()
		return
	}
	var t topo
	switch v.Port {
	case "", "socket":
		t.proxy = netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), 0)
		t.uacIP = netip.MustParseAddr("127.0.0.2")
		t.uasIP = netip.MustParseAddr("127.0.0.3")
		t.pingFromIP = t.uacIP
		port, err := freeUDPPort(t.proxy.Addr())
		if err != nil {
			run.Error = err.Error()
			return
		}
		t.proxy = netip.AddrPortFrom(t.proxy.Addr(), uint16(port))
		for i := range t.uasPorts {
			if t.uasPorts[i], err = freeUDPPort(t.uasIP); err != nil {
				run.Error = err.Error()
				return
			}
		}
	case "afxdp":
		n, err := newPair()
		if err != nil {
			run.Error = err.Error()
			return
		}
		defer func() {
			if err := n.Close(); err != nil && run.Error == "" {
				run.Error = err.Error()
			}
		}()
		t.pair, t.prefix, t.appIface = n, n.Argv(), n.Host
		port, err := freeWildcardUDPPort()
		if err != nil {
			run.Error = err.Error()
			return
		}
		t.proxy = netip.AddrPortFrom(n.HostV4, port)
		t.uacIP, t.uasIP, t.pingFromIP = uacOf(n), uasOf(n), uacOf(n)
		t.uasPorts = [2]int{5080, 5081}
		// Resolve both namespace addresses in the host's neighbour table
		// before XDP attaches, as an edge box has its neighbours resolved
		// before traffic comes.
		for _, ip := range []netip.Addr{uacOf(n), uasOf(n)} {
			if err := n.Resolve(ip, 3*time.Second); err != nil {
				run.Error = err.Error()
				return
			}
		}
	}

	// Backends first, so the proxy finds them up.
	var uasPids []int
	for i, port := range t.uasPorts {
		name := fmt.Sprintf("uas%d", i)
		argv := append(append(append([]string{}, t.prefix...), "taskset", "-c", strconv.Itoa(o.SippCore), "sipp"),
			sippUASArgs(o.UASScenario, t.uasIP.String(), port, name+".csv")...)
		p, err := g.Start(dir, name, argv...)
		if err != nil {
			run.Error = err.Error()
			return
		}
		defer p.Stop(syscall.SIGTERM, 3*time.Second)
		uasPids = append(uasPids, p.Pid())
	}

	var pp *Proc
	var tree bool
	if !v.Appliance() {
		pp, err = startKamailio(g, o, dir, t)
		tree = true
		run.Description = fmt.Sprintf("Kamailio %s, stateless dispatcher (algorithm 0, Call-ID hash; forward()), %d children, taskset -c %d", kamailioVersion(), o.KamailioChildren, o.ProxyCore)
	} else {
		var ac applianceRun
		ac, err = startAppliance(g, o, dir, &t, v, nil)
		pp, run.Wait = ac.p, ac.wait
		if v.Port == "socket" {
			run.Description = fmt.Sprintf("sipedge appliance, io.port=socket on loopback, io.cores=[%d], taskset -c %d", o.ProxyCore, o.ProxyCore)
		} else {
			run.Description = fmt.Sprintf("sipedge appliance, io.port=afxdp on veth %s queue 0, io.cores=[%d], taskset -c %d; sipp in netns %s", t.appIface, o.ProxyCore, o.ProxyCore, t.pair.NS)
		}
		if err == nil {
			run.Description += "; " + ac.waitNote
		}
		if err == nil && ac.guard {
			run.Description += fmt.Sprintf("; guard on, the UAC address %s allow-listed as a trunk", t.uacIP)
		}
	}
	if err != nil {
		run.Skipped, run.Error = skipOrError(err)
		return
	}
	defer pp.Stop(syscall.SIGTERM, 5*time.Second)

	if o.idle {
		o.Log("e2e %s: idle for %v (no traffic, backends up)", proxy, o.IdleWindow)
		idle, err := measureIdle(ctx, pp.Pid(), tree, o.IdleWindow)
		if err != nil {
			run.Error = err.Error()
			return
		}
		run.Idle = &idle
		o.Log("e2e %s: idle CPU %.3f%% of a core, %.1f voluntary + %.1f involuntary switches/s", proxy, idle.CPUPct, idle.VolPerS, idle.InvolPerS)
	}

	for _, rate := range o.Rates {
		if ctx.Err() != nil {
			run.Error = "interrupted"
			return
		}
		if pp.Exited() {
			run.Error = fmt.Sprintf("%s exited during the run:\n%s", proxy, pp.Tail(1500))
			return
		}
		waited := waitQuiet(ctx, o)
		if waited > time.Second {
			o.Log("e2e %s: waited %v for the cores to quieten", proxy, waited.Round(100*time.Millisecond))
		}
		o.Log("e2e %s: %.0f calls/s for %v", proxy, rate, o.Duration)
		pt, err := measure(ctx, g, o, dir, t, rate, pp.Pid(), tree, uasPids)
		if err == nil && pt.FailurePct >= MaxFailurePct {
			o.Log("e2e %s: %.2f%% failed at %.0f calls/s (proxy CPU %.1f%%, proxy core busy %.0f%%): once more", proxy, pt.FailurePct, rate, pt.ProxyCPUPct, pt.ProxyCoreBusyPct)
			first := pt
			if pt, err = measure(ctx, g, o, dir, t, rate, pp.Pid(), tree, uasPids); err == nil {
				pt.FirstFailurePct = max(first.FailurePct, 0.001)
				pt.Note = joinNote(fmt.Sprintf("retried: %.2f%% failed on the first run", first.FailurePct), pt.Note)
			}
		}
		if err != nil {
			run.Error = err.Error()
			return
		}
		if pt.FailurePct >= MaxFailurePct && t.applianceAdmin != "" {
			pt.Note = joinNote(pt.Note, applianceCounters(t.applianceAdmin))
		}
		pt.QuietWait = waited.Seconds()
		o.Log("e2e %s: %.0f calls/s offered: %d completed, %d failed, %d retransmissions, %.1f completed/s, proxy CPU %.1f%% (its core busy %.0f%%) = %.1f us/call, %.2f+%.2f switches/call, sipp %.0f%% (its core busy %.0f%%)%s%s",
			proxy, rate, pt.Completed, pt.Failed, pt.Retransmissions, pt.CompletedCPS, pt.ProxyCPUPct, pt.ProxyCoreBusyPct, pt.CPUUsPerCall, pt.VolPerCall, pt.InvolPerCall, pt.SippCPUPct, pt.SippCoreBusyPct, limitedNote(pt), optionsNote(pt.Options))
		run.Points = append(run.Points, pt)
	}
	return run
}

func joinNote(a, b string) string {
	if a == "" || b == "" {
		return a + b
	}
	return a + "; " + b
}

func optionsNote(s *OptionsStats) string {
	if s == nil {
		return ""
	}
	return fmt.Sprintf("; OPTIONS %d/%d answered, p50 %.2f ms, p99 %.2f ms", s.Answered, s.Sent, s.P50Ms, s.P99Ms)
}

// measureIdle samples a proxy with no traffic for window, after a second
// for it to settle.
func measureIdle(ctx context.Context, pid int, tree bool, window time.Duration) (IdleUsage, error) {
	if err := sleepCtx(ctx, time.Second); err != nil {
		return IdleUsage{}, err
	}
	a, err := ReadUsage(pid, tree)
	if err != nil {
		return IdleUsage{}, err
	}
	t0 := time.Now()
	if err := sleepCtx(ctx, window); err != nil {
		return IdleUsage{}, err
	}
	b, err := ReadUsage(pid, tree)
	if err != nil {
		return IdleUsage{}, err
	}
	secs := time.Since(t0).Seconds()
	d := b.Sub(a)
	return IdleUsage{Seconds: secs, CPUPct: 100 * float64(d.CPUNs) / 1e9 / secs,
		VolPerS: float64(d.Voluntary) / secs, InvolPerS: float64(d.Involuntary) / secs, Threads: b.Threads}, nil
}

func limitedNote(p RatePoint) string {
	if p.SippLimited {
		return " (sipp-limited)"
	}
	return ""
}

// measure offers rate calls/s for o.Duration from as many UAC processes as
// UACMaxRate asks, and samples CPU times over the steady window (after a
// warm-up of a fifth of the run, until just before the last call).
func measure(ctx context.Context, g *Group, o E2EOptions, dir string, t topo, rate float64, proxyPid int, tree bool, uasPids []int) (RatePoint, error) {
	n := max(1, int(math.Ceil(rate/o.UACMaxRate)))
	per := rate / float64(n)
	callsPer := max(1, int(per*o.Duration.Seconds()))
	pt := RatePoint{OfferedCPS: rate, UACs: n, Calls: callsPer * n}
	timeoutS := int(o.Duration.Seconds()) + 15
	tag := strconv.FormatFloat(rate, 'f', 0, 64)
	var uacs []*Proc
	var csvs []string
	defer func() {
		for _, p := range uacs {
			p.Stop(syscall.SIGKILL, 0)
		}
	}()
	start := time.Now()
	for i := range n {
		port := 0
		if t.pair == nil {
			var err error
			if port, err = freeUDPPort(t.uacIP); err != nil {
				return pt, err
			}
		} else {
			// sipp binds its media sockets from 6000 up (moving on when
			// one is taken, which its SIP socket does not): stay below.
			port = 5100 + i
		}
		name := fmt.Sprintf("uac-%s-%d", tag, i)
		csvs = append(csvs, filepath.Join(dir, name+".csv"))
		os.Remove(csvs[i])
		argv := append(append(append([]string{}, t.prefix...), "taskset", "-c", strconv.Itoa(o.SippCore), "sipp"),
			sippUACArgs(o.UACScenario, t.uacIP.String(), port, t.proxy.String(), per, callsPer, name+".csv", timeoutS)...)
		p, err := g.Start(dir, name, argv...)
		if err != nil {
			return pt, err
		}
		uacs = append(uacs, p)
	}
	warm := o.Duration / 5
	end := o.Duration - min(o.Duration/10, 500*time.Millisecond)
	var cores [2][]CoreTimes
	var worker [2]map[string]float64
	sample := func() (proxy Usage, sipps []float64, at time.Time, err error) {
		at = time.Now()
		if proxy, err = ReadUsage(proxyPid, tree); err != nil {
			return
		}
		if t.applianceAdmin != "" {
			w := workerCounters(t.applianceAdmin)
			if worker[0] == nil {
				worker[0] = w
			} else {
				worker[1] = w
			}
		}
		ct, err := ReadCoreTimes(o.ProxyCore, o.SippCore)
		if err != nil {
			return
		}
		if cores[0] == nil {
			cores[0] = ct
		} else {
			cores[1] = ct
		}
		for _, p := range uacs {
			c, _ := CPUSeconds(p.Pid(), false)
			sipps = append(sipps, c)
		}
		for _, pid := range uasPids {
			c, _ := CPUSeconds(pid, false)
			sipps = append(sipps, c)
		}
		return
	}
	if err := sleepCtx(ctx, time.Until(start.Add(warm))); err != nil {
		return pt, err
	}
	var oc *OptionsClient
	if o.OptionsRate > 0 {
		var err error
		if oc, err = StartOptions(t.pair, t.pingFromIP, t.proxy, o.OptionsRate); err != nil {
			return pt, err
		}
		defer func() {
			if oc != nil {
				oc.Stop()
			}
		}()
	}
	p0, s0, t0, err := sample()
	if err != nil {
		return pt, err
	}
	if err := sleepCtx(ctx, time.Until(start.Add(end))); err != nil {
		return pt, err
	}
	p1, s1, t1, err := sample()
	if err != nil {
		return pt, err
	}
	if oc != nil {
		st := oc.Stop()
		oc = nil
		pt.Options = &st
	}
	win := t1.Sub(t0).Seconds()
	du := p1.Sub(p0)
	pt.ProxyCPUPct = 100 * float64(du.CPUNs) / 1e9 / win
	pt.ProxyTickCPUPct = 100 * float64(du.Ticks) / clockTicks / win
	pt.ProxyThreads = p1.Threads
	pt.ProxyCoreBusyPct = BusyPct(cores[0][0], cores[1][0])
	pt.SippCoreBusyPct = BusyPct(cores[0][1], cores[1][1])
	for i := range s1 {
		if i >= len(s0) {
			break
		}
		d := 100 * (s1[i] - s0[i]) / win
		pt.SippCPUPct += d
		if i < len(uacs) {
			pt.UACMaxCPUPct = max(pt.UACMaxCPUPct, d)
		}
	}
	for _, p := range uacs {
		select {
		case <-p.Done():
		case <-time.After(time.Until(start.Add(time.Duration(timeoutS+5) * time.Second))):
			return pt, fmt.Errorf("harness: sipp %s did not finish within its own -timeout:\n%s", p.Name, p.Tail(1000))
		case <-ctx.Done():
			return pt, ctx.Err()
		}
	}
	gen := o.Duration.Seconds()
	for i, f := range csvs {
		s, err := ReadSippCSV(f)
		if err != nil {
			return pt, fmt.Errorf("%w\nsipp said:\n%s", err, uacs[i].Tail(1000))
		}
		pt.Completed += s.Successful
		pt.Failed += s.Failed
		pt.Retransmissions += s.Retransmissions
		if c := s.CreationSeconds(callsPer); c > gen {
			gen = c
		}
	}
	if lost := pt.Calls - pt.Completed - pt.Failed; lost > 0 {
		pt.Failed += lost
		pt.Note = fmt.Sprintf("%d calls never finished", lost)
	}
	pt.FailurePct = 100 * float64(pt.Failed) / float64(pt.Calls)
	pt.CompletedCPS = float64(pt.Completed) / gen
	if pt.CompletedCPS > 0 {
		// calls completed in the window, at the run's completion rate
		calls := pt.CompletedCPS * win
		pt.CPUSecPer1000 = pt.ProxyCPUPct / 100 / pt.CompletedCPS * 1000
		pt.CPUUsPerCall = pt.CPUSecPer1000 * 1000
		pt.VolPerCall = float64(du.Voluntary) / calls
		pt.InvolPerCall = float64(du.Involuntary) / calls
		if worker[0] != nil && worker[1] != nil {
			pt.Worker = map[string]float64{}
			for k, v := range worker[1] {
				if v0, ok := worker[0][k]; ok && v >= v0 {
					pt.Worker[k] = (v - v0) / calls
				}
			}
		}
	}
	// sipp is the limit when its core is saturated, or when it could not
	// create calls at the rate asked while the proxy had room to spare.
	behind := gen > o.Duration.Seconds()*1.05
	if other := max(pt.ProxyCoreBusyPct-pt.ProxyCPUPct, pt.SippCoreBusyPct-pt.SippCPUPct); other >= contendedPct {
		pt.Contended = true
		pt.Note = joinNote(pt.Note, fmt.Sprintf("contended: others used ~%.0f%% of the proxy core and ~%.0f%% of the sipp core",
			max(0, pt.ProxyCoreBusyPct-pt.ProxyCPUPct), max(0, pt.SippCoreBusyPct-pt.SippCPUPct)))
	}
	if pt.SippCPUPct >= 90 || pt.UACMaxCPUPct >= 90 || (behind && pt.ProxyCPUPct < 50 && !pt.Contended) {
		pt.SippLimited = true
		pt.Note = joinNote(pt.Note, fmt.Sprintf("sipp-limited: sipp %.0f%% (core busy %.0f%%), busiest UAC %.0f%%, calls created over %.1fs for %.1fs asked",
			pt.SippCPUPct, pt.SippCoreBusyPct, pt.UACMaxCPUPct, gen, o.Duration.Seconds()))
	}
	pt.classifySaturation()
	return pt, nil
}

// proxySaturatedPct is the proxy CPU at which a point is the proxy's limit
// whatever sipp did.
const proxySaturatedPct = 90

// classifySaturation keeps "sipp-limited" for points where the proxy still
// had room: when the proxy's core was saturated too, the failures are the
// proxy's as much as sipp's. It is applied again to stored results
// (Results.Reclassify) so that older reports read the same way.
func (pt *RatePoint) classifySaturation() {
	if pt.SippLimited && pt.ProxyCPUPct >= proxySaturatedPct {
		pt.SippLimited = false
		pt.Note = strings.Replace(pt.Note, "sipp-limited:", "proxy and sipp both saturated:", 1)
	}
}

// contendedPct is how much of a core, beyond what the benchmark's own
// processes used, marks a point as contended. It is generous: softirq work
// for the benchmark's own packets lands there too.
const contendedPct = 25

// waitQuiet waits, up to o.QuietWait, until both cores were under
// o.QuietBusyPct busy over a 500 ms sample, and returns how long it took.
func waitQuiet(ctx context.Context, o E2EOptions) time.Duration {
	start := time.Now()
	if o.QuietWait <= 0 {
		return 0
	}
	for time.Since(start) < o.QuietWait && ctx.Err() == nil {
		a, err := ReadCoreTimes(o.ProxyCore, o.SippCore)
		if err != nil {
			break
		}
		if sleepCtx(ctx, 500*time.Millisecond) != nil {
			break
		}
		b, err := ReadCoreTimes(o.ProxyCore, o.SippCore)
		if err != nil {
			break
		}
		if BusyPct(a[0], b[0]) < o.QuietBusyPct && BusyPct(a[1], b[1]) < o.QuietBusyPct {
			break
		}
	}
	return time.Since(start)
}

func sleepCtx(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return ctx.Err()
	}
	tm := time.NewTimer(d)
	defer tm.Stop()
	select {
	case <-tm.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func kamailioVersion() string {
	out, err := execOutput("kamailio", "-v")
	if err != nil {
		return "(version unknown)"
	}
	for _, l := range strings.Split(out, "\n") {
		if v, ok := strings.CutPrefix(strings.TrimSpace(l), "version: kamailio "); ok {
			return strings.Fields(v)[0]
		}
	}
	return "(version unknown)"
}

func startKamailio(g *Group, o E2EOptions, dir string, t topo) (*Proc, error) {
	list := filepath.Join(dir, "dispatcher.list")
	var b strings.Builder
	b.WriteString("# set 1: the two sipp UAS backends (written by the harness)\n")
	for _, port := range t.uasPorts {
		fmt.Fprintf(&b, "1 sip:%s:%d\n", t.uasIP, port)
	}
	if err := os.WriteFile(list, []byte(b.String()), 0o644); err != nil {
		return nil, err
	}
	runDir := filepath.Join(dir, "run")
	if err := os.MkdirAll(runDir, 0o755); err != nil {
		return nil, err
	}
	argv := []string{"taskset", "-c", strconv.Itoa(o.ProxyCore), "kamailio", "-DD", "-E",
		"-f", o.KamailioCfg, "-P", filepath.Join(runDir, "kamailio.pid"), "-Y", runDir,
		"-n", strconv.Itoa(o.KamailioChildren), "-l", "udp:" + t.proxy.String(),
		"-A", fmt.Sprintf("DSLIST=%q", list)}
	p, err := g.Start(dir, "kamailio", argv...)
	if err != nil {
		return nil, err
	}
	if err := waitReady(p, t, 15*time.Second); err != nil {
		p.Stop(syscall.SIGTERM, 3*time.Second)
		return nil, err
	}
	return p, nil
}

// waitReady pings the proxy until it answers, failing early when it exits.
func waitReady(p *Proc, t topo, within time.Duration) error {
	deadline := time.Now().Add(within)
	for time.Now().Before(deadline) {
		if p.Exited() {
			return fmt.Errorf("harness: %s exited at start:\n%s", p.Name, p.Tail(2000))
		}
		if pingSIP(t.pair, t.pingFromIP, t.proxy, time.Second) == nil {
			return nil
		}
	}
	return fmt.Errorf("harness: %s never answered OPTIONS on %s within %v:\n%s", p.Name, t.proxy, within, p.Tail(2000))
}

// applianceKeys is the effective default configuration the appliance
// binary prints (`appliance check`), read once per binary: it tells which
// sections and keys this build knows.
func applianceKeys(appliance string) string {
	keysMu.Lock()
	defer keysMu.Unlock()
	if v, ok := keysCache[appliance]; ok {
		return v
	}
	out, _ := execOutput(appliance, "check")
	keysCache[appliance] = out
	return out
}

var (
	keysMu    sync.Mutex
	keysCache = map[string]string{}
)

// hasGuard reports whether the appliance binary has the [guard] stage
// with an allow-list: its effective default configuration says so.
func hasGuard(appliance string) bool {
	out := applianceKeys(appliance)
	return strings.Contains(out, "\n[guard]\n") && strings.Contains(out, "\nallow = ")
}

// knowsIOKey reports whether the binary's [io] section has key (the wait
// modes of issue 10 land as [io] wait, spin, batch_delay, busy_poll).
func knowsIOKey(appliance, key string) bool {
	out := applianceKeys(appliance)
	i := strings.Index(out, "\n[io]\n")
	if i < 0 {
		return false
	}
	sec := out[i+6:]
	if j := strings.Index(sec, "\n["); j >= 0 {
		sec = sec[:j]
	}
	return strings.Contains("\n"+sec, "\n"+key+" = ")
}

// appExtra is what the capacity part changes in the appliance's
// configuration.
type appExtra struct {
	allow         []string // guard allow-list (default: the UAC address)
	probeInterval string   // default "1s"
	probeTimeout  string   // default "500ms"
	// noBackendWait: the backends never answer (sockets never read), so
	// do not wait for answered probes.
	noBackendWait bool
}

// applianceConfig is the configuration the harness runs the appliance on.
// With guard, the sipp UAC address is allow-listed as the trunk it is
// (thousands of calls/s from one address), as the demo does; the guard
// stage still runs. wait is the io.wait written ("" none).
func applianceConfig(o E2EOptions, t topo, v Variant, guard bool, wait string, x *appExtra) string {
	if x == nil {
		x = &appExtra{}
	}
	var b strings.Builder
	fmt.Fprintf(&b, "# written by the sipedge benchmark harness for the %s run\n", v.Name)
	fmt.Fprintf(&b, "[node]\nname = \"bench\"\naddresses = [%q]\nsecret = %q\n\n", t.proxy.Addr(), benchSecret)
	// [io] in order; -appliance-io keys replace the harness's own or
	// follow them
	var io [][2]string
	if v.Port == "afxdp" {
		// 4 MiB of UMEM: fits the 8 MiB RLIMIT_MEMLOCK many machines
		// give root, and holds far more frames than sipp keeps in flight.
		io = append(io, [2]string{"port", `"afxdp"`}, [2]string{"interface", strconv.Quote(t.appIface)}, [2]string{"queues", "[0]"},
			[2]string{"frame_size", "2048"}, [2]string{"frame_count", "2048"}, [2]string{"rx_ring", "1024"}, [2]string{"tx_ring", "1024"},
			[2]string{"fill_ring", "1024"}, [2]string{"comp_ring", "1024"})
	} else {
		io = append(io, [2]string{"port", `"socket"`})
	}
	io = append(io, [2]string{"listen", strconv.Quote(t.proxy.String())}, [2]string{"cores", fmt.Sprintf("[%d]", o.ProxyCore)})
	if wait != "" {
		io = append(io, [2]string{"wait", strconv.Quote(wait)})
	}
	for _, kv := range o.ApplianceIO {
		val := tomlValue(kv[1])
		i := slices.IndexFunc(io, func(e [2]string) bool { return e[0] == kv[0] })
		if i >= 0 {
			io[i][1] = val
		} else {
			io = append(io, [2]string{kv[0], val})
		}
	}
	b.WriteString("[io]\n")
	for _, kv := range io {
		fmt.Fprintf(&b, "%s = %s\n", kv[0], kv[1])
	}
	fmt.Fprintf(&b, "\n[admin]\nlisten = %q\n\n", t.applianceAdmin)
	b.WriteString("[dispatcher]\n")
	for _, port := range t.uasPorts {
		fmt.Fprintf(&b, "[[dispatcher.backends]]\naddress = \"%s:%d\"\n", t.uasIP, port)
	}
	interval, timeout := cmp.Or(x.probeInterval, "1s"), cmp.Or(x.probeTimeout, "500ms")
	fmt.Fprintf(&b, "\n[dispatcher.probe]\ninterval = %q\ntimeout = %q\n\n", interval, timeout)
	if guard {
		allow := x.allow
		if len(allow) == 0 {
			allow = []string{t.uacIP.String()}
		}
		fmt.Fprintf(&b, "[guard]\nallow = [")
		for i, a := range allow {
			if i > 0 {
				b.WriteString(", ")
			}
			fmt.Fprintf(&b, "%q", a)
		}
		b.WriteString("]\n\n")
	}
	b.WriteString("[log]\nlevel = \"info\"\n")
	return b.String()
}

// tomlValue writes v as a TOML integer, boolean or array when it reads as
// one, else as a string ("50us", "auto").
func tomlValue(v string) string {
	if _, err := strconv.ParseInt(v, 10, 64); err == nil {
		return v
	}
	if v == "true" || v == "false" || strings.HasPrefix(v, "[") {
		return v
	}
	return strconv.Quote(v)
}

// benchSecret is the appliance's [node] secret in every harness run; the
// capacity part's sipgen capture is keyed with it so that the appliance
// recognises the branches of the backends' responses as its own.
const benchSecret = "sipedge-bench-harness-secret-0123456789"

// notBuilt is what the appliance says on a branch without the daemon.
const notBuilt = "daemon is not built yet"

// applianceRun is a started appliance and what was chosen for it.
type applianceRun struct {
	p        *Proc
	wait     string // io.wait written, "" none
	waitNote string // for the description
	guard    bool
}

// waitFor decides the io.wait to write for v: the variant's mode when the
// binary knows the key; without it (before issue 10) "adaptive" runs with
// the binary's only mode, and the other modes are skipped.
func waitFor(appliance string, v Variant) (wait, note string, err error) {
	switch {
	case v.Wait == "":
		return "", "io.wait not set (the binary's default)", nil
	case knowsIOKey(appliance, "wait"):
		return v.Wait, "io.wait=" + v.Wait, nil
	case v.Wait == "adaptive":
		return "", "this appliance binary has no [io] wait key (before issue 10): it ran its only wait mode (Go's netpoller) in place of adaptive", nil
	}
	return "", "", errSkip{fmt.Sprintf("this appliance binary has no [io] wait key (before issue 10): wait mode %q cannot be chosen", v.Wait)}
}

func startAppliance(g *Group, o E2EOptions, dir string, t *topo, v Variant, x *appExtra) (applianceRun, error) {
	var ar applianceRun
	if _, err := os.Stat(o.Appliance); err != nil {
		return ar, fmt.Errorf("harness: appliance binary %s: %w (run make build first, or give -appliance)", o.Appliance, err)
	}
	wait, note, err := waitFor(o.Appliance, v)
	if err != nil {
		return ar, err
	}
	ar.wait, ar.waitNote, ar.guard = wait, note, hasGuard(o.Appliance)
	admin, err := freeTCPAddr("127.0.0.1")
	if err != nil {
		return ar, err
	}
	t.applianceAdmin = admin
	cfg := filepath.Join(dir, "appliance.toml")
	if err := os.WriteFile(cfg, []byte(applianceConfig(o, *t, v, ar.guard, wait, x)), 0o644); err != nil {
		return ar, err
	}
	p, err := g.Start(dir, "appliance", "taskset", "-c", strconv.Itoa(o.ProxyCore), o.Appliance, "run", "-c", cfg)
	if err != nil {
		return ar, err
	}
	select {
	case <-p.Done():
		if tail := p.Tail(2000); strings.Contains(tail, notBuilt) {
			return ar, errSkip{"appliance run: " + strings.TrimSpace(tail)}
		}
	case <-time.After(300 * time.Millisecond):
	}
	if err := waitReady(p, *t, 20*time.Second); err != nil {
		if strings.Contains(p.Tail(2000), notBuilt) {
			p.Stop(syscall.SIGKILL, 0)
			return ar, errSkip{"appliance run: " + strings.TrimSpace(p.Tail(2000))}
		}
		p.Stop(syscall.SIGTERM, 3*time.Second)
		return ar, err
	}
	if x == nil || !x.noBackendWait {
		if err := waitBackendsUp(admin, 10*time.Second); err != nil {
			p.Stop(syscall.SIGTERM, 3*time.Second)
			return ar, fmt.Errorf("%w\n%s", err, p.Tail(1500))
		}
	}
	ar.p = p
	return ar, nil
}

// applianceCounters summarises the appliance's own view of a failing rate
// from /metrics: datagrams in and out and every non-zero drop reason.
func applianceCounters(admin string) string {
	c := http.Client{Timeout: 2 * time.Second}
	resp, err := c.Get("http://" + admin + "/metrics")
	if err != nil {
		return "appliance /metrics: " + err.Error()
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return "appliance /metrics: " + err.Error()
	}
	return summariseMetrics(string(b))
}

// summariseMetrics keeps the counters that explain lost calls.
func summariseMetrics(text string) string {
	var parts []string
	for _, line := range strings.Split(text, "\n") {
		if strings.HasPrefix(line, "#") {
			continue
		}
		f := strings.Fields(line)
		if len(f) != 2 || f[1] == "0" {
			continue
		}
		name := f[0]
		switch {
		case name == "sipedge_received_total", name == "sipedge_transmitted_total",
			name == "sipedge_transmit_unsent_total", name == "sipedge_port_errors_total",
			strings.HasPrefix(name, "sipedge_dropped_total{"):
			parts = append(parts, strings.TrimPrefix(name, "sipedge_")+"="+f[1])
		}
	}
	if len(parts) == 0 {
		return "appliance /metrics: no traffic counters"
	}
	return "appliance: " + strings.Join(parts, " ")
}

// waitBackendsUp polls the admin /backends (the appliance has no push
// channel) until every backend is up.
func waitBackendsUp(admin string, within time.Duration) error {
	c := http.Client{Timeout: 2 * time.Second}
	deadline := time.Now().Add(within)
	var last string
	for time.Now().Before(deadline) {
		resp, err := c.Get("http://" + admin + "/backends")
		if err == nil {
			var list []struct {
				Address, State string
				ProbesOK       int `json:"probes_ok"`
			}
			err = json.NewDecoder(resp.Body).Decode(&list)
			resp.Body.Close()
			up := 0
			for _, b := range list {
				// a backend starts up; only an answered probe shows
				// the path to it works
				if b.State == "up" && b.ProbesOK > 0 {
					up++
				}
			}
			if err == nil && up == len(list) && up > 0 {
				return nil
			}
			last = fmt.Sprintf("%+v", list)
		} else {
			last = err.Error()
		}
		time.Sleep(100 * time.Millisecond)
	}
	return fmt.Errorf("harness: the appliance's backends had not all answered a probe within %v (last /backends: %s)", within, last)
}
