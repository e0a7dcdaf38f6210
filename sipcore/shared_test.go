package sipcore

import (
	"os"
	"path/filepath"
	"testing"
)

// sharedDir locates the read-only shared data (conformance messages,
// captures): $SIPEDGE_SHARED first, else <repo root>/../shared, which is
// ../../shared from this package. Absent data fails the test under CI=true
// and skips it otherwise.
func sharedDir(t testing.TB, sub string) string {
	t.Helper()
	dir := os.Getenv("SIPEDGE_SHARED")
	if dir == "" {
		dir = filepath.Join("..", "..", "shared")
	}
	p := filepath.Join(dir, sub)
	if _, err := os.Stat(p); err != nil {
		abs, _ := filepath.Abs(p)
		if os.Getenv("CI") == "true" {
			t.Fatalf("shared data not found at %s (set SIPEDGE_SHARED to the shared directory): %v", abs, err)
		}
		t.Skipf("shared data not found at %s (set SIPEDGE_SHARED to run this test): %v", abs, err)
	}
	return p
}
