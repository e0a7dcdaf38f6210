package harness

import (
	"bytes"
	"encoding/json"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"sipedge/appliance/config"
)

// repoRoot is the sipedge checkout holding this package (bench/harness).
func repoRoot(t *testing.T) string {
	t.Helper()
	p, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// need skips (or fails when CI=true) a test whose tool is missing.
func need(t *testing.T, tool, pkg string) {
	t.Helper()
	if _, err := exec.LookPath(tool); err == nil {
		return
	}
	msg := tool + " is not installed: apt-get install " + pkg + " (or make bench-deps)"
	if os.Getenv("CI") == "true" {
		t.Fatal(msg)
	}
	t.Skip(msg)
}

func TestParseStat(t *testing.T) {
	// a command name with spaces and a ')' must not shift the fields
	line := "4242 (kam ailio) x) S 4200 4242 4242 0 -1 4194560 100 0 0 0 123 45 0 0 20 0 3 0 999 1000 10\n"
	s, err := parseStat([]byte(line))
	if err != nil {
		t.Fatal(err)
	}
	if s.PPid != 4200 || s.UTime != 123 || s.STime != 45 {
		t.Fatalf("got %+v, want ppid 4200 utime 123 stime 45", s)
	}
	for _, bad := range []string{"", "1 (x S 1 2", "1 (x) S 1 2 3", "1 (x) S p 1 1 0 -1 0 0 0 0 0 u s"} {
		if _, err := parseStat([]byte(bad)); err == nil {
			t.Errorf("parseStat(%q) accepted it", bad)
		}
	}
}

func TestWalkTree(t *testing.T) {
	children := map[int][]int{1: {2, 3}, 2: {4}, 4: {5}, 9: {10}}
	got := walkTree(children, 1)
	want := map[int]bool{2: true, 3: true, 4: true, 5: true}
	if len(got) != len(want) {
		t.Fatalf("walkTree = %v, want %v", got, want)
	}
	for _, p := range got {
		if !want[p] {
			t.Fatalf("walkTree = %v: %d is not below 1", got, p)
		}
	}
}

// TestCPUSecondsTree burns CPU in a grandchild and finds it through the
// process tree, and not without it.
func TestCPUSecondsTree(t *testing.T) {
	var g Group
	defer g.KillAll()
	// sh forks a busy loop bounded to a few seconds, then waits for it
	p, err := g.Start(t.TempDir(), "burn", "sh", "-c", "timeout 5 sh -c 'while :; do :; done' & wait")
	if err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(4 * time.Second)
	for {
		tree, err := CPUSeconds(p.Pid(), true)
		if err != nil {
			t.Fatal(err)
		}
		own, err := CPUSeconds(p.Pid(), false)
		if err != nil {
			t.Fatal(err)
		}
		if tree >= 0.2 {
			if own >= tree {
				t.Fatalf("leader alone %.2fs >= tree %.2fs: the busy child was not in the tree", own, tree)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("tree CPU %.2fs after 4s of a busy child", tree)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestGroupKillAll checks that a process's whole group goes, children
// included, and that Stop on an exited process is harmless.
func TestGroupKillAll(t *testing.T) {
	var g Group
	dir := t.TempDir()
	p, err := g.Start(dir, "tree", "sh", "-c", "sleep 60 & echo $! > child.pid; wait")
	if err != nil {
		t.Fatal(err)
	}
	var child int
	for deadline := time.Now().Add(5 * time.Second); child == 0; {
		if b, err := os.ReadFile(filepath.Join(dir, "child.pid")); err == nil && bytes.HasSuffix(b, []byte("\n")) {
			child, _ = strconv.Atoi(strings.TrimSpace(string(b)))
		}
		if time.Now().After(deadline) {
			t.Fatal("the child never wrote its pid")
		}
		time.Sleep(10 * time.Millisecond)
	}
	g.KillAll()
	if err := p.Wait(5 * time.Second); err == nil {
		t.Fatal("the leader exited cleanly; it should have been killed")
	}
	// the orphaned child is reaped by init; poll until it is gone
	for deadline := time.Now().Add(5 * time.Second); ; {
		if err := syscall.Kill(child, 0); err == syscall.ESRCH {
			break
		}
		if st, err := readStat(child); err == nil && st.PPid != p.Pid() && isZombie(child) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("child %d of the group still alive after KillAll", child)
		}
		time.Sleep(10 * time.Millisecond)
	}
	p.Stop(syscall.SIGTERM, time.Second) // already gone: must not block
	if !p.Exited() {
		t.Fatal("Exited false after KillAll")
	}
}

func isZombie(pid int) bool {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return true
	}
	i := bytes.LastIndexByte(b, ')')
	return i > 0 && len(b) > i+2 && b[i+2] == 'Z'
}

// sippCSV is a trimmed sipp 3.6 -trace_stat file: header, two dumps.
const sippCSV = "StartTime;LastResetTime;CurrentTime;ElapsedTime(P);ElapsedTime(C);TargetRate;CallRate(P);CallRate(C);IncomingCall(P);IncomingCall(C);OutgoingCall(P);OutgoingCall(C);TotalCallCreated;CurrentCall;SuccessfulCall(P);SuccessfulCall(C);FailedCall(P);FailedCall(C);Retransmissions(P);Retransmissions(C);\n" +
	"2026-11-25\t15:59:21.739552\t1795622361.739552;2026-11-25\t15:59:21.739552\t1795622361.739552;2026-11-25\t15:59:22.739552\t1795622362.739552;00:00:01;00:00:01;500;0;499.8;0;0;0;500;500;3;497;497;0;0;0;0;\n" +
	"2026-11-25\t15:59:21.739552\t1795622361.739552;2026-11-25\t15:59:26.741398\t1795622366.741398;2026-11-25\t15:59:27.739552\t1795622367.739552;00:00:00;00:00:06;500;0;499.8;0;0;0;2500;2500;0;0;2490;0;7;0;12;\n"

func TestParseSippCSV(t *testing.T) {
	s, err := ParseSippCSV(strings.NewReader(sippCSV))
	if err != nil {
		t.Fatal(err)
	}
	if s.Created != 2500 || s.Successful != 2490 || s.Failed != 7 || s.Retransmissions != 12 || s.Elapsed != 6 {
		t.Fatalf("got %+v", s)
	}
	if len(s.Samples) != 2 || s.Samples[0].T != 1 || s.Samples[1].T != 6 {
		t.Fatalf("samples %+v, want at 1s and 6s", s.Samples)
	}
	// 500 calls at 1s, 2500 at 6s: the 1500th at 3.5s
	if got := s.CreationSeconds(1500); got < 3.49 || got > 3.51 {
		t.Fatalf("CreationSeconds(1500) = %v, want 3.5", got)
	}
	if got := s.CreationSeconds(3000); got != 0 {
		t.Fatalf("CreationSeconds beyond the last dump = %v, want 0", got)
	}
	for name, bad := range map[string]string{
		"empty":       "",
		"header only": "StartTime;SuccessfulCall(C)\n",
		"no columns":  "a;b\n1;2\n",
		"not numbers": strings.Replace(sippCSV, ";2490;", ";lots;", 1),
	} {
		if _, err := ParseSippCSV(strings.NewReader(bad)); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

func TestParseHMS(t *testing.T) {
	for in, want := range map[string]float64{"00:01:05": 65, "01:00:00:500000": 3600.5, "x": 0, "1:2": 0} {
		if got := parseHMS(in); got != want {
			t.Errorf("parseHMS(%q) = %v, want %v", in, got, want)
		}
	}
}

// configKnowsIOKey reports whether this checkout's config package has an
// [io] key (issue 10's wait lands there).
func configKnowsIOKey(key string) bool {
	rt := reflect.TypeOf(config.IO{})
	for i := range rt.NumField() {
		if strings.Split(rt.Field(i).Tag.Get("toml"), ",")[0] == key {
			return true
		}
	}
	return false
}

// TestApplianceConfig runs the configurations the harness writes through
// the appliance's own parser and validator: every variant, with and
// without guard, and the capacity part's.
func TestApplianceConfig(t *testing.T) {
	o := FullDefaults()
	waits := []string{""}
	if configKnowsIOKey("wait") {
		waits = append(waits, WaitModes...)
	}
	for _, proxy := range ApplianceVariants() {
		v, err := ParseVariant(proxy)
		if err != nil {
			t.Fatal(err)
		}
		tp := topo{proxy: netip.MustParseAddrPort("127.0.0.1:15060"), uasIP: netip.MustParseAddr("127.0.0.3"), uacIP: netip.MustParseAddr("127.0.0.2"),
			uasPorts: [2]int{15080, 15081}, appIface: "lo", applianceAdmin: "127.0.0.1:19060"}
		if g := applianceConfig(o, tp, v, true, "", nil); !strings.Contains(g, "[guard]\nallow = [\"127.0.0.2\"]") {
			t.Errorf("%s: no allow-listed UAC with guard:\n%s", proxy, g)
		}
		capx := &appExtra{allow: []string{"127.0.0.0/8", "100.64.1.0/24"}, probeInterval: "1h", probeTimeout: "1s", noBackendWait: true}
		if g := applianceConfig(o, tp, v, true, "", capx); !strings.Contains(g, "allow = [\"127.0.0.0/8\", \"100.64.1.0/24\"]") || !strings.Contains(g, "interval = \"1h\"") {
			t.Errorf("%s: capacity configuration lacks its allow-list or hourly probes:\n%s", proxy, g)
		}
		for _, wait := range waits {
			for _, x := range []*appExtra{nil, capx} {
				text := applianceConfig(o, tp, v, hasGuardConfig(), wait, x)
				c, warns, err := config.Parse([]byte(text), proxy+".toml")
				if err != nil {
					t.Fatalf("%s: %v\n%s", proxy, err, text)
				}
				if len(warns) > 0 {
					t.Errorf("%s: warnings %v", proxy, warns)
				}
				if err := c.Validate(nil); err != nil {
					t.Fatalf("%s: %v\n%s", proxy, err, text)
				}
				if c.IO.Port != v.Port || len(c.IO.Cores) != 1 || c.IO.Cores[0] != o.ProxyCore || len(c.Dispatcher.Backends) != 2 {
					t.Fatalf("%s: io %+v, %d backends", proxy, c.IO, len(c.Dispatcher.Backends))
				}
			}
		}
		// -appliance-io replaces the harness's own keys and adds others
		ox := o
		ox.ApplianceIO = [][2]string{{"frame_count", "4096"}, {"poll_interval", "20ms"}}
		text := applianceConfig(ox, tp, v, false, "", nil)
		c, _, err := config.Parse([]byte(text), proxy+".toml")
		if err != nil {
			t.Fatalf("%s with -appliance-io: %v\n%s", proxy, err, text)
		}
		if c.IO.FrameCount != 4096 || c.IO.PollInterval.Std() != 20*time.Millisecond || strings.Count(text, "frame_count") > 1 {
			t.Fatalf("%s: -appliance-io not applied: %+v\n%s", proxy, c.IO, text)
		}
	}
}

// hasGuardConfig: this checkout's configuration has [guard] allow.
func hasGuardConfig() bool {
	_, ok := reflect.TypeOf(config.Config{}).FieldByName("Guard")
	return ok
}

func TestParseVariant(t *testing.T) {
	for name, want := range map[string]Variant{
		"kamailio":                  {Name: "kamailio"},
		"appliance-socket":          {Name: "appliance-socket", Port: "socket"},
		"appliance-afxdp-busy":      {Name: "appliance-afxdp-busy", Port: "afxdp", Wait: "busy"},
		"appliance-socket-adaptive": {Name: "appliance-socket-adaptive", Port: "socket", Wait: "adaptive"},
	} {
		got, err := ParseVariant(name)
		if err != nil || got != want {
			t.Errorf("ParseVariant(%q) = %+v, %v; want %+v", name, got, err, want)
		}
	}
	for _, bad := range []string{"", "appliance", "appliance-pcap", "appliance-socket-spin", "kamailio-busy", "appliance-afxdp-block-x"} {
		if _, err := ParseVariant(bad); err == nil {
			t.Errorf("ParseVariant(%q) accepted it", bad)
		}
	}
	if n := len(ApplianceVariants()); n != 6 {
		t.Fatalf("%d appliance variants, want 6", n)
	}
}

// TestKamailioConfig has Kamailio check the configuration the harness runs
// it on (kamailio -c parses it and loads its modules).
func TestKamailioConfig(t *testing.T) {
	need(t, "kamailio", "kamailio")
	dir := t.TempDir()
	list := filepath.Join(dir, "dispatcher.list")
	if err := os.WriteFile(list, []byte("1 sip:127.0.0.3:15080\n1 sip:127.0.0.3:15081\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	cfg := filepath.Join(repoRoot(t), "bench", "harness", "testdata", "kamailio.cfg")
	out, err := exec.Command("kamailio", "-c", "-f", cfg, "-l", "udp:127.0.0.1:15060", "-A", "DSLIST=\""+list+"\"").CombinedOutput()
	if err != nil {
		t.Fatalf("kamailio -c rejects %s: %v\n%s", cfg, err, out)
	}
}

// TestSippScenarios has sipp load both scenarios; sipp refuses a scenario
// it cannot parse before it sends anything. -m 0 would run forever, so the
// UAC is given one call to an address nobody answers and a 1 s bound.
func TestSippScenarios(t *testing.T) {
	need(t, "sipp", "sip-tester")
	root := repoRoot(t)
	for _, sc := range []string{"uac.xml", "uas.xml"} {
		path := filepath.Join(root, "bench", "harness", "testdata", sc)
		dir := t.TempDir()
		port, err := freeUDPPort(netip.MustParseAddr("127.0.0.1"))
		if err != nil {
			t.Fatal(err)
		}
		cmd := exec.Command("sipp", "-nostdin", "-sf", path, "-i", "127.0.0.1", "-p", strconv.Itoa(port),
			"-m", "1", "-timeout", "1s", "-timeout_error", "127.0.0.1:9")
		cmd.Dir = dir
		out, _ := cmd.CombinedOutput()
		if bytes.Contains(out, []byte("Unable to load or parse")) || bytes.Contains(out, []byte("XML")) && bytes.Contains(out, []byte("rror")) {
			t.Fatalf("sipp cannot load %s:\n%s", sc, out)
		}
	}
}

func TestSummarize(t *testing.T) {
	pt := func(rate float64, failPct, cpu1000 float64, limited bool) RatePoint {
		return RatePoint{OfferedCPS: rate, FailurePct: failPct, CPUSecPer1000: cpu1000, CPUUsPerCall: cpu1000 * 1000, CompletedCPS: rate,
			ProxyCPUPct: cpu1000 * rate / 10, SippLimited: limited, VolPerCall: cpu1000 * 10, InvolPerCall: 0.5,
			Options: &OptionsStats{Sent: 40, Answered: 40, P50Ms: cpu1000, P99Ms: cpu1000 * 4}}
	}
	const ApplianceSocket, ApplianceAFXDP = "appliance-socket-adaptive", "appliance-afxdp-busy"
	r := &Results{E2E: []ProxyRun{
		{Proxy: Kamailio, Points: []RatePoint{pt(1000, 0, 0.25, false), pt(2000, 0.05, 0.2, false), pt(4000, 12, 0.2, false)}},
		{Proxy: ApplianceSocket, Points: []RatePoint{pt(1000, 0, 0.2, false), pt(2000, 0, 0.1, false), pt(4000, 0, 0.1, true)}},
		{Proxy: ApplianceAFXDP, Skipped: "no daemon"},
	}}
	r.E2E[0].Idle = &IdleUsage{Seconds: 5, CPUPct: 0.2}
	r.E2E[1].Idle = &IdleUsage{Seconds: 5, CPUPct: 0.7}
	r.E2E[1].Wait = "adaptive"
	r.Capacity = &CapacityPart{Calls: 100, Runs: []CapacityRun{{Proxy: ApplianceSocket, Port: "socket", Wait: "adaptive", DatagramsPerCall: 7,
		Points: []CapacityPoint{{OfferedCPS: 10000, AchievedCPS: 9990, Sent: 700, Forwarded: 700, NsPerForwarded: 8000},
			{OfferedCPS: 20000, AchievedCPS: 19000, Sent: 700, Forwarded: 600, Lost: 100, LossPct: 14.3, Drops: map[string]uint64{"no_tx_buffer": 3}}}}}}
	r.Capacity.Runs[0].MaxCPS, r.Capacity.Runs[0].LimitFound = capacityMax(r.Capacity.Runs[0].Points)
	if r.Capacity.Runs[0].MaxCPS != 9990 || !r.Capacity.Runs[0].LimitFound {
		t.Fatalf("capacity max %v limit %v", r.Capacity.Runs[0].MaxCPS, r.Capacity.Runs[0].LimitFound)
	}
	for i := range r.E2E {
		r.E2E[i].MaxCPS = maxCarried(r.E2E[i].Points)
		if n := len(r.E2E[i].Points); n > 0 {
			r.E2E[i].LimitFound = r.E2E[i].Points[n-1].FailurePct >= MaxFailurePct
		}
	}
	r.Summarize()
	s := r.Summary
	if s.MaxCPS[Kamailio] != 2000 || s.MaxCPS[ApplianceSocket] != 4000 {
		t.Fatalf("max %v", s.MaxCPS)
	}
	if s.CommonCPS != 2000 {
		t.Fatalf("common rate %v, want 2000", s.CommonCPS)
	}
	if got := s.Ratios[ApplianceSocket]["max_cps"]; got != 2 {
		t.Fatalf("max ratio %v, want 2", got)
	}
	if got := s.Ratios[ApplianceSocket]["cpu_per_call"]; got != 0.5 {
		t.Fatalf("cpu ratio %v, want 0.5", got)
	}
	if !contains(s.NoLimit, ApplianceSocket) || contains(s.NoLimit, Kamailio) {
		t.Fatalf("limit not reached: %v", s.NoLimit)
	}
	if !contains(s.SippLimited, ApplianceSocket) {
		t.Fatalf("sipp-limited: %v", s.SippLimited)
	}
	pr := s.PerRate[ApplianceSocket]
	if len(pr) != 3 || pr[1].CPS != 2000 || pr[1].CPUPerCall != 0.5 || pr[1].P99DiffMs == nil || *pr[1].P99DiffMs != 0.4-0.8 || pr[2].Carried {
		t.Fatalf("per-rate ratios %+v", pr)
	}
	var md bytes.Buffer
	r.Mode, r.Date = "check", "2026-01-01T00-00-00Z"
	r.WriteMarkdown(&md)
	for _, want := range []string{"| kamailio | 4000 |", "skipped: no daemon", ">= 4000", "highest rate x2.00", "CPU per call x0.50 at 2000 CPS (the highest rate both carried)", "sipp was the limit for: appliance-socket",
		"| appliance-socket-adaptive | 200 (x0.80) | 100 (x0.50) |", "1.00 + 0.50 (x0.60)", "0.10 / 0.40 (-0.40)", "| appliance-socket-adaptive | 0.700 |", "NOT met",
		"| appliance-socket-adaptive | socket | adaptive | 9990 |", "no_tx_buffer=3"} {
		if !strings.Contains(md.String(), want) {
			t.Errorf("markdown lacks %q:\n%s", want, md.String())
		}
	}
	dir := t.TempDir()
	if err := r.WriteJSON(filepath.Join(dir, "r.json")); err != nil {
		t.Fatal(err)
	}
	var back Results
	b, _ := os.ReadFile(filepath.Join(dir, "r.json"))
	if err := json.Unmarshal(b, &back); err != nil || len(back.E2E) != 3 || back.Summary.CommonCPS != 2000 {
		t.Fatalf("JSON round trip: %v %+v", err, back.Summary)
	}
	if err := r.WritePlots(filepath.Join(dir, "r")); err != nil {
		t.Fatal(err)
	}
	for _, n := range PlotNames {
		p := filepath.Join(dir, "r-"+n+".png")
		b, err := os.ReadFile(p)
		if err != nil || !bytes.HasPrefix(b, []byte("\x89PNG")) {
			t.Fatalf("%s is not a PNG: %v", p, err)
		}
	}
}

func TestUASScenarioFallback(t *testing.T) {
	dir := t.TempDir()
	if got := UASScenario(dir); got != filepath.Join(dir, "bench", "harness", "testdata", "uas.xml") {
		t.Fatalf("without the daemon's scenario: %s", got)
	}
	os.MkdirAll(filepath.Join(dir, "appliance", "testdata"), 0o755)
	os.WriteFile(filepath.Join(dir, "appliance", "testdata", "uas.xml"), []byte("<scenario/>"), 0o644)
	if got := UASScenario(dir); got != filepath.Join(dir, "appliance", "testdata", "uas.xml") {
		t.Fatalf("with the daemon's scenario: %s", got)
	}
}

func TestParseCoreTimes(t *testing.T) {
	stat := "cpu  10 0 10 100 0 0 0 0 0 0\n" +
		"cpu0 1 2 3 40 5 6 7 8 0 0\n" +
		"cpu1 10 0 20 70 0 0 0 0 0 0\n" +
		"intr 1 2 3\n"
	got, err := parseCoreTimes(stat, []int{1, 0})
	if err != nil {
		t.Fatal(err)
	}
	if got[0] != (CoreTimes{Busy: 30, Total: 100}) || got[1] != (CoreTimes{Busy: 27, Total: 72}) {
		t.Fatalf("got %+v", got)
	}
	if _, err := parseCoreTimes(stat, []int{2}); err == nil {
		t.Fatal("cpu2 is not in the text but was found")
	}
	if p := BusyPct(CoreTimes{10, 100}, CoreTimes{40, 200}); p != 30 {
		t.Fatalf("BusyPct = %v, want 30", p)
	}
	if p := BusyPct(CoreTimes{10, 100}, CoreTimes{10, 100}); p != 0 {
		t.Fatalf("BusyPct over no time = %v, want 0", p)
	}
}

func TestSummariseMetrics(t *testing.T) {
	text := "# HELP x\nsipedge_received_total 120\nsipedge_transmitted_total 100\nsipedge_port_errors_total 0\n" +
		"sipedge_dropped_total{reason=\"unresolved\"} 20\nsipedge_dropped_total{reason=\"no_tx_buffer\"} 0\nsipedge_uptime_seconds 3\n"
	got := summariseMetrics(text)
	want := `appliance: received_total=120 transmitted_total=100 dropped_total{reason="unresolved"}=20`
	if got != want {
		t.Fatalf("got  %s\nwant %s", got, want)
	}
	if got := summariseMetrics("sipedge_uptime_seconds 3\n"); !strings.Contains(got, "no traffic") {
		t.Fatalf("no counters: %s", got)
	}
}

func TestClassifySaturation(t *testing.T) {
	pt := RatePoint{SippLimited: true, ProxyCPUPct: 99, Note: "retried; sipp-limited: sipp 98%"}
	pt.classifySaturation()
	if pt.SippLimited || pt.Note != "retried; proxy and sipp both saturated: sipp 98%" {
		t.Fatalf("saturated proxy: %+v", pt)
	}
	pt = RatePoint{SippLimited: true, ProxyCPUPct: 50, Note: "sipp-limited: x"}
	pt.classifySaturation()
	if !pt.SippLimited || pt.Note != "sipp-limited: x" {
		t.Fatalf("proxy with room: %+v", pt)
	}
}
