package appliance_test

// Helpers for the end-to-end tests: the appliance binary and sipp, each
// started by the test and stopped by its own pid.

import (
	"bytes"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"sipedge/appliance"
)

// requireSipp skips (or, when CI=true, fails) a test that needs sipp.
func requireSipp(t testing.TB) string {
	t.Helper()
	p, err := exec.LookPath("sipp")
	if err == nil {
		return p
	}
	msg := "this test needs sipp: apt-get install sip-tester (or make test-deps)"
	if os.Getenv("CI") == "true" {
		t.Fatal(msg)
	}
	t.Skip(msg)
	return ""
}

var (
	buildOnce sync.Once
	binPath   string
	buildErr  error
)

// applianceBinary builds bin/appliance once per test run, into a temporary
// directory: the tests run what users run.
func applianceBinary(t testing.TB) string {
	t.Helper()
	buildOnce.Do(func() {
		dir, err := os.MkdirTemp("", "sipedge-e2e-bin")
		if err != nil {
			buildErr = err
			return
		}
		binPath = filepath.Join(dir, "appliance")
		goBin := filepath.Join(runtime.GOROOT(), "bin", "go")
		out, err := exec.Command(goBin, "build", "-o", binPath, "sipedge/appliance/cmd/appliance").CombinedOutput()
		if err != nil {
			buildErr = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return binPath
}

// freeUDP returns ip with a UDP port free right now; freeTCP the same for TCP.
func freeUDP(t testing.TB, ip string) string {
	t.Helper()
	c, err := net.ListenPacket("udp", ip+":0")
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	return c.LocalAddr().String()
}

func freeTCP(t testing.TB, ip string) string {
	t.Helper()
	l, err := net.Listen("tcp", ip+":0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

func portOf(addr string) string {
	_, p, _ := net.SplitHostPort(addr)
	return p
}

// logBuffer collects a process's output and wakes waiters on each write.
type logBuffer struct {
	mu    sync.Mutex
	b     bytes.Buffer
	wrote chan struct{}
}

func newLogBuffer() *logBuffer { return &logBuffer{wrote: make(chan struct{}, 1)} }

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	select {
	case l.wrote <- struct{}{}:
	default:
	}
	return l.b.Write(p)
}

func (l *logBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// waitLog waits (bounded) until the log contains what.
func (l *logBuffer) waitLog(t testing.TB, what string, within time.Duration) {
	t.Helper()
	deadline := time.After(within)
	for !strings.Contains(l.String(), what) {
		select {
		case <-l.wrote:
		case <-deadline:
			t.Fatalf("the log never said %q within %v:\n%s", what, within, l.String())
		}
	}
}

// proc is a process the test started, in its own process group.
type proc struct {
	cmd  *exec.Cmd
	log  *logBuffer
	done chan struct{}
	err  error
}

// start runs name args (prefix, when set, wraps it: ip netns exec NS) and
// kills its process group when the test ends.
func start(t testing.TB, dir string, prefix []string, name string, args ...string) *proc {
	t.Helper()
	all := append(append(append([]string{}, prefix...), name), args...)
	cmd := exec.Command(all[0], all[1:]...)
	cmd.Dir = dir
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	p := &proc{cmd: cmd, log: newLogBuffer(), done: make(chan struct{})}
	cmd.Stdout, cmd.Stderr = p.log, p.log
	if err := cmd.Start(); err != nil {
		t.Fatalf("starting %s: %v", name, err)
	}
	go func() { p.err = cmd.Wait(); close(p.done) }()
	t.Cleanup(func() {
		select {
		case <-p.done:
			return
		default:
		}
		syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		<-p.done
	})
	return p
}

// signalWait sends sig and waits (bounded) for the process to exit.
func (p *proc) signalWait(t testing.TB, sig syscall.Signal, within time.Duration) (exitCode int, ok bool) {
	t.Helper()
	p.cmd.Process.Signal(sig)
	select {
	case <-p.done:
		return p.cmd.ProcessState.ExitCode(), true
	case <-time.After(within):
		return -1, false
	}
}

// wait waits (bounded) for the process to exit by itself.
func (p *proc) wait(t testing.TB, within time.Duration) int {
	t.Helper()
	select {
	case <-p.done:
		return p.cmd.ProcessState.ExitCode()
	case <-time.After(within):
		t.Fatalf("%s still running after %v:\n%s", p.cmd.Path, within, p.log.String())
		return -1
	}
}

// app is the appliance binary running a test configuration.
type app struct {
	*proc
	admin, sip string
	cfgPath    string
}

// startApp writes cfg to dir and runs the appliance on it, waiting until
// every worker runs.
func startApp(t testing.TB, dir string, prefix []string, cfg string, workers int) *app {
	t.Helper()
	return startAppBin(t, dir, prefix, applianceBinary(t), cfg, 0o600, workers)
}

// startAppBin is startApp with another binary and the configuration file's
// mode (a binary run as another user must be able to read it).
func startAppBin(t testing.TB, dir string, prefix []string, bin, cfg string, mode os.FileMode, workers int) *app {
	t.Helper()
	path := filepath.Join(dir, "appliance.toml")
	if err := os.WriteFile(path, []byte(cfg), mode); err != nil {
		t.Fatal(err)
	}
	a := &app{cfgPath: path}
	a.proc = start(t, dir, prefix, bin, "run", "-c", path)
	deadline := time.After(20 * time.Second)
	for strings.Count(a.log.String(), "worker started") < workers {
		select {
		case <-a.log.wrote:
		case <-a.done:
			t.Fatalf("appliance exited: %v\n%s", a.err, a.log.String())
		case <-deadline:
			t.Fatalf("appliance did not start its workers:\n%s", a.log.String())
		}
	}
	return a
}

func (a *app) get(t testing.TB, path string, into any) int {
	t.Helper()
	c := http.Client{Timeout: 5 * time.Second}
	resp, err := c.Get("http://" + a.admin + path)
	if err != nil {
		t.Fatalf("GET %s: %v", path, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if into != nil {
		if s, ok := into.(*string); ok {
			*s = string(b)
		} else if err := json.Unmarshal(b, into); err != nil {
			t.Fatalf("GET %s: %v\n%s", path, err, b)
		}
	}
	return resp.StatusCode
}

func (a *app) backends(t testing.TB) map[string]appliance.BackendJSON {
	t.Helper()
	var list []appliance.BackendJSON
	a.get(t, "/backends", &list)
	m := map[string]appliance.BackendJSON{}
	for _, b := range list {
		m[b.Address] = b
	}
	return m
}

// waitBackends polls /backends (bounded; the appliance has no push
// channel) until cond holds.
func (a *app) waitBackends(t testing.TB, what string, within time.Duration, cond func(map[string]appliance.BackendJSON) bool) map[string]appliance.BackendJSON {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		b := a.backends(t)
		if cond(b) {
			return b
		}
		if time.Now().After(deadline) {
			t.Fatalf("backends never %s within %v: %+v", what, within, b)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// scrapeWhen scrapes /metrics until every sample in want has its value, or
// 5s pass, and returns the last scrape for the caller's assertions: a worker
// publishes its counters after the batch that sent its last message, so a
// scrape just after a response may come a moment before they add up.
func (a *app) scrapeWhen(t testing.TB, want map[string]float64) string {
	t.Helper()
	var m string
	for deadline := time.Now().Add(5 * time.Second); ; {
		a.get(t, "/metrics", &m)
		ok := true
		for name, v := range want {
			if got, found := sample(m, name); !found || got != v {
				ok = false
				break
			}
		}
		if ok || time.Now().After(deadline) {
			return m
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// sample is metric without failing: the value and whether the line is there.
func sample(text, name string) (float64, bool) {
	for _, line := range strings.Split(text, "\n") {
		if rest, ok := strings.CutPrefix(line, name+" "); ok {
			v, err := strconv.ParseFloat(rest, 64)
			return v, err == nil
		}
	}
	return 0, false
}

// metric returns the value of one sample line of /metrics ("name{labels}").
func metric(t testing.TB, text, sample string) float64 {
	t.Helper()
	for _, line := range strings.Split(text, "\n") {
		if rest, ok := strings.CutPrefix(line, sample+" "); ok {
			v, err := strconv.ParseFloat(rest, 64)
			if err != nil {
				t.Fatalf("metric %s: %v", sample, err)
			}
			return v
		}
	}
	t.Fatalf("metric %s not in /metrics", sample)
	return 0
}

// sumMetric sums every sample of a family (any labels).
func sumMetric(text, name string) float64 {
	var s float64
	for _, line := range strings.Split(text, "\n") {
		if strings.HasPrefix(line, name+"{") || strings.HasPrefix(line, name+" ") {
			f := strings.Fields(line)
			v, _ := strconv.ParseFloat(f[len(f)-1], 64)
			s += v
		}
	}
	return s
}

// uasScenario is the UAS that answers OPTIONS (the appliance's probes).
func uasScenario(t testing.TB) string {
	t.Helper()
	p, err := filepath.Abs("testdata/uas.xml")
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// sipp runs one sipp in the foreground (no -bg, so its pid is ours) with
// statistics dumped every second to name.csv in dir.
func sipp(t testing.TB, dir string, prefix []string, name string, args ...string) *proc {
	t.Helper()
	base := []string{"-nostdin", "-trace_stat", "-stf", name + ".csv", "-fd", "1", "-trace_err", "-error_file", name + "_errors.log"}
	return start(t, dir, prefix, requireSipp(t), append(base, args...)...)
}

// sippStats reads the last row of a sipp -trace_stat CSV.
func sippStats(t testing.TB, dir, name string) map[string]int {
	t.Helper()
	f, err := os.Open(filepath.Join(dir, name+".csv"))
	if err != nil {
		t.Fatalf("sipp statistics of %s: %v", name, err)
	}
	defer f.Close()
	r := csv.NewReader(f)
	r.Comma = ';'
	r.FieldsPerRecord = -1
	rows, err := r.ReadAll()
	if err != nil || len(rows) < 2 {
		t.Fatalf("sipp statistics of %s: %v (%d rows)", name, err, len(rows))
	}
	out := map[string]int{}
	last := rows[len(rows)-1]
	for i, k := range rows[0] {
		if i < len(last) {
			if v, err := strconv.Atoi(last[i]); err == nil {
				out[k] = v
			}
		}
	}
	return out
}

// stopUAS asks a sipp UAS to quit (SIGUSR1: it finishes, dumps its final
// statistics and exits) and returns them.
func stopUAS(t testing.TB, p *proc, dir, name string) map[string]int {
	t.Helper()
	if _, ok := p.signalWait(t, syscall.SIGUSR1, 10*time.Second); !ok {
		t.Fatalf("sipp %s did not quit on SIGUSR1:\n%s", name, p.log.String())
	}
	return sippStats(t, dir, name)
}

func errorsLog(dir, name string) string {
	b, _ := os.ReadFile(filepath.Join(dir, name+"_errors.log"))
	if len(b) > 2000 {
		b = b[:2000]
	}
	return string(b)
}

func writeFile(path, s string) error { return os.WriteFile(path, []byte(s), 0o600) }
