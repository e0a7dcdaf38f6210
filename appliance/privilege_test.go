package appliance_test

import (
	"fmt"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"sipedge/afxdp/vethtest"
	"sipedge/appliance"
	"sipedge/dist"
)

// TestLeastPrivilegeAFXDP runs the appliance as the systemd unit would:
// not root, exactly the unit's capabilities (dist.Capabilities, ambient and
// bounding set, no new privileges), in afxdp mode with the default 16 MiB
// UMEM, under an 8 MiB memlock limit and without CAP_SYS_RESOURCE (the
// limit cannot be raised). It must start, serve sipp calls, and stop
// cleanly; /proc shows it holds nothing more.
func TestLeastPrivilegeAFXDP(t *testing.T) {
	requireSipp(t)
	vethtest.Require(t)
	for _, tool := range []string{"setpriv", "prlimit"} {
		if _, err := exec.LookPath(tool); err != nil {
			if os.Getenv("CI") == "true" {
				t.Fatalf("%s not found: apt-get install util-linux", tool)
			}
			t.Skipf("%s not found: apt-get install util-linux", tool)
		}
	}
	// An unused uid stands for the service user: no account is made, so
	// nothing is left on the machine.
	uid := 60000 + os.Getpid()%4000
	for ; uid < 65000; uid++ {
		if _, err := user.LookupId(strconv.Itoa(uid)); err != nil {
			break
		}
	}
	var caps []string
	var want uint64
	bits := map[string]uint{"CAP_NET_ADMIN": 12, "CAP_NET_RAW": 13, "CAP_IPC_LOCK": 14, "CAP_PERFMON": 38, "CAP_BPF": 39}
	for _, c := range dist.Capabilities {
		if _, ok := bits[c]; !ok {
			t.Fatalf("capability %s has no bit here: add it", c)
		}
		caps = append(caps, "+"+strings.ToLower(strings.TrimPrefix(c, "CAP_")))
		want |= 1 << bits[c]
	}
	capList := "-all," + strings.Join(caps, ",")
	prefix := []string{"prlimit", "--memlock=8388608:8388608", "--",
		"setpriv", "--reuid=" + strconv.Itoa(uid), "--regid=" + strconv.Itoa(uid), "--clear-groups",
		"--inh-caps=" + capList, "--ambient-caps=" + capList, "--bounding-set=" + capList, "--no-new-privs", "--"}

	// The service user must reach the binary and the configuration.
	shared, err := os.MkdirTemp("", "sipedge-priv")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(shared) })
	os.Chmod(shared, 0o755)
	bin := filepath.Join(shared, "sipedge")
	if b, err := os.ReadFile(applianceBinary(t)); err != nil || os.WriteFile(bin, b, 0o755) != nil {
		t.Fatalf("copying the binary: %v", err)
	}

	pair, uacAddr, ns, sip := afxdpPeer(t)
	admin := freeTCP(t, "127.0.0.1")
	uasAddr := pair.PeerV4.String() + ":5080"
	uas := sipp(t, shared, ns, "uas", "-sf", uasScenario(t), "-i", pair.PeerV4.String(), "-p", "5080", "-recv_timeout", "4s")
	cfg := fmt.Sprintf(`[node]
addresses = [%q]
secret = "least privilege test secret, 32b"
[io]
port = "afxdp"
interface = %q
queues = [0]
cores = [0]
listen = %q
# frame_size and frame_count left at their defaults: 16 MiB of UMEM, twice
# the memlock limit.
[admin]
listen = %q
[[dispatcher.backends]]
address = %q
[dispatcher.probe]
interval = "200ms"
timeout = "100ms"
down_after = 2
up_after = 1
`, pair.HostV4.String(), pair.Host, sip, admin, uasAddr) + e2eGuard
	a := startAppBin(t, shared, prefix, bin, cfg, 0o644, 1)
	a.admin = admin

	status, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", a.cmd.Process.Pid))
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(status), "\n") {
		f := strings.Fields(line)
		if len(f) < 2 {
			continue
		}
		switch f[0] {
		case "Uid:":
			if f[1] != strconv.Itoa(uid) || f[2] != strconv.Itoa(uid) {
				t.Errorf("the appliance runs as %s, want uid %d", line, uid)
			}
		case "CapEff:", "CapPrm:", "CapBnd:":
			if got, _ := strconv.ParseUint(f[1], 16, 64); got != want {
				t.Errorf("%s %016x, want exactly the unit's capabilities %016x", f[0], got, want)
			}
		}
	}

	a.waitBackends(t, "backend probed up", 10*time.Second, func(m map[string]appliance.BackendJSON) bool {
		return m[uasAddr].State == "up" && m[uasAddr].ProbesOK > 0
	})
	const calls = 100
	uac := sipp(t, shared, ns, "uac", "-sn", "uac", "-i", uacAddr.String(), "-p", "5070", "-r", "50", "-m", fmt.Sprint(calls),
		"-recv_timeout", "4s", "-timeout", "60s", "-timeout_error", sip)
	if code := uac.wait(t, 60*time.Second); code != 0 {
		t.Errorf("sipp uac exit %d:\n%s\nappliance:\n%s", code, errorsLog(shared, "uac"), a.log.String())
	}
	if st := sippStats(t, shared, "uac"); st["SuccessfulCall(C)"] != calls || st["FailedCall(C)"] != 0 {
		t.Errorf("uac: %d successful, %d failed calls, want %d and 0\n%s\nappliance:\n%s", st["SuccessfulCall(C)"], st["FailedCall(C)"], calls,
			errorsLog(shared, "uac"), a.log.String())
	}
	stopUAS(t, uas, shared, "uas")
	code, ok := a.signalWait(t, syscall.SIGTERM, 5*time.Second)
	if !ok || code != 0 {
		t.Fatalf("appliance: exit %d (exited: %v) after SIGTERM, want 0\n%s", code, ok, a.log.String())
	}
	if log := a.log.String(); !strings.Contains(log, "XDP program detached") {
		t.Errorf("the XDP program was not detached at stop:\n%s", log)
	}
}
