package appliance_test

import (
	"fmt"
	"syscall"
	"testing"
	"time"

	"sipedge/appliance"
	"sipedge/appliance/resolve/dnstest"
)

// pbxRecords publishes the rig's UAS as pbx.test: NAPTR -> SRV -> A, the
// first ports at priority 10, standby at priority 20.
func pbxRecords(preferred []string, standby string) []string {
	out := []string{
		`pbx.test. 1 IN NAPTR 10 10 "s" "SIP+D2U" "" _sip._udp.pbx.test.`,
		`uas.pbx.test. 1 IN A ` + backendIP,
		fmt.Sprintf(`_sip._udp.pbx.test. 1 IN SRV 20 1 %s uas.pbx.test.`, portOf(standby)),
	}
	for _, a := range preferred {
		out = append(out, fmt.Sprintf(`_sip._udp.pbx.test. 1 IN SRV 10 1 %s uas.pbx.test.`, portOf(a)))
	}
	return out
}

func requests(b map[string]appliance.BackendJSON, a string) uint64 { return b[a].Requests }

// The backends are one SIP URI the appliance resolves through a DNS server
// of the test's own: calls go to the priority-10 backend only; when it
// dies (probes) they fail over to the priority-20 standby, and come back
// when it returns; a record added to DNS joins at its TTL; DNS going down
// keeps the set. No call fails.
func TestE2EBackendsFromDNS(t *testing.T) {
	requireSipp(t)
	r := &loopRig{dir: t.TempDir(), sip: freeUDP(t, "127.0.0.1"), admin: freeTCP(t, "127.0.0.1")}
	prim, standby := r.addUAS(t), r.addUAS(t)
	dns := dnstest.Start(t, pbxRecords([]string{prim}, standby)...)
	r.extra = e2eGuard + fmt.Sprintf("[dispatcher.dns]\nservers = [%q]\ntimeout = \"200ms\"\nttl_floor = \"200ms\"\nttl_ceiling = \"1m\"\n", dns.Addr)
	r.app = startApp(t, r.dir, nil, e2eConfigWith(r.extra, r.sip, r.admin, "sip:pbx.test"), 1)
	r.app.admin = r.admin
	bk := r.app.waitBackends(t, "resolved and probed up", 10*time.Second, func(b map[string]appliance.BackendJSON) bool {
		return b[prim].State == "up" && b[standby].State == "up" && b[prim].ProbesOK > 0 && b[standby].ProbesOK > 0
	})
	if bk[prim].Priority != 10 || bk[standby].Priority != 20 || len(bk) != 2 {
		t.Fatalf("/backends %+v, want %s at priority 10 and %s at 20", bk, prim, standby)
	}
	calls := func(name string, want int) {
		t.Helper()
		u := r.uac(t, name, 50, want, 0)
		u.wait(t, 60*time.Second)
		if st := sippStats(t, r.dir, name); st["SuccessfulCall(C)"] != want || st["FailedCall(C)"] != 0 {
			t.Errorf("%s: %d ok, %d failed of %d\n%s", name, st["SuccessfulCall(C)"], st["FailedCall(C)"], want, errorsLog(r.dir, name))
		}
	}
	calls("uac_pref", 50)
	bk = r.app.backends(t)
	if requests(bk, prim) < 150 || requests(bk, standby) != 0 {
		t.Errorf("with the preferred backend up: %d requests to it, %d to the standby; want all (150+) to it", requests(bk, prim), requests(bk, standby))
	}

	syscall.Kill(-r.uas[0].cmd.Process.Pid, syscall.SIGKILL)
	r.app.waitBackends(t, "preferred marked down", 10*time.Second, func(b map[string]appliance.BackendJSON) bool { return b[prim].State == "down" })
	before := r.app.backends(t)
	calls("uac_failover", 50)
	bk = r.app.backends(t)
	if requests(bk, standby)-requests(before, standby) < 150 || requests(bk, prim) != requests(before, prim) {
		t.Errorf("failover: %d new requests to the standby, %d to the dead preferred; want all to the standby",
			requests(bk, standby)-requests(before, standby), requests(bk, prim)-requests(before, prim))
	}

	// The preferred comes back on its port: calls return to it.
	p := sipp(t, r.dir, nil, "uas0b", "-sf", uasScenario(t), "-i", backendIP, "-p", portOf(prim), "-recv_timeout", "4s")
	r.uas[0], r.uasNames[0] = p, "uas0b"
	r.app.waitBackends(t, "preferred up again", 10*time.Second, func(b map[string]appliance.BackendJSON) bool { return b[prim].State == "up" })
	before = r.app.backends(t)
	calls("uac_back", 50)
	bk = r.app.backends(t)
	if requests(bk, prim)-requests(before, prim) < 150 || requests(bk, standby) != requests(before, standby) {
		t.Errorf("fail back: %d new requests to the preferred, %d to the standby; want all to the preferred",
			requests(bk, prim)-requests(before, prim), requests(bk, standby)-requests(before, standby))
	}

	// A third backend published in DNS joins once the 1s TTL runs out.
	third := r.addUAS(t)
	changed := time.Now()
	dns.Set(t, pbxRecords([]string{prim, third}, standby)...)
	r.app.waitBackends(t, "listing the DNS addition", 10*time.Second, func(b map[string]appliance.BackendJSON) bool {
		return b[third].State == "up" && b[third].Priority == 10
	})
	t.Logf("a DNS record added under a 1s TTL was listed and probed up %v later", time.Since(changed).Round(10*time.Millisecond))
	if b := r.app.backends(t); b[prim].ProbesOK < bk[prim].ProbesOK || b[prim].Requests < bk[prim].Requests || b[prim].State != "up" {
		t.Errorf("the kept backend lost its health state or counters on the refresh: %+v, before %+v", b[prim], bk[prim])
	}

	// DNS down: lookups fail, counted, and the set stays.
	dns.SetDown(true)
	deadline := time.Now().Add(10 * time.Second)
	for {
		var m string
		r.app.get(t, "/metrics", &m)
		if metric(t, m, `sipedge_dns_lookups_total{result="failed"}`) >= 2 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no failed DNS lookup counted with the DNS down")
		}
		time.Sleep(100 * time.Millisecond) // the admin API has no push channel
	}
	if b := r.app.backends(t); len(b) != 3 {
		t.Errorf("DNS down changed the backends to %+v, want the 3 last resolved", b)
	}
	calls("uac_dnsdown", 30)
	r.app.log.waitLog(t, "DNS lookup failed: the last good targets stay", time.Second)
	if code, ok := r.app.signalWait(t, syscall.SIGTERM, 8*time.Second); !ok || code != 0 {
		t.Fatalf("appliance: exit %d (stopped: %v) after SIGTERM\n%s", code, ok, r.app.log.String())
	}
}
