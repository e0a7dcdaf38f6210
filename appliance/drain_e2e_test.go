package appliance_test

import (
	"encoding/csv"
	"encoding/json"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"sipedge/appliance"
)

// drainSection is the [drain] of the drain tests: a short idle so that a
// drain ends soon after the last call message.
const drainSection = "[drain]\nretry_after = \"7s\"\nidle = \"500ms\"\ntimeout = \"30s\"\non_sigterm = \"10s\"\n"

// waitOutgoing waits (bounded) until sipp name has started calls calls,
// as its statistics file (dumped every second) says.
func waitOutgoing(t *testing.T, dir, name string, calls int, within time.Duration) {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		if outgoing(dir, name) >= calls {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("sipp %s did not start %d calls within %v", name, calls, within)
		}
		time.Sleep(100 * time.Millisecond) // sipp writes the file once a second
	}
}

func outgoing(dir, name string) int {
	f, err := os.Open(filepath.Join(dir, name+".csv"))
	if err != nil {
		return 0
	}
	defer f.Close()
	r := csv.NewReader(f)
	r.Comma, r.FieldsPerRecord = ';', -1
	rows, err := r.ReadAll()
	if err != nil || len(rows) < 2 {
		return 0
	}
	for i, k := range rows[0] {
		if k == "OutgoingCall(C)" && i < len(rows[len(rows)-1]) {
			n, _ := strconv.Atoi(rows[len(rows)-1][i])
			return n
		}
	}
	return 0
}

// drainCommand runs `appliance drain` against the rig's configuration.
func drainCommand(t *testing.T, r *loopRig, args ...string) appliance.DrainStatus {
	t.Helper()
	out, err := exec.Command(applianceBinary(t), append([]string{"drain", "-c", r.app.cfgPath}, args...)...).Output()
	if err != nil {
		t.Fatalf("appliance drain %v: %v %s", args, err, out)
	}
	var st appliance.DrainStatus
	if err := json.Unmarshal(out, &st); err != nil {
		t.Fatalf("appliance drain %v printed %q: %v", args, out, err)
	}
	return st
}

// inviteOnce sends one INVITE from the caller's address and returns the
// first answer that is not 100 Trying.
func inviteOnce(t *testing.T, to string) string {
	t.Helper()
	c, err := net.ListenPacket("udp", uacIP+":0")
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	me := c.LocalAddr().String()
	msg := "INVITE sip:bob@" + to + " SIP/2.0\r\nVia: SIP/2.0/UDP " + me + ";branch=z9hG4bK-drain-probe;rport\r\nMax-Forwards: 70\r\n" +
		"To: <sip:bob@" + to + ">\r\nFrom: <sip:alice@" + me + ">;tag=dp1\r\nCall-ID: drain-probe@" + me + "\r\nCSeq: 1 INVITE\r\n" +
		"Contact: <sip:alice@" + me + ">\r\nContent-Length: 0\r\n\r\n"
	dst, _ := net.ResolveUDPAddr("udp", to)
	if _, err := c.WriteTo([]byte(msg), dst); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 4096)
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	for {
		n, _, err := c.ReadFrom(buf)
		if err != nil {
			t.Fatalf("no answer to an INVITE while draining: %v", err)
		}
		if s := string(buf[:n]); !strings.HasPrefix(s, "SIP/2.0 100 ") {
			return s
		}
	}
}

// Drain under a sipp load: every call set up before the drain completes
// (0 failed), new calls are refused with the configured 503 and its
// Retry-After, /healthz flips to 503 and back, the node reports drained
// once the calls are over, and after undrain calls go through again.
func TestE2EDrainUnderLoad(t *testing.T) {
	r := newLoopRigWith(t, 2, e2eGuard+drainSection)
	const calls = 100
	up := r.uac(t, "uac_up", 50, calls, 2*time.Second)
	waitOutgoing(t, r.dir, "uac_up", calls, 30*time.Second)
	if code := r.app.get(t, "/healthz", nil); code != 200 {
		t.Fatalf("/healthz %d before the drain, want 200", code)
	}

	t0 := time.Now()
	if st := drainCommand(t, r); st.State != "draining" {
		t.Fatalf("appliance drain: state %q, want draining", st.State)
	}
	var h appliance.Health
	if code := r.app.get(t, "/healthz", &h); code != 503 || !strings.Contains(h.Reason, "draining") {
		t.Errorf("/healthz while draining: %d %+v, want 503 saying draining", code, h)
	}
	if ans := inviteOnce(t, r.sip); !strings.HasPrefix(ans, "SIP/2.0 503 ") || !strings.Contains(ans, "\r\nRetry-After: 7\r\n") {
		t.Errorf("a new INVITE while draining got:\n%s\nwant 503 with Retry-After: 7", ans)
	}
	const refused = 20
	newCalls := r.uac(t, "uac_new", 20, refused, 0)
	newCalls.wait(t, 60*time.Second)
	if st := sippStats(t, r.dir, "uac_new"); st["SuccessfulCall(C)"] != 0 || st["FailedCall(C)"] != refused {
		t.Errorf("calls started while draining: %d ok, %d failed, want 0 and %d (refused)", st["SuccessfulCall(C)"], st["FailedCall(C)"], refused)
	}

	if code := up.wait(t, 60*time.Second); code != 0 {
		t.Errorf("uac_up exit %d\n%s", code, errorsLog(r.dir, "uac_up"))
	}
	if st := sippStats(t, r.dir, "uac_up"); st["SuccessfulCall(C)"] != calls || st["FailedCall(C)"] != 0 {
		t.Errorf("calls set up before the drain: %d ok, %d failed, want %d and 0\n%s", st["SuccessfulCall(C)"], st["FailedCall(C)"], calls, errorsLog(r.dir, "uac_up"))
	}
	var ds appliance.DrainStatus
	deadline := time.Now().Add(10 * time.Second)
	for r.app.get(t, "/drain", &ds); ds.State != "drained"; r.app.get(t, "/drain", &ds) {
		if time.Now().After(deadline) {
			t.Fatalf("never drained after the calls ended: %+v", ds)
		}
		time.Sleep(50 * time.Millisecond) // the admin API has no push channel
	}
	t.Logf("drain figure: last call message %d ms after the drain began; drained %v after it (idle 500ms, %d calls held 2s at 50/s)",
		ds.LastCallMessageMs, time.Since(t0).Round(time.Millisecond), calls)
	var m string
	r.app.get(t, "/metrics", &m)
	if metric(t, m, "sipedge_drain_state") != 2 || metric(t, m, "sipedge_drain_refused_total") < refused+1 {
		t.Errorf("drain metrics: state %v refused %v, want 2 and at least %d", metric(t, m, "sipedge_drain_state"), metric(t, m, "sipedge_drain_refused_total"), refused+1)
	}
	r.app.log.waitLog(t, "drained: no call message", time.Second)

	if st := drainCommand(t, r, "-undrain"); st.State != "serving" {
		t.Errorf("appliance drain -undrain: state %q", st.State)
	}
	if code := r.app.get(t, "/healthz", nil); code != 200 {
		t.Errorf("/healthz %d after undrain, want 200", code)
	}
	after := r.uac(t, "uac_after", 20, 20, 0)
	after.wait(t, 60*time.Second)
	if st := sippStats(t, r.dir, "uac_after"); st["SuccessfulCall(C)"] != 20 {
		t.Errorf("calls after undrain: %d ok of 20\n%s", st["SuccessfulCall(C)"], errorsLog(r.dir, "uac_after"))
	}
	for i, p := range r.uas {
		if us := stopUAS(t, p, r.dir, r.uasNames[i]); us["FailedCall(C)"] != 0 || us["OutOfCallMsgs(C)"] != 0 {
			t.Errorf("%s: %d failed calls, %d out-of-call messages", r.uasAddrs[i], us["FailedCall(C)"], us["OutOfCallMsgs(C)"])
		}
	}
	if code, ok := r.app.signalWait(t, syscall.SIGTERM, 5*time.Second); !ok || code != 0 {
		t.Fatalf("appliance: exit %d (stopped: %v) after SIGTERM\n%s", code, ok, r.app.log.String())
	}
}

var lastAfter = regexp.MustCompile(`last_call_message_after=(\S+)`)

// SIGTERM with calls under way drains first: the process stays up until
// the calls it carries are over (none fails), refuses new ones meanwhile,
// and exits 0 once idle, well before on_sigterm.
func TestE2ESigtermDrainsCallsInFlight(t *testing.T) {
	r := newLoopRigWith(t, 2, e2eGuard+drainSection)
	const calls = 100
	hold := 1500 * time.Millisecond
	uac := r.uac(t, "uac", 50, calls, hold)
	waitOutgoing(t, r.dir, "uac", calls, 30*time.Second)
	t0 := time.Now()
	code, ok := r.app.signalWait(t, syscall.SIGTERM, 15*time.Second)
	took := time.Since(t0)
	if !ok || code != 0 {
		t.Fatalf("appliance: exit %d (exited: %v) after SIGTERM with calls under way\n%s", code, ok, r.app.log.String())
	}
	uac.wait(t, 60*time.Second)
	st := sippStats(t, r.dir, "uac")
	if st["SuccessfulCall(C)"] != calls || st["FailedCall(C)"] != 0 {
		t.Errorf("calls under way at SIGTERM: %d ok, %d failed, want %d and 0\n%s", st["SuccessfulCall(C)"], st["FailedCall(C)"], calls, errorsLog(r.dir, "uac"))
	}
	log := r.app.log.String()
	if !strings.Contains(log, "reason=SIGTERM") || !strings.Contains(log, "drained: no call message") {
		t.Errorf("the log does not show SIGTERM's drain:\n%s", log)
	}
	la := lastAfter.FindStringSubmatch(log)
	if la == nil {
		t.Fatalf("no last_call_message_after in the log:\n%s", log)
	}
	t.Logf("drain figure: SIGTERM to exit %v, last call message %s after SIGTERM (%d calls held %v at 50/s, idle 500ms)",
		took.Round(time.Millisecond), la[1], calls, hold)
	if took > 8*time.Second {
		t.Errorf("SIGTERM took %v: the drain should end once idle, well before on_sigterm (10s)", took)
	}
}
