package appliance_test

import (
	"fmt"
	"testing"
	"time"

	"sipedge/afxdp/vethtest"
	"sipedge/appliance"
)

// Registrar keepalives with the appliance in afxdp mode on the host end of
// a veth pair and a phone behind a NAT (a private Contact) in the peer's
// namespace. The keepalive socket sends each OPTIONS through the kernel to
// the node's own SIP address; the AF_XDP port's slow-path socket (bound to
// the interface, which locally sent datagrams to the interface's address
// match) hands it to a worker, location sends it on the flow through the
// ring, and the phone's 200 goes back to the keepalive socket through the
// slow path (no MAC for the node's own address).
func TestE2EAFXDPRegistrarKeepalives(t *testing.T) {
	requireSipp(t)
	vethtest.Require(t)
	pair, _, ns, sip := afxdpPeer(t)
	dir := t.TempDir()
	admin := freeTCP(t, "127.0.0.1")
	users := regUsers(t, dir, "secret", "nat")
	cfg := afxdpConfig(pair, sip, admin, pair.PeerV4.String()+":5080") + "[guard]\nenabled = false\n" +
		regAuth(users) + fmt.Sprintf("[registrar]\nenabled = true\ndomains = [%q]\nstore = \"memory\"\nkeepalive_interval = \"200ms\"\n", regDomain)
	a := startApp(t, dir, nil, cfg, 1)
	a.admin = admin
	phone := pair.PeerV4.String() + ":5090"
	sipp(t, dir, ns, "natphone", "-sf", registrarScenario(t, "phone.xml"), "-oocsf", uasScenario(t),
		"-i", pair.PeerV4.String(), "-p", portOf(phone), "-s", "nat", "-au", "nat", "-ap", "secret",
		"-key", "domain", regDomain, "-key", "expires", "600", "-key", "contact", "10.9.9.9:5060", "-m", "1", "-d", "600000", sip)
	e := &regEdge{app: a, sip: sip}
	bs := e.bindingsOf(t, "sip:nat@"+regDomain, 10*time.Second, "registered", func(bs []appliance.BindingJSON) bool { return len(bs) == 1 })
	if !bs[0].NAT || bs[0].Received != phone {
		t.Fatalf("binding %+v: want NAT, received %s", bs[0], phone)
	}
	end := time.Now().Add(10 * time.Second)
	for {
		var m string
		a.get(t, "/metrics", &m)
		if metric(t, m, "sipedge_registrar_keepalives_answered_total") >= 2 {
			t.Logf("keepalives sent %v, answered %v; slow path %v", metric(t, m, "sipedge_registrar_keepalives_sent_total"),
				metric(t, m, "sipedge_registrar_keepalives_answered_total"), metric(t, m, "sipedge_afxdp_slow_path_total"))
			return
		}
		if time.Now().After(end) {
			t.Fatalf("no keepalive answered within 10s in afxdp mode:\n%s\nappliance:\n%s", m, a.log.String())
		}
		time.Sleep(50 * time.Millisecond) // metrics have no push
	}
}
