package harness

import (
	"net"
	"net/netip"
	"os"
	"strings"
	"testing"
	"time"
)

func TestParseSchedstatAndSwitches(t *testing.T) {
	ns, err := parseSchedstat([]byte("1571557 557693 12\n"))
	if err != nil || ns != 1571557 {
		t.Fatalf("parseSchedstat = %d, %v", ns, err)
	}
	for _, bad := range []string{"", "12 3", "x 1 2"} {
		if _, err := parseSchedstat([]byte(bad)); err == nil {
			t.Errorf("parseSchedstat(%q) accepted it", bad)
		}
	}
	status := "Name:\tappliance\nState:\tS (sleeping)\nvoluntary_ctxt_switches:\t1234\nnonvoluntary_ctxt_switches:\t56\n"
	v, inv, err := parseCtxtSwitches([]byte(status))
	if err != nil || v != 1234 || inv != 56 {
		t.Fatalf("parseCtxtSwitches = %d %d %v", v, inv, err)
	}
	if _, _, err := parseCtxtSwitches([]byte("Name:\tx\nvoluntary_ctxt_switches:\t1\n")); err == nil {
		t.Fatal("a status without nonvoluntary_ctxt_switches was accepted")
	}
}

// TestReadUsage burns CPU and sleeps in this process and finds both in
// its schedstat time and voluntary switches.
func TestReadUsage(t *testing.T) {
	a, err := ReadUsage(os.Getpid(), false)
	if err != nil {
		t.Fatal(err)
	}
	if a.Threads < 1 || a.CPUNs == 0 {
		t.Fatalf("usage of this process %+v", a)
	}
	for end := time.Now().Add(50 * time.Millisecond); time.Now().Before(end); {
	}
	for range 20 {
		time.Sleep(time.Millisecond)
	}
	b, err := ReadUsage(os.Getpid(), true)
	if err != nil {
		t.Fatal(err)
	}
	d := b.Sub(a)
	if d.CPUNs < 40e6 {
		t.Fatalf("50 ms of busy loop counted as %d ns", d.CPUNs)
	}
	if d.Voluntary == 0 {
		t.Fatalf("20 sleeps and no voluntary switch: %+v", d)
	}
	if z := a.Sub(b); z.CPUNs != 0 || z.Voluntary != 0 {
		t.Fatalf("an earlier minus a later sample is not clamped at 0: %+v", z)
	}
}

func TestParseMetrics(t *testing.T) {
	text := "# HELP sipedge_received_total x\n# TYPE sipedge_received_total counter\nsipedge_received_total 120\n" +
		"sipedge_dropped_total{reason=\"unresolved\"} 3\nsipedge_dropped_total{reason=\"no_tx_buffer\"} 2\n" +
		"sipedge_worker_wakeups_total{worker=\"0\"} 10\nsipedge_worker_wakeups_total{worker=\"1\"} 5\n" +
		"sipedge_worker_spins_total{worker=\"0\"} 7\n" +
		"sipedge_worker_thread_context_switches_total{worker=\"0\",kind=\"voluntary\"} 4\n" +
		"sipedge_worker_thread_context_switches_total{worker=\"0\",kind=\"involuntary\"} 1\n" +
		"sipedge_worker_busy_seconds_total{worker=\"0\",core=\"1\"} 0.5\nbroken line\n"
	ms := parseMetrics(text)
	if v, ok := sumMetric(ms, "sipedge_dropped_total"); !ok || v != 5 {
		t.Fatalf("dropped = %v %v", v, ok)
	}
	if _, ok := sumMetric(ms, "sipedge_forwarded_total"); ok {
		t.Fatal("an absent family was found")
	}
	w := workerFamilies(ms)
	want := map[string]float64{"wakeups": 15, "spins": 7, "thread_context_switches:voluntary": 4, "thread_context_switches:involuntary": 1}
	if len(w) != len(want) {
		t.Fatalf("worker families %v, want %v", w, want)
	}
	for k, v := range want {
		if w[k] != v {
			t.Fatalf("worker families %v, want %v", w, want)
		}
	}
}

func TestPercentile(t *testing.T) {
	var v []float64
	for i := 1; i <= 100; i++ {
		v = append(v, float64(i))
	}
	if p := percentile(v, 50); p != 50 {
		t.Fatalf("p50 = %v", p)
	}
	if p := percentile(v, 99); p != 99 {
		t.Fatalf("p99 = %v", p)
	}
	if p := percentile(v[:1], 99); p != 1 {
		t.Fatalf("p99 of one = %v", p)
	}
	s := summariseRTTs(20, 10, 1, []time.Duration{time.Millisecond, 3 * time.Millisecond})
	if s.Lost != 7 || s.Answered != 2 || s.P50Ms != 1 || s.MaxMs != 3 || s.MeanMs != 2 {
		t.Fatalf("summary %+v", s)
	}
}

// TestOptionsClient runs the client against a stand-in proxy on loopback
// that answers every other OPTIONS with 200 (Call-ID echoed in compact
// form) and drops the rest.
func TestOptionsClient(t *testing.T) {
	srv, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	got := make(chan string, 100)
	go func() {
		buf := make([]byte, 4096)
		for i := 0; ; i++ {
			n, from, err := srv.ReadFromUDPAddrPort(buf)
			if err != nil {
				return
			}
			msg := buf[:n]
			got <- string(msg)
			if i%2 == 1 {
				continue
			}
			resp := "SIP/2.0 100 Trying\r\ni: " + string(headerValue(msg, "Call-ID", "i")) + "\r\n\r\n"
			srv.WriteToUDPAddrPort([]byte(resp), from)
			resp = "SIP/2.0 200 OK\r\nVia: x\r\ni: " + string(headerValue(msg, "Call-ID", "i")) + "\r\nContent-Length: 0\r\n\r\n"
			srv.WriteToUDPAddrPort([]byte(resp), from)
		}
	}()
	to := srv.LocalAddr().(*net.UDPAddr).AddrPort()
	c, err := StartOptions(nil, netip.MustParseAddr("127.0.0.1"), to, 200)
	if err != nil {
		t.Fatal(err)
	}
	time.Sleep(100 * time.Millisecond)
	s := c.Stop()
	if s.Sent < 4 || s.Answered < s.Sent/2-1 || s.Answered > s.Sent/2+1 || s.Lost != s.Sent-s.Answered || s.P99Ms <= 0 {
		t.Fatalf("stats %+v", s)
	}
	first := <-got
	for _, want := range []string{"OPTIONS sip:options@" + to.String() + " SIP/2.0\r\n", ";branch=z9hG4bK", "Max-Forwards: 70\r\n", "CSeq: 1 OPTIONS\r\n", "Call-ID: opt-"} {
		if !strings.Contains(first, want) {
			t.Errorf("request lacks %q:\n%s", want, first)
		}
	}
	second := <-got
	if headerValue([]byte(first), "Call-ID", "i") == nil || string(headerValue([]byte(first), "Call-ID", "")) == string(headerValue([]byte(second), "Call-ID", "")) {
		t.Fatalf("Call-IDs not unique:\n%s\n%s", first, second)
	}
}

func TestStatusCode(t *testing.T) {
	if c, ok := statusCode([]byte("SIP/2.0 503 Service Unavailable\r\n")); !ok || c != 503 {
		t.Fatalf("503: %d %v", c, ok)
	}
	if _, ok := statusCode([]byte("OPTIONS sip:x SIP/2.0\r\n")); ok {
		t.Fatal("a request read as a response")
	}
}
