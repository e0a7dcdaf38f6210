package appliance_test

import (
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"sipedge/appliance"
	"sipedge/pipeline/stages/media/mediatest"
)

// The media end-to-end tests: sipp UAC (127.0.0.2) -> appliance -> sipp
// UAS (127.0.0.1), with real rtpengine relays started by the test.

// Answers of the media UAS (media_uas.xml's ANSWER).
const (
	answer200 = `<send retrans="500">
    <![CDATA[

      SIP/2.0 200 OK
      [last_Via:]
      [last_Record-Route:]
      [last_From:]
      [last_To:];tag=[pid]SIPpTag01[call_number]
      [last_Call-ID:]
      [last_CSeq:]
      Contact: <sip:[local_ip]:[local_port];transport=[transport]>
      Content-Type: application/sdp
      Content-Length: [len]

      v=0
      o=user2 1 1 IN IP4 127.0.0.1
      s=-
      c=IN IP4 127.0.0.1
      t=0 0
      m=audio MEDIA_PORT RTP/AVP 8
      a=rtpmap:8 PCMA/8000

    ]]>
  </send>
  <recv request="INVITE" optional="true"/>
  <recv request="ACK" rtd="true" crlf="true"/>
  <recv request="BYE"/>
  <send next="end">
    <![CDATA[

      SIP/2.0 200 OK
      [last_Via:]
      [last_From:]
      [last_To:]
      [last_Call-ID:]
      [last_CSeq:]
      Content-Length: 0

    ]]>
  </send>`
	// answerCancel rings and waits for the CANCEL: 200 to it, 487 to the
	// INVITE (its CSeq written out: the last message is the CANCEL).
	answerCancel = `<recv request="CANCEL"/>
  <send>
    <![CDATA[

      SIP/2.0 200 OK
      [last_Via:]
      [last_From:]
      [last_To:];tag=[pid]SIPpTag01[call_number]
      [last_Call-ID:]
      [last_CSeq:]
      Content-Length: 0

    ]]>
  </send>
  <send>
    <![CDATA[

      SIP/2.0 487 Request Terminated
      [last_Via:]
      [last_From:]
      [last_To:];tag=[pid]SIPpTag01[call_number]
      [last_Call-ID:]
      CSeq: 1 INVITE
      Content-Length: 0

    ]]>
  </send>
  <recv request="ACK" next="end"/>`
	answer486 = `<send>
    <![CDATA[

      SIP/2.0 486 Busy Here
      [last_Via:]
      [last_From:]
      [last_To:];tag=[pid]SIPpTag01[call_number]
      [last_Call-ID:]
      [last_CSeq:]
      Content-Length: 0

    ]]>
  </send>
  <recv request="ACK" next="end"/>`
)

// portRE matches exactly the ports of a relay's range (a multiple of 100
// and the 99 after it).
func portRE(r *mediatest.Relay) string {
	if r.PortMin%100 != 0 || r.PortMax != r.PortMin+99 {
		panic("mediatest ranges are aligned hundreds")
	}
	return strconv.Itoa(r.PortMin/100) + "[0-9][0-9]"
}

// scenario writes testdata/name with the replacements (old, new, ...)
// into dir and returns its path.
func scenario(t *testing.T, dir, name, out string, repl ...string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	s := strings.NewReplacer(repl...).Replace(string(b))
	path := filepath.Join(dir, out)
	if err := writeFile(path, s); err != nil {
		t.Fatal(err)
	}
	return path
}

// rtpCounter counts the RTP datagrams the UAS side receives, and from
// where.
type rtpCounter struct {
	conn    *net.UDPConn
	n       atomic.Int64
	fromOut atomic.Int64 // datagrams from outside every relay's range
}

func newRTPCounter(t *testing.T, relays ...*mediatest.Relay) *rtpCounter {
	t.Helper()
	c, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	rc := &rtpCounter{conn: c}
	t.Cleanup(func() { c.Close() })
	go func() {
		buf := make([]byte, 2048)
		for {
			_, from, err := c.ReadFromUDPAddrPort(buf)
			if err != nil {
				return
			}
			in := false
			for _, r := range relays {
				if p := int(from.Port()); p >= r.PortMin && p <= r.PortMax {
					in = true
				}
			}
			if !in {
				rc.fromOut.Add(1)
			}
			rc.n.Add(1)
		}
	}()
	return rc
}

func (rc *rtpCounter) port() int { return rc.conn.LocalAddr().(*net.UDPAddr).Port }

// mediaRig is the appliance with [media] over the given relays, one
// sipp UAS answering with answer.
type mediaRig struct {
	dir, sip, admin string
	app             *app
	uas             *proc
	rtp             *rtpCounter
	relays          []*mediatest.Relay
}

func newMediaRig(t *testing.T, answer string, relays ...*mediatest.Relay) *mediaRig {
	t.Helper()
	var list []string
	for _, rl := range relays {
		list = append(list, fmt.Sprintf("{ address = %q }", rl.NG.String()))
	}
	return newMediaRigConf(t, answer, strings.Join(list, ", "), "", relays...)
}

// newMediaRigConf is newMediaRig with [media] relays = [relaysTOML] and
// extra configuration sections.
func newMediaRigConf(t *testing.T, answer, relaysTOML, extra string, relays ...*mediatest.Relay) *mediaRig {
	t.Helper()
	return newMediaRigUAS(t, "media_uas.xml", answer, relaysTOML, extra, relays...)
}

// newMediaRigUAS is newMediaRigConf with the UAS scenario uasFile.
func newMediaRigUAS(t *testing.T, uasFile, answer, relaysTOML, extra string, relays ...*mediatest.Relay) *mediaRig {
	t.Helper()
	requireSipp(t)
	r := &mediaRig{dir: t.TempDir(), sip: freeUDP(t, "127.0.0.1"), admin: freeTCP(t, "127.0.0.1"), relays: relays}
	r.rtp = newRTPCounter(t, relays...)
	uasAddr := freeUDP(t, backendIP)
	re := relayPortsRE(relays)
	// The answer goes in first: one replacer pass does not rescan what it
	// inserted.
	answer = strings.ReplaceAll(answer, "MEDIA_PORT", strconv.Itoa(r.rtp.port()))
	uasXML := scenario(t, r.dir, uasFile, "uas.xml", "ANSWER", answer, "PORT_RE", re)
	r.uas = sipp(t, r.dir, nil, "uas", "-sf", uasXML, "-i", backendIP, "-p", portOf(uasAddr), "-recv_timeout", "20s")
	var m strings.Builder
	m.WriteString(e2eGuard)
	m.WriteString(extra)
	m.WriteString("[media]\nenabled = true\ndelete_delay = 0\ndeadline = \"500ms\"\nretransmit = \"100ms\"\nrelays = [")
	m.WriteString(relaysTOML)
	m.WriteString("]\n[media.ping]\ninterval = \"200ms\"\ntimeout = \"100ms\"\ndown_after = 2\nup_after = 1\n")
	r.app = startApp(t, r.dir, nil, e2eConfigWith(m.String(), r.sip, r.admin, uasAddr), 1)
	r.app.admin = r.admin
	r.app.waitBackends(t, "probed up", 10*time.Second, func(b map[string]appliance.BackendJSON) bool { return b[uasAddr].State == "up" })
	return r
}

// relayPortsRE matches a port of any of the relays.
func relayPortsRE(relays []*mediatest.Relay) string {
	var alt []string
	for _, rl := range relays {
		alt = append(alt, portRE(rl))
	}
	return "(" + strings.Join(alt, "|") + ")"
}

// uac runs the media UAC: calls at rate, holding hold ms, playing the
// pcap when play; re is what the 200's media port must match.
func (r *mediaRig) uac(t *testing.T, name, re string, rate, calls int, hold time.Duration, play bool) *proc {
	t.Helper()
	pl := ""
	if play {
		pl = `<nop><action><exec play_pcap_audio="/usr/share/sip-tester/g711a.pcap"/></action></nop>`
	}
	xml := scenario(t, r.dir, "media_uac.xml", name+".xml", "PORT_RE", re, "PLAY", pl, "HOLD", strconv.Itoa(int(hold.Milliseconds())))
	return sipp(t, r.dir, nil, name, "-sf", xml, "-i", uacIP, "-p", portOf(freeUDP(t, uacIP)), "-mp", portOf(freeUDP(t, uacIP)),
		"-r", fmt.Sprint(rate), "-m", fmt.Sprint(calls), "-recv_timeout", "10s", "-timeout", "60s", "-timeout_error", r.sip)
}

func (r *mediaRig) relaysJSON(t *testing.T) map[string]appliance.RelayJSON {
	t.Helper()
	var list []appliance.RelayJSON
	r.app.get(t, "/relays", &list)
	out := map[string]appliance.RelayJSON{}
	for _, x := range list {
		out[x.Address] = x
	}
	return out
}

// waitRelayCalls polls the relays' lists (bounded) until their total is n.
func waitRelayCalls(t *testing.T, what string, n int, relays ...*mediatest.Relay) {
	t.Helper()
	end := time.Now().Add(10 * time.Second)
	for {
		total := 0
		for _, rl := range relays {
			c, err := rl.Calls()
			if err != nil {
				t.Fatalf("list on %v: %v", rl.NG, err)
			}
			total += len(c)
		}
		if total == n {
			return
		}
		if time.Now().After(end) {
			t.Fatalf("%s: the relays hold %d calls, want %d", what, total, n)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func (r *mediaRig) checkUAC(t *testing.T, p *proc, name string, calls int) {
	t.Helper()
	if code := p.wait(t, 90*time.Second); code != 0 {
		t.Errorf("sipp %s exit %d:\n%s\n%s\nappliance:\n%s", name, code, p.log.String(), errorsLog(r.dir, name), r.app.log.String())
	}
	st := sippStats(t, r.dir, name)
	if st["SuccessfulCall(C)"] != calls || st["FailedCall(C)"] != 0 {
		t.Errorf("%s: %d successful, %d failed calls, want %d and 0 (a failed regexp check means the SDP did not name the relay)\n%s",
			name, st["SuccessfulCall(C)"], st["FailedCall(C)"], calls, errorsLog(r.dir, name))
	}
}

// Calls through the appliance and one relay: each side's SDP names the
// relay (the sipp scenarios fail the call otherwise), the UAC's RTP
// reaches the UAS side from the relay's ports, and BYE deletes every call
// on the relay.
func TestE2EMediaRelay(t *testing.T) {
	relay := mediatest.Start(t)
	r := newMediaRig(t, answer200, relay)
	const calls = 3
	// sipp plays the pcap (g711a.pcap: about 6.8s of 20ms packets) beside
	// the call; two seconds of it before the BYE are about 100 packets.
	uac := r.uac(t, "uac", portRE(relay), 3, calls, 2*time.Second, true)
	// While the first call holds, the admin server shows the relay's
	// count of its RTP (ng query).
	id := fmt.Sprintf("1-%d@%s", uac.cmd.Process.Pid, uacIP)
	for end := time.Now().Add(5 * time.Second); ; {
		var c appliance.CallJSON
		if code := r.app.get(t, "/media/calls/"+id, &c); code == 200 && c.RTPPackets > 0 {
			if c.Relay != relay.NG.String() {
				t.Errorf("call %s on %s, want %v", id, c.Relay, relay.NG)
			}
			break
		}
		if time.Now().After(end) {
			t.Fatalf("GET /media/calls/%s never showed RTP within 5s", id)
		}
		time.Sleep(50 * time.Millisecond)
	}
	r.checkUAC(t, uac, "uac", calls)
	r.checkAnchored(t, relay, calls, "the INVITE's SDP must name the relay")
	var m string
	r.app.get(t, "/metrics", &m)
	if got := metric(t, m, "sipedge_media_relays_up"); got != 1 {
		t.Errorf("relays up %v, want 1", got)
	}
}

// checkAnchored checks what every anchored call leaves behind once sipp's
// UAC is done: RTP at the UAS side, all from the relay; no call left on
// it; the UAS's calls all passed (uasWhy says what its scenario checks);
// one offer, answer and delete per call and no fallback.
func (r *mediaRig) checkAnchored(t *testing.T, relay *mediatest.Relay, calls int, uasWhy string) {
	t.Helper()
	if n, out := r.rtp.n.Load(), r.rtp.fromOut.Load(); n < 25*int64(calls) || out != 0 {
		t.Errorf("the UAS side got %d RTP datagrams (%d not from the relay's ports), want at least %d, all from the relay", n, out, 25*calls)
	}
	t.Logf("RTP at the UAS side: %d datagrams, all from the relay's ports", r.rtp.n.Load())
	waitRelayCalls(t, "after BYE", 0, relay)
	us := stopUAS(t, r.uas, r.dir, "uas")
	if us["SuccessfulCall(C)"] < calls || us["FailedCall(C)"] != 0 { // probes count as calls too
		t.Errorf("uas: %d successful, %d failed, want at least %d and 0 (%s)\n%s", us["SuccessfulCall(C)"], us["FailedCall(C)"], calls, uasWhy, errorsLog(r.dir, "uas"))
	}
	want := map[string]float64{}
	for _, name := range []string{
		// A late offer's 2xx is rewritten on the response side and its
		// ACK on the request side: the same counts.
		"sipedge_media_offers_rewritten_total",
		"sipedge_media_answers_rewritten_total",
		"sipedge_media_request_deletes_total",
		`sipedge_media_ng_requests_total{command="offer"}`,
		`sipedge_media_ng_requests_total{command="answer"}`,
	} {
		want[name] = float64(calls)
	}
	m := r.app.scrapeWhen(t, want)
	for name, v := range want {
		if got := metric(t, m, name); got != v {
			t.Errorf("%s = %v, want %v", name, got, v)
		}
	}
	if f := sumMetric(m, "sipedge_media_offer_fallbacks_total") + sumMetric(m, "sipedge_media_answer_fallbacks_total"); f != 0 {
		t.Errorf("%v fallbacks, want none", f)
	}
}

// A late offer: the INVITE carries no SDP, the callee's 200 the offer and
// the caller's ACK the answer (what Cisco gateways send with delayed
// offer). The caller must see the relay in the 200, the callee in the ACK,
// and RTP the caller plays reaches the callee from the relay's ports.
func TestE2EMediaLateOffer(t *testing.T) {
	relay := mediatest.Start(t)
	var list = fmt.Sprintf("{ address = %q }", relay.NG.String())
	ackChecked := strings.Replace(answer200, `<recv request="ACK" rtd="true" crlf="true"/>`,
		`<recv request="ACK" rtd="true" crlf="true">
    <action>
      <ereg regexp="m=audio `+portRE(relay)+` " search_in="body" check_it="true" assign_to="relayed"/>
    </action>
  </recv>`, 1) // the scenario's one replacer pass does not rescan the answer it inserts
	r := newMediaRigUAS(t, "media_uas_late.xml", ackChecked, list, "", relay)
	const calls = 3
	xml := scenario(t, r.dir, "media_uac_late.xml", "uac.xml", "PORT_RE", portRE(relay),
		"PLAY", `<nop><action><exec play_pcap_audio="/usr/share/sip-tester/g711a.pcap"/></action></nop>`, "HOLD", "2000")
	uac := sipp(t, r.dir, nil, "uac", "-sf", xml, "-i", uacIP, "-p", portOf(freeUDP(t, uacIP)), "-mp", portOf(freeUDP(t, uacIP)),
		"-r", "3", "-m", fmt.Sprint(calls), "-recv_timeout", "10s", "-timeout", "60s", "-timeout_error", r.sip)
	r.checkUAC(t, uac, "uac", calls)
	r.checkAnchored(t, relay, calls, "the ACK's SDP must name the relay")
}

// A 486 from the UAS deletes the call on the relay.
func TestE2EMediaBusyDeletes(t *testing.T) {
	relay := mediatest.Start(t)
	r := newMediaRig(t, answer486, relay)
	const calls = 5
	xml := scenario(t, r.dir, "media_uac_fail.xml", "uac.xml", "CANCEL_OPTIONAL", "true", "CANCEL", "", "FINAL", "486")
	uac := sipp(t, r.dir, nil, "uac", "-sf", xml, "-i", uacIP, "-p", portOf(freeUDP(t, uacIP)),
		"-r", "10", "-m", fmt.Sprint(calls), "-recv_timeout", "10s", "-timeout", "60s", "-timeout_error", r.sip)
	r.checkUAC(t, uac, "uac", calls)
	waitRelayCalls(t, "after 486", 0, relay)
	m := r.app.scrapeWhen(t, map[string]float64{"sipedge_media_response_deletes_total": calls, `sipedge_media_ng_requests_total{command="offer"}`: calls})
	if got := metric(t, m, "sipedge_media_response_deletes_total"); got != calls {
		t.Errorf("sipedge_media_response_deletes_total = %v, want %d", got, calls)
	}
	if got := metric(t, m, `sipedge_media_ng_requests_total{command="offer"}`); got != calls {
		t.Errorf("offers %v, want %d", got, calls)
	}
}

// One of two relays is killed mid-run: once its pings fail it is down, the
// calls it carried are counted as orphaned, and every new call is
// anchored on the other relay (the UAC fails a call whose SDP names
// another range).
func TestE2EMediaRelayKilled(t *testing.T) {
	a, b := mediatest.Start(t), mediatest.Start(t)
	r := newMediaRig(t, answer200, a, b)
	const first = 16
	uac1 := r.uac(t, "uac1", relayPortsRE(r.relays), 20, first, 6*time.Second, false)
	waitRelayCalls(t, "calls established", first, a, b)
	// A relay holds a call from its offer; the 200's answer comes after.
	// Kill a before the last answers and those calls fail for want of
	// media, not SIP (CI: the last call's 200 never came). Wait for every
	// offer and answer to have had the relay's reply.
	for end := time.Now().Add(10 * time.Second); ; {
		var m string
		r.app.get(t, "/metrics", &m)
		if metric(t, m, "sipedge_media_relay_latency_seconds_count") >= 2*first {
			break
		}
		if time.Now().After(end) {
			t.Fatalf("the relays did not reply to %d offers and answers within 10s:\n%s", 2*first, m)
		}
		time.Sleep(20 * time.Millisecond)
	}
	held, err := a.Calls()
	if err != nil {
		t.Fatal(err)
	}
	if len(held) == 0 {
		t.Fatalf("relay a got none of %d calls: rendezvous hashing should spread them", first)
	}
	a.Kill()
	rs := r.waitRelays(t, "a down", func(m map[string]appliance.RelayJSON) bool { return m[a.NG.String()].State == "down" })
	if got := rs[a.NG.String()]; got.Orphaned != uint64(len(held)) || got.Downs != 1 {
		t.Errorf("relay a: %d orphaned calls, %d downs; want the %d calls it held, 1", got.Orphaned, got.Downs, len(held))
	}
	r.app.log.waitLog(t, "media relay down", 5*time.Second) // written just after /relays says down
	const second = 10
	uac2 := r.uac(t, "uac2", portRE(b), 10, second, 100*time.Millisecond, false)
	r.checkUAC(t, uac2, "uac2", second)
	r.checkUAC(t, uac1, "uac1", first) // SIP goes on; only a's calls' media is lost
	waitRelayCalls(t, "after every BYE", 0, b)
	// b's list does not move for a's calls' deletes: await their count.
	m := r.app.scrapeWhen(t, map[string]float64{`sipedge_media_ng_errors_total{reason="unknown-call"}`: float64(len(held))})
	if got := metric(t, m, `sipedge_media_relay_orphaned_calls_total{relay="`+a.NG.String()+`"}`); got != float64(len(held)) {
		t.Errorf("orphaned calls metric %v, want %d", got, len(held))
	}
	if got := metric(t, m, `sipedge_media_ng_errors_total{reason="unknown-call"}`); got != float64(len(held)) {
		t.Errorf("failed deletes %v, want the %d BYEs of a's calls (b does not know them)", got, len(held))
	}
	if got := metric(t, m, "sipedge_media_relays_up"); got != 1 {
		t.Errorf("relays up %v, want 1", got)
	}
}

// waitRelays polls /relays (bounded) until cond holds.
func (r *mediaRig) waitRelays(t *testing.T, what string, cond func(map[string]appliance.RelayJSON) bool) map[string]appliance.RelayJSON {
	t.Helper()
	end := time.Now().Add(10 * time.Second)
	for {
		m := r.relaysJSON(t)
		if cond(m) {
			return m
		}
		if time.Now().After(end) {
			t.Fatalf("relays never %s: %+v", what, m)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// A CANCEL deletes the call on the relay (and the 487 after it finds it
// gone: counted as unknown-call, not as a failure of the relay).
func TestE2EMediaCancelDeletes(t *testing.T) {
	relay := mediatest.Start(t)
	r := newMediaRig(t, answerCancel, relay)
	const calls = 5
	cancel := `<send>
    <![CDATA[

      CANCEL sip:[service]@[remote_ip]:[remote_port] SIP/2.0
      Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
      From: sipp <sip:sipp@[local_ip]:[local_port]>;tag=[pid]SIPpTag00[call_number]
      To: [service] <sip:[service]@[remote_ip]:[remote_port]>
      Call-ID: [call_id]
      CSeq: 1 CANCEL
      Max-Forwards: 70
      Content-Length: 0

    ]]>
  </send>
  <recv response="200"/>`
	xml := scenario(t, r.dir, "media_uac_fail.xml", "uac.xml", "CANCEL_OPTIONAL", "false", "CANCEL", cancel, "FINAL", "487")
	uac := sipp(t, r.dir, nil, "uac", "-sf", xml, "-i", uacIP, "-p", portOf(freeUDP(t, uacIP)),
		"-r", "10", "-m", fmt.Sprint(calls), "-recv_timeout", "10s", "-timeout", "60s", "-timeout_error", r.sip)
	r.checkUAC(t, uac, "uac", calls)
	waitRelayCalls(t, "after CANCEL", 0, relay)
	m := r.app.scrapeWhen(t, map[string]float64{"sipedge_media_request_deletes_total": calls})
	if got := metric(t, m, "sipedge_media_request_deletes_total"); got != calls {
		t.Errorf("deletes for CANCEL %v, want %d", got, calls)
	}
	if got := metric(t, m, `sipedge_media_ng_errors_total{reason="delete-failed"}`); got != 0 {
		t.Errorf("failed deletes %v, want 0", got)
	}
}
