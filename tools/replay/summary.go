package replay

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"sort"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"sipedge/sipcore"
)

// maxErrors bounds the error messages a summary keeps; the counters keep
// counting past it.
const maxErrors = 20

// Summary is the result of a replay. Its JSON form (--json) is the
// machine-readable report; field names are part of the tool's interface.
type Summary struct {
	Into   string   `json:"into"`
	Inputs []string `json:"inputs"`
	Loops  int      `json:"loops"`

	Records       uint64 `json:"records"`         // capture records read, all loops
	Skipped       uint64 `json:"skipped_records"` // not UDP over IP, or undecodable
	Reassembled   uint64 `json:"reassembled"`     // datagrams rebuilt from IP fragments
	FragmentsLost uint64 `json:"fragments_lost"`  // datagrams whose fragments never all arrived
	UDP           uint64 `json:"udp_datagrams"`
	NonSIP        uint64 `json:"non_sip_datagrams"` // UDP but not SIP (RTP, DNS, ...)
	SIP           uint64 `json:"sip_datagrams"`

	Requests  map[string]uint64 `json:"requests"`  // by method
	Responses map[string]uint64 `json:"responses"` // by class: 1xx ... 6xx
	Unparsed  uint64            `json:"unparsed"`  // SIP datagrams sipcore.Parse refuses

	CallIDsRewritten uint64 `json:"call_ids_rewritten"`
	Rewritten        uint64 `json:"addresses_rewritten"`

	Sent       uint64 `json:"sent"`
	SendErrors uint64 `json:"send_errors"`
	Bytes      uint64 `json:"bytes"`

	Seconds float64 `json:"seconds"`
	PerSec  float64 `json:"datagrams_per_second"`

	// AFXDP is filled by the afxdp mode.
	AFXDP *AFXDPReport `json:"afxdp,omitempty"`

	// Pipeline is filled by the pipeline mode.
	Pipeline *PipelineReport `json:"pipeline,omitempty"`

	Errors []string `json:"errors"`
}

// PipelineReport is what the pipeline mode measures.
type PipelineReport struct {
	Workers          int                `json:"workers"`
	MessagesPerCore  []float64          `json:"messages_per_second_per_core"`
	NsPerStage       map[string]float64 `json:"ns_per_message_by_stage"`
	Verdicts         map[string]uint64  `json:"verdicts"`
	AllocsPerMessage float64            `json:"allocs_per_message"`
	// Notes say what the replay assumed (the address the pipeline answers
	// as, where the secret came from).
	Notes []string `json:"notes,omitempty"`

	stageOrder []string
}

func newSummary(o *Options) *Summary {
	return &Summary{Into: o.Into, Inputs: append([]string{}, o.Inputs...), Loops: o.Loop,
		Requests: map[string]uint64{}, Responses: map[string]uint64{}, Errors: []string{}}
}

func (s *Summary) addError(e string) {
	if len(s.Errors) < maxErrors {
		s.Errors = append(s.Errors, e)
	}
}

// count classifies one SIP datagram (parsed in a copy: Parse may unfold
// header lines in place).
func (s *Summary) count(p []byte, m *sipcore.Msg) {
	buf := append(make([]byte, 0, len(p)), p...)
	if sipcore.Parse(buf, m) != nil {
		s.Unparsed++
		return
	}
	if m.IsRequest {
		s.Requests[string(m.B(m.MethodSpan))]++
		return
	}
	s.Responses[strconv.Itoa(int(m.StatusCode/100))+"xx"]++
}

func (s *Summary) finish(d time.Duration) {
	s.Seconds = d.Seconds()
	if s.Seconds > 0 {
		s.PerSec = float64(s.Sent) / s.Seconds
	}
}

// OK reports whether the replay ran without errors.
func (s *Summary) OK() bool { return s.SendErrors == 0 && s.FragmentsLost == 0 }

// WriteTable writes the human summary.
func (s *Summary) WriteTable(w io.Writer) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	row := func(k string, v any) { fmt.Fprintf(tw, "%s\t%v\t\n", k, v) }
	row("into", s.Into)
	row("captures", len(s.Inputs))
	row("loops", s.Loops)
	row("records read", s.Records)
	row("skipped (not UDP/IP)", s.Skipped)
	row("reassembled from fragments", s.Reassembled)
	row("fragments lost", s.FragmentsLost)
	row("UDP datagrams", s.UDP)
	row("non-SIP datagrams", s.NonSIP)
	row("SIP datagrams", s.SIP)
	row("  requests", mapString(s.Requests))
	row("  responses", mapString(s.Responses))
	row("  unparsable", s.Unparsed)
	row("Call-IDs made unique", s.CallIDsRewritten)
	row("addresses rewritten", s.Rewritten)
	row("sent", s.Sent)
	row("send errors", s.SendErrors)
	row("bytes", s.Bytes)
	row("seconds", fmt.Sprintf("%.3f", s.Seconds))
	row("datagrams/s", fmt.Sprintf("%.0f", s.PerSec))
	if a := s.AFXDP; a != nil {
		row("afxdp interface", a.Interface)
		row("  SIP ports", fmt.Sprint(a.Ports))
		row("  via the TX ring", a.Ring)
		row("  via the kernel (slow path)", a.SlowPath)
		row("  dropped by the port", a.Dropped)
	}
	if r := s.Pipeline; r != nil {
		row("pipeline workers", r.Workers)
		for i, m := range r.MessagesPerCore {
			row(fmt.Sprintf("  worker %d messages/s", i), fmt.Sprintf("%.0f", m))
		}
		for _, k := range r.sortedStages() {
			row("  ns/message "+k, fmt.Sprintf("%.1f", r.NsPerStage[k]))
		}
		row("  verdicts", mapString(r.Verdicts))
		row("  allocations/message", fmt.Sprintf("%.6f", r.AllocsPerMessage))
	}
	tw.Flush()
	if s.Pipeline != nil {
		for _, n := range s.Pipeline.Notes {
			fmt.Fprintln(w, "note:", n)
		}
	}
	for _, e := range s.Errors {
		fmt.Fprintln(w, "error:", e)
	}
}

func mapString(m map[string]uint64) string {
	if len(m) == 0 {
		return "-"
	}
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var b strings.Builder
	for i, k := range keys {
		if i > 0 {
			b.WriteString(" ")
		}
		fmt.Fprintf(&b, "%s=%d", k, m[k])
	}
	return b.String()
}

// WriteJSON writes the summary as JSON into path.
func (s *Summary) WriteJSON(path string) error {
	b, err := json.MarshalIndent(s, "", "  ")
	if err != nil {
		return err
	}
	if err := os.WriteFile(path, append(b, '\n'), 0o644); err != nil {
		return fmt.Errorf("--json %s: %w", path, err)
	}
	return nil
}

// progress draws the progress display.
type progress struct {
	o     *Options
	src   *source
	start time.Time
	last  time.Time
	// frac and loop say how far the replay is; they default to the
	// source's (pipeline mode counts the workers' messages instead).
	frac func() float64
	loop func() int
	s    *Summary
}

func newProgress(o *Options, src *source, s *Summary) *progress {
	now := o.Now()
	p := &progress{o: o, src: src, start: now, last: now, s: s}
	if src != nil {
		p.frac = src.fraction
		p.loop = func() int { return min(src.loop+1, o.Loop) }
	}
	return p
}

// tick redraws when the interval passed, and always at the end.
func (p *progress) tick(final bool) {
	if p.o.Progress == nil {
		return
	}
	now := p.o.Now()
	if !final && now.Sub(p.last) < p.o.Every {
		return
	}
	p.last = now
	s := p.s
	el := now.Sub(p.start).Seconds()
	rate := 0.0
	if el > 0 {
		rate = float64(s.Sent) / el
	}
	pct := 100 * p.frac()
	if final {
		pct = 100
	}
	if p.o.Terminal {
		const width = 30
		n := int(pct / 100 * width)
		bar := strings.Repeat("#", n) + strings.Repeat(".", width-n)
		fmt.Fprintf(p.o.Progress, "\r[%s] %5.1f%%  %d sent  %.0f/s  %d errors", bar, pct, s.Sent, rate, s.SendErrors)
		if final {
			fmt.Fprintln(p.o.Progress)
		}
		return
	}
	fmt.Fprintf(p.o.Progress, "sipreplay: %.1f%% loop %d/%d, %d sent, %.0f/s, %d errors\n",
		pct, p.loop(), p.o.Loop, s.Sent, rate, s.SendErrors)
}
