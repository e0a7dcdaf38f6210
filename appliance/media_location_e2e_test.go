package appliance_test

import (
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	"sipedge/appliance"
	"sipedge/internal/redistest"
	"sipedge/pipeline/stages/media/mediatest"
)

// mediaSection is the [media] of newMediaRig's appliance over relays.
func mediaSection(relays []*mediatest.Relay) string {
	var list []string
	for _, rl := range relays {
		list = append(list, fmt.Sprintf("{ address = %q }", rl.NG.String()))
	}
	return "[media]\nenabled = true\ndelete_delay = 0\ndeadline = \"500ms\"\nretransmit = \"100ms\"\nrelays = [" + strings.Join(list, ", ") +
		"]\n[media.ping]\ninterval = \"200ms\"\ntimeout = \"100ms\"\ndown_after = 2\nup_after = 1\n"
}

// probeSDP is the offer of the INVITEs location answers itself.
const probeSDP = "v=0\r\no=probe 1 1 IN IP4 127.0.0.2\r\ns=-\r\nc=IN IP4 127.0.0.2\r\nt=0 0\r\nm=audio 40000 RTP/AVP 8\r\na=rtpmap:8 PCMA/8000\r\n"

// The seams of the registrar and media stages: an edge with [media] on a
// real rtpengine and [registrar] in memory (a phone of the [auth] users
// registers with digest).
//
// A call to the phone's address-of-record: the media stage anchors the
// offer, then location forwards it to the registered contact; the phone's
// 200 comes back through mediaanswer. Both SDPs name the relay (the sipp
// scenarios fail the call otherwise) and BYE, routed by the AOR like the
// INVITE, deletes the call. Then INVITEs with SDP that location answers
// itself (404: no such user; 480: a user without a binding) leave nothing
// on the relay: the offer was anchored before location refused it, and
// the media stage deletes it (pipeline.Refuser).
func TestE2EMediaToRegisteredUser(t *testing.T) {
	requireSipp(t)
	relay := mediatest.Start(t)
	dir := t.TempDir()
	users := regUsers(t, dir, "secret", "alice", "bob")
	reg := fmt.Sprintf("[registrar]\nenabled = true\ndomains = [%q]\nstore = \"memory\"\nmin_expires = \"1s\"\ndefault_expires = \"60s\"\nnegative_ttl = \"200ms\"\n", regDomain)
	e := startEdge(t, dir, regAuth(users)+reg+mediaSection([]*mediatest.Relay{relay}))

	rtp := newRTPCounter(t, relay)
	re := portRE(relay)
	answer := strings.ReplaceAll(answer200, "MEDIA_PORT", strconv.Itoa(rtp.port()))
	uas := scenario(t, dir, "media_uas.xml", "phone_uas.xml", "ANSWER", answer, "PORT_RE", re)
	addr := freeUDP(t, "127.0.0.1")
	phoneAnswering(t, dir, "alice", "alice", e.sip, 60, addr, addr, uas)
	e.bindingsOf(t, "sip:alice@"+regDomain, 10*time.Second, "registered", func(bs []appliance.BindingJSON) bool { return len(bs) == 1 })

	const n = 2
	// media_uac.xml's requests go to the edge's address; to the AOR here.
	uacXML := scenario(t, dir, "media_uac.xml", "uac.xml", "PORT_RE", re, "PLAY", "", "HOLD", "200",
		"@[remote_ip]:[remote_port]", "@"+regDomain)
	uac := sipp(t, dir, nil, "uac", "-sf", uacXML, "-i", uacIP, "-p", portOf(freeUDP(t, uacIP)), "-mp", portOf(freeUDP(t, uacIP)),
		"-s", "alice", "-r", "5", "-m", strconv.Itoa(n), "-recv_timeout", "10s", "-timeout", "60s", "-timeout_error", e.sip)
	if code := uac.wait(t, 90*time.Second); code != 0 {
		t.Errorf("sipp uac exit %d:\n%s\n%s\nappliance:\n%s", code, uac.log.String(), errorsLog(dir, "uac"), e.log.String())
	}
	if st := sippStats(t, dir, "uac"); st["SuccessfulCall(C)"] != n || st["FailedCall(C)"] != 0 {
		t.Errorf("uac: %d successful, %d failed calls, want %d and 0 (a failed regexp check means the 200's SDP did not name the relay)\n%s",
			st["SuccessfulCall(C)"], st["FailedCall(C)"], n, errorsLog(dir, "uac"))
	}
	waitRelayCalls(t, "after BYE", 0, relay)
	// sipp writes each failed check to its errors log as it happens (the
	// phone pauses on its registration until cleanup), beside a line per
	// INVITE it answered.
	if log := errorsLog(dir, "alice"); strings.Count(log, "out-of-call INVITE") != n || strings.Contains(log, "regexp") || strings.Contains(log, "Aborting") {
		t.Errorf("the phone, want %d INVITEs answered and no failed check (a regexp check means the INVITE's SDP did not name the relay):\n%s", n, log)
	}

	for _, c := range []struct {
		user string
		want int
	}{{"nobody", 404}, {"bob", 480}} {
		if got := probeWith(t, e.sip, c.user, probeSDP); got != c.want {
			t.Fatalf("INVITE with SDP to %s: %d, want %d", c.user, got, c.want)
		}
		waitRelayCalls(t, fmt.Sprintf("after the %d to an anchored INVITE", c.want), 0, relay)
	}
	want := map[string]float64{
		"sipedge_media_offers_rewritten_total":  n + 2, // the refused INVITEs were anchored first
		"sipedge_media_answers_rewritten_total": n,
		"sipedge_media_request_deletes_total":   n,
		"sipedge_media_refused_deletes_total":   2,
		"sipedge_location_not_found_total":      1,
		"sipedge_location_unavailable_total":    1,
	}
	m := e.scrapeWhen(t, want) // CI once scraped before the last 480's counts were published
	for name, v := range want {
		if got := metric(t, m, name); got != v {
			t.Errorf("%s = %v, want %v", name, got, v)
		}
	}
}

// With the bindings in Redis and Redis gone, location answers an anchored
// INVITE 503 (store error or deadline): the relay keeps nothing of it.
func TestE2EMediaLocationStoreDown(t *testing.T) {
	relay := mediatest.Start(t)
	srv := redistest.Start(t)
	dir := t.TempDir()
	users := regUsers(t, dir, "secret", "alice")
	e := startEdge(t, dir, regSections(users, []string{srv.Addr}, "deadline = \"300ms\"\n")+mediaSection([]*mediatest.Relay{relay}))
	// Until the store answers once, the edge may not have connected yet.
	e.bindingsOf(t, "sip:alice@"+regDomain, 10*time.Second, "store reachable", func([]appliance.BindingJSON) bool { return true })
	srv.Stop()
	if got := probeWith(t, e.sip, "alice", probeSDP); got != 503 {
		t.Fatalf("INVITE with SDP to alice with the store down: %d, want 503", got)
	}
	waitRelayCalls(t, "after the 503 to an anchored INVITE", 0, relay)
	var m string
	e.get(t, "/metrics", &m)
	if got := metric(t, m, "sipedge_media_refused_deletes_total"); got < 1 {
		t.Errorf("sipedge_media_refused_deletes_total = %v, want at least 1 (the INVITE was anchored, then refused)", got)
	}
}
