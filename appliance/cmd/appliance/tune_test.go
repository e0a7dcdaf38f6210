package main

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"sipedge/afxdp/vethtest"
)

// TestTuneCommandInNamespace runs the built binary's tune and check inside
// a veth pair's namespace, on the peer end (two queues; [io] serves one):
// tune exits 3 with the plan, tune -apply sets what veth has, a second
// -apply changes nothing, and check warns about what is left by hand.
func TestTuneCommandInNamespace(t *testing.T) {
	vethtest.Require(t)
	pair := vethtest.New(t, vethtest.Options{HostRxQueues: 2, HostTxQueues: 2, PeerRxQueues: 2, PeerTxQueues: 2, IPv4Only: true})
	dir := t.TempDir()
	bin := filepath.Join(dir, "sipedge")
	if out, err := exec.Command(filepath.Join(runtime.GOROOT(), "bin", "go"), "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	cfg := filepath.Join(dir, "config.toml")
	toml := fmt.Sprintf("[io]\nport = \"afxdp\"\ninterface = %q\nqueues = [0]\ncores = [0]\nlisten = \"%s:5060\"\n"+
		"frame_size = 2048\nframe_count = 2048\nfill_ring = 1024\ncomp_ring = 1024\nrx_ring = 1024\ntx_ring = 512\n"+
		"[[dispatcher.backends]]\naddress = \"%s:5080\"\n", pair.Peer, pair.PeerV4, pair.HostV4)
	if err := os.WriteFile(cfg, []byte(toml), 0o600); err != nil {
		t.Fatal(err)
	}
	sipedge := func(args ...string) (string, int) {
		out, err := pair.Command(append([]string{bin}, args...)...).CombinedOutput()
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			return string(out), ee.ExitCode()
		} else if err != nil {
			t.Fatal(err)
		}
		return string(out), 0
	}
	out, code := sipedge("tune", "-c", cfg)
	if code != exitDiffers || !strings.Contains(out, "[change] channels of "+pair.Peer) || !strings.Contains(out, "ethtool -L "+pair.Peer+" rx 1") {
		t.Fatalf("tune: exit %d, want %d and the channel change:\n%s", code, exitDiffers, out)
	}
	if out, code = sipedge("tune", "-c", cfg, "-apply"); code != 0 || strings.Contains(out, "# applied 0 changes") {
		t.Fatalf("tune -apply: exit %d, want 0 and changes:\n%s", code, out)
	}
	if q, err := pair.Run("ethtool", "-l", pair.Peer); err != nil || !strings.Contains(q[strings.Index(q, "Current"):], "RX:\t\t1") {
		t.Errorf("ethtool -l after tune -apply: %v\n%s", err, q)
	}
	if out, code = sipedge("tune", "-c", cfg, "-apply"); code != 0 || !strings.Contains(out, "# applied 0 changes") {
		t.Errorf("second tune -apply: exit %d, want 0 and no change:\n%s", code, out)
	}
	out, code = sipedge("check", "-c", cfg)
	if code != 0 || !strings.Contains(out, "warning: tune: boot parameter isolcpus") || strings.Contains(out, "channels of") {
		t.Errorf("check: exit %d; want 0, the isolcpus warning and no channel warning:\n%s", code, out)
	}
}
