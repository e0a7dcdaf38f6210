package main

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"sipedge/pipeline/port/capture"
	"sipedge/tools/sipgen"
)

func genCapture(t *testing.T) string {
	t.Helper()
	c := sipgen.DefaultConfig()
	c.Calls, c.Registers, c.Options = 10, 5, 5
	g, err := sipgen.New(c)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "in.pcap")
	f, _ := os.Create(path)
	defer f.Close()
	w, _ := capture.NewWriter(f)
	for {
		fr, ts, ok := g.Next()
		if !ok {
			break
		}
		w.WriteFrame(ts, fr)
	}
	if err := w.Flush(); err != nil {
		t.Fatal(err)
	}
	return path
}

// TestJSONSchema pins the --json field names and types: scripts read them.
func TestJSONSchema(t *testing.T) {
	in := genCapture(t)
	dir := t.TempDir()
	js := filepath.Join(dir, "s.json")
	var out, errb bytes.Buffer
	code := run([]string{"--into", "pcap:" + filepath.Join(dir, "o.pcap"), in, "--speed", "0", "--loop", "2", "--json", js}, &out, &errb, false)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errb.String())
	}
	b, err := os.ReadFile(js)
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	numbers := []string{"loops", "records", "skipped_records", "reassembled", "fragments_lost", "udp_datagrams",
		"non_sip_datagrams", "sip_datagrams", "unparsed", "call_ids_rewritten", "addresses_rewritten",
		"sent", "send_errors", "bytes", "seconds", "datagrams_per_second"}
	for _, k := range numbers {
		if _, ok := m[k].(float64); !ok {
			t.Errorf("%s: %T, want a number", k, m[k])
		}
	}
	for _, k := range []string{"requests", "responses"} {
		if _, ok := m[k].(map[string]any); !ok {
			t.Errorf("%s: %T, want an object", k, m[k])
		}
	}
	if _, ok := m["inputs"].([]any); !ok {
		t.Errorf("inputs: %T", m["inputs"])
	}
	if e, ok := m["errors"].([]any); !ok || len(e) != 0 {
		t.Errorf("errors: %v", m["errors"])
	}
	if m["into"] != "pcap:"+filepath.Join(dir, "o.pcap") || m["sent"] != m["sip_datagrams"] || m["sent"].(float64) == 0 {
		t.Errorf("into %v, sent %v, sip %v", m["into"], m["sent"], m["sip_datagrams"])
	}
	if len(m) != len(numbers)+5 {
		t.Errorf("%d fields; a field was added or removed without updating this test: %v", len(m), m)
	}
	if !strings.Contains(out.String(), "SIP datagrams") {
		t.Errorf("no summary table on stdout:\n%s", out.String())
	}
}

func TestExitCodes(t *testing.T) {
	in := genCapture(t)
	var out, errb bytes.Buffer
	if code := run([]string{"--config", "/nonexistent/config.toml", in}, &out, &errb, false); code != 1 || !strings.Contains(errb.String(), "nonexistent") {
		t.Fatalf("pipeline mode with a missing config: exit %d, %q", code, errb.String())
	}
	errb.Reset()
	if code := run([]string{"--into", "afxdp:sipedge-none0", in}, &out, &errb, false); code != 1 || !strings.Contains(errb.String(), "sipedge-none0") {
		t.Fatalf("afxdp mode: exit %d, %q", code, errb.String())
	}
	for _, args := range [][]string{{}, {"--map-src", "nonsense", in}, {"--loop", "0", in}, {"--sip-ports", "x", in}, {"--workers", "-1", in}} {
		if code := run(args, &out, &errb, false); code != 2 {
			t.Errorf("%q: exit %d, want 2", args, code)
		}
	}
}

// TestPipelineJSONSchema pins the pipeline report's field names and types.
func TestPipelineJSONSchema(t *testing.T) {
	in := genCapture(t)
	js := filepath.Join(t.TempDir(), "p.json")
	var out, errb bytes.Buffer
	if code := run([]string{"--workers", "2", "--loop", "3", "--json", js, "--quiet", in}, &out, &errb, false); code != 0 {
		t.Fatalf("exit %d: %s", code, errb.String())
	}
	b, err := os.ReadFile(js)
	if err != nil {
		t.Fatal(err)
	}
	var m struct {
		Into     string  `json:"into"`
		Sent     float64 `json:"sent"`
		SIP      float64 `json:"sip_datagrams"`
		Pipeline map[string]any
	}
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	p := m.Pipeline
	if m.Into != "pipeline" || p == nil || m.Sent != m.SIP || m.Sent == 0 {
		t.Fatalf("into %q, sent %v, SIP %v, pipeline %v", m.Into, m.Sent, m.SIP, p)
	}
	if w, ok := p["workers"].(float64); !ok || w != 2 {
		t.Errorf("workers: %v", p["workers"])
	}
	if r, ok := p["messages_per_second_per_core"].([]any); !ok || len(r) != 2 {
		t.Errorf("messages_per_second_per_core: %v", p["messages_per_second_per_core"])
	}
	if _, ok := p["allocs_per_message"].(float64); !ok {
		t.Errorf("allocs_per_message: %T", p["allocs_per_message"])
	}
	for _, k := range []string{"ns_per_message_by_stage", "verdicts"} {
		o, ok := p[k].(map[string]any)
		if !ok || len(o) == 0 {
			t.Errorf("%s: %v, want a non-empty object", k, p[k])
		}
		for name, v := range o {
			if _, ok := v.(float64); !ok {
				t.Errorf("%s[%s]: %T, want a number", k, name, v)
			}
		}
	}
	var sum float64
	for _, v := range p["verdicts"].(map[string]any) {
		sum += v.(float64)
	}
	if sum != m.Sent {
		t.Errorf("verdicts add up to %v, %v messages ran", sum, m.Sent)
	}
	if _, ok := p["notes"].([]any); !ok {
		t.Errorf("notes: %T", p["notes"])
	}
	if len(p) != 6 {
		t.Errorf("%d pipeline fields; a field was added or removed without updating this test: %v", len(p), p)
	}
	for _, row := range []string{"worker 1 messages/s", "ns/message sanity", "allocations/message", "verdicts"} {
		if !strings.Contains(out.String(), row) {
			t.Errorf("summary table lacks %q:\n%s", row, out.String())
		}
	}
}
