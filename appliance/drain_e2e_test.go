package appliance_test

import (
	"encoding/json"
	"net"
	"os/exec"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"sipedge/appliance"
)

// drainSection is the [drain] of the drain tests. A held call sends
// nothing: idle must outlast the calls' hold (2.5s here), or the node
// would call itself idle while calls still wait for their BYE.
const drainSection = "[drain]\nretry_after = \"7s\"\nidle = \"3s\"\ntimeout = \"30s\"\non_sigterm = \"10s\"\n"

// callHold is how long the drain tests' calls last, longer than their 1 to
// 2s of starts (so no BYE is counted while waiting for them to be set up)
// and shorter than the UAS's 4s receive timeout.
const callHold = 2500 * time.Millisecond

// waitSetUp waits (bounded) until the backends have been sent an INVITE
// and an ACK for each of calls calls: every call is then set up before
// what the test does next. The calls' hold must outlast their start, so
// that no BYE is counted yet; an INVITE retransmission could stand in for
// a missing ACK, never for a missing INVITE.
func waitSetUp(t *testing.T, r *loopRig, calls int) {
	t.Helper()
	r.app.waitBackends(t, "sent every call's INVITE and ACK", 30*time.Second, func(b map[string]appliance.BackendJSON) bool {
		var n uint64
		for _, x := range b {
			n += x.Requests
		}
		return n >= uint64(2*calls)
	})
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
	up := r.uac(t, "uac_up", 50, calls, callHold)
	waitSetUp(t, r, calls)
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
	t.Logf("drain figure: last call message %d ms after the drain began; drained %v after it (idle 3s, %d calls held %v at 50/s)",
		ds.LastCallMessageMs, time.Since(t0).Round(time.Millisecond), calls, callHold)
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
	const calls = 50
	uac := r.uac(t, "uac", 50, calls, callHold)
	waitSetUp(t, r, calls)
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
	t.Logf("drain figure: SIGTERM to exit %v, last call message %s after SIGTERM (%d calls held %v at 50/s, idle 3s)",
		took.Round(time.Millisecond), la[1], calls, callHold)
	if took > 9*time.Second {
		t.Errorf("SIGTERM took %v: the drain should end once idle (the last BYE + 3s), before on_sigterm (10s)", took)
	}
}

// With answer = 302 a draining node sends new callers to its peer; SIGUSR1
// drains and SIGUSR2 undrains, as `appliance drain` does.
func TestE2EDrainRedirectBySignal(t *testing.T) {
	r := newLoopRigWith(t, 1, e2eGuard+"[drain]\nanswer = 302\npeer = \"sip:192.0.2.7:5060\"\n")
	r.app.cmd.Process.Signal(syscall.SIGUSR1)
	r.app.log.waitLog(t, "reason=SIGUSR1", 5*time.Second)
	if code := r.app.get(t, "/healthz", nil); code != 503 {
		t.Errorf("/healthz %d after SIGUSR1, want 503", code)
	}
	if ans := inviteOnce(t, r.sip); !strings.HasPrefix(ans, "SIP/2.0 302 ") || !strings.Contains(ans, "\r\nContact: <sip:192.0.2.7:5060>\r\n") {
		t.Errorf("a new INVITE while draining got:\n%s\nwant 302 to the peer", ans)
	}
	r.app.cmd.Process.Signal(syscall.SIGUSR2)
	r.app.log.waitLog(t, "undrained", 5*time.Second)
	if code := r.app.get(t, "/healthz", nil); code != 200 {
		t.Errorf("/healthz %d after SIGUSR2, want 200", code)
	}
	if ans := inviteOnce(t, r.sip); strings.HasPrefix(ans, "SIP/2.0 302 ") {
		t.Errorf("a new INVITE after undrain got:\n%s\nwant it routed to the backend", ans)
	}
}
