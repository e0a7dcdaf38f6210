package appliance_test

import (
	"crypto/md5"
	"encoding/hex"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

// uaSocket is a raw SIP client on ip: it sends datagrams to the appliance
// and reads the answer to a given branch.
type uaSocket struct {
	t    *testing.T
	conn net.PacketConn
	to   *net.UDPAddr
}

func newUASocket(t *testing.T, ip, sip string) *uaSocket {
	t.Helper()
	conn, err := net.ListenPacket("udp", ip+":0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	to, err := net.ResolveUDPAddr("udp", sip)
	if err != nil {
		t.Fatal(err)
	}
	return &uaSocket{t: t, conn: conn, to: to}
}

var (
	topBranch = regexp.MustCompile(`(?im)^Via:[^\r\n]*branch=([^;\r\n]+)`)
	nonceOf   = regexp.MustCompile(`nonce="([^"]+)"`)
)

// ask sends msg and returns the final answer carrying msg's top branch
// ("" when none comes within 3s: forwarded and not answered here).
func (u *uaSocket) ask(msg string) string {
	u.t.Helper()
	m := topBranch.FindStringSubmatch(msg)
	if m == nil {
		u.t.Fatalf("no branch in\n%s", msg)
	}
	if _, err := u.conn.WriteTo([]byte(msg), u.to); err != nil {
		u.t.Fatal(err)
	}
	buf := make([]byte, 65535)
	end := time.Now().Add(3 * time.Second)
	for {
		u.conn.SetReadDeadline(end)
		n, _, err := u.conn.ReadFrom(buf)
		if err != nil {
			return ""
		}
		resp := string(buf[:n])
		if strings.HasPrefix(resp, "SIP/2.0 1") || !strings.Contains(resp, "branch="+m[1]) {
			continue
		}
		return resp
	}
}

func statusOf(resp string) string {
	line, _, _ := strings.Cut(resp, "\r\n")
	return line
}

// capturedRequest returns the first request sipp sent (-trace_msg) that
// carries header, with CRLF line ends as on the wire.
func capturedRequest(t *testing.T, dir, name, header string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dir, name+"_messages.log"))
	if err != nil {
		t.Fatal(err)
	}
	for _, block := range strings.Split(string(b), "----------------------------------------------- ") {
		_, msg, ok := strings.Cut(block, "message sent")
		if !ok || !strings.Contains(msg, header+":") {
			continue
		}
		_, msg, _ = strings.Cut(msg, "\n\n")
		lines := strings.Split(strings.TrimRight(strings.ReplaceAll(msg, "\r", ""), "\n"), "\n")
		return strings.Join(lines, "\r\n") + "\r\n\r\n"
	}
	t.Fatalf("sipp sent no request with %s:\n%.2000s", header, b)
	return ""
}

// A captured authenticated INVITE (sipp's, answering the appliance's 407)
// and REGISTER cannot be played again: not in a new call, not in a new
// transaction of the same call (same nonce, same nc), not from another
// port or address. Each gets a fresh challenge; none reaches the backend.
func TestE2EReplayedCredentialsRefused(t *testing.T) {
	dir := t.TempDir()
	users := writeUsers(t, dir, "alice", "correct horse")
	r := newLoopRigWith(t, 1, e2eGuard+authSection(users))
	uac := r.uacAuth(t, "uac", uacIP, "alice", "correct horse", 1, 1, "-trace_msg", "-message_file", "uac_messages.log")
	uac.wait(t, 30*time.Second)
	if st := sippStats(t, r.dir, "uac"); st["SuccessfulCall(C)"] != 1 {
		t.Fatalf("sipp's authenticated call failed:\n%s", errorsLog(r.dir, "uac"))
	}
	invite := capturedRequest(t, r.dir, "uac", "Proxy-Authorization")
	newBranch := func(msg, b string) string {
		return regexp.MustCompile(`branch=[^;\r\n]+`).ReplaceAllString(msg, "branch=z9hG4bK"+b)
	}
	newCall := func(msg, id string) string {
		return regexp.MustCompile(`(?m)^Call-ID: [^\r\n]+`).ReplaceAllString(msg, "Call-ID: "+id)
	}
	ua := newUASocket(t, uacIP, r.sip)
	for _, tc := range []struct{ name, msg string }{
		{"new Call-ID", newBranch(newCall(invite, "replay-1@evil"), "replay1")},
		{"same call, new transaction (same nonce, same nc)", newBranch(invite, "replay2")},
		{"as captured, from another port", invite},
	} {
		if got := statusOf(ua.ask(tc.msg)); !strings.HasPrefix(got, "SIP/2.0 407") {
			t.Errorf("INVITE replayed with %s: %q, want a fresh 407", tc.name, got)
		}
	}
	other := newUASocket(t, "127.0.0.3", r.sip)
	if got := statusOf(other.ask(invite)); !strings.HasPrefix(got, "SIP/2.0 407") {
		t.Errorf("INVITE replayed from another address: %q, want a fresh 407", got)
	}

	// REGISTER, answered by a raw client computing its own digest.
	reg := func(branch, callID, auth string) string {
		from := ua.conn.LocalAddr().String()
		return fmt.Sprintf("REGISTER sip:%s SIP/2.0\r\nVia: SIP/2.0/UDP %s;branch=z9hG4bK%s;rport\r\nMax-Forwards: 70\r\n"+
			"From: <sip:alice@%s>;tag=r1\r\nTo: <sip:alice@%s>\r\nCall-ID: %s\r\nCSeq: 1 REGISTER\r\n"+
			"Contact: <sip:alice@%s>\r\nExpires: 60\r\n%sContent-Length: 0\r\n\r\n", authRealm, from, branch, authRealm, authRealm, callID, from, auth)
	}
	ch := ua.ask(reg("reg1", "reg-call@127.0.0.2", ""))
	m := nonceOf.FindStringSubmatch(ch)
	if !strings.HasPrefix(statusOf(ch), "SIP/2.0 401") || m == nil {
		t.Fatalf("REGISTER without credentials: %q, want 401 with a nonce", statusOf(ch))
	}
	h := func(s string) string { x := md5.Sum([]byte(s)); return hex.EncodeToString(x[:]) }
	uri := "sip:" + authRealm
	resp := h(h("alice:"+authRealm+":correct horse") + ":" + m[1] + ":00000001:c0ffee:auth:" + h("REGISTER:"+uri))
	cred := fmt.Sprintf("Authorization: Digest username=\"alice\", realm=%q, nonce=%q, uri=%q, response=%q, algorithm=MD5, qop=auth, nc=00000001, cnonce=\"c0ffee\"\r\n",
		authRealm, m[1], uri, resp)
	if got := statusOf(ua.ask(reg("reg2", "reg-call@127.0.0.2", cred))); strings.HasPrefix(got, "SIP/2.0 40") {
		t.Fatalf("authenticated REGISTER: %q, want it forwarded", got)
	}
	for _, tc := range []struct{ name, msg string }{
		{"new Call-ID", reg("reg3", "hijack@evil", cred)},
		{"same call, new transaction (same nonce, same nc)", reg("reg4", "reg-call@127.0.0.2", cred)},
	} {
		if got := statusOf(ua.ask(tc.msg)); !strings.HasPrefix(got, "SIP/2.0 401") {
			t.Errorf("REGISTER replayed with %s: %q, want a fresh 401", tc.name, got)
		}
	}
	// A worker publishes its counters after the batch that sent the last
	// answer, so the scrape may come a moment before they add up.
	var met string
	var n float64
	for deadline := time.Now().Add(5 * time.Second); ; {
		r.app.get(t, "/metrics", &met)
		n = metric(t, met, "sipedge_auth_replays_total") + metric(t, met, "sipedge_auth_invalid_nonces_total")
		if n >= 6 || time.Now().After(deadline) {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if f := metric(t, met, "sipedge_auth_failures_total"); f != 0 {
		t.Errorf("sipedge_auth_failures_total %v: replays must not count as failures (their source can be forged)", f)
	}
	if n < 6 {
		t.Errorf("replays + invalid nonces counted %v, want the 6 replays", n)
	}
}
