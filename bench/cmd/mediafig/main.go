// Command mediafig measures what the media stages cost: calls/s through
// the appliance with [media] on (rtpengine on the same box) and off, the
// call-setup latency (INVITE to 200 at the UAC, p50/p99) and the
// appliance's CPU per call (schedstat of every thread). Everything runs
// on loopback: sipp UAC -> appliance (socket port, one worker) -> sipp
// UAS, and an rtpengine started here in userspace (table -1).
//
//	cd bench && go run ./cmd/mediafig -rates 200,500,1000 -seconds 10
package main

import (
	"bufio"
	"encoding/csv"
	"flag"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"time"

	"sipedge/bench/harness"
)

func main() {
	rates := flag.String("rates", "200,500,1000", "offered call rates (calls/s), comma-separated")
	seconds := flag.Int("seconds", 10, "seconds of calls per rate")
	modes := flag.String("modes", "off,on", "media modes to run: off, on")
	latCalls := flag.Int("latency-calls", 1000, "calls placed one at a time to measure call setup latency")
	latRate := flag.Int("latency-rate", 100, "their rate (calls/s)")
	flag.IntVar(&helpers, "helpers", 16, "media.helpers: ng clients per worker and side")
	flag.IntVar(&relayThreads, "relay-threads", 2, "rtpengine --num-threads")
	flag.Parse()
	repo, err := filepath.Abs("..")
	must(err)
	work, err := os.MkdirTemp("", "mediafig")
	must(err)
	if os.Getenv("MEDIAFIG_KEEP") == "" {
		defer os.RemoveAll(work)
	}
	bin := filepath.Join(work, "appliance")
	build := exec.Command(filepath.Join(runtime.GOROOT(), "bin", "go"), "build", "-o", bin, "./appliance/cmd/appliance")
	build.Dir = repo // the main module: bench's go.sum does not cover the appliance's own dependencies
	out, err := build.CombinedOutput()
	if err != nil {
		fatalf("go build: %v\n%s", err, out)
	}
	load, _ := os.ReadFile("/proc/loadavg")
	fmt.Printf("load before: %s", load)
	var rows []string
	for _, mode := range strings.Split(*modes, ",") {
		st := startStack(repo, work, bin, mode == "on")
		lat, failed := setupLatencies(st.sip, *latCalls, *latRate)
		fmt.Printf("media %s: call setup (INVITE to 200 at the UAC) over %d calls at %d/s: p50 %v p99 %v (%d failed)\n",
			mode, len(lat), *latRate, pct(lat, 50), pct(lat, 99), failed)
		st.g.KillAll()
		for _, rs := range strings.Split(*rates, ",") {
			rate, err := strconv.Atoi(rs)
			must(err)
			// A fresh appliance and relay per rate: an overrun at one
			// rate (calls left on the relay, a backlog) must not weigh
			// on the next.
			st := startStack(repo, work, bin, mode == "on")
			r := st.sippRun(rate, *seconds)
			st.g.KillAll()
			rows = append(rows, fmt.Sprintf("| %s | %d | %d | %d | %d | %.0f | %.0f | %.0f | %.1f | %.0f |", mode, rate, r.calls, r.ok, r.failed, r.carried, r.p50, r.p99, r.usPerCall, r.cpuPct))
			if r.notes != "" {
				fmt.Printf("media %s at %d/s: %s\n", mode, rate, r.notes)
			}
		}
	}
	fmt.Println("| media | offered/s | calls | ok | failed | carried/s | sipp setup p50 ms | sipp setup p99 ms | appliance CPU us/call | appliance CPU % of a core |")
	fmt.Println("|---|---|---|---|---|---|---|---|---|---|")
	for _, r := range rows {
		fmt.Println(r)
	}
	load, _ = os.ReadFile("/proc/loadavg")
	fmt.Printf("load after: %s", load)
}

var helpers, relayThreads int

type result struct {
	notes                                string
	calls, ok, failed                    int
	carried, p50, p99, usPerCall, cpuPct float64
}

// stack is the appliance, its UAS and (media on) its relay.
type stack struct {
	g               *harness.Group
	dir, sip, admin string
	app             *harness.Proc
	repo            string
	runs            int
}

func startStack(repo, work, bin string, media bool) *stack {
	dir, err := os.MkdirTemp(work, fmt.Sprintf("media-%v-", media))
	must(err)
	g := &harness.Group{}
	uas := freeUDP()
	_, err = g.Start(dir, "uas", "sipp", "-nostdin", "-sf", filepath.Join(repo, "appliance/testdata/uas.xml"), "-aa",
		"-i", "127.0.0.1", "-p", port(uas), "-recv_timeout", "8000", "-buff_size", "4194304")
	must(err)
	sip, admin := freeUDP(), freeTCP()
	cfg := fmt.Sprintf("[guard]\nenabled = false\n[io]\nport = \"socket\"\nlisten = %q\ncores = [0]\n[admin]\nlisten = %q\n"+
		"[node]\naddresses = [\"127.0.0.1\"]\nsecret = \"mediafig secret, 32 bytes long..\"\n[[dispatcher.backends]]\naddress = %q\n", sip, admin, uas)
	if media {
		ng := freeUDP()
		_, err := g.Start(dir, "rtpengine", "rtpengine", "--config-file=none", "--table=-1", "--interface=127.0.0.1",
			"--listen-ng="+ng, "--port-min=20000", "--port-max=59999", "--delete-delay=0", "--foreground", "--log-stderr",
			"--log-level=3", "--num-threads="+strconv.Itoa(relayThreads), "--pidfile="+filepath.Join(dir, "rtpengine.pid"))
		must(err)
		cfg += fmt.Sprintf("[media]\nenabled = true\ndelete_delay = 0\nhelpers = %d\nrelays = [{ address = %q }]\n", helpers, ng)
	}
	must(os.WriteFile(filepath.Join(dir, "appliance.toml"), []byte(cfg), 0o600))
	app, err := g.Start(dir, "appliance", bin, "run", "-c", filepath.Join(dir, "appliance.toml"))
	must(err)
	waitUp(admin, media)
	return &stack{g: g, dir: dir, sip: sip, admin: admin, app: app, repo: repo}
}

// sippRun offers rate calls/s for seconds with sipp's UAC.
func (s *stack) sippRun(rate, seconds int) result {
	s.runs++
	dir := filepath.Join(s.dir, "run"+strconv.Itoa(s.runs))
	must(os.Mkdir(dir, 0o755))
	g, app, repo, sip := s.g, s.app, s.repo, s.sip
	calls := rate * seconds
	u0, err := harness.ReadUsage(app.Pid(), false)
	must(err)
	t0 := time.Now()
	uac, err := g.Start(dir, "uac", "sipp", "-nostdin", "-sf", filepath.Join(repo, "bench/harness/testdata/uac.xml"),
		"-i", "127.0.0.2", "-p", port(freeUDPOn("127.0.0.2")), "-r", strconv.Itoa(rate), "-rp", "1000",
		"-m", strconv.Itoa(calls), "-d", "0", "-l", strconv.Itoa(max(100, rate*5)), "-recv_timeout", "4000",
		"-default_behaviors", "all,-abortunexp", "-timeout", strconv.Itoa(seconds*3+20)+"s",
		"-trace_stat", "-stf", "uac.csv", "-trace_rtt", "-rtt_freq", "1", "-buff_size", "4194304", sip)
	must(err)
	uac.Wait(time.Duration(seconds*3+30) * time.Second)
	el := time.Since(t0)
	u1, err := harness.ReadUsage(app.Pid(), false)
	must(err)
	st, err := harness.ReadSippCSV(filepath.Join(dir, "uac.csv"))
	must(err)
	r := result{calls: calls, ok: st.Successful, failed: st.Failed}
	r.carried = float64(st.Successful) / el.Seconds()
	d := u1.Sub(u0)
	if st.Successful > 0 {
		r.usPerCall = float64(d.CPUNs) / 1e3 / float64(st.Successful)
	}
	r.cpuPct = 100 * float64(d.CPUNs) / float64(el.Nanoseconds())
	r.p50, r.p99 = rtts(dir)
	r.notes = mediaNotes(s.admin)
	return r
}

// rtts reads sipp's -trace_rtt file: one response time (ms) per call.
func rtts(dir string) (p50, p99 float64) {
	files, _ := filepath.Glob(filepath.Join(dir, "*_rtt.csv"))
	var v []float64
	for _, f := range files {
		fh, err := os.Open(f)
		if err != nil {
			continue
		}
		r := csv.NewReader(bufio.NewReader(fh))
		r.Comma, r.FieldsPerRecord = ';', -1
		rows, _ := r.ReadAll()
		fh.Close()
		for _, row := range rows {
			if len(row) >= 2 {
				if x, err := strconv.ParseFloat(row[1], 64); err == nil {
					v = append(v, x)
				}
			}
		}
	}
	if len(v) == 0 {
		return 0, 0
	}
	sort.Float64s(v)
	return v[len(v)*50/100], v[min(len(v)-1, len(v)*99/100)]
}

// waitUp polls /backends and, with media, /relays until all are up.
func waitUp(admin string, media bool) {
	end := time.Now().Add(20 * time.Second)
	c := http.Client{Timeout: time.Second}
	for time.Now().Before(end) {
		ok := get(&c, admin, "/backends")
		if ok && media {
			ok = get(&c, admin, "/relays")
		}
		if ok {
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
	fatalf("appliance at %s not ready in 20s", admin)
}

func get(c *http.Client, admin, path string) bool {
	resp, err := c.Get("http://" + admin + path)
	if err != nil {
		return false
	}
	defer resp.Body.Close()
	b := make([]byte, 4096)
	n, _ := resp.Body.Read(b)
	return resp.StatusCode == 200 && strings.Contains(string(b[:n]), `"up"`) && !strings.Contains(string(b[:n]), `"down"`)
}

func freeUDP() string { return freeUDPOn("127.0.0.1") }

func freeUDPOn(ip string) string {
	c, err := net.ListenPacket("udp", ip+":0")
	must(err)
	defer c.Close()
	return c.LocalAddr().String()
}

func freeTCP() string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	must(err)
	defer l.Close()
	return l.Addr().String()
}

func port(a string) string { _, p, _ := net.SplitHostPort(a); return p }

func must(err error) {
	if err != nil {
		fatalf("%v", err)
	}
}

func fatalf(f string, a ...any) {
	fmt.Fprintf(os.Stderr, "mediafig: "+f+"\n", a...)
	os.Exit(1)
}

// mediaNotes lists the non-zero media fallbacks and ng errors of a run:
// what limited it.
func mediaNotes(admin string) string {
	c := http.Client{Timeout: 2 * time.Second}
	resp, err := c.Get("http://" + admin + "/metrics")
	if err != nil {
		return ""
	}
	defer resp.Body.Close()
	var out []string
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		l := sc.Text()
		if !strings.HasPrefix(l, "sipedge_media_") || strings.HasSuffix(l, " 0") || strings.Contains(l, "latency") {
			continue
		}
		if strings.Contains(l, "fallbacks") || strings.Contains(l, "errors") || strings.Contains(l, "ng_requests") || strings.Contains(l, "parked") {
			out = append(out, strings.TrimPrefix(l, "sipedge_media_"))
		}
		if strings.HasPrefix(l, "sipedge_park") || strings.HasPrefix(l, "sipedge_fallback") {
			out = append(out, l)
		}
	}
	return strings.Join(out, ", ")
}
