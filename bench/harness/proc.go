package harness

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// clockTicks is USER_HZ, the unit of utime and stime in /proc/PID/stat. It
// is 100 on every Linux architecture Go supports (the kernel fixes it for
// user space), so it is not read through sysconf.
const clockTicks = 100

// Proc is a process the harness started, leading its own process group so
// that stopping it stops whatever it forked (kamailio's children).
type Proc struct {
	Name string
	Cmd  *exec.Cmd
	Log  string // file holding its stdout and stderr
	done chan struct{}
	err  error
}

// Group tracks every process a run starts so that all of them can be
// killed on any exit path, Ctrl-C included.
type Group struct {
	mu    sync.Mutex
	procs []*Proc
}

// Start runs argv in dir with its output in dir/name.log.
func (g *Group) Start(dir, name string, argv ...string) (*Proc, error) {
	logPath := filepath.Join(dir, name+".log")
	f, err := os.Create(logPath)
	if err != nil {
		return nil, fmt.Errorf("harness: log of %s: %w", name, err)
	}
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Dir = dir
	cmd.Stdout, cmd.Stderr = f, f
	// No Pdeathsig: it fires when the forking *thread* exits, and the
	// runtime retires threads (a goroutine that entered a namespace
	// locked its thread and dies with it), which killed backends in the
	// middle of a run. Cleanup is KillAll's job, on every exit path.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		f.Close()
		return nil, fmt.Errorf("harness: starting %s (%s): %w", name, strings.Join(argv, " "), err)
	}
	p := &Proc{Name: name, Cmd: cmd, Log: logPath, done: make(chan struct{})}
	go func() {
		p.err = cmd.Wait()
		f.Close()
		close(p.done)
	}()
	g.mu.Lock()
	g.procs = append(g.procs, p)
	g.mu.Unlock()
	return p, nil
}

// Pid is the process id (the process group id too).
func (p *Proc) Pid() int { return p.Cmd.Process.Pid }

// Done is closed when the process has exited.
func (p *Proc) Done() <-chan struct{} { return p.done }

// Exited reports whether the process has exited.
func (p *Proc) Exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// Wait waits up to within for the process to exit by itself.
func (p *Proc) Wait(within time.Duration) error {
	select {
	case <-p.done:
		return p.err
	case <-time.After(within):
		return fmt.Errorf("harness: %s (pid %d) still running after %v", p.Name, p.Pid(), within)
	}
}

// Stop signals the process group with sig, waits up to grace, then kills
// the group. It returns once the leader has exited.
func (p *Proc) Stop(sig syscall.Signal, grace time.Duration) {
	if p.Exited() {
		syscall.Kill(-p.Pid(), syscall.SIGKILL) // orphans the leader left behind
		return
	}
	syscall.Kill(-p.Pid(), sig)
	select {
	case <-p.done:
	case <-time.After(grace):
		syscall.Kill(-p.Pid(), syscall.SIGKILL)
		<-p.done
	}
	syscall.Kill(-p.Pid(), syscall.SIGKILL)
}

// Tail is the end of the process's log, for error messages.
func (p *Proc) Tail(n int) string {
	b, _ := os.ReadFile(p.Log)
	if len(b) > n {
		b = b[len(b)-n:]
	}
	return string(b)
}

// KillAll kills every process group the group started and waits for the
// leaders. Safe to call more than once and from a signal handler goroutine.
func (g *Group) KillAll() {
	g.mu.Lock()
	procs := g.procs
	g.procs = nil
	g.mu.Unlock()
	for _, p := range procs {
		p.Stop(syscall.SIGKILL, 0)
	}
}

// procStat is what the harness reads of /proc/PID/stat.
type procStat struct {
	PPid         int
	UTime, STime uint64 // clock ticks, every thread of the process
}

// parseStat parses the text of /proc/PID/stat. The command name is in
// parentheses and may itself hold spaces and parentheses, so the fields are
// counted from the last ')'.
func parseStat(b []byte) (procStat, error) {
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return procStat{}, errors.New("no ')' after the command name")
	}
	f := strings.Fields(string(b[i+1:]))
	// f[0] is field 3 (state); ppid is field 4, utime 14, stime 15.
	if len(f) < 13 {
		return procStat{}, fmt.Errorf("%d fields after the command name, want at least 13", len(f))
	}
	var s procStat
	var err1, err2, err3 error
	s.PPid, err1 = strconv.Atoi(f[1])
	s.UTime, err2 = strconv.ParseUint(f[11], 10, 64)
	s.STime, err3 = strconv.ParseUint(f[12], 10, 64)
	if err := errors.Join(err1, err2, err3); err != nil {
		return procStat{}, err
	}
	return s, nil
}

func readStat(pid int) (procStat, error) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return procStat{}, err
	}
	s, err := parseStat(b)
	if err != nil {
		return procStat{}, fmt.Errorf("harness: /proc/%d/stat: %w", pid, err)
	}
	return s, nil
}

// CPUSeconds is the user+system time of pid's process, all of its threads;
// with tree, that of every live descendant too (kamailio's children). A
// process that exits between two samples takes its time with it, which is
// why samples are taken while the load runs. It is tick-sampled (see
// Usage for the exact figure); the harness uses it for the sipp processes.
func CPUSeconds(pid int, tree bool) (float64, error) {
	s, err := readStat(pid)
	if err != nil {
		return 0, fmt.Errorf("harness: CPU time of pid %d: %w", pid, err)
	}
	ticks := s.UTime + s.STime
	if tree {
		for _, c := range descendants(pid) {
			if cs, err := readStat(c); err == nil {
				ticks += cs.UTime + cs.STime
			}
		}
	}
	return float64(ticks) / clockTicks, nil
}

// Usage is what a process (or a process tree) had used at one instant,
// summed over every thread alive then.
type Usage struct {
	// CPUNs is the first field of /proc/PID/task/TID/schedstat: the
	// nanoseconds each thread ran, counted by the scheduler at every
	// switch (exact, unlike the tick-sampled utime and stime).
	CPUNs uint64
	// Voluntary and Involuntary are voluntary_ctxt_switches and
	// nonvoluntary_ctxt_switches of /proc/PID/task/TID/status.
	Voluntary, Involuntary uint64
	// Ticks is utime+stime of /proc/PID/stat (clock ticks, every thread,
	// dead ones included), kept because it is cheap to read.
	Ticks uint64
	// Threads is how many threads were summed.
	Threads int
}

// Sub is u minus an earlier sample. A thread that exited in between takes
// its share with it, which is why the harness samples while the load runs
// (the proxies keep their threads).
func (u Usage) Sub(e Usage) Usage {
	d := func(a, b uint64) uint64 {
		if a < b {
			return 0
		}
		return a - b
	}
	return Usage{CPUNs: d(u.CPUNs, e.CPUNs), Voluntary: d(u.Voluntary, e.Voluntary),
		Involuntary: d(u.Involuntary, e.Involuntary), Ticks: d(u.Ticks, e.Ticks), Threads: u.Threads}
}

// ReadUsage sums the usage of every thread of pid, and with tree of every
// live descendant process too (kamailio's children).
func ReadUsage(pid int, tree bool) (Usage, error) {
	var u Usage
	if err := addUsage(&u, pid); err != nil {
		return Usage{}, fmt.Errorf("harness: usage of pid %d: %w", pid, err)
	}
	if tree {
		for _, c := range descendants(pid) {
			var cu Usage
			if addUsage(&cu, c) == nil { // a child may have exited meanwhile
				u.CPUNs += cu.CPUNs
				u.Voluntary += cu.Voluntary
				u.Involuntary += cu.Involuntary
				u.Ticks += cu.Ticks
				u.Threads += cu.Threads
			}
		}
	}
	return u, nil
}

func addUsage(u *Usage, pid int) error {
	st, err := readStat(pid)
	if err != nil {
		return err
	}
	u.Ticks += st.UTime + st.STime
	dir := "/proc/" + strconv.Itoa(pid) + "/task"
	ents, err := os.ReadDir(dir)
	if err != nil {
		return err
	}
	for _, e := range ents {
		b, err := os.ReadFile(dir + "/" + e.Name() + "/schedstat")
		if err != nil {
			continue // the thread exited
		}
		ns, err := parseSchedstat(b)
		if err != nil {
			return fmt.Errorf("%s/%s/schedstat: %w (is CONFIG_SCHED_INFO off?)", dir, e.Name(), err)
		}
		sb, err := os.ReadFile(dir + "/" + e.Name() + "/status")
		if err != nil {
			continue
		}
		v, inv, err := parseCtxtSwitches(sb)
		if err != nil {
			return fmt.Errorf("%s/%s/status: %w", dir, e.Name(), err)
		}
		u.CPUNs += ns
		u.Voluntary += v
		u.Involuntary += inv
		u.Threads++
	}
	return nil
}

// parseSchedstat reads the first of the three fields of a schedstat file:
// time on CPU in ns (then time waiting on a run queue, and timeslices).
func parseSchedstat(b []byte) (uint64, error) {
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return 0, fmt.Errorf("%d fields, want 3", len(f))
	}
	return strconv.ParseUint(f[0], 10, 64)
}

// parseCtxtSwitches reads voluntary_ctxt_switches and
// nonvoluntary_ctxt_switches of a status file.
func parseCtxtSwitches(b []byte) (vol, invol uint64, err error) {
	found := 0
	for _, l := range strings.Split(string(b), "\n") {
		k, v, ok := strings.Cut(l, ":")
		if !ok {
			continue
		}
		var dst *uint64
		switch k {
		case "voluntary_ctxt_switches":
			dst = &vol
		case "nonvoluntary_ctxt_switches":
			dst = &invol
		default:
			continue
		}
		n, perr := strconv.ParseUint(strings.TrimSpace(v), 10, 64)
		if perr != nil {
			return 0, 0, fmt.Errorf("%s: %w", k, perr)
		}
		*dst = n
		found++
	}
	if found != 2 {
		return 0, 0, errors.New("no voluntary_ctxt_switches and nonvoluntary_ctxt_switches lines")
	}
	return vol, invol, nil
}

// descendants lists every live process below pid, walking /proc once.
func descendants(pid int) []int {
	ents, err := os.ReadDir("/proc")
	if err != nil {
		return nil
	}
	children := map[int][]int{}
	for _, e := range ents {
		p, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		if s, err := readStat(p); err == nil {
			children[s.PPid] = append(children[s.PPid], p)
		}
	}
	return walkTree(children, pid)
}

func walkTree(children map[int][]int, root int) []int {
	var out []int
	queue := []int{root}
	for len(queue) > 0 {
		p := queue[0]
		queue = queue[1:]
		for _, c := range children[p] {
			out = append(out, c)
			queue = append(queue, c)
		}
	}
	return out
}

// lastLines returns up to n last lines of a file, for error messages.
func lastLines(path string, n int) string {
	f, err := os.Open(path)
	if err != nil {
		return ""
	}
	defer f.Close()
	var lines []string
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		lines = append(lines, sc.Text())
		if len(lines) > n {
			lines = lines[1:]
		}
	}
	return strings.Join(lines, "\n")
}

// CoreTimes are one CPU's busy and total jiffies from /proc/stat.
type CoreTimes struct{ Busy, Total uint64 }

// ReadCoreTimes reads the "cpuN" line of /proc/stat for each core asked.
// Busy is user+nice+system+irq+softirq+steal: everything but idle and
// iowait, so softirq work for packets that no process is charged for is in
// it too.
func ReadCoreTimes(cores ...int) ([]CoreTimes, error) {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return nil, err
	}
	return parseCoreTimes(string(b), cores)
}

func parseCoreTimes(stat string, cores []int) ([]CoreTimes, error) {
	out := make([]CoreTimes, len(cores))
	found := make([]bool, len(cores))
	for _, line := range strings.Split(stat, "\n") {
		f := strings.Fields(line)
		if len(f) < 9 || !strings.HasPrefix(f[0], "cpu") || f[0] == "cpu" {
			continue
		}
		n, err := strconv.Atoi(f[0][3:])
		if err != nil {
			continue
		}
		for i, c := range cores {
			if c != n {
				continue
			}
			var v [8]uint64
			for k := range v {
				if v[k], err = strconv.ParseUint(f[k+1], 10, 64); err != nil {
					return nil, fmt.Errorf("harness: /proc/stat %s: %w", f[0], err)
				}
			}
			busy := v[0] + v[1] + v[2] + v[5] + v[6] + v[7]
			out[i] = CoreTimes{Busy: busy, Total: busy + v[3] + v[4]}
			found[i] = true
		}
	}
	for i, ok := range found {
		if !ok {
			return nil, fmt.Errorf("harness: /proc/stat has no cpu%d: is -proxy-core/-sipp-core a CPU of this machine?", cores[i])
		}
	}
	return out, nil
}

// BusyPct is the share of the interval a to b the core was busy.
func BusyPct(a, b CoreTimes) float64 {
	if b.Total <= a.Total {
		return 0
	}
	return 100 * float64(b.Busy-a.Busy) / float64(b.Total-a.Total)
}
