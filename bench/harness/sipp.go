package harness

import (
	"encoding/csv"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
)

// SippStats is the last row of a sipp -trace_stat CSV, cumulative columns.
type SippStats struct {
	Created         int // TotalCallCreated
	Successful      int // SuccessfulCall(C)
	Failed          int // FailedCall(C)
	Retransmissions int // Retransmissions(C)
	// Elapsed is ElapsedTime(C) in seconds.
	Elapsed float64
	// Samples are the dumps in order: seconds since the start, calls
	// created by then.
	Samples []SippSample
}

// SippSample is one periodic dump.
type SippSample struct {
	T       float64
	Created int
}

// CreationSeconds estimates when the calls-th call was created, in
// seconds after the start, interpolating between dumps (sipp dumps once
// a second); 0 when the dumps never reach it.
func (s SippStats) CreationSeconds(calls int) float64 {
	prev := SippSample{}
	for _, x := range s.Samples {
		if x.Created >= calls {
			if x.Created == prev.Created {
				return x.T
			}
			f := float64(calls-prev.Created) / float64(x.Created-prev.Created)
			return prev.T + f*(x.T-prev.T)
		}
		prev = x
	}
	return 0
}

// ParseSippCSV reads a sipp statistics file (';'-separated, a header row
// then one row per dump) and returns its last row.
func ParseSippCSV(r io.Reader) (SippStats, error) {
	cr := csv.NewReader(r)
	cr.Comma = ';'
	cr.FieldsPerRecord = -1
	cr.LazyQuotes = true
	rows, err := cr.ReadAll()
	if err != nil {
		return SippStats{}, fmt.Errorf("sipp statistics: %w", err)
	}
	if len(rows) < 2 {
		return SippStats{}, fmt.Errorf("sipp statistics: %d rows, want a header and at least one dump", len(rows))
	}
	head, last := rows[0], rows[len(rows)-1]
	col := map[string]string{}
	for i, k := range head {
		if i < len(last) {
			col[k] = last[i]
		}
	}
	var s SippStats
	var missing []string
	geti := func(k string, dst *int) {
		v, ok := col[k]
		if !ok {
			missing = append(missing, k)
			return
		}
		n, err := strconv.Atoi(strings.TrimSpace(v))
		if err != nil {
			missing = append(missing, k+"="+v)
			return
		}
		*dst = n
	}
	geti("TotalCallCreated", &s.Created)
	geti("SuccessfulCall(C)", &s.Successful)
	geti("FailedCall(C)", &s.Failed)
	geti("Retransmissions(C)", &s.Retransmissions)
	if len(missing) > 0 {
		return SippStats{}, fmt.Errorf("sipp statistics: columns missing or not numbers: %s (is this sipp 3.x -trace_stat output?)", strings.Join(missing, ", "))
	}
	s.Elapsed = parseHMS(col["ElapsedTime(C)"])
	idx := func(k string) int {
		for i, h := range head {
			if h == k {
				return i
			}
		}
		return -1
	}
	iStart, iNow, iCreated := idx("StartTime"), idx("CurrentTime"), idx("TotalCallCreated")
	for _, row := range rows[1:] {
		if iStart < 0 || iNow < 0 || max(iStart, iNow, iCreated) >= len(row) {
			break
		}
		t0, ok1 := epochOf(row[iStart])
		t1, ok2 := epochOf(row[iNow])
		n, err := strconv.Atoi(strings.TrimSpace(row[iCreated]))
		if !ok1 || !ok2 || err != nil {
			continue
		}
		s.Samples = append(s.Samples, SippSample{T: t1 - t0, Created: n})
	}
	return s, nil
}

// parseHMS parses sipp's "HH:MM:SS" or "HH:MM:SS:uuuuuu" elapsed times; 0
// when it cannot.
func parseHMS(v string) float64 {
	f := strings.Split(strings.TrimSpace(v), ":")
	if len(f) < 3 {
		return 0
	}
	var t float64
	for i, mul := range []float64{3600, 60, 1} {
		n, err := strconv.Atoi(f[i])
		if err != nil {
			return 0
		}
		t += float64(n) * mul
	}
	if len(f) > 3 {
		if us, err := strconv.Atoi(f[3]); err == nil {
			t += float64(us) / 1e6
		}
	}
	return t
}

// epochOf reads the Unix time sipp writes as the last tab-separated part
// of its StartTime and CurrentTime columns ("date\ttime\tepoch").
func epochOf(v string) (float64, bool) {
	f := strings.Split(v, "\t")
	t, err := strconv.ParseFloat(strings.TrimSpace(f[len(f)-1]), 64)
	return t, err == nil
}

// ReadSippCSV parses the statistics file at path.
func ReadSippCSV(path string) (SippStats, error) {
	f, err := os.Open(path)
	if err != nil {
		return SippStats{}, fmt.Errorf("sipp statistics: %w", err)
	}
	defer f.Close()
	s, err := ParseSippCSV(f)
	if err != nil {
		return SippStats{}, fmt.Errorf("%s: %w", path, err)
	}
	return s, nil
}

// sippUACArgs is one sipp UAC's command line: the harness's UAC scenario
// (the sipstone call, zero call length, tolerant of a late 180), rate
// calls/s until calls are made, statistics dumped to stf.
func sippUACArgs(scenario, localIP string, localPort int, target string, rate float64, calls int, stf string, timeoutS int) []string {
	return []string{
		"-nostdin", "-sf", scenario,
		"-i", localIP, "-p", strconv.Itoa(localPort),
		"-r", strconv.FormatFloat(rate, 'f', 3, 64), "-rp", "1000",
		"-m", strconv.Itoa(calls), "-d", "0",
		"-l", strconv.Itoa(max(100, int(rate*5))), // bound on concurrent calls
		"-recv_timeout", "4000", // a call whose answer never comes fails in 4 s
		// A late 180 (reordered by a multi-process proxy) must not abort
		// a call that then completes; see testdata/uac.xml.
		"-default_behaviors", "all,-abortunexp",
		"-timeout", strconv.Itoa(timeoutS) + "s",
		"-trace_stat", "-stf", stf, "-fd", "1",
		"-trace_err", "-error_file", strings.TrimSuffix(stf, ".csv") + "_errors.log",
		"-buff_size", strconv.Itoa(4 << 20),
		target,
	}
}

// sippUASArgs is one sipp UAS backend's command line. -aa answers an
// OPTIONS (INFO, NOTIFY, UPDATE) that comes inside a call with 200; the
// scenario itself answers an OPTIONS that starts one (the appliance's
// probes, the harness's OPTIONS client).
func sippUASArgs(scenario, ip string, port int, stf string) []string {
	return []string{
		"-nostdin", "-sf", scenario, "-aa",
		"-i", ip, "-p", strconv.Itoa(port),
		"-recv_timeout", "8000",
		"-trace_stat", "-stf", stf, "-fd", "1",
		"-buff_size", strconv.Itoa(4 << 20),
	}
}
