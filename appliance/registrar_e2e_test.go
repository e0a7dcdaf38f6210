package appliance_test

import (
	"encoding/json"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"sipedge/appliance"
	"sipedge/internal/redistest"
	"sipedge/sipcore"
)

const regDomain = "example.com"

// regUsers writes an [auth] users file for the registrar tests (realm
// regDomain, MD5 and SHA-256 HA1s of password).
func regUsers(t testing.TB, dir, password string, users ...string) string {
	t.Helper()
	var b strings.Builder
	for _, u := range users {
		fmt.Fprintf(&b, "%s %s %s %s\n", u, regDomain, sipcore.HA1(sipcore.AlgMD5, u, regDomain, password), sipcore.HA1(sipcore.AlgSHA256, u, regDomain, password))
	}
	path := filepath.Join(dir, "users")
	if err := os.WriteFile(path, []byte(b.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// regSections are [auth] (REGISTER only, MD5 for sipp) and [registrar] on
// Redis at addrs.
func regSections(users string, addrs []string, extra string) string {
	q := make([]string, len(addrs))
	for i, a := range addrs {
		q[i] = fmt.Sprintf("%q", a)
	}
	return regAuth(users) +
		fmt.Sprintf("[registrar]\nenabled = true\ndomains = [%q]\nstore = \"redis\"\nmin_expires = \"1s\"\ndefault_expires = \"60s\"\nmax_expires = \"1h\"\nnegative_ttl = \"200ms\"\n%s[registrar.redis]\naddresses = [%s]\n",
			regDomain, extra, strings.Join(q, ", "))
}

// regAuth is the [auth] of the registrar tests: REGISTER only, MD5 for
// sipp, the users of users (regUsers).
func regAuth(users string) string {
	return fmt.Sprintf("[auth]\nenabled = true\nrealm = %q\nalgorithms = [\"MD5\"]\ncheck_uri = false\nmethods = [\"REGISTER\"]\nusers_file = %q\n", regDomain, users)
}

// edge is one appliance of the cluster under test.
type regEdge struct {
	*app
	sip string
}

func startEdge(t testing.TB, dir, sections string) *regEdge {
	t.Helper()
	return startEdgeIO(t, dir, sections, "")
}

// startEdgeIO is startEdge with extra [io] keys. A free port can be taken
// by another test between the pick and the listen: on "address already in
// use" the edge starts again on other ports (three tries).
func startEdgeIO(t testing.TB, dir, sections, io string) *regEdge {
	t.Helper()
	for try := 1; ; try++ {
		d := filepath.Join(dir, fmt.Sprintf("edge-%d", time.Now().UnixNano()))
		if err := os.MkdirAll(d, 0o700); err != nil {
			t.Fatal(err)
		}
		sip, admin := freeUDP(t, "127.0.0.1"), freeTCP(t, "127.0.0.1")
		cfg := e2eConfigWith("[guard]\nenabled = false\n"+sections, sip, admin, freeUDP(t, "127.0.0.1"))
		path := filepath.Join(d, "appliance.toml")
		if err := os.WriteFile(path, []byte(strings.Replace(cfg, "[io]\n", "[io]\n"+io, 1)), 0o600); err != nil {
			t.Fatal(err)
		}
		a := &app{cfgPath: path, admin: admin, sip: sip}
		a.proc = start(t, d, nil, applianceBinary(t), "run", "-c", path)
		deadline := time.After(20 * time.Second)
		for !strings.Contains(a.log.String(), "worker started") {
			select {
			case <-a.log.wrote:
				continue
			case <-a.done:
				if try < 3 && strings.Contains(a.log.String(), "address already in use") {
					break
				}
				t.Fatalf("appliance exited: %v\n%s", a.err, a.log.String())
			case <-deadline:
				t.Fatalf("appliance did not start its worker:\n%s", a.log.String())
			}
			break
		}
		if strings.Contains(a.log.String(), "worker started") {
			return &regEdge{app: a, sip: sip}
		}
	}
}

// bindingsOf polls GET /registrar/aor until cond holds (bounded).
func (e *regEdge) bindingsOf(t testing.TB, aor string, within time.Duration, what string, cond func([]appliance.BindingJSON) bool) []appliance.BindingJSON {
	t.Helper()
	end := time.Now().Add(within)
	for {
		var body string
		var bs []appliance.BindingJSON
		// Not 200 while the store is still connecting: poll on.
		if st := e.get(t, "/registrar/aor?aor="+aor, &body); st == 200 && json.Unmarshal([]byte(body), &bs) == nil && cond(bs) {
			return bs
		}
		if time.Now().After(end) {
			t.Fatalf("%s: bindings of %s never so within %v: %+v", what, aor, within, bs)
		}
		time.Sleep(20 * time.Millisecond) // the admin API has no push
	}
}

// probe sends one INVITE for user@regDomain to the edge and returns the
// final status (it must not reach a phone: only for 404/480/503).
func probe(t testing.TB, to, user string) int {
	t.Helper()
	return probeWith(t, to, user, "")
}

// probeWith is probe with an SDP body (none when "").
func probeWith(t testing.TB, to, user, sdp string) int {
	t.Helper()
	c, err := net.Dial("udp", to)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	local := c.LocalAddr().String()
	msg := "INVITE sip:" + user + "@" + regDomain + " SIP/2.0\r\n" +
		"Via: SIP/2.0/UDP " + local + ";branch=z9hG4bKprobe" + fmt.Sprint(time.Now().UnixNano()) + "\r\n" +
		"Max-Forwards: 70\r\nFrom: <sip:probe@example.org>;tag=p1\r\nTo: <sip:" + user + "@" + regDomain + ">\r\n" +
		"Call-ID: probe" + fmt.Sprint(time.Now().UnixNano()) + "\r\nCSeq: 1 INVITE\r\nContact: <sip:probe@" + local + ">\r\n"
	if sdp != "" {
		msg += "Content-Type: application/sdp\r\n"
	}
	msg += "Content-Length: " + fmt.Sprint(len(sdp)) + "\r\n\r\n" + sdp
	buf := make([]byte, 4096)
	for try := 0; try < 3; try++ {
		c.Write([]byte(msg))
		c.SetReadDeadline(time.Now().Add(time.Second))
		for {
			n, err := c.Read(buf)
			if err != nil {
				break
			}
			var m sipcore.Msg
			if sipcore.Parse(buf[:n], &m) == nil && !m.IsRequest && m.StatusCode >= 200 {
				return int(m.StatusCode)
			}
		}
	}
	return 0
}

func registrarScenario(t testing.TB, name string) string {
	t.Helper()
	p, err := filepath.Abs(filepath.Join("testdata", "registrar", name))
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// phone runs a sipp phone that registers user through edge and answers
// calls; it returns the process and its address.
func phone(t testing.TB, dir, name, user, edge string, expires int) (*proc, string) {
	t.Helper()
	return phoneAt(t, dir, name, user, edge, expires, "")
}

// phoneAt is phone with the Contact's host:port given (a phone behind NAT
// names its private address); "" is its own.
func phoneAt(t testing.TB, dir, name, user, edge string, expires int, contact string) (*proc, string) {
	t.Helper()
	addr := freeUDP(t, "127.0.0.1")
	if contact == "" {
		contact = addr
	}
	return phoneAnswering(t, dir, name, user, edge, expires, addr, contact, uasScenario(t)), addr
}

// phoneAnswering is phoneAt on addr answering calls with the sipp
// scenario uas.
func phoneAnswering(t testing.TB, dir, name, user, edge string, expires int, addr, contact, uas string) *proc {
	t.Helper()
	return sipp(t, dir, nil, name, "-sf", registrarScenario(t, "phone.xml"), "-oocsf", uas,
		"-i", "127.0.0.1", "-p", portOf(addr), "-s", user, "-au", user, "-ap", "secret",
		"-key", "domain", regDomain, "-key", "expires", fmt.Sprint(expires), "-key", "contact", contact, "-m", "1", "-d", "600000", edge)
}

// calls runs n calls to user through edge and fails the test unless all
// succeed.
func calls(t testing.TB, dir, name, user, edge string, n int) {
	t.Helper()
	p := sipp(t, dir, nil, name, "-sf", registrarScenario(t, "call.xml"), "-i", uacIP, "-p", portOf(freeUDP(t, uacIP)),
		"-s", user, "-key", "domain", regDomain, "-m", fmt.Sprint(n), "-r", "20",
		"-recv_timeout", "4s", "-timeout", "30s", "-timeout_error", edge)
	code := p.wait(t, 40*time.Second)
	st := sippStats(t, dir, name)
	if code != 0 || st["SuccessfulCall(C)"] != n {
		t.Fatalf("%s: exit %d, %d of %d calls succeeded\n%s\n%s", name, code, st["SuccessfulCall(C)"], n, errorsLog(dir, name), p.log.String())
	}
}

func unregister(t testing.TB, dir, name, user, contact, edge string) {
	t.Helper()
	p := sipp(t, dir, nil, name, "-sf", registrarScenario(t, "unregister.xml"), "-i", uacIP, "-p", portOf(freeUDP(t, uacIP)),
		"-s", user, "-au", user, "-ap", "secret", "-key", "domain", regDomain, "-key", "contact", contact, "-m", "1",
		"-recv_timeout", "4s", "-timeout", "20s", "-timeout_error", edge)
	if code := p.wait(t, 30*time.Second); code != 0 {
		t.Fatalf("%s: exit %d\n%s\n%s", name, code, errorsLog(dir, name), p.log.String())
	}
}

// Two edges share a Redis Cluster (three masters, one replica each): a
// phone registers with digest through edge A and is called through edge
// B; Expires: 0 through B removes it everywhere; a short registration
// expires everywhere; with the master of the AOR's shard killed, its
// replica takes over and registrations and calls go on.
func TestE2ERegistrarCluster(t *testing.T) {
	requireSipp(t)
	start := time.Now()
	dir := t.TempDir()
	cl := redistest.StartCluster(t)
	users := regUsers(t, dir, "secret", "alice", "bob", "carol")
	a := startEdge(t, dir, regSections(users, cl.Addrs()[:1], ""))
	b := startEdge(t, dir, regSections(users, cl.Addrs()[1:2], ""))

	// Register alice through A; B sees her binding in the shared store.
	ph, phAddr := phone(t, dir, "alice", "alice", a.sip, 600)
	bs := b.bindingsOf(t, "sip:alice@"+regDomain, 10*time.Second, "registered through A", func(bs []appliance.BindingJSON) bool { return len(bs) == 1 })
	if bs[0].Node != a.sip || bs[0].Received != phAddr || bs[0].NAT {
		t.Fatalf("binding %+v: want node %s, received %s, not NATed", bs[0], a.sip, phAddr)
	}
	// A call through B reaches alice's phone; one through A too.
	calls(t, dir, "callB", "alice", b.sip, 5)
	calls(t, dir, "callA", "alice", a.sip, 5)
	// bob exists (the users file) but never registered: 480; a stranger: 404.
	if st := probe(t, b.sip, "bob"); st != 480 {
		t.Fatalf("bob without binding: %d, want 480", st)
	}
	if st := probe(t, b.sip, "mallory"); st != 404 {
		t.Fatalf("unknown user: %d, want 404", st)
	}

	// Expires: 0 through B removes alice everywhere: A's cache hears it.
	unregister(t, dir, "unreg", "alice", phAddr, b.sip)
	for _, e := range []*regEdge{a, b} {
		end := time.Now().Add(5 * time.Second)
		for probe(t, e.sip, "alice") != 480 {
			if time.Now().After(end) {
				t.Fatalf("alice still routed by %s after Expires: 0", e.sip)
			}
		}
	}
	ph.signalWait(t, syscall.SIGKILL, 5*time.Second)

	// A short registration (2s) expires everywhere, by Redis's TTL.
	_, carolAddr := phone(t, dir, "carol", "carol", a.sip, 2)
	b.bindingsOf(t, "sip:carol@"+regDomain, 10*time.Second, "carol registered", func(bs []appliance.BindingJSON) bool { return len(bs) == 1 })
	calls(t, dir, "callCarol", "carol", b.sip, 1) // B caches carol's location
	for _, e := range []*regEdge{a, b} {
		end := time.Now().Add(8 * time.Second)
		for probe(t, e.sip, "carol") != 480 {
			if time.Now().After(end) {
				t.Fatalf("carol (%s) still routed by %s after her binding expired", carolAddr, e.sip)
			}
		}
	}

	// Kill the master of alice's shard; register again (retrying through
	// the switch) and call.
	master := cl.MasterOf(t, "sipedge:loc:{sip:alice@"+regDomain+"}")
	master.Stop()
	killed := time.Now()
	// A REGISTER that meets the switch gets 503 and its sipp gives up:
	// start another until one is stored (bounded).
	attempts, failed := 0, 0
	for {
		attempts++
		name := fmt.Sprintf("alice-retry%d", attempts)
		p, _ := phone(t, dir, name, "alice", a.sip, 600)
		var body string
		ok := false
		end := time.Now().Add(3 * time.Second)
		for time.Now().Before(end) && !ok {
			select {
			case <-p.done:
				failed++
				end = time.Now() // it failed: the next attempt
			case <-time.After(100 * time.Millisecond):
				var bs []appliance.BindingJSON
				ok = b.get(t, "/registrar/aor?aor=sip:alice@"+regDomain, &body) == 200 && json.Unmarshal([]byte(body), &bs) == nil && len(bs) == 1
			}
		}
		if ok {
			break
		}
		if time.Since(killed) > 30*time.Second {
			nodes, _ := cl.Nodes[0].Cmd("CLUSTER", "NODES")
			if cl.Nodes[0] == master {
				nodes, _ = cl.Nodes[1].Cmd("CLUSTER", "NODES")
			}
			var logs strings.Builder
			for _, n := range cl.Nodes {
				b, _ := os.ReadFile(filepath.Join(n.Dir, "redis.log"))
				if len(b) > 3000 {
					b = b[len(b)-3000:]
				}
				fmt.Fprintf(&logs, "--- %s\n%s\n", n.Addr, b)
			}
			t.Fatalf("no REGISTER stored within 30s of killing master %s (%d attempts, %d failed): %s\n%s\nCLUSTER NODES:\n%s\n%s", master.Addr, attempts, failed, body, errorsLog(dir, name), nodes, logs.String())
		}
	}
	t.Logf("killed master %s: a REGISTER was stored again %v later, after %d attempts of which %d failed (503 while the shard had no master)",
		master.Addr, time.Since(killed).Round(100*time.Millisecond), attempts, failed)
	calls(t, dir, "callAfter", "alice", b.sip, 3)
	var m string
	a.get(t, "/metrics", &m)
	t.Logf("edge A during the run: %v REGISTERs answered 503 (store failed), %v Redis errors; whole test %v",
		metric(t, m, "sipedge_registrar_store_errors_total"), metric(t, m, "sipedge_registrar_redis_errors_total"), time.Since(start).Round(time.Second))
}

// A REGISTER storm through sipp (phones registering, then refreshing in
// the same Call-ID): Redis sees one binding write per phone and no write
// for the refreshes (INFO commandstats counts the commands scripts run).
func TestE2ERegisterStormNoRewrite(t *testing.T) {
	requireSipp(t)
	dir := t.TempDir()
	srv := redistest.Start(t)
	const phones = 1000
	var inf strings.Builder
	inf.WriteString("SEQUENTIAL\n")
	for i := 0; i < phones; i++ {
		fmt.Fprintf(&inf, "phone%d;[authentication username=phone%d password=secret]\n", i, i)
	}
	if err := os.WriteFile(filepath.Join(dir, "phones.csv"), []byte(inf.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	users := regUsers(t, dir, "secret", phoneNames(phones)...)
	// A generous deadline: on a loaded test machine Redis may answer late,
	// and this test counts writes, not the 503s of impatience.
	a := startEdge(t, dir, regSections(users, []string{srv.Addr}, "deadline = \"3s\"\n"))
	before, err := srv.CommandCalls()
	if err != nil {
		t.Fatal(err)
	}
	p := sipp(t, dir, nil, "storm", "-sf", registrarScenario(t, "storm.xml"), "-inf", filepath.Join(dir, "phones.csv"),
		"-i", uacIP, "-p", portOf(freeUDP(t, uacIP)), "-key", "domain", regDomain, "-key", "expires", "600",
		"-m", fmt.Sprint(phones), "-r", "250", "-l", "200", "-recv_timeout", "5s", "-timeout", "60s", "-timeout_error", a.sip)
	code := p.wait(t, 90*time.Second)
	st := sippStats(t, dir, "storm")
	if code != 0 || st["SuccessfulCall(C)"] != phones {
		t.Fatalf("storm: exit %d, %d of %d phones registered and refreshed\n%s", code, st["SuccessfulCall(C)"], phones, errorsLog(dir, "storm"))
	}
	after, err := srv.CommandCalls()
	if err != nil {
		t.Fatal(err)
	}
	d := func(c string) int { return after[c] - before[c] }
	t.Logf("commandstats over %d registrations + %d refreshes: hset %d, set %d, pexpire %d, evalsha %d, del %d, hdel %d",
		phones, phones, d("hset"), d("set"), d("pexpire"), d("evalsha"), d("del"), d("hdel"))
	if d("hset") != phones || d("set") != phones {
		t.Errorf("hset %d, set %d: want exactly %d each (one write per new phone, none for the refreshes)", d("hset"), d("set"), phones)
	}
	if d("pexpire") < phones {
		t.Errorf("pexpire %d: want at least %d (each refresh moves its expiry)", d("pexpire"), phones)
	}
	if d("del") != 0 || d("hdel") != 0 {
		t.Errorf("del %d, hdel %d during a storm without removals", d("del"), d("hdel"))
	}
	var m string
	a.get(t, "/metrics", &m)
	// A retransmitted refresh is refreshed again: at least one per phone.
	if w, r := metric(t, m, "sipedge_registrar_bindings_written_total"), metric(t, m, "sipedge_registrar_bindings_refreshed_total"); w != phones || r < phones {
		t.Errorf("metrics: %v written, %v refreshed, want %d and at least %d", w, r, phones, phones)
	}
}

// A phone behind NAT (its Contact names a private address, its REGISTER
// comes from another) registers through edge A. A call through edge B goes
// to A with the flow token and on from A's SIP port to the address the
// REGISTER came from; A, and only A, sends the phone keepalives, which it
// answers.
func TestE2ERegistrarNAT(t *testing.T) {
	requireSipp(t)
	dir := t.TempDir()
	srv := redistest.Start(t)
	users := regUsers(t, dir, "secret", "nat")
	ka := "keepalive_interval = \"200ms\"\n"
	a := startEdge(t, dir, regSections(users, []string{srv.Addr}, ka))
	b := startEdge(t, dir, regSections(users, []string{srv.Addr}, ka))
	_, addr := phoneAt(t, dir, "natphone", "nat", a.sip, 600, "10.9.9.9:5060")
	bs := b.bindingsOf(t, "sip:nat@"+regDomain, 10*time.Second, "registered through A", func(bs []appliance.BindingJSON) bool { return len(bs) == 1 })
	if !bs[0].NAT || bs[0].Received != addr || bs[0].Node != a.sip {
		t.Fatalf("binding %+v: want NAT, received %s, node %s", bs[0], addr, a.sip)
	}
	calls(t, dir, "natcall", "nat", b.sip, 3)
	end := time.Now().Add(10 * time.Second)
	for {
		var ma string
		a.get(t, "/metrics", &ma)
		if metric(t, ma, "sipedge_registrar_keepalives_answered_total") >= 2 {
			if v := metric(t, ma, "sipedge_location_flow_total"); v < 3 {
				t.Errorf("edge A delivered %v requests on the flow, want at least the 3 INVITEs", v)
			}
			break
		}
		if time.Now().After(end) {
			t.Fatalf("edge A: no keepalive answered within 10s:\n%s", ma)
		}
		time.Sleep(50 * time.Millisecond) // metrics have no push
	}
	var mb string
	b.get(t, "/metrics", &mb)
	if v := metric(t, mb, "sipedge_registrar_keepalives_sent_total"); v != 0 {
		t.Errorf("edge B sent %v keepalives for a flow A holds, want 0", v)
	}
	if v := metric(t, mb, "sipedge_location_via_node_total"); v < 3 {
		t.Errorf("edge B sent %v requests through the node holding the flow, want at least 3", v)
	}
}

// phoneNames are the storm's users: phone0 ... phone(n-1).
func phoneNames(n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = fmt.Sprintf("phone%d", i)
	}
	return out
}
