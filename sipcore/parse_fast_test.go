package sipcore

import (
	"strings"
	"testing"
)

// TestFastNames checks the word-compare table against headerKind, in lower,
// upper and mixed case, and that near misses fall through to the slow path.
func TestFastNames(t *testing.T) {
	n := 0
	for _, list := range fastNames {
		for _, f := range list {
			n++
			name := strings.TrimRight(string([]byte{byte(f.p0), byte(f.p0 >> 8), byte(f.p0 >> 16),
				byte(f.p0 >> 24), byte(f.p0 >> 32), byte(f.p0 >> 40), byte(f.p0 >> 48), byte(f.p0 >> 56),
				byte(f.p1), byte(f.p1 >> 8), byte(f.p1 >> 16), byte(f.p1 >> 24), byte(f.p1 >> 32),
				byte(f.p1 >> 40), byte(f.p1 >> 48), byte(f.p1 >> 56)}), "\x00")
			name = strings.TrimSuffix(name, ":")
			if f.kind != headerKind(name) {
				t.Errorf("%q: fast kind %d, headerKind %d", name, f.kind, headerKind(name))
			}
			for _, v := range []string{name, strings.ToUpper(name), strings.ToUpper(name[:1]) + name[1:]} {
				pad := v + ": x" + strings.Repeat(" ", 16)
				if got, k := fastNameAt([]byte(pad), 0); got != len(name) || k != f.kind {
					t.Errorf("fastNameAt(%q) = %d, %d; want %d, %d", v, got, k, len(name), f.kind)
				}
				// A space before the colon, a longer name, and a control
				// byte that |0x20 would turn into a letter or a colon.
				for _, miss := range []string{v + " :", v + "x:", strings.Replace(v+":", ":", "\x1a", 1)} {
					if got, _ := fastNameAt([]byte(miss+strings.Repeat(" ", 16)), 0); got != 0 {
						t.Errorf("fastNameAt(%q) = %d, want 0 (slow path)", miss, got)
					}
				}
			}
		}
	}
	if n < 20 {
		t.Fatalf("only %d fast names", n)
	}
}
