package afxdp

import (
	"os"
	"testing"
)

// requireRoot skips (or fails in CI) a test that needs CAP_BPF and
// CAP_NET_ADMIN but no interface.
func requireRoot(t testing.TB) {
	t.Helper()
	if os.Geteuid() == 0 {
		return
	}
	msg := "needs root (CAP_BPF, CAP_NET_ADMIN) to load XDP programs and open AF_XDP sockets"
	if os.Getenv("CI") == "true" {
		t.Fatal(msg)
	}
	t.Skip(msg)
}
