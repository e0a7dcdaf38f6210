package harness

import (
	"cmp"
	"encoding/json"
	"errors"
	"fmt"
	"image/color"
	"io"
	"os"
	"sort"
	"strings"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/plotutil"
	"gonum.org/v1/plot/vg"

	"sipedge/bench/parsecmp"
)

// Results is everything one harness run measured; its JSON form is the
// machine-readable report (bench/results/DATE.json).
type Results struct {
	Date    string   `json:"date"`
	Mode    string   `json:"mode"` // "full" or "check"
	Machine Machine  `json:"machine"`
	Command string   `json:"command"`
	Notes   []string `json:"notes"`

	Parse    *ParsePart    `json:"parse,omitempty"`
	Pipeline *PipelinePart `json:"pipeline,omitempty"`
	E2E      []ProxyRun    `json:"e2e,omitempty"`
	Capacity *CapacityPart `json:"capacity,omitempty"`
	Summary  *Summary      `json:"summary,omitempty"`
	Seconds  float64       `json:"seconds"`
}

// Machine says where the figures come from.
type Machine struct {
	CPU     string `json:"cpu"`
	Cores   int    `json:"cores"`
	Kernel  string `json:"kernel"`
	LoadAvg string `json:"loadavg_at_start"`
	Sipp    string `json:"sipp"`
}

// Summary compares the appliance with Kamailio from the same run.
type Summary struct {
	// MaxCPS is each proxy's highest offered rate under 0.1% failures.
	MaxCPS map[string]float64 `json:"max_cps_under_0.1pct_failures"`
	// CommonCPS is the highest offered rate every compared proxy carried;
	// CPUSecPer1000 each proxy's CPU seconds per 1,000 calls there.
	CommonCPS     float64            `json:"common_cps"`
	CPUSecPer1000 map[string]float64 `json:"cpu_s_per_1000_calls_at_common_cps"`
	// Ratios are appliance/Kamailio: of MaxCPS ("max_cps") and of CPU per
	// call at CommonCPS ("cpu_per_call"), for each appliance port.
	Ratios map[string]map[string]float64 `json:"appliance_over_kamailio"`
	// SippLimited lists proxies whose top measured rate was limited by
	// sipp rather than by the proxy.
	SippLimited []string `json:"sipp_limited,omitempty"`
	// Contended lists proxies with at least one contended point.
	Contended []string `json:"contended,omitempty"`
	// NoLimit lists proxies that carried the highest rate offered: their
	// MaxCPS, and any ratio built on it, is a floor.
	NoLimit []string `json:"limit_not_reached,omitempty"`
	// PerRate compares each appliance variant with Kamailio at every rate
	// both ran.
	PerRate map[string][]RateRatio `json:"per_rate_against_kamailio,omitempty"`
}

// RateRatio is one appliance variant against Kamailio at one offered rate.
type RateRatio struct {
	CPS float64 `json:"offered_cps"`
	// CPUPerCall is the appliance's CPU per call over Kamailio's.
	CPUPerCall float64 `json:"cpu_per_call_ratio"`
	// Switches is its context switches per call over Kamailio's.
	Switches float64 `json:"switches_per_call_ratio,omitempty"`
	// P99DiffMs is its OPTIONS p99 minus Kamailio's, in ms.
	P99DiffMs *float64 `json:"options_p99_minus_kamailio_ms,omitempty"`
	// Carried says both carried the rate (under 0.1% failures).
	Carried bool `json:"both_carried"`
}

// Reclassify applies the current reading of sipp saturation to stored
// points (see RatePoint.classifySaturation).
func (r *Results) Reclassify() {
	for i := range r.E2E {
		for j := range r.E2E[i].Points {
			r.E2E[i].Points[j].classifySaturation()
		}
	}
}

// ReadJSON loads results written by WriteJSON.
func ReadJSON(path string) (*Results, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var r Results
	if err := json.Unmarshal(b, &r); err != nil {
		return nil, fmt.Errorf("harness: %s: %w", path, err)
	}
	return &r, nil
}

// WriteReports writes base.json, base.md and the two plots.
func (r *Results) WriteReports(base string) error {
	var errs []error
	if err := r.WriteJSON(base + ".json"); err != nil {
		errs = append(errs, err)
	}
	if f, err := os.Create(base + ".md"); err == nil {
		r.WriteMarkdown(f)
		if err := f.Close(); err != nil {
			errs = append(errs, err)
		}
	} else {
		errs = append(errs, err)
	}
	if err := r.WritePlots(base); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// Summarize fills r.Summary from r.E2E.
func (r *Results) Summarize() {
	s := &Summary{MaxCPS: map[string]float64{}, CPUSecPer1000: map[string]float64{}, Ratios: map[string]map[string]float64{}}
	var ran []ProxyRun
	for _, p := range r.E2E {
		if len(p.Points) == 0 {
			continue
		}
		ran = append(ran, p)
		s.MaxCPS[p.Proxy] = p.MaxCPS
		for _, pt := range p.Points {
			if pt.Contended {
				s.Contended = append(s.Contended, p.Proxy)
				break
			}
		}
		if !p.LimitFound {
			s.NoLimit = append(s.NoLimit, p.Proxy)
		}
		if last := p.Points[len(p.Points)-1]; last.SippLimited {
			s.SippLimited = append(s.SippLimited, p.Proxy)
		}
	}
	if len(ran) == 0 {
		return
	}
	// the highest rate offered to every proxy and carried by all of them
	rates := map[float64]int{}
	for _, p := range ran {
		for _, pt := range p.Points {
			if pt.FailurePct < MaxFailurePct {
				rates[pt.OfferedCPS]++
			}
		}
	}
	for rate, n := range rates {
		if n == len(ran) && rate > s.CommonCPS {
			s.CommonCPS = rate
		}
	}
	for _, p := range ran {
		for _, pt := range p.Points {
			if pt.OfferedCPS == s.CommonCPS {
				s.CPUSecPer1000[p.Proxy] = pt.CPUSecPer1000
			}
		}
	}
	k, okK := s.MaxCPS[Kamailio]
	byName := map[string]ProxyRun{}
	for _, p := range ran {
		byName[p.Proxy] = p
	}
	kam, haveK := byName[Kamailio]
	for _, p := range ran {
		if p.Proxy == Kamailio || !haveK {
			continue
		}
		var rr []RateRatio
		for _, x := range p.Points {
			for _, y := range kam.Points {
				if y.OfferedCPS != x.OfferedCPS || y.CPUUsPerCall <= 0 {
					continue
				}
				q := RateRatio{CPS: x.OfferedCPS, CPUPerCall: x.CPUUsPerCall / y.CPUUsPerCall,
					Carried: x.FailurePct < MaxFailurePct && y.FailurePct < MaxFailurePct}
				if ky := y.VolPerCall + y.InvolPerCall; ky > 0 {
					q.Switches = (x.VolPerCall + x.InvolPerCall) / ky
				}
				if x.Options != nil && y.Options != nil && x.Options.Answered > 0 && y.Options.Answered > 0 {
					d := x.Options.P99Ms - y.Options.P99Ms
					q.P99DiffMs = &d
				}
				rr = append(rr, q)
			}
		}
		if len(rr) > 0 {
			if s.PerRate == nil {
				s.PerRate = map[string][]RateRatio{}
			}
			s.PerRate[p.Proxy] = rr
		}
	}
	for _, p := range ran {
		a := p.Proxy
		if a == Kamailio {
			continue
		}
		m := map[string]float64{}
		if v, ok := s.MaxCPS[a]; ok && okK && k > 0 {
			m["max_cps"] = v / k
		}
		// CPU per call at the highest rate both this appliance and
		// Kamailio carried: one proxy stopping early does not drag the
		// other pair's comparison down to its rate.
		if rate, av, kv := pairCPU(byName[a], byName[Kamailio]); rate > 0 && kv > 0 {
			m["cpu_per_call"] = av / kv
			m["cpu_per_call_at_cps"] = rate
		}
		if len(m) > 0 {
			s.Ratios[a] = m
		}
	}
	r.Summary = s
}

// pairCPU finds the highest offered rate both a and b carried and their
// CPU seconds per 1,000 calls there.
func pairCPU(a, b ProxyRun) (rate, av, bv float64) {
	for _, x := range a.Points {
		if x.FailurePct >= MaxFailurePct || x.OfferedCPS <= rate {
			continue
		}
		for _, y := range b.Points {
			if y.OfferedCPS == x.OfferedCPS && y.FailurePct < MaxFailurePct {
				rate, av, bv = x.OfferedCPS, x.CPUSecPer1000, y.CPUSecPer1000
			}
		}
	}
	return
}

// proxyOrder lists the proxies of the e2e runs in their order.
func (r *Results) proxyOrder() []string {
	var out []string
	for _, p := range r.E2E {
		out = append(out, p.Proxy)
	}
	return out
}

func contains(s []string, v string) bool {
	for _, x := range s {
		if x == v {
			return true
		}
	}
	return false
}

// WriteJSON writes r to path.
func (r *Results) WriteJSON(path string) error {
	b, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(path, append(b, '\n'), 0o644)
}

// WriteMarkdown writes the report people read.
func (r *Results) WriteMarkdown(w io.Writer) {
	fmt.Fprintf(w, "# sipedge benchmark, %s (%s mode)\n\n", r.Date, r.Mode)
	fmt.Fprintf(w, "Machine: %s, %d cores, Linux %s, load average at start %s; %s.\n\n",
		r.Machine.CPU, r.Machine.Cores, r.Machine.Kernel, r.Machine.LoadAvg, r.Machine.Sipp)
	fmt.Fprintf(w, "Command: `%s` (%.0f s).\n\n", r.Command, r.Seconds)
	for _, n := range r.Notes {
		fmt.Fprintf(w, "- %s\n", n)
	}
	if len(r.Notes) > 0 {
		fmt.Fprintln(w)
	}
	if r.Parse != nil {
		fmt.Fprintf(w, "## Parser: sipcore against sipgo (benchtime %s per parser per message)\n\n", r.Parse.Benchtime)
		if r.Parse.Error != "" {
			fmt.Fprintf(w, "Failed: %s\n\n", r.Parse.Error)
		} else {
			parsecmp.WriteTable(w, r.Parse.Results)
			fmt.Fprintln(w)
		}
	}
	if p := r.Pipeline; p != nil {
		fmt.Fprintf(w, "## Pipeline per core (sipreplay --into pipeline: %d calls, a sipgen capture of %d calls with the backends' responses replayed %d times)\n\n", p.Calls, p.CaptureCalls, p.Loops)
		switch {
		case p.Skipped != "":
			fmt.Fprintf(w, "Skipped: %s\n\n", p.Skipped)
		case p.Error != "":
			fmt.Fprintf(w, "Failed: %s\n\n", p.Error)
		default:
			writePipeline(w, p)
		}
	}
	if len(r.E2E) > 0 {
		fmt.Fprintln(w, "## End to end: sipp UAC -> proxy -> 2 sipp UAS, zero call length")
		fmt.Fprintln(w)
		fmt.Fprintln(w, "| proxy | offered CPS | UACs | calls | completed | failed | failed % | retrans | completed CPS | proxy CPU % | proxy core busy % | CPU s / 1000 calls | sipp CPU % | note |")
		fmt.Fprintln(w, "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|")
		for _, p := range r.E2E {
			if p.Skipped != "" || (p.Error != "" && len(p.Points) == 0) {
				what := "skipped: " + p.Skipped
				if p.Skipped == "" {
					what = "failed: " + oneLine(p.Error)
				}
				fmt.Fprintf(w, "| %s | | | | | | | | | | | | | %s |\n", p.Proxy, what)
				continue
			}
			for _, pt := range p.Points {
				fmt.Fprintf(w, "| %s | %.0f | %d | %d | %d | %d | %.2f | %d | %.1f | %.1f | %.0f | %.3f | %.0f | %s |\n",
					p.Proxy, pt.OfferedCPS, pt.UACs, pt.Calls, pt.Completed, pt.Failed, pt.FailurePct,
					pt.Retransmissions, pt.CompletedCPS, pt.ProxyCPUPct, pt.ProxyCoreBusyPct, pt.CPUSecPer1000, pt.SippCPUPct, pt.Note)
			}
			if p.Error != "" {
				fmt.Fprintf(w, "| %s | | | | | | | | | | | | | stopped: %s |\n", p.Proxy, oneLine(p.Error))
			}
		}
		fmt.Fprintln(w)
		for _, p := range r.E2E {
			if p.Description != "" {
				fmt.Fprintf(w, "- %s: %s\n", p.Proxy, p.Description)
			}
		}
		fmt.Fprintln(w)
		r.writeSideBySide(w)
	}
	if r.Capacity != nil {
		writeCapacity(w, r.Capacity)
	}
	if s := r.Summary; s != nil {
		fmt.Fprintln(w, "## Summary")
		fmt.Fprintln(w)
		fmt.Fprintf(w, "| proxy | highest offered CPS with < %.1f%% failures | CPU s / 1000 calls at %.0f CPS |\n|---|---:|---:|\n", MaxFailurePct, s.CommonCPS)
		names := make([]string, 0, len(s.MaxCPS))
		for n := range s.MaxCPS {
			names = append(names, n)
		}
		sort.Strings(names)
		for _, n := range names {
			cpu := "-"
			if v, ok := s.CPUSecPer1000[n]; ok {
				cpu = fmt.Sprintf("%.3f", v)
			}
			floor := ""
			if contains(s.NoLimit, n) {
				floor = ">= "
			}
			fmt.Fprintf(w, "| %s | %s%.0f | %s |\n", n, floor, s.MaxCPS[n], cpu)
		}
		fmt.Fprintln(w)
		for _, a := range r.proxyOrder() {
			m := s.Ratios[a]
			if m == nil {
				continue
			}
			fmt.Fprintf(w, "- %s / kamailio:", a)
			if v, ok := m["max_cps"]; ok {
				fmt.Fprintf(w, " highest rate x%.2f;", v)
			}
			if v, ok := m["cpu_per_call"]; ok {
				fmt.Fprintf(w, " CPU per call x%.2f at %.0f CPS (the highest rate both carried)", v, m["cpu_per_call_at_cps"])
			}
			fmt.Fprintln(w)
		}
		if len(s.NoLimit) > 0 {
			fmt.Fprintf(w, "- %s carried the highest rate offered: its limit was not reached, so its figure (and a ratio built on it) is a floor; raise -rates to find it.\n", strings.Join(s.NoLimit, ", "))
		}
		if len(s.Contended) > 0 {
			fmt.Fprintf(w, "- other programs ran on the benchmark's cores during some points of: %s (marked contended): those figures are noisy; rerun on a quiet machine to trust them.\n", strings.Join(s.Contended, ", "))
		}
		if len(s.SippLimited) > 0 {
			fmt.Fprintf(w, "- sipp was the limit for: %s (see the note column): the highest rate shown is a floor for that proxy, not its ceiling.\n", strings.Join(s.SippLimited, ", "))
		}
		fmt.Fprintln(w)
	}
}

func writePipeline(w io.Writer, p *PipelinePart) {
	var stages []string
	seen := map[string]bool{}
	for _, r := range p.Runs {
		for s := range r.NsPerStage {
			if !seen[s] {
				seen[s] = true
				stages = append(stages, s)
			}
		}
	}
	// the proxy's stage order first, the whole loop last, others between
	rank := map[string]int{"sanity": 0, "response": 1, "self": 2, "route": 3, "total": 99}
	sort.Slice(stages, func(i, j int) bool {
		ri, oki := rank[stages[i]]
		rj, okj := rank[stages[j]]
		if !oki {
			ri = 50
		}
		if !okj {
			rj = 50
		}
		if ri != rj {
			return ri < rj
		}
		return stages[i] < stages[j]
	})
	fmt.Fprintf(w, "| workers | messages/s per core | allocs/msg |")
	for _, s := range stages {
		fmt.Fprintf(w, " ns/msg %s |", s)
	}
	fmt.Fprintf(w, "\n|---:|---|---:|%s\n", strings.Repeat("---:|", len(stages)))
	for _, r := range p.Runs {
		if r.Skipped != "" || r.Error != "" {
			fmt.Fprintf(w, "| %d | %s%s | |%s\n", r.Workers, r.Skipped, oneLine(r.Error), strings.Repeat(" |", len(stages)))
			continue
		}
		per := make([]string, len(r.MessagesPerCore))
		for i, v := range r.MessagesPerCore {
			per[i] = fmt.Sprintf("%.0f", v)
		}
		fmt.Fprintf(w, "| %d | %s | %.2f |", r.Workers, strings.Join(per, ", "), r.AllocsPerMsg)
		for _, s := range stages {
			fmt.Fprintf(w, " %.1f |", r.NsPerStage[s])
		}
		fmt.Fprintln(w)
	}
	fmt.Fprintln(w)
	for _, n := range p.Notes {
		fmt.Fprintf(w, "- sipreplay: %s\n", n)
	}
	if len(p.Notes) > 0 {
		fmt.Fprintln(w)
	}
}

func oneLine(s string) string {
	s = strings.ReplaceAll(s, "|", "/")
	l, _, _ := strings.Cut(s, "\n")
	return l
}

// PlotNames are the PNG files WritePlots writes next to base.
var PlotNames = []string{"throughput", "cpu", "cpu-per-call", "switches-per-call", "options-p99", "capacity-loss"}

type series struct {
	name string
	xy   plotter.XYs
}

// WritePlots draws, one line per proxy against offered calls/s: completed
// calls/s, proxy CPU %, CPU per call, context switches per call and
// OPTIONS p99; and the capacity runs' loss against achieved calls/s. A
// plot with nothing to draw is not written.
func (r *Results) WritePlots(base string) error {
	var thr, cpu, per, sw, p99 []series
	for _, p := range r.E2E {
		if len(p.Points) == 0 {
			continue
		}
		var a, b, c, d, e plotter.XYs
		for _, pt := range p.Points {
			a = append(a, plotter.XY{X: pt.OfferedCPS, Y: pt.CompletedCPS})
			b = append(b, plotter.XY{X: pt.OfferedCPS, Y: pt.ProxyCPUPct})
			if pt.CompletedCPS > 0 {
				c = append(c, plotter.XY{X: pt.OfferedCPS, Y: pt.CPUUsPerCall})
				d = append(d, plotter.XY{X: pt.OfferedCPS, Y: pt.VolPerCall + pt.InvolPerCall})
			}
			if pt.Options != nil && pt.Options.Answered > 0 {
				e = append(e, plotter.XY{X: pt.OfferedCPS, Y: pt.Options.P99Ms})
			}
		}
		thr = append(thr, series{p.Proxy, a})
		cpu = append(cpu, series{p.Proxy, b})
		if len(c) > 0 {
			per = append(per, series{p.Proxy, c})
			sw = append(sw, series{p.Proxy, d})
		}
		if len(e) > 0 {
			p99 = append(p99, series{p.Proxy, e})
		}
	}
	var loss []series
	if r.Capacity != nil {
		for _, run := range r.Capacity.Runs {
			var xy plotter.XYs
			for _, pt := range run.Points {
				xy = append(xy, plotter.XY{X: pt.AchievedCPS, Y: pt.LossPct})
			}
			if len(xy) > 0 {
				loss = append(loss, series{run.Proxy, xy})
			}
		}
	}
	plots := []struct {
		name, title, x, y string
		ss                []series
		ideal             bool
	}{
		{"throughput", "Completed calls/s against offered (sipp, zero call length)", "offered calls/s", "completed calls/s", thr, true},
		{"cpu", "Proxy CPU against offered calls/s (schedstat, one core)", "offered calls/s", "proxy CPU, % of one core", cpu, false},
		{"cpu-per-call", "Proxy CPU per completed call (schedstat)", "offered calls/s", "us of CPU per call", per, false},
		{"switches-per-call", "Proxy context switches per completed call (voluntary + involuntary)", "offered calls/s", "switches per call", sw, false},
		{"options-p99", "OPTIONS round trip through the proxy during the load, p99", "offered calls/s", "p99 ms", p99, false},
		{"capacity-loss", "Open-loop capacity: loss against achieved calls/s (sipreplay)", "achieved calls/s", "loss, % of datagrams sent", loss, false},
	}
	for _, pl := range plots {
		if len(pl.ss) == 0 {
			continue
		}
		path := base + "-" + pl.name + ".png"
		if err := drawPlot(path, pl.title, pl.x, pl.y, pl.ss, pl.ideal); err != nil {
			return fmt.Errorf("harness: plot %s: %w", path, err)
		}
	}
	return nil
}

func drawPlot(path, title, xlabel, ylabel string, ss []series, ideal bool) error {
	pl := plot.New()
	pl.Title.Text = title
	pl.X.Label.Text = xlabel
	pl.Y.Label.Text = ylabel
	pl.Add(plotter.NewGrid())
	pl.Legend.Top, pl.Legend.Left = true, true
	if ideal {
		maxX := 0.0
		for _, s := range ss {
			for _, p := range s.xy {
				maxX = max(maxX, p.X)
			}
		}
		l, err := plotter.NewLine(plotter.XYs{{X: 0, Y: 0}, {X: maxX, Y: maxX}})
		if err != nil {
			return err
		}
		l.Color = color.Gray{Y: 160}
		l.Dashes = []vg.Length{vg.Points(4), vg.Points(4)}
		pl.Add(l)
		pl.Legend.Add("offered", l)
	}
	for i, s := range ss {
		l, pts, err := plotter.NewLinePoints(s.xy)
		if err != nil {
			return err
		}
		l.Color = plotutil.Color(i)
		// more series than plotutil's palette: dash the second round
		if i >= 7 {
			l.Dashes = []vg.Length{vg.Points(5), vg.Points(3)}
		}
		pts.Color = plotutil.Color(i)
		pts.Shape = plotutil.Shape(i)
		pl.Add(l, pts)
		pl.Legend.Add(s.name, l, pts)
	}
	pl.Y.Min = 0
	pl.X.Min = 0
	return pl.Save(8*vg.Inch, 5*vg.Inch, path)
}

// rates lists every offered rate of the e2e runs, rising.
func (r *Results) rates() []float64 {
	seen := map[float64]bool{}
	var out []float64
	for _, p := range r.E2E {
		for _, pt := range p.Points {
			if !seen[pt.OfferedCPS] {
				seen[pt.OfferedCPS] = true
				out = append(out, pt.OfferedCPS)
			}
		}
	}
	sort.Float64s(out)
	return out
}

func pointAt(p ProxyRun, rate float64) *RatePoint {
	for i := range p.Points {
		if p.Points[i].OfferedCPS == rate {
			return &p.Points[i]
		}
	}
	return nil
}

func ratioAt(s *Summary, proxy string, rate float64) *RateRatio {
	if s == nil {
		return nil
	}
	for i, q := range s.PerRate[proxy] {
		if q.CPS == rate {
			return &s.PerRate[proxy][i]
		}
	}
	return nil
}

// writeSideBySide writes the proxies against each other rate by rate:
// CPU per call (and its ratio to Kamailio), context switches per call,
// OPTIONS round trips (and p99 minus Kamailio's), then idle use.
func (r *Results) writeSideBySide(w io.Writer) {
	rates := r.rates()
	if len(rates) == 0 {
		return
	}
	head := func(title string) {
		fmt.Fprintf(w, "%s\n\n| proxy |", title)
		for _, c := range rates {
			fmt.Fprintf(w, " %.0f CPS |", c)
		}
		fmt.Fprintf(w, "\n|---|%s\n", strings.Repeat("---:|", len(rates)))
	}
	row := func(cell func(p ProxyRun, pt *RatePoint, q *RateRatio) string) {
		for _, p := range r.E2E {
			if len(p.Points) == 0 {
				continue
			}
			fmt.Fprintf(w, "| %s |", p.Proxy)
			for _, c := range rates {
				pt := pointAt(p, c)
				if pt == nil {
					fmt.Fprint(w, " - |")
					continue
				}
				v := cell(p, pt, ratioAt(r.Summary, p.Proxy, c))
				if pt.FailurePct >= MaxFailurePct {
					v += " (fail " + fmt.Sprintf("%.1f%%", pt.FailurePct) + ")"
				}
				fmt.Fprintf(w, " %s |", v)
			}
			fmt.Fprintln(w)
		}
		fmt.Fprintln(w)
	}
	head("### CPU per completed call, us (schedstat, all threads), and x Kamailio at the same rate")
	row(func(p ProxyRun, pt *RatePoint, q *RateRatio) string {
		v := fmt.Sprintf("%.0f", pt.CPUUsPerCall)
		if q != nil {
			v += fmt.Sprintf(" (x%.2f)", q.CPUPerCall)
		}
		return v
	})
	head("### Context switches per completed call, voluntary + involuntary (all threads)")
	row(func(p ProxyRun, pt *RatePoint, q *RateRatio) string {
		v := fmt.Sprintf("%.2f + %.2f", pt.VolPerCall, pt.InvolPerCall)
		if q != nil && q.Switches > 0 {
			v += fmt.Sprintf(" (x%.2f)", q.Switches)
		}
		return v
	})
	anyOpt := false
	for _, p := range r.E2E {
		for _, pt := range p.Points {
			anyOpt = anyOpt || pt.Options != nil
		}
	}
	if anyOpt {
		head("### OPTIONS round trip through the proxy during the load, p50 / p99 ms (p99 minus Kamailio's)")
		row(func(p ProxyRun, pt *RatePoint, q *RateRatio) string {
			o := pt.Options
			if o == nil {
				return "-"
			}
			v := fmt.Sprintf("%.2f / %.2f", o.P50Ms, o.P99Ms)
			if o.Answered == 0 {
				v = "none answered"
			}
			if q != nil && q.P99DiffMs != nil {
				v += fmt.Sprintf(" (%+.2f)", *q.P99DiffMs)
			}
			if o.Lost > 0 || o.Other > 0 {
				v += fmt.Sprintf(", %d/%d lost", o.Lost+o.Other, o.Sent)
			}
			return v
		})
	}
	anyWorker := map[string]bool{}
	for _, p := range r.E2E {
		for _, pt := range p.Points {
			for k := range pt.Worker {
				anyWorker[k] = true
			}
		}
	}
	if len(anyWorker) > 0 {
		var keys []string
		for k := range anyWorker {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		head("### The appliance's own worker counters per completed call (/metrics sipedge_worker_*_total: " + strings.Join(keys, ", ") + ")")
		row(func(p ProxyRun, pt *RatePoint, q *RateRatio) string {
			if len(pt.Worker) == 0 {
				return "-"
			}
			var parts []string
			for _, k := range keys {
				if v, ok := pt.Worker[k]; ok {
					parts = append(parts, fmt.Sprintf("%s %.2f", k, v))
				}
			}
			return strings.Join(parts, ", ")
		})
	}
	anyIdle := false
	for _, p := range r.E2E {
		anyIdle = anyIdle || p.Idle != nil
	}
	if anyIdle {
		fmt.Fprintln(w, "### Idle: no traffic, backends up (the appliance probes them every second), schedstat")
		fmt.Fprintln(w)
		fmt.Fprintln(w, "| proxy | idle CPU, % of a core | voluntary switches/s | involuntary switches/s | threads | target < 0.5% (adaptive, block) |")
		fmt.Fprintln(w, "|---|---:|---:|---:|---:|---|")
		for _, p := range r.E2E {
			if p.Idle == nil {
				continue
			}
			target := ""
			if p.Wait == "adaptive" || p.Wait == "block" {
				target = "met"
				if p.Idle.CPUPct >= 0.5 {
					target = "NOT met"
				}
			}
			fmt.Fprintf(w, "| %s | %.3f | %.1f | %.1f | %d | %s |\n", p.Proxy, p.Idle.CPUPct, p.Idle.VolPerS, p.Idle.InvolPerS, p.Idle.Threads, target)
		}
		fmt.Fprintln(w)
	}
}

func writeCapacity(w io.Writer, c *CapacityPart) {
	fmt.Fprintf(w, "## Open-loop capacity: sipreplay of a %d-call sipgen capture at rising rates\n\n", c.Calls)
	for _, n := range c.Notes {
		fmt.Fprintf(w, "- %s\n", n)
	}
	fmt.Fprintln(w)
	if c.Error != "" {
		fmt.Fprintf(w, "Failed: %s\n\n", c.Error)
	}
	fmt.Fprintln(w, "| appliance | offered CPS | achieved CPS | sent | received | forwarded | not received | lost | loss % | CPU % | CPU ns / forwarded | switches / 1000 fwd | drops | note |")
	fmt.Fprintln(w, "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|---|")
	for _, run := range c.Runs {
		if run.Skipped != "" || (run.Error != "" && len(run.Points) == 0) {
			what := "skipped: " + run.Skipped
			if run.Skipped == "" {
				what = "failed: " + oneLine(run.Error)
			}
			fmt.Fprintf(w, "| %s | | | | | | | | | | | | | %s |\n", run.Proxy, what)
			continue
		}
		for _, p := range run.Points {
			var drops []string
			for k, v := range p.Drops {
				drops = append(drops, fmt.Sprintf("%s=%d", k, v))
			}
			sort.Strings(drops)
			fmt.Fprintf(w, "| %s | %.0f | %.0f | %d | %d | %d | %d | %d | %.3f | %.0f | %.0f | %.1f | %s | %s |\n",
				run.Proxy, p.OfferedCPS, p.AchievedCPS, p.Sent, p.Received, p.Forwarded, p.NotReceived, p.Lost, p.LossPct,
				p.CPUPct, p.NsPerForwarded, p.SwitchesPer1000, strings.Join(drops, " "), p.Note)
		}
		if run.Error != "" {
			fmt.Fprintf(w, "| %s | | | | | | | | | | | | | stopped: %s |\n", run.Proxy, oneLine(run.Error))
		}
	}
	fmt.Fprintln(w)
	fmt.Fprintf(w, "| appliance | port | wait | highest achieved CPS with < %.1f%% loss |\n|---|---|---|---:|\n", CapacityMaxLossPct)
	for _, run := range c.Runs {
		if len(run.Points) == 0 {
			continue
		}
		floor := ""
		if !run.LimitFound {
			floor = ">= "
		}
		fmt.Fprintf(w, "| %s | %s | %s | %s%.0f |\n", run.Proxy, run.Port, cmp.Or(run.Wait, "(default)"), floor, run.MaxCPS)
	}
	fmt.Fprintln(w)
	for _, run := range c.Runs {
		if run.Description != "" {
			fmt.Fprintf(w, "- %s: %s (%.1f datagrams per call)\n", run.Proxy, run.Description, run.DatagramsPerCall)
		}
	}
	fmt.Fprintln(w, "\nA figure marked >= is a floor: no rate offered lost 0.1% or more.")
	fmt.Fprintln(w)
}
