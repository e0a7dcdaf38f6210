package appliance_test

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"sipedge/internal/redistest"
)

// cpuNs is the CPU time (ns, /proc/PID/task/*/schedstat) of pid's threads
// and of its child processes' (kamailio forks its workers).
func cpuNs(pid int) uint64 {
	var total uint64
	tasks, _ := filepath.Glob(fmt.Sprintf("/proc/%d/task/*/schedstat", pid))
	for _, f := range tasks {
		b, err := os.ReadFile(f)
		if err != nil {
			continue
		}
		if v, err := strconv.ParseUint(strings.Fields(string(b))[0], 10, 64); err == nil {
			total += v
		}
	}
	stats, _ := filepath.Glob("/proc/[0-9]*/stat")
	for _, f := range stats {
		b, err := os.ReadFile(f)
		if err != nil {
			continue
		}
		s := string(b)
		i := strings.LastIndexByte(s, ')')
		if i < 0 {
			continue
		}
		fs := strings.Fields(s[i+1:])
		if len(fs) > 1 && fs[1] == strconv.Itoa(pid) {
			child, _ := strconv.Atoi(filepath.Base(filepath.Dir(f)))
			total += cpuNs(child)
		}
	}
	return total
}

// storm runs the REGISTER storm (testdata/registrar/storm.xml: each phone
// registers and refreshes, each with a digest challenge) against target
// and returns the wall time and how many phones succeeded.
func storm(tb testing.TB, dir, name, target, inf string, phones, rate int) (time.Duration, int) {
	tb.Helper()
	t0 := time.Now()
	p := sipp(tb, dir, nil, name, "-sf", registrarScenario(tb, "storm.xml"), "-inf", inf,
		"-i", uacIP, "-p", portOf(freeUDP(tb, uacIP)), "-key", "domain", regDomain, "-key", "expires", "600",
		"-m", fmt.Sprint(phones), "-r", fmt.Sprint(rate), "-l", "1000", "-recv_timeout", "5s", "-timeout", "120s", "-timeout_error", target)
	p.wait(tb, 150*time.Second)
	return time.Since(t0), sippStats(tb, dir, name)["SuccessfulCall(C)"]
}

// BenchmarkRegisterVsKamailio runs one sipp REGISTER storm (phones that
// register and refresh, digest on each: 4 REGISTERs, 2 answered 200) through
// the appliance (one worker; [auth] from a users file) and then through
// Kamailio 5.6 (auth + registrar, usrloc db_mode 0, one UDP child), and
// reports 200-answered REGISTERs per CPU-second of each (per core). The
// store=redis run keeps the bindings in Redis (what a cluster of edges
// shares; Redis's CPU is reported beside it), store=memory in the
// appliance's own memory, as Kamailio keeps them here. Each sub-benchmark
// starts its own Kamailio, so both see new phones. Run it with
// -benchtime=1x: one storm per side is the measurement.
func BenchmarkRegisterVsKamailio(b *testing.B) {
	for _, store := range []string{"redis", "memory"} {
		b.Run("store="+store, func(b *testing.B) { benchRegister(b, store) })
	}
}

func benchRegister(b *testing.B, store string) {
	requireSipp(b)
	kam, err := exec.LookPath("kamailio")
	if err != nil {
		b.Skip("kamailio is not installed: apt-get install kamailio (or make test-deps)")
	}
	const phones, rate = 6000, 1500
	dir := b.TempDir()
	var inf strings.Builder
	inf.WriteString("SEQUENTIAL\n")
	for i := 0; i < phones; i++ {
		fmt.Fprintf(&inf, "phone%d;[authentication username=phone%d password=secret]\n", i, i)
	}
	infPath := filepath.Join(dir, "phones.csv")
	if err := os.WriteFile(infPath, []byte(inf.String()), 0o600); err != nil {
		b.Fatal(err)
	}
	srv := redistest.Start(b)
	users := regUsers(b, dir, "secret", phoneNames(phones)...)
	// wait = "block": the worker sleeps in the kernel when idle, so its
	// CPU time is work, not spinning (Kamailio blocks in recvfrom too).
	sections := regSections(users, []string{srv.Addr}, "")
	if store == "memory" {
		sections = strings.Replace(sections, `store = "redis"`, `store = "memory"`, 1)
	}
	a := startEdgeIO(b, dir, sections, "wait = \"block\"\n")
	redisPid := srv.Pid()

	kdir := filepath.Join(dir, "kamailio")
	os.MkdirAll(kdir, 0o700)
	cfg, _ := filepath.Abs("testdata/registrar/kamailio.cfg")
	ksip := freeUDP(b, "127.0.0.1")
	k := start(b, kdir, nil, kam, "-DD", "-E", "-f", cfg, "-P", filepath.Join(kdir, "pid"), "-Y", kdir, "-n", "1", "-l", "udp:"+ksip)
	end := time.Now().Add(10 * time.Second)
	for !strings.Contains(k.log.String(), "INFO") && time.Now().Before(end) {
		select {
		case <-k.log.wrote:
		case <-time.After(100 * time.Millisecond):
		}
	}

	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		c0, r0 := cpuNs(a.cmd.Process.Pid), cpuNs(redisPid)
		el, ok := storm(b, dir, fmt.Sprintf("app%d", i), a.sip, infPath, phones, rate)
		c1, r1 := cpuNs(a.cmd.Process.Pid), cpuNs(redisPid)
		k0 := cpuNs(k.cmd.Process.Pid)
		kel, kok := storm(b, dir, fmt.Sprintf("kam%d", i), ksip, infPath, phones, rate)
		k1 := cpuNs(k.cmd.Process.Pid)
		regs, kregs := float64(2*ok), float64(2*kok)
		app := regs / (float64(c1-c0) / 1e9)
		appRedis := regs / (float64(c1-c0+r1-r0) / 1e9)
		kamPer := kregs / (float64(k1-k0) / 1e9)
		b.ReportMetric(app, "app-regs/cpu-s")
		if store == "redis" {
			b.ReportMetric(appRedis, "app+redis-regs/cpu-s")
		}
		b.ReportMetric(kamPer, "kamailio-regs/cpu-s")
		b.ReportMetric(regs/el.Seconds(), "app-regs/s")
		b.ReportMetric(kregs/kel.Seconds(), "kamailio-regs/s")
		if ok < phones {
			log := errorsLog(dir, fmt.Sprintf("app%d", i))
			b.Logf("appliance failures (first of the sipp error log): %s", log[:min(len(log), 600)])
		}
		b.Logf("%d phones at %d/s: appliance %d ok in %v, CPU %.2fs (+ redis %.2fs); kamailio %d ok in %v, CPU %.2fs",
			phones, rate, ok, el.Round(time.Millisecond), float64(c1-c0)/1e9, float64(r1-r0)/1e9, kok, kel.Round(time.Millisecond), float64(k1-k0)/1e9)
	}
	var m string
	a.get(b, "/metrics", &m)
	for _, l := range strings.Split(m, "\n") {
		if (strings.Contains(l, "registrar") || strings.Contains(l, "park") || strings.Contains(l, "dropped") || strings.Contains(l, "auth_")) && !strings.HasPrefix(l, "#") && !strings.HasSuffix(l, " 0") {
			b.Log(l)
		}
	}
	k.cmd.Process.Signal(syscall.SIGTERM)
}
