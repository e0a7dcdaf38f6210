package appliance_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"sipedge/appliance"
	"sipedge/sipcore"
)

const authRealm = "sipedge.test"

// writeUsers writes a users file with user's HA1s (never the password).
func writeUsers(t *testing.T, dir, user, password string) string {
	t.Helper()
	path := filepath.Join(dir, "users")
	line := fmt.Sprintf("%s %s %s %s\n", user, authRealm,
		sipcore.HA1(sipcore.AlgMD5, user, authRealm, password), sipcore.HA1(sipcore.AlgSHA256, user, authRealm, password))
	if err := writeFile(path, "# written by the e2e test\n"+line); err != nil {
		t.Fatal(err)
	}
	return path
}

// authSection is [auth] for sipp: MD5 only, since sipp answers MD5
// challenges, and check_uri off, since sipp 3.6 puts the Request-URI's
// host (sip:127.0.0.1:port) in the digest uri, not the Request-URI, and
// offers no way to set it.
func authSection(usersFile string) string {
	return fmt.Sprintf("[auth]\nenabled = true\nrealm = %q\nalgorithms = [\"MD5\"]\ncheck_uri = false\nusers_file = %q\n", authRealm, usersFile)
}

func uacAuthScenario(t *testing.T) string {
	t.Helper()
	p, err := filepath.Abs("testdata/uac_auth.xml")
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// uacAuth runs testdata/uac_auth.xml from ip with user's password. A call
// that fails sends no BYE (-default_behaviors): after a 403 there is no
// dialog, and the UAS would count a BYE it cannot place as its own failure.
func (r *loopRig) uacAuth(t *testing.T, name, ip, user, password string, rate, calls int, extra ...string) *proc {
	t.Helper()
	args := []string{"-sf", uacAuthScenario(t), "-au", user, "-ap", password, "-key", "user", user, "-s", "bob",
		"-i", ip, "-p", portOf(freeUDP(t, ip)), "-r", fmt.Sprint(rate), "-m", fmt.Sprint(calls),
		"-trace_logs", "-log_file", name + "_logs.log", "-default_behaviors", "all,-bye",
		"-recv_timeout", "4s", "-timeout", "60s", "-timeout_error"}
	return sipp(t, r.dir, nil, name, append(append(args, extra...), r.sip)...)
}

func readLog(dir, name string) string {
	b, _ := os.ReadFile(filepath.Join(dir, name))
	return string(b)
}

// Digest authentication end to end: sipp answers the appliance's 407 with
// credentials from a users file the test wrote; every call gets through.
// A wrong password gets 403 on every call, counted as auth failures.
func TestE2EAuthCalls(t *testing.T) {
	requireSipp(t)
	dir := t.TempDir()
	users := writeUsers(t, dir, "alice", "correct horse")
	r := newLoopRigWith(t, 1, e2eGuard+authSection(users))
	const calls = 300
	uac := r.uacAuth(t, "uac", uacIP, "alice", "correct horse", 50, calls)
	if code := uac.wait(t, 60*time.Second); code != 0 {
		t.Errorf("sipp uac exit %d:\n%s\n%s", code, uac.log.String(), errorsLog(r.dir, "uac"))
	}
	st := sippStats(t, r.dir, "uac")
	if st["SuccessfulCall(C)"] != calls || st["FailedCall(C)"] != 0 {
		var mm string
		r.app.get(t, "/metrics", &mm)
		t.Fatalf("uac: %d successful, %d failed calls, want %d and 0\n%s\n%s\n%s", st["SuccessfulCall(C)"], st["FailedCall(C)"], calls, mm, errorsLog(r.dir, r.uasNames[0]), r.app.log.String())
	}
	var m string
	r.app.get(t, "/metrics", &m)
	if c := metric(t, m, "sipedge_auth_challenges_total"); c < calls {
		t.Errorf("sipedge_auth_challenges_total %v, want at least %d (one 407 per call)", c, calls)
	}
	if s := metric(t, m, "sipedge_auth_successes_total"); s < calls {
		t.Errorf("sipedge_auth_successes_total %v, want at least %d", s, calls)
	}
	if f := metric(t, m, "sipedge_auth_failures_total"); f != 0 {
		t.Errorf("sipedge_auth_failures_total %v with the right password, want 0", f)
	}

	// The wrong password: fewer calls than [guard] auth_failures (10), so
	// every one gets its 403 rather than the ban that would follow.
	const bad = 5
	wrong := r.uacAuth(t, "wrong", uacIP, "alice", "wrong", 10, bad)
	wrong.wait(t, 60*time.Second)
	ws := sippStats(t, r.dir, "wrong")
	if ws["SuccessfulCall(C)"] != 0 || ws["FailedCall(C)"] != bad {
		t.Errorf("wrong password: %d successful, %d failed calls, want 0 and %d\n%s", ws["SuccessfulCall(C)"], ws["FailedCall(C)"], bad, errorsLog(r.dir, "wrong"))
	}
	if n := strings.Count(readLog(r.dir, "wrong_logs.log"), "403 Forbidden for call"); n != bad {
		t.Errorf("sipp logged %d calls answered 403, want %d\n%s", n, bad, errorsLog(r.dir, "wrong"))
	}
	r.app.get(t, "/metrics", &m)
	if f := metric(t, m, "sipedge_auth_failures_total"); f < bad {
		t.Errorf("sipedge_auth_failures_total %v after %d wrong passwords, want at least %d", f, bad, bad)
	}
	if f := metric(t, m, "sipedge_guard_auth_failures_total"); f < bad {
		t.Errorf("sipedge_guard_auth_failures_total %v: the guard did not hear of the %d failures", f, bad)
	}
	us := stopUAS(t, r.uas[0], r.dir, r.uasNames[0])
	if us["FailedCall(C)"] != 0 {
		t.Errorf("uas: %d failed calls\n%s", us["FailedCall(C)"], errorsLog(r.dir, r.uasNames[0]))
	}
}

// adminDo sends method path with body (JSON) to the admin API and decodes
// the JSON answer into out.
func (a *app) do(t *testing.T, method, path string, body any, out any) int {
	t.Helper()
	var rd io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, "http://"+a.admin+path, rd)
	if err != nil {
		t.Fatal(err)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	c := http.Client{Timeout: 5 * time.Second}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if out != nil {
		if err := json.Unmarshal(b, out); err != nil {
			t.Fatalf("%s %s: %v\n%s", method, path, err, b)
		}
	}
	return resp.StatusCode
}

func (a *app) bans(t *testing.T) map[string]appliance.BanJSON {
	t.Helper()
	var list []appliance.BanJSON
	if code := a.do(t, "GET", "/bans", nil, &list); code != 200 {
		t.Fatalf("GET /bans: %d", code)
	}
	m := map[string]appliance.BanJSON{}
	for _, b := range list {
		m[b.Source] = b
	}
	return m
}

// flood sends n REGISTERs from src (bound to it) to dst, one every gap,
// and returns when done. Answers are not read: a flooder does not care.
func flood(t *testing.T, src, dst string, n int, gap time.Duration) {
	t.Helper()
	la, _ := net.ResolveUDPAddr("udp", src+":0")
	ra, _ := net.ResolveUDPAddr("udp", dst)
	c, err := net.DialUDP("udp", la, ra)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	tick := time.NewTicker(gap)
	defer tick.Stop()
	port := c.LocalAddr().(*net.UDPAddr).Port
	for i := 0; i < n; i++ {
		msg := fmt.Sprintf("REGISTER sip:%s SIP/2.0\r\nVia: SIP/2.0/UDP %s:%d;branch=z9hG4bKflood%d\r\nMax-Forwards: 70\r\n"+
			"From: <sip:flood@%s>;tag=f%d\r\nTo: <sip:flood@%s>\r\nCall-ID: flood-%d@%s\r\nCSeq: %d REGISTER\r\n"+
			"Contact: <sip:flood@%s:%d>\r\nExpires: 3600\r\nContent-Length: 0\r\n\r\n",
			dst, src, port, i, src, i, src, i, src, i+1, src, port)
		c.Write([]byte(msg)) // errors (ICMP refused) are fine: the flood goes on
		<-tick.C
	}
}

// Guard end to end: calls at a steady rate from 127.0.0.2 while 127.0.0.3
// floods REGISTERs at 20 times that rate. The calls all succeed; the
// flooder is rate limited, then banned, and GET /bans shows it.
func TestE2EGuardFlood(t *testing.T) {
	const floodIP = "127.0.0.3"
	guardCfg := "[guard]\nrate = 5000\nburst = 10000\ninvite_rate = 200\ninvite_burst = 400\n" +
		"register_rate = 10\nregister_burst = 20\nban_after = \"1s\"\nban_ttl = \"10m\"\n"
	r := newLoopRigWith(t, 1, guardCfg)
	const calls, rate = 200, 50
	uac := r.uac(t, "uac", rate, calls, 0)
	done := make(chan struct{})
	go func() { defer close(done); flood(t, floodIP, r.sip, 3000, time.Second/(20*rate)) }() // 1000/s for 3s
	<-done
	bans := r.app.bans(t)
	b, ok := bans[floodIP]
	if !ok {
		t.Fatalf("GET /bans does not list the flooder %s: %+v", floodIP, bans)
	}
	if b.Reason != "rate-register" || b.LeftSeconds < 60 {
		t.Errorf("the flooder's ban: %+v, want reason rate-register, about 10m left", b)
	}
	if _, ok := bans[uacIP]; ok {
		t.Errorf("the caller %s was banned too: %+v", uacIP, bans)
	}
	if code := uac.wait(t, 60*time.Second); code != 0 {
		t.Errorf("sipp uac exit %d:\n%s", code, errorsLog(r.dir, "uac"))
	}
	st := sippStats(t, r.dir, "uac")
	if st["SuccessfulCall(C)"] != calls || st["FailedCall(C)"] != 0 {
		t.Errorf("uac during the flood: %d successful, %d failed calls, want %d and 0\n%s", st["SuccessfulCall(C)"], st["FailedCall(C)"], calls, errorsLog(r.dir, "uac"))
	}
	var m string
	r.app.get(t, "/metrics", &m)
	if v := metric(t, m, `sipedge_guard_rejected_total{reason="rate-register"}`); v == 0 {
		t.Errorf("no REGISTER was rejected for its rate before the ban")
	}
	if v := metric(t, m, `sipedge_guard_bans_total{reason="rate-register"}`); v < 1 {
		t.Errorf("sipedge_guard_bans_total{reason=\"rate-register\"} %v, want at least 1", v)
	}
	// Banned: dropped by the sockets' filter (as root) or the worker.
	if v := metric(t, m, `sipedge_guard_dropped_total{reason="banned"}`) + metric(t, m, "sipedge_socket_filter_dropped_banned_total"); v < 1000 {
		t.Errorf("banned drops (guard + socket filter) %v, want most of the 3000 flood packets", v)
	}
	if v := metric(t, m, "sipedge_guard_bans_active"); v != 1 {
		t.Errorf("sipedge_guard_bans_active %v, want 1", v)
	}
}

// fewCalls runs n calls from the UAC address with a short receive timeout
// and returns its statistics.
func (r *loopRig) fewCalls(t *testing.T, name string, n int) map[string]int {
	t.Helper()
	p := sipp(t, r.dir, nil, name, "-sn", "uac", "-i", uacIP, "-p", portOf(freeUDP(t, uacIP)),
		"-r", "20", "-m", fmt.Sprint(n), "-recv_timeout", "1s", "-timeout", "30s", "-timeout_error", r.sip)
	p.wait(t, 40*time.Second)
	return sippStats(t, r.dir, name)
}

// The operator's ban and allow API: a ban of the caller stops its calls
// (dropped, counted), DELETE lets them through again; an allow entry lifts
// the caller over a limit it would hit, DELETE puts the limit back. Bad
// input gets 400, an unknown ban 404, both as JSON saying what to do.
func TestE2EAdminBanAllow(t *testing.T) {
	// 5 INVITEs at once, 1 a second: 20 calls at 20/s exceed it.
	guardCfg := "[guard]\ninvite_rate = 1\ninvite_burst = 5\n"
	r := newLoopRigWith(t, 1, guardCfg)
	a := r.app

	var e appliance.ErrorJSON
	if code := a.do(t, "POST", "/bans", map[string]string{"source": "not-an-ip"}, &e); code != 400 || !strings.Contains(e.Error, "192.0.2.7") {
		t.Errorf("POST /bans with a bad address: %d %q, want 400 and an example address", code, e.Error)
	}
	if code := a.do(t, "POST", "/bans", map[string]string{"source": uacIP, "ttl": "forever"}, &e); code != 400 {
		t.Errorf("POST /bans with ttl forever: %d %q, want 400", code, e.Error)
	}
	if code := a.do(t, "DELETE", "/bans?source=192.0.2.99", nil, &e); code != 404 || !strings.Contains(e.Error, "GET /bans") {
		t.Errorf("DELETE of an unknown ban: %d %q, want 404 pointing at GET /bans", code, e.Error)
	}
	if code := a.do(t, "POST", "/allow", map[string]string{"cidr": "10.0.0.0/33"}, &e); code != 400 {
		t.Errorf("POST /allow 10.0.0.0/33: %d %q, want 400", code, e.Error)
	}

	// Ban the caller: its calls stop, the drops are counted on the ban.
	var bj appliance.BanJSON
	if code := a.do(t, "POST", "/bans", appliance.BanRequest{Source: uacIP, TTL: "10m"}, &bj); code != 200 {
		t.Fatalf("POST /bans: %d", code)
	}
	st := r.fewCalls(t, "banned", 3)
	if st["SuccessfulCall(C)"] != 0 || st["FailedCall(C)"] != 3 {
		t.Errorf("banned caller: %d successful, %d failed calls, want 0 and 3", st["SuccessfulCall(C)"], st["FailedCall(C)"])
	}
	b := a.bans(t)[uacIP]
	if b.Reason != "operator" {
		t.Errorf("ban of the caller: %+v, want reason operator", b)
	}
	// Its INVITEs die in the sockets' filter (as root) or in the worker
	// (counted on the ban).
	var m string
	a.get(t, "/metrics", &m)
	if v := metric(t, m, `sipedge_guard_dropped_total{reason="banned"}`) + sumMetric(m, "sipedge_socket_filter_dropped_banned_total"); v < 3 || float64(b.Dropped) > v {
		t.Errorf("banned drops (guard + socket filter) %v, the ban's %d: want at least 3, the ban's among them", v, b.Dropped)
	}
	if code := a.do(t, "DELETE", "/bans?source="+uacIP, nil, nil); code != 200 {
		t.Fatalf("DELETE /bans: %d", code)
	}
	// Workers apply the unban at their next loop (within poll_interval).
	deadline := time.Now().Add(2 * time.Second)
	for {
		if _, still := a.bans(t)[uacIP]; !still {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the ban of %s is still listed 2s after DELETE", uacIP)
		}
		time.Sleep(10 * time.Millisecond)
	}
	if st := r.fewCalls(t, "unbanned", 3); st["SuccessfulCall(C)"] != 3 {
		t.Errorf("after DELETE /bans: %d of 3 calls succeeded\n%s", st["SuccessfulCall(C)"], errorsLog(r.dir, "unbanned"))
	}

	// Allow the caller: 20 calls at 20/s pass a 1/s INVITE limit.
	if code := a.do(t, "POST", "/allow", appliance.AllowRequest{CIDR: uacIP + "/32"}, nil); code != 200 {
		t.Fatalf("POST /allow: %d", code)
	}
	var allow []string
	a.do(t, "GET", "/allow", nil, &allow)
	if !strings.Contains(strings.Join(allow, " "), uacIP+"/32") {
		t.Errorf("GET /allow %v lacks %s/32", allow, uacIP)
	}
	if code := a.do(t, "POST", "/bans", appliance.BanRequest{Source: uacIP}, &e); code != 409 || !strings.Contains(e.Error, "DELETE /allow") {
		t.Errorf("banning an allow-listed address: %d %q, want 409 saying to remove it from the allow-list", code, e.Error)
	}
	if st := r.fewCalls(t, "allowed", 20); st["SuccessfulCall(C)"] != 20 {
		t.Errorf("allow-listed caller: %d of 20 calls succeeded\n%s", st["SuccessfulCall(C)"], errorsLog(r.dir, "allowed"))
	}
	if code := a.do(t, "DELETE", "/allow?cidr="+uacIP, nil, nil); code != 200 {
		t.Fatalf("DELETE /allow: %d", code)
	}
	if code := a.do(t, "DELETE", "/allow?cidr="+uacIP, nil, &e); code != 404 {
		t.Errorf("second DELETE /allow: %d, want 404", code)
	}
	a.get(t, "/metrics", &m)
	rej0 := metric(t, m, `sipedge_guard_rejected_total{reason="rate-invite"}`)
	st = r.fewCalls(t, "limited", 20)
	if st["FailedCall(C)"] == 0 {
		t.Errorf("after DELETE /allow all 20 calls passed a 1/s INVITE limit")
	}
	a.get(t, "/metrics", &m)
	if rej := metric(t, m, `sipedge_guard_rejected_total{reason="rate-invite"}`); rej <= rej0 {
		t.Errorf("no INVITE was rejected for its rate once the allow entry was gone")
	}
}

// SIGHUP reloads the users file and the [guard] allow-list in place (the
// operator's own allow entries stay), and says that other [guard] and
// [auth] changes need a restart. No sipp: nothing here sends calls.
func TestE2EReloadSecurity(t *testing.T) {
	dir := t.TempDir()
	users := writeUsers(t, dir, "alice", "pw-a")
	sip, admin := freeUDP(t, "127.0.0.1"), freeTCP(t, "127.0.0.1")
	backend := freeUDP(t, backendIP) // nobody answers: this test sends no calls
	cfgText := func(allow, inviteRate string) string {
		// allow_backends (off by default) puts the backend in the list.
		return e2eConfigWith("[guard]\nallow_backends = true\nallow = ["+allow+"]\ninvite_rate = "+inviteRate+"\n"+authSection(users), sip, admin, backend)
	}
	a := startApp(t, dir, nil, cfgText(`"192.0.2.0/24"`, "20"), 1)
	a.admin = admin
	a.log.waitLog(t, "users=1", time.Second)
	var allow []string
	a.do(t, "GET", "/allow", nil, &allow)
	if got := strings.Join(allow, " "); got != "192.0.2.0/24 127.0.0.1/32" {
		t.Fatalf("GET /allow %q, want the configured CIDR and the backend's address", got)
	}
	if code := a.do(t, "POST", "/allow", appliance.AllowRequest{CIDR: "198.51.100.7"}, nil); code != 200 {
		t.Fatalf("POST /allow: %d", code)
	}

	// A second user, a different configured allow entry, a new limit.
	line := fmt.Sprintf("bob %s %s -\n", authRealm, sipcore.HA1(sipcore.AlgMD5, "bob", authRealm, "pw-b"))
	f, err := os.OpenFile(users, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	f.WriteString(line)
	f.Close()
	if err := writeFile(a.cfgPath, cfgText(`"203.0.113.0/24"`, "30")); err != nil {
		t.Fatal(err)
	}
	a.cmd.Process.Signal(syscall.SIGHUP)
	a.log.waitLog(t, "reload ok", 5*time.Second)
	a.log.waitLog(t, "users=2", time.Second)
	a.do(t, "GET", "/allow", nil, &allow)
	if got := strings.Join(allow, " "); got != "127.0.0.1/32 198.51.100.7/32 203.0.113.0/24" {
		t.Errorf("GET /allow after reload %q, want the backend, the operator's entry and the new configured one", got)
	}
	if !strings.Contains(a.log.String(), `setting="[guard] (all but allow and allow_backends)"`) {
		t.Errorf("the changed invite_rate was not reported as needing a restart:\n%s", a.log.String())
	}

	// A broken users file is refused; the loaded users stay.
	if err := writeFile(users, "alice only-three-fields x\n"); err != nil {
		t.Fatal(err)
	}
	a.cmd.Process.Signal(syscall.SIGHUP)
	a.log.waitLog(t, "users file refused", 5*time.Second)
	if code, ok := a.signalWait(t, syscall.SIGTERM, 5*time.Second); !ok || code != 0 {
		t.Fatalf("appliance: exit %d after SIGTERM\n%s", code, a.log.String())
	}
}
