package appliance

import (
	"flag"
	"os"
	"strings"
	"testing"
	"time"

	"sipedge/pipeline"
)

var updateREADME = flag.Bool("update", false, "rewrite the modules block of ../README.md from ModulesMarkdown()")

// The README's module list is drawn from Modules, as its chain drawing is
// from the chain file.
func TestREADMEModules(t *testing.T) {
	const begin, end = "<!-- modules:begin -->\n", "<!-- modules:end -->"
	b, err := os.ReadFile("../README.md")
	if err != nil {
		t.Fatal(err)
	}
	s := string(b)
	i, j := strings.Index(s, begin), strings.Index(s, end)
	if i < 0 || j < i {
		t.Fatalf("README.md has no %q ... %q block", begin, end)
	}
	want := ModulesMarkdown()
	if got := s[i+len(begin) : j]; got != want {
		if *updateREADME {
			if err := os.WriteFile("../README.md", []byte(s[:i+len(begin)]+want+s[j:]), 0o644); err != nil {
				t.Fatal(err)
			}
			return
		}
		t.Errorf("README.md's module list is not appliance.Modules: run\n\n\tgo test ./appliance -run TestREADMEModules -update\n\nwant:\n%s", want)
	}
}

// The exporter names a stage's per-core counters from its StageDef: its own
// drop reasons under DropsMetric, labelled counters, gauges, and per-worker
// families, summed over the workers unless declared PerWorker.
func TestStageMetricsFromDefs(t *testing.T) {
	def := &pipeline.StageDef{
		Name: "x", Drops: []string{"a", "b"}, DropsMetric: "x_dropped_total", DropsHelp: "X drops.",
		Counters: []pipeline.CounterDef{
			{Name: "x_seen_total", Help: "Seen.", Label: "kind", Values: []string{"k1", "k2"}},
			{Name: "x_level", Help: "Level.", Gauge: true},
			{Name: "x_each_total", Help: "Each.", PerWorker: true},
		},
	}
	st := func(drops []uint64, cnt []uint64, fwd uint64) pipeline.Stats {
		var ss pipeline.StageStats
		ss.Name, ss.OwnDrops, ss.Counters = "x", drops, cnt
		ss.Verdicts[pipeline.Forward] = fwd
		return pipeline.Stats{Stages: []pipeline.StageStats{ss}}
	}
	stats := []pipeline.Stats{st([]uint64{1, 2}, []uint64{3, 4, 5, 6}, 7), st([]uint64{10, 20}, []uint64{30, 40, 50, 60}, 70)}
	var b strings.Builder
	writeStageMetrics(promWriter{&b}, []*pipeline.StageDef{def}, stats)
	out := b.String()
	for _, want := range []string{
		`sipedge_stage_messages_total{stage="x",verdict="forward"} 77`,
		"# TYPE x_dropped_total counter\n",
		`x_dropped_total{reason="a"} 11`, `x_dropped_total{reason="b"} 22`,
		`x_seen_total{kind="k1"} 33`, `x_seen_total{kind="k2"} 44`,
		"# TYPE x_level gauge\nx_level 55\n",
		`x_each_total{worker="0"} 6`, `x_each_total{worker="1"} 60`,
	} {
		if !strings.Contains(out, want) {
			t.Errorf("exporter output lacks %q:\n%s", want, out)
		}
	}
}

// A helper latency histogram is written as Prometheus wants it: buckets
// cumulative up to +Inf, which equals the count.
func TestLatencyHistogram(t *testing.T) {
	var h pipeline.Latency
	for _, d := range []time.Duration{50 * time.Microsecond, 3 * time.Millisecond, 3 * time.Millisecond, 2 * time.Second} {
		h.Observe(d)
	}
	var b strings.Builder
	promWriter{&b}.latency("x_seconds", "X.", h.Snapshot())
	for _, want := range []string{
		"# TYPE x_seconds histogram\n",
		"x_seconds_bucket{le=\"0.0001\"} 1\n",
		"x_seconds_bucket{le=\"0.0025\"} 1\n",
		"x_seconds_bucket{le=\"0.005\"} 3\n",
		"x_seconds_bucket{le=\"1\"} 3\n",
		"x_seconds_bucket{le=\"+Inf\"} 4\n",
		"x_seconds_count 4\n",
		"x_seconds_sum 2.00605\n",
	} {
		if !strings.Contains(b.String(), want) {
			t.Errorf("histogram lacks %q:\n%s", want, b.String())
		}
	}
}
