package tune

import (
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"

	"sipedge/appliance/config"
)

// Values tune sets for busy polling, from the kernel's napi.rst: defer a
// few IRQs and flush after 200 us, so the worker's busy poll, not the
// IRQ, runs NAPI while traffic is dense.
const (
	deferHardIRQs   = "2"
	groFlushTimeout = "200000"
	busyReadUsec    = "50"
)

// busyPoll adds the knobs of io.wait: preferred busy polling of AF_XDP
// sockets needs napi_defer_hard_irqs and gro_flush_timeout on the
// interface; a worker that sleeps wants them at 0 (every wake-up would
// wait for the flush timer). The socket port's busy mode polls the NIC
// from recvmmsg with net.core.busy_read; its sleeping modes want
// net.core.busy_poll at 0 (a kernel spin inside ppoll doubles the
// adaptive mode's own).
func (p *Plan) busyPoll(h Host, io config.IO) {
	switch io.Port {
	case "afxdp":
		if io.Interface == "" {
			return
		}
		busy := io.BusyPoll == "on" || (io.BusyPoll == "auto" && io.Wait != "block")
		deferN, flush, why := deferHardIRQs, groFlushTimeout, "preferred busy polling (io.busy_poll) only holds IRQs off while these are set"
		if !busy {
			deferN, flush, why = "0", "0", "a sleeping worker (io.wait = \"block\" or io.busy_poll = \"off\") is woken by the IRQ; deferring it delays every wake-up"
		}
		base := "/sys/class/net/" + io.Interface + "/"
		p.knob(h, base+"napi_defer_hard_irqs", deferN, why, false)
		p.knob(h, base+"gro_flush_timeout", flush, why, false)
	case "socket":
		if io.Wait == "busy" {
			p.knob(h, "/proc/sys/net/core/busy_read", busyReadUsec, "the busy worker polls the NIC from recvmmsg for up to this many microseconds", true)
		} else {
			p.knob(h, "/proc/sys/net/core/busy_poll", "0", "a kernel spin inside ppoll would double the adaptive mode's own spin and burn the core the sleep saves", false)
		}
	}
}

// knob compares one sysfs or sysctl file with want (atLeast: a larger
// number is fine too) and sets it.
func (p *Plan) knob(h Host, file, want, why string, atLeast bool) {
	name := file
	cmd := fmt.Sprintf("echo %s > %s", want, file)
	if rest, ok := strings.CutPrefix(file, "/proc/sys/"); ok {
		name = strings.ReplaceAll(rest, "/", ".")
		cmd = fmt.Sprintf("sysctl -w %s=%s", name, want)
	}
	cur, err := h.read(file)
	if err != nil {
		if os.IsNotExist(err) {
			p.add(Item{Name: name, Is: "absent (kernel too old, or a network namespace without it)", Should: want, State: Unknown, Why: why})
			return
		}
		p.unknown(name, err, want)
		return
	}
	it := Item{Name: name, Is: cur, Should: want, State: OK, Why: why, Command: cmd}
	c, cerr := strconv.Atoi(cur)
	w, _ := strconv.Atoi(want)
	if cur != want && !(atLeast && cerr == nil && c >= w) {
		it.State = Change
		it.apply = func() error { return h.write(file, want) }
	}
	if atLeast {
		it.Should = "at least " + want
	}
	p.add(it)
}

// isolation: worker cores kept free of other tasks and of the scheduler
// tick (boot parameters, so only hinted), and no irqbalance undoing the
// IRQ affinity set above.
func (p *Plan) isolation(h Host, io config.IO) {
	cmdline, err := h.read("/proc/cmdline")
	if err != nil {
		p.unknown("kernel command line", err, "isolcpus and nohz_full listing io.cores")
		return
	}
	cores := make([]string, len(io.Cores))
	for i, c := range io.Cores {
		cores[i] = strconv.Itoa(c)
	}
	list := strings.Join(cores, ",")
	for _, param := range []struct{ key, why string }{
		{"isolcpus", "keeps the scheduler from putting other tasks on the worker cores"},
		{"nohz_full", "stops the scheduler tick on a worker core that runs one thread"},
	} {
		val := ""
		for _, f := range strings.Fields(cmdline) {
			if v, ok := strings.CutPrefix(f, param.key+"="); ok {
				val = v
			}
		}
		set, _ := parseCPUList(val)
		missing := false
		for _, c := range io.Cores {
			missing = missing || !set[c]
		}
		is := "not set"
		if val != "" {
			is = val
		}
		it := Item{Name: "boot parameter " + param.key, Is: is, Should: "listing io.cores " + list, State: OK, Why: param.why}
		if missing {
			if slices.Contains(io.Cores, 0) {
				it.Why += "; CPU 0 keeps the kernel's housekeeping and is never fully isolated: move the worker off it"
			}
			it.State = Manual
			it.Command = fmt.Sprintf("add isolcpus=managed_irq,domain,%s nohz_full=%s rcu_nocbs=%s to GRUB_CMDLINE_LINUX in /etc/default/grub, update-grub, reboot", list, list, list)
		}
		p.add(it)
	}
	if io.Port != "afxdp" {
		return
	}
	it := Item{Name: "irqbalance", Is: "not running", Should: "not running", State: OK}
	if running(h, "irqbalance") {
		it.Is, it.State = "running", Manual
		it.Why = "it moves the queue IRQs off the worker cores tune pins them to"
		it.Command = "systemctl disable --now irqbalance (or IRQBALANCE_BANNED_CPULIST=" + list + " in /etc/default/irqbalance)"
	}
	p.add(it)
}

// running reports whether a process named comm runs (by /proc/PID/comm).
func running(h Host, comm string) bool {
	ents, err := os.ReadDir(h.path("/proc"))
	if err != nil {
		return false
	}
	for _, e := range ents {
		if _, err := strconv.Atoi(e.Name()); err != nil {
			continue
		}
		if c, err := h.read("/proc/" + e.Name() + "/comm"); err == nil && c == comm {
			return true
		}
	}
	return false
}
