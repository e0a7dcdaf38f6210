package harness

import (
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// metricSample is one line of the Prometheus text format.
type metricSample struct {
	name   string
	labels map[string]string
	value  float64
}

// parseMetrics reads the samples of a Prometheus text exposition (the
// appliance's /metrics); comments and lines it cannot read are skipped.
func parseMetrics(text string) []metricSample {
	var out []metricSample
	for _, line := range strings.Split(text, "\n") {
		line = strings.TrimSpace(line)
		if line == "" || line[0] == '#' {
			continue
		}
		sp := strings.LastIndexByte(line, ' ')
		if sp < 0 {
			continue
		}
		v, err := strconv.ParseFloat(line[sp+1:], 64)
		if err != nil {
			continue
		}
		head := strings.TrimSpace(line[:sp])
		s := metricSample{name: head, value: v}
		if i := strings.IndexByte(head, '{'); i >= 0 && strings.HasSuffix(head, "}") {
			s.name = head[:i]
			s.labels = parseLabels(head[i+1 : len(head)-1])
		}
		out = append(out, s)
	}
	return out
}

// parseLabels reads a="x",b="y" (values without escaped quotes, as the
// appliance writes them).
func parseLabels(s string) map[string]string {
	m := map[string]string{}
	for s != "" {
		k, rest, ok := strings.Cut(s, "=\"")
		if !ok {
			break
		}
		v, rest, ok := strings.Cut(rest, "\"")
		if !ok {
			break
		}
		m[strings.TrimSpace(k)] = v
		s = strings.TrimPrefix(strings.TrimSpace(rest), ",")
	}
	return m
}

// fetchMetrics GETs admin's /metrics.
func fetchMetrics(admin string) ([]metricSample, error) {
	c := http.Client{Timeout: 2 * time.Second}
	resp, err := c.Get("http://" + admin + "/metrics")
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 4<<20))
	if err != nil {
		return nil, err
	}
	return parseMetrics(string(b)), nil
}

// sumMetric adds every sample of a family, over all its labels; ok is
// false when the family is absent.
func sumMetric(ms []metricSample, name string) (float64, bool) {
	t, ok := 0.0, false
	for _, m := range ms {
		if m.name == name {
			t += m.value
			ok = true
		}
	}
	return t, ok
}

// workerCounters sums the appliance's per-worker counters over workers:
// every sipedge_worker_*_total family but busy time (wakeups, spins, the
// worker thread's context switches of issue 10, loops), keyed by the
// family's middle name and, when it has one, its kind label
// ("thread_context_switches:voluntary"). nil when /metrics cannot be read.
// Matching by prefix keeps it working while issue 10's names settle.
func workerCounters(admin string) map[string]float64 {
	ms, err := fetchMetrics(admin)
	if err != nil {
		return nil
	}
	return workerFamilies(ms)
}

func workerFamilies(ms []metricSample) map[string]float64 {
	out := map[string]float64{}
	for _, m := range ms {
		mid, ok := strings.CutPrefix(m.name, "sipedge_worker_")
		if !ok || !strings.HasSuffix(mid, "_total") || strings.Contains(mid, "seconds") {
			continue
		}
		key := strings.TrimSuffix(mid, "_total")
		if k := m.labels["kind"]; k != "" {
			key += ":" + k
		}
		out[key] += m.value
	}
	return out
}
