package harness

import (
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"sipedge/bench/parsecmp"
)

func execOutput(name string, args ...string) (string, error) {
	out, err := exec.Command(name, args...).CombinedOutput()
	return string(out), err
}

// ParsePart is sipcore against sipgo on the same messages.
type ParsePart struct {
	Benchtime string            `json:"benchtime"`
	Results   []parsecmp.Result `json:"results"`
	Error     string            `json:"error,omitempty"`
}

// RunParse benchmarks both parsers on every message of dir for benchtime
// each. testing.Init must have run (the command does it).
func RunParse(dir, benchtime string) ParsePart {
	pp := ParsePart{Benchtime: benchtime}
	if err := setBenchtime(benchtime); err != nil {
		pp.Error = err.Error()
		return pp
	}
	msgs, err := parsecmp.Load(dir)
	if err == nil {
		err = parsecmp.Check(msgs)
	}
	if err != nil {
		pp.Error = err.Error()
		return pp
	}
	pp.Results = parsecmp.Run(msgs)
	return pp
}

func setBenchtime(v string) error {
	f := flag.Lookup("test.benchtime")
	if f == nil {
		testing.Init()
		f = flag.Lookup("test.benchtime")
	}
	if f == nil {
		return fmt.Errorf("harness: testing's -test.benchtime flag is missing")
	}
	return f.Value.Set(v)
}

// PipelinePart is sipreplay --into pipeline on a sipgen capture.
type PipelinePart struct {
	Calls int `json:"calls"`
	// CaptureCalls are the calls in the sipgen capture, replayed Loops
	// times to make Calls: the pipeline is stateless, so a loop is as
	// good as new calls, and 1,000,000 calls would be a 4 GB capture held
	// in memory.
	CaptureCalls int           `json:"capture_calls"`
	Loops        int           `json:"loops"`
	Capture      string        `json:"capture"`
	Notes        []string      `json:"notes,omitempty"`
	Runs         []PipelineRun `json:"runs"`
	Skipped      string        `json:"skipped,omitempty"`
	Error        string        `json:"error,omitempty"`
}

// PipelineRun is one worker count.
type PipelineRun struct {
	Workers int `json:"workers"`
	// MessagesPerCore is messages/s of each worker's core.
	MessagesPerCore []float64          `json:"messages_per_second_per_core"`
	NsPerStage      map[string]float64 `json:"ns_per_message_by_stage"`
	AllocsPerMsg    float64            `json:"allocs_per_message"`
	Seconds         float64            `json:"seconds"`
	Datagrams       uint64             `json:"sip_datagrams"`
	Skipped         string             `json:"skipped,omitempty"`
	Error           string             `json:"error,omitempty"`
}

// pipelineNotYet is what sipreplay says before its pipeline mode is wired.
const pipelineNotYet = "lands with issue 4's worker"

// replaySummary is the part of sipreplay's --json the harness reads.
type replaySummary struct {
	SIP      uint64   `json:"sip_datagrams"`
	Seconds  float64  `json:"seconds"`
	Errors   []string `json:"errors"`
	Pipeline *struct {
		Notes            []string           `json:"notes"`
		Workers          int                `json:"workers"`
		MessagesPerCore  []float64          `json:"messages_per_second_per_core"`
		NsPerStage       map[string]float64 `json:"ns_per_message_by_stage"`
		AllocsPerMessage float64            `json:"allocs_per_message"`
	} `json:"pipeline"`
}

// RunPipeline asks sipreplay whether its pipeline mode works (on a tiny
// capture, so a missing mode costs nothing), then writes a capture of
// calls calls with sipgen and replays it into the pipeline on each
// worker count. A mode not wired yet is a skip, not an error.
func RunPipeline(bin, dir string, calls int, workers []int, log func(string, ...any)) PipelinePart {
	pp := PipelinePart{Calls: calls}
	sipgen, sipreplay := filepath.Join(bin, "sipgen"), filepath.Join(bin, "sipreplay")
	for _, b := range []string{sipgen, sipreplay} {
		if _, err := os.Stat(b); err != nil {
			pp.Error = fmt.Sprintf("harness: %s: %v (run make build first, or give -bin)", b, err)
			return pp
		}
	}
	small := filepath.Join(dir, "pipeline-probe.pcap")
	if out, err := execOutput(sipgen, "-calls", "10", "-registers", "0", "-options", "0", "-o", small); err != nil {
		pp.Error = fmt.Sprintf("harness: sipgen: %v: %s", err, out)
		return pp
	}
	if _, err := replayInto(sipreplay, dir, small, 1, 1); err != nil {
		if strings.Contains(err.Error(), pipelineNotYet) {
			pp.Skipped = "sipreplay --into pipeline: " + firstLine(err.Error())
			return pp
		}
		pp.Error = err.Error()
		return pp
	}
	pp.CaptureCalls = min(calls, maxCaptureCalls)
	pp.Loops = (calls + pp.CaptureCalls - 1) / pp.CaptureCalls
	pp.Calls = pp.CaptureCalls * pp.Loops
	pp.Capture = filepath.Join(dir, fmt.Sprintf("calls-%d.pcap", pp.CaptureCalls))
	log("pipeline: sipgen, %d calls with the backends' responses -> %s", pp.CaptureCalls, pp.Capture)
	start := time.Now()
	if out, err := execOutput(sipgen, "-calls", strconv.Itoa(pp.CaptureCalls), "-registers", "0", "-options", "0", "-responses", "-o", pp.Capture); err != nil {
		pp.Error = fmt.Sprintf("harness: sipgen: %v: %s", err, out)
		return pp
	}
	log("pipeline: capture written in %v", time.Since(start).Round(time.Millisecond))
	defer os.Remove(pp.Capture)
	for _, w := range workers {
		log("pipeline: sipreplay --into pipeline --workers %d --loop %d", w, pp.Loops)
		r := PipelineRun{Workers: w}
		s, err := replayInto(sipreplay, dir, pp.Capture, w, pp.Loops)
		switch {
		case err != nil && strings.Contains(err.Error(), pipelineNotYet):
			r.Skipped = firstLine(err.Error())
		case err != nil:
			r.Error = err.Error()
		case s.Pipeline == nil:
			r.Error = "sipreplay --into pipeline wrote no \"pipeline\" object in its JSON"
		default:
			r.MessagesPerCore = s.Pipeline.MessagesPerCore
			r.NsPerStage = s.Pipeline.NsPerStage
			r.AllocsPerMsg = s.Pipeline.AllocsPerMessage
			r.Seconds, r.Datagrams = s.Seconds, s.SIP
			for _, n := range s.Pipeline.Notes {
				if !slices.Contains(pp.Notes, n) {
					pp.Notes = append(pp.Notes, n)
				}
			}
		}
		pp.Runs = append(pp.Runs, r)
	}
	return pp
}

// maxCaptureCalls bounds the capture sipgen writes (about 390 MB per
// 100,000 calls with their responses); more calls are loops over it.
const maxCaptureCalls = 100000

func replayInto(sipreplay, dir, capture string, workers, loops int) (*replaySummary, error) {
	js := filepath.Join(dir, fmt.Sprintf("replay-%d.json", workers))
	os.Remove(js)
	out, err := execOutput(sipreplay, "--into", "pipeline", "--speed", "0", "--quiet",
		"--workers", strconv.Itoa(workers), "--loop", strconv.Itoa(loops), "--json", js, capture)
	if err != nil {
		return nil, fmt.Errorf("sipreplay --into pipeline: %v: %s", err, strings.TrimSpace(out))
	}
	b, err := os.ReadFile(js)
	if err != nil {
		return nil, fmt.Errorf("sipreplay --json: %w", err)
	}
	var s replaySummary
	if err := json.Unmarshal(b, &s); err != nil {
		return nil, fmt.Errorf("sipreplay --json %s: %w", js, err)
	}
	return &s, nil
}

func firstLine(s string) string {
	for _, l := range strings.Split(s, "\n") {
		if strings.Contains(l, pipelineNotYet) {
			return strings.TrimSpace(l)
		}
	}
	l, _, _ := strings.Cut(s, "\n")
	return strings.TrimSpace(l)
}
