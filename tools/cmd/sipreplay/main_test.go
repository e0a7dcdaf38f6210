package main

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"sipedge/tools/pcapio"
	"sipedge/tools/sipgen"
)

func capture(t *testing.T) string {
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
	w, _ := pcapio.NewWriter(f)
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
	in := capture(t)
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
	in := capture(t)
	var out, errb bytes.Buffer
	if code := run([]string{in}, &out, &errb, false); code != 1 || !strings.Contains(errb.String(), "issue 4") {
		t.Fatalf("pipeline mode: exit %d, %q", code, errb.String())
	}
	errb.Reset()
	if code := run([]string{"--into", "afxdp:lo", in}, &out, &errb, false); code != 1 || !strings.Contains(errb.String(), "not built yet") {
		t.Fatalf("afxdp mode: exit %d, %q", code, errb.String())
	}
	for _, args := range [][]string{{}, {"--map-src", "nonsense", in}, {"--loop", "0", in}, {"--sip-ports", "x", in}} {
		if code := run(args, &out, &errb, false); code != 2 {
			t.Errorf("%q: exit %d, want 2", args, code)
		}
	}
}
