package harness

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"time"
)

// Options shape one harness run.
type Options struct {
	Check bool // the short mode of make test

	Parts []string // "parse", "pipeline", "e2e", "capacity" (default all)

	Repo string // the sipedge checkout (default: the parent of the bench folder)
	Bin  string // folder of the built appliance, sipgen, sipreplay (default Repo/bin)
	Out  string // where DATE.json, DATE.md and the plots go

	ParseBenchtime  string
	PipelineCalls   int
	PipelineWorkers []int
	E2E             E2EOptions
	Capacity        CapacityOptions

	// Keep leaves the scratch folder (configs, logs, sipp statistics) in
	// place and names it on stderr.
	Keep bool

	Command string    // the command line, for the report
	Stderr  io.Writer // progress
	Now     func() time.Time
}

// CheckDefaults and FullDefaults are the two modes' settings; flags
// override them.
func CheckDefaults() E2EOptions {
	return E2EOptions{Rates: []float64{100}, Duration: 3 * time.Second, UACMaxRate: 1500,
		StopFailPct: 10, ProxyCore: 1, SippCore: 0, KamailioChildren: 2,
		IdleWindow: time.Second, OptionsRate: 20,
		Proxies: []string{Kamailio, "appliance-socket-adaptive", "appliance-afxdp-adaptive"}}
}

// FullDefaults is make bench's sweep: Kamailio and the appliance on both
// ports in every wait mode, at rates from light to heavy.
func FullDefaults() E2EOptions {
	return E2EOptions{Rates: []float64{100, 1000, 2000, 5000, 8000}, Duration: 10 * time.Second,
		UACMaxRate: 1500, StopFailPct: 10, ProxyCore: 1, SippCore: 0, KamailioChildren: 2,
		QuietWait: 10 * time.Second, QuietBusyPct: 30, IdleWindow: 5 * time.Second, OptionsRate: 20,
		Proxies: append([]string{Kamailio}, ApplianceVariants()...)}
}

// CapacityCheckDefaults and CapacityFullDefaults are the capacity part's
// settings in the two modes.
func CapacityCheckDefaults() CapacityOptions {
	return CapacityOptions{Proxies: []string{"appliance-socket-adaptive", "appliance-afxdp-adaptive"},
		Rates: []float64{2000}, Calls: 2000, Callers: 20, StopLossPct: 5, ProxyCore: 1, LoadCore: 0}
}

// CapacityFullDefaults: 100,000 calls per replay, from 10,000 to 40,000
// calls/s, every appliance variant.
func CapacityFullDefaults() CapacityOptions {
	return CapacityOptions{Proxies: ApplianceVariants(),
		Rates: []float64{10000, 15000, 20000, 25000, 30000, 40000}, Calls: 100000, Callers: 200, StopLossPct: 5, ProxyCore: 1, LoadCore: 0}
}

// Run runs the parts and writes the reports. It returns the results and
// an error when a part failed (a skipped part is not a failure).
func Run(ctx context.Context, o Options) (*Results, error) {
	began := time.Now()
	now := o.Now
	if now == nil {
		now = time.Now
	}
	logf := func(format string, a ...any) {
		fmt.Fprintf(o.Stderr, "[%6.1fs] %s\n", time.Since(began).Seconds(), fmt.Sprintf(format, a...))
	}
	mode := "full"
	if o.Check {
		mode = "check"
	}
	r := &Results{Date: now().UTC().Format("2006-01-02T15-04-05Z"), Mode: mode, Command: o.Command, Machine: machine()}
	r.Notes = append(r.Notes,
		fmt.Sprintf("Every proxy is pinned to CPU %d (appliance: io.cores=[%d] and taskset; Kamailio: taskset over all its processes) and every sipp (UAC and both UAS) to CPU %d, so each side has one core of this %d-core machine.",
			o.E2E.ProxyCore, o.E2E.ProxyCore, o.E2E.SippCore, runtime.NumCPU()),
		"Proxy CPU is exact: the sum of the first field of /proc/PID/task/*/schedstat (ns on CPU) over every thread, and for Kamailio over every process of its tree, over the steady window (after the first fifth of each rate's run to just before its end); 100% is one core. CPU per call divides it by the calls completed in that window (at the run's completion rate). utime+stime is kept in the JSON (proxy_tick_cpu_pct) for comparison only.",
		"Context switches per call: voluntary_ctxt_switches and nonvoluntary_ctxt_switches of /proc/PID/task/*/status, summed the same way over the same window, over the calls completed in it. A thread that exits inside the window takes its counts with it (the proxies keep their threads).",
		fmt.Sprintf("OPTIONS: while the calls run, the harness's own client sends %.0f OPTIONS a second (unique Call-ID, so both backends get them; Request-URI sip:options@PROXY, routed to the dispatcher like sipp's INVITEs) from the UAC address and times each request to its 200 (sipp UAS, -aa); an answer later than %v is lost.", o.E2E.OptionsRate, optionsTimeout),
		fmt.Sprintf("Idle: each proxy's CPU with no traffic, measured once per proxy for %v, a second after it answered and its backends were up (the appliance still probes each backend every second).", o.E2E.IdleWindow),
		fmt.Sprintf("A rate is carried when under %.1f%% of its calls fail (sipp failures plus calls never finished). A rate that fails is run once more and the second run is kept (the note says so): on a shared machine one burst of someone else's work should not end a sweep.", MaxFailurePct),
		"The sweep goes rate by rate: at each rate every proxy is started afresh, loaded and stopped, taking turns to go first, so a burst of someone else's work on this shared machine does not land on one proxy's whole sweep.",
		"Before each rate the harness waits (bounded) for both cores to be under 30% busy; a point where other programs still used 25% or more of a core is marked contended.",
		"Proxy core busy % is that CPU's busy time from /proc/stat over the same window, whoever used it: well above the proxy's CPU % means softirq work or another program ran there. The kernel samples it on timer ticks, so at low, bursty load it can read below the proxy's own (exact) CPU %: it flags interference, it does not measure the proxy.",
		"The UAC (bench/harness/testdata/uac.xml, sipp -default_behaviors all,-abortunexp) ignores a 180 that arrives after the 200 (Kamailio's children may forward a call's 180 and 200 in either order); a call succeeds only when both its 200s arrive.",
	)
	if err := os.MkdirAll(o.Out, 0o755); err != nil {
		return r, fmt.Errorf("harness: output folder %s: %w", o.Out, err)
	}
	work, err := os.MkdirTemp("", "sipedge-bench-")
	if err != nil {
		return r, err
	}
	if o.Keep {
		defer logf("kept the scratch folder %s", work)
	} else {
		defer os.RemoveAll(work)
	}
	want := map[string]bool{}
	for _, p := range o.Parts {
		want[p] = true
	}
	var failures []string
	if want["parse"] {
		logf("parse: sipcore against sipgo, %s per parser per message", o.ParseBenchtime)
		p := RunParse(filepath.Join(o.Repo, "sipcore", "testdata", "bench"), o.ParseBenchtime)
		r.Parse = &p
		if p.Error != "" {
			failures = append(failures, "parse: "+p.Error)
		}
	}
	if want["pipeline"] && ctx.Err() == nil {
		logf("pipeline: %d calls, workers %v", o.PipelineCalls, o.PipelineWorkers)
		p := RunPipeline(o.Bin, work, o.PipelineCalls, o.PipelineWorkers, logf)
		r.Pipeline = &p
		if p.Skipped != "" {
			logf("pipeline: skipped: %s", p.Skipped)
		}
		if p.Error != "" {
			failures = append(failures, "pipeline: "+p.Error)
		}
		for _, run := range p.Runs {
			if run.Error != "" {
				failures = append(failures, fmt.Sprintf("pipeline (%d workers): %s", run.Workers, run.Error))
			}
		}
	}
	if want["e2e"] && ctx.Err() == nil {
		e := o.E2E
		e.Dir, e.Log = work, logf
		if e.Appliance == "" {
			e.Appliance = filepath.Join(o.Bin, "appliance")
		}
		if e.KamailioCfg == "" {
			e.KamailioCfg = filepath.Join(o.Repo, "bench", "harness", "testdata", "kamailio.cfg")
		}
		if e.UACScenario == "" {
			e.UACScenario = filepath.Join(o.Repo, "bench", "harness", "testdata", "uac.xml")
		}
		if e.UASScenario == "" {
			e.UASScenario = UASScenario(o.Repo)
		}
		r.Notes = append(r.Notes, "UAS scenario: "+relTo(o.Repo, e.UASScenario)+".")
		if missing := missingTools(); missing != "" {
			failures = append(failures, "e2e: "+missing)
		} else {
			g := &Group{}
			stop := context.AfterFunc(ctx, g.KillAll)
			r.E2E = RunE2E(ctx, g, e)
			stop()
			g.KillAll()
			for _, p := range r.E2E {
				switch {
				case p.Skipped != "":
					logf("e2e %s: skipped: %s", p.Proxy, p.Skipped)
				case p.Error != "":
					failures = append(failures, fmt.Sprintf("e2e %s: %s", p.Proxy, p.Error))
				case o.Check && completed(p) == 0:
					// A loaded machine may fail some calls; none at all
					// through a proxy means the set-up is broken.
					failures = append(failures, fmt.Sprintf("e2e %s: no call completed at %v calls/s: see the failures in the report", p.Proxy, e.Rates))
				case o.Check && e.OptionsRate > 0 && optionsAnswered(p) == 0:
					failures = append(failures, fmt.Sprintf("e2e %s: no OPTIONS answered with 200 through the proxy", p.Proxy))
				case o.Check && e.IdleWindow > 0 && p.Idle == nil:
					failures = append(failures, fmt.Sprintf("e2e %s: no idle measurement", p.Proxy))
				}
			}
			r.Summarize()
		}
	}
	if want["capacity"] && ctx.Err() == nil {
		c := o.Capacity
		c.Dir, c.Log = work, logf
		if c.Appliance == "" {
			c.Appliance = filepath.Join(o.Bin, "appliance")
		}
		c.Sipgen, c.Sipreplay = filepath.Join(o.Bin, "sipgen"), filepath.Join(o.Bin, "sipreplay")
		if c.ApplianceIO == nil {
			c.ApplianceIO = o.E2E.ApplianceIO
		}
		g := &Group{}
		stop := context.AfterFunc(ctx, g.KillAll)
		r.Capacity = RunCapacity(ctx, g, c)
		stop()
		g.KillAll()
		if r.Capacity.Error != "" {
			failures = append(failures, "capacity: "+r.Capacity.Error)
		}
		for _, run := range r.Capacity.Runs {
			switch {
			case run.Skipped != "":
				logf("capacity %s: skipped: %s", run.Proxy, run.Skipped)
			case run.Error != "":
				failures = append(failures, fmt.Sprintf("capacity %s: %s", run.Proxy, run.Error))
			case o.Check && forwarded(run) == 0:
				failures = append(failures, fmt.Sprintf("capacity %s: the appliance forwarded nothing of the replay", run.Proxy))
			}
		}
	}
	if ctx.Err() != nil {
		failures = append(failures, "interrupted")
	}
	r.Seconds = time.Since(began).Seconds()
	base := filepath.Join(o.Out, r.Date)
	var werr []string
	if err := r.WriteReports(base); err != nil {
		werr = append(werr, err.Error())
	}
	logf("wrote %s.json, %s.md and plots", base, base)
	failures = append(failures, werr...)
	if len(failures) > 0 {
		return r, fmt.Errorf("harness: %s", strings.Join(failures, "\n"))
	}
	return r, nil
}

func optionsAnswered(p ProxyRun) int {
	n := 0
	for _, pt := range p.Points {
		if pt.Options != nil {
			n += pt.Options.Answered
		}
	}
	return n
}

func forwarded(r CapacityRun) uint64 {
	var n uint64
	for _, p := range r.Points {
		n += p.Forwarded
	}
	return n
}

func completed(p ProxyRun) int {
	n := 0
	for _, pt := range p.Points {
		n += pt.Completed
	}
	return n
}

// UASScenario is the UAS the backends run: the daemon's
// appliance/testdata/uas.xml when the checkout has it, else the harness's
// own fallback.
func UASScenario(repo string) string {
	p := filepath.Join(repo, "appliance", "testdata", "uas.xml")
	if _, err := os.Stat(p); err == nil {
		return p
	}
	return filepath.Join(repo, "bench", "harness", "testdata", "uas.xml")
}

func relTo(base, p string) string {
	if r, err := filepath.Rel(base, p); err == nil && !strings.HasPrefix(r, "..") {
		return r
	}
	return p
}

func missingTools() string {
	var miss []string
	for _, t := range []string{"sipp", "kamailio", "taskset", "ip", "ethtool"} {
		if _, err := exec.LookPath(t); err != nil {
			miss = append(miss, t)
		}
	}
	if len(miss) == 0 {
		return ""
	}
	return fmt.Sprintf("missing %s: run make bench-deps (apt-get install sip-tester kamailio iproute2 ethtool util-linux)", strings.Join(miss, ", "))
}

func machine() Machine {
	m := Machine{Cores: runtime.NumCPU()}
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for _, l := range strings.Split(string(b), "\n") {
			if v, ok := strings.CutPrefix(l, "model name"); ok {
				m.CPU = strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(v), ":"))
				break
			}
		}
	}
	if b, err := os.ReadFile("/proc/sys/kernel/osrelease"); err == nil {
		m.Kernel = strings.TrimSpace(string(b))
	}
	if b, err := os.ReadFile("/proc/loadavg"); err == nil {
		f := strings.Fields(string(b))
		if len(f) >= 3 {
			m.LoadAvg = strings.Join(f[:3], " ")
		}
	}
	// sipp -v exits non-zero after printing its version
	if out, _ := execOutput("sipp", "-v"); out != "" {
		for _, l := range strings.Split(out, "\n") {
			if strings.Contains(l, "SIPp v") {
				m.Sipp = strings.TrimSpace(l)
				break
			}
		}
	}
	return m
}
