package pipeline_test

import (
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"sipedge/pipeline"
	"sipedge/sipcore/shareddata"
)

// Every torture-test message (RFC 4475, RFC 5118), from a caller and from
// a backend, gets exactly one outcome: one datagram out or one counted
// drop; valid ones are never dropped as unparsable; no frame leaks.
func TestTortureMessagesThroughWorker(t *testing.T) {
	seen := 0
	for _, set := range []string{"rfc4475", "rfc5118"} {
		dir := shareddata.Dir(t, filepath.Join("conformance", set))
		index, err := os.ReadFile(filepath.Join(dir, "INDEX.tsv"))
		if err != nil {
			t.Fatal(err)
		}
		for _, line := range strings.Split(string(index), "\n")[1:] {
			f := strings.Split(line, "\t")
			if len(f) < 3 || !strings.HasSuffix(f[0], ".dat") {
				continue
			}
			seen++
			msg, err := os.ReadFile(filepath.Join(dir, f[0]))
			if err != nil {
				t.Fatal(err)
			}
			for _, src := range []struct {
				name string
				addr netip.AddrPort
			}{{"caller", caller}, {"backend", backendA}} {
				r := newRig(t, pipeline.Config{})
				out := r.send(src.addr, string(msg))
				st := r.w.Stats()
				var drops uint64
				for _, d := range st.Drops {
					drops += d
				}
				if st.Rx != 1 || uint64(len(out))+drops != 1 {
					t.Errorf("%s/%s from %s: %d out, %d drops (%v)", set, f[0], src.name, len(out), drops, st.Drops)
				}
				if f[2] == "valid" && st.Drops[pipeline.DropUnparsable] != 0 {
					t.Errorf("%s/%s (valid) from %s dropped as unparsable", set, f[0], src.name)
				}
				if n := r.port.FramesInUse(); n > 1 {
					t.Errorf("%s/%s: %d frames in use", set, f[0], n)
				}
			}
		}
	}
	if seen < 60 {
		t.Fatalf("only %d torture messages found: the indexes changed?", seen)
	}
}
