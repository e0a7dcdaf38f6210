package config

import (
	"fmt"
	"os"
	"path/filepath"
	"time"
)

// IO is [io]: how datagrams enter and leave the workers.
type IO struct {
	// Port is the kind of port: "socket" (kernel UDP sockets), "afxdp"
	// (AF_XDP sockets on NIC queues) or "pcap" (capture files).
	Port string `toml:"port"`
	// Listen is the SIP address, ip:port. socket binds it; afxdp redirects
	// UDP datagrams for its port to the workers.
	Listen string `toml:"listen"`
	// Interface is the NIC afxdp attaches to.
	Interface string `toml:"interface"`
	// Queues are the NIC queue ids afxdp serves, one worker each.
	Queues []int `toml:"queues"`
	// Cores are the CPU ids workers are pinned to: with afxdp Cores[i]
	// serves Queues[i]; with socket there is one worker per core.
	Cores []int `toml:"cores"`
	// Batch is the most datagrams a worker takes per receive.
	Batch int `toml:"batch"`
	// FrameSize is the UMEM frame size in bytes (afxdp).
	FrameSize int `toml:"frame_size"`
	// FrameCount is the number of UMEM frames per queue (afxdp).
	FrameCount int `toml:"frame_count"`
	// RxRing, TxRing, FillRing and CompRing are the AF_XDP ring sizes in
	// descriptors (afxdp).
	RxRing   int `toml:"rx_ring"`
	TxRing   int `toml:"tx_ring"`
	FillRing int `toml:"fill_ring"`
	CompRing int `toml:"comp_ring"`
	// XDPMode is how the XDP program attaches: "auto", "native" or
	// "generic" (afxdp).
	XDPMode string `toml:"xdp_mode"`
	// BindMode is how the AF_XDP sockets bind: "auto", "zerocopy" or
	// "copy" (afxdp).
	BindMode string `toml:"bind_mode"`
	// PollInterval is the longest a worker sleeps when no timer is due
	// sooner.
	PollInterval Duration `toml:"poll_interval"`
	// Wait is how a worker waits for traffic: "adaptive", "busy" or
	// "block".
	Wait string `toml:"wait"`
	// Spin is the adaptive mode's spin budget.
	Spin Duration `toml:"spin"`
	// BatchDelay is the longest a worker holds a datagram to gather a
	// batch.
	BatchDelay Duration `toml:"batch_delay"`
	// BusyPoll is the kernel's preferred busy polling on AF_XDP sockets:
	// "auto" (when the wait mode spins), "on" or "off".
	BusyPoll string `toml:"busy_poll"`
	// Input is the capture a pcap port reads.
	Input string `toml:"input"`
	// Output is the capture a pcap port writes what it sends to; empty
	// discards it.
	Output string `toml:"output"`
	// Loop makes a pcap port replay Input until stopped.
	Loop bool `toml:"loop"`
}

// Limits of [io], shared by the checks and the messages.
const (
	maxBatch        = 256
	minRing         = 16
	maxRing         = 65536
	minFrames       = 64
	maxFrames       = 1 << 18
	maxPollInterval = time.Second
	maxSpin         = 10 * time.Millisecond
	maxBatchDelay   = 5 * time.Millisecond
)

func (o *IO) setDefaults() {
	*o = IO{
		Port:         "socket",
		Listen:       "127.0.0.1:5060",
		Queues:       []int{},
		Cores:        []int{0},
		Batch:        64,
		FrameSize:    4096,
		FrameCount:   4096,
		RxRing:       2048,
		TxRing:       2048,
		FillRing:     2048,
		CompRing:     2048,
		XDPMode:      "auto",
		BindMode:     "auto",
		PollInterval: Duration(time.Second),
		Wait:         "adaptive",
		Spin:         Duration(50 * time.Microsecond),
		BatchDelay:   0,
		BusyPoll:     "auto",
	}
}

// afterDecode warns about keys set to something other than their default
// that the chosen port does not use: the operator probably expects them to
// take effect (queues given to a socket port, an input to an afxdp one).
func (o *IO) afterDecode(map[string]any) []Warning {
	var d IO
	d.setDefaults()
	afxdpOnly := o.Interface != d.Interface || len(o.Queues) > 0 || o.FrameSize != d.FrameSize ||
		o.FrameCount != d.FrameCount || o.RxRing != d.RxRing || o.TxRing != d.TxRing ||
		o.FillRing != d.FillRing || o.CompRing != d.CompRing || o.XDPMode != d.XDPMode || o.BindMode != d.BindMode ||
		o.BusyPoll != d.BusyPoll
	pcapOnly := o.Input != "" || o.Output != "" || o.Loop
	var warns []Warning
	if afxdpOnly && o.Port != "afxdp" {
		warns = append(warns, Warning{"io", fmt.Sprintf(`interface, queues, frame and ring sizes, xdp_mode, bind_mode and busy_poll are set but only used with port "afxdp", and port is %q`, o.Port)})
	}
	if pcapOnly && o.Port != "pcap" {
		warns = append(warns, Warning{"io", fmt.Sprintf(`input, output and loop are set but only used with port "pcap", and port is %q`, o.Port)})
	}
	return warns
}

func (o *IO) check(p *problems, _ *Config, sys System) {
	if !oneOf(o.Port, "socket", "afxdp", "pcap") {
		p.addv("io.port", o.Port, `want "socket", "afxdp" or "pcap"`)
	}
	if o.Port != "pcap" {
		if _, ok := parseIPPort(o.Listen); !ok {
			p.addv("io.listen", o.Listen, `want ip:port, such as "127.0.0.1:5060" or "[::]:5060"`)
		}
	}
	if o.Batch < 1 || o.Batch > maxBatch {
		p.addv("io.batch", o.Batch, "want 1 to %d datagrams", maxBatch)
	}
	if o.FrameSize != 2048 && o.FrameSize != 4096 {
		p.addv("io.frame_size", o.FrameSize, "want 2048 or 4096 (AF_XDP frames are half a page or a page)")
	}
	if !isPowerOfTwo(o.FrameCount) || o.FrameCount < minFrames || o.FrameCount > maxFrames {
		p.addv("io.frame_count", o.FrameCount, "want a power of two from %d to %d", minFrames, maxFrames)
	}
	rings := []struct {
		key  string
		size int
	}{{"io.rx_ring", o.RxRing}, {"io.tx_ring", o.TxRing}, {"io.fill_ring", o.FillRing}, {"io.comp_ring", o.CompRing}}
	ringsOK := true
	for _, r := range rings {
		if !isPowerOfTwo(r.size) || r.size < minRing || r.size > maxRing {
			p.addv(r.key, r.size, "want a power of two from %d to %d descriptors (the kernel requires a power of two)", minRing, maxRing)
			ringsOK = false
		}
	}
	if !oneOf(o.XDPMode, "auto", "native", "generic") {
		p.addv("io.xdp_mode", o.XDPMode, `want "auto", "native" or "generic"`)
	}
	if !oneOf(o.BindMode, "auto", "zerocopy", "copy") {
		p.addv("io.bind_mode", o.BindMode, `want "auto", "zerocopy" or "copy"`)
	}
	if d := o.PollInterval.Std(); d <= 0 || d > maxPollInterval {
		p.addv("io.poll_interval", o.PollInterval, "want more than 0 and at most %v: it bounds how long an idle worker sleeps", maxPollInterval)
	}
	if !oneOf(o.Wait, "adaptive", "busy", "block") {
		p.addv("io.wait", o.Wait, `want "adaptive" (spin while traffic is dense, else sleep), "busy" (never sleep, a dedicated core) or "block" (always sleep)`)
	}
	if d := o.Spin.Std(); d < 0 || d > maxSpin {
		p.addv("io.spin", o.Spin, "want 0 to %v: longer spins burn a core for little", maxSpin)
	}
	if d := o.BatchDelay.Std(); d < 0 || d > maxBatchDelay {
		p.addv("io.batch_delay", o.BatchDelay, "want 0 to %v: it is added to a datagram's latency", maxBatchDelay)
	}
	if !oneOf(o.BusyPoll, "auto", "on", "off") {
		p.addv("io.busy_poll", o.BusyPoll, `want "auto" (on when io.wait is "busy" or "adaptive"), "on" or "off"`)
	}

	o.checkCores(p, sys)
	switch o.Port {
	case "socket":
		if len(o.Cores) == 0 {
			p.add("io.cores", "empty: with port \"socket\" there is one worker per listed core, list at least one")
		}
	case "afxdp":
		o.checkAFXDP(p, sys, ringsOK)
	case "pcap":
		o.checkPcap(p)
	}
}

// checkCores checks that cores are distinct and that this process may run
// on each of them.
func (o *IO) checkCores(p *problems, sys System) {
	seen := map[int]int{}
	for i, c := range o.Cores {
		if j, dup := seen[c]; dup {
			p.addv(fmt.Sprintf("io.cores[%d]", i), c, "already used by io.cores[%d]: one worker per core", j)
		}
		seen[c] = i
	}
	if sys == nil || len(o.Cores) == 0 {
		return
	}
	cpus, err := sys.CPUs()
	if err != nil {
		p.add("io.cores", "cannot check them against this machine: %v", err)
		return
	}
	allowed := make(map[int]bool, len(cpus))
	for _, c := range cpus {
		allowed[c] = true
	}
	for i, c := range o.Cores {
		if !allowed[c] {
			p.addv(fmt.Sprintf("io.cores[%d]", i), c, "this machine has CPUs %s", cpuList(cpus))
		}
	}
}

func (o *IO) checkAFXDP(p *problems, sys System, ringsOK bool) {
	if o.Interface == "" {
		p.add("io.interface", "empty: port \"afxdp\" needs the network interface to attach to (ip link shows the names)")
	} else if !validIfName(o.Interface) {
		p.addv("io.interface", o.Interface, "not an interface name (at most 15 characters, no '/', ':' or spaces)")
	}
	if len(o.Queues) == 0 {
		p.add("io.queues", "empty: port \"afxdp\" needs the NIC queue ids to serve, such as [0]")
	}
	if len(o.Queues) > 0 && len(o.Queues) != len(o.Cores) {
		p.add("io.queues", "%d queues for %d cores: with port \"afxdp\" io.cores[i] serves io.queues[i], so list as many of each", len(o.Queues), len(o.Cores))
	}
	seen := map[int]int{}
	for i, q := range o.Queues {
		key := fmt.Sprintf("io.queues[%d]", i)
		if q < 0 {
			p.addv(key, q, "queue ids start at 0")
		}
		if j, dup := seen[q]; dup {
			p.addv(key, q, "already used by io.queues[%d]: one worker per queue", j)
		}
		seen[q] = i
	}
	if ringsOK && isPowerOfTwo(o.FrameCount) && o.FrameCount < o.FillRing+o.TxRing {
		p.addv("io.frame_count", o.FrameCount, "below io.fill_ring + io.tx_ring = %d: a worker could not keep the fill ring full while a full TX ring is in flight; raise frame_count or shrink the rings", o.FillRing+o.TxRing)
	}
	if ringsOK && o.Batch > min(o.RxRing, o.TxRing) {
		p.addv("io.batch", o.Batch, "larger than the smaller of io.rx_ring and io.tx_ring (%d): lower batch or grow the rings", min(o.RxRing, o.TxRing))
	}
	if o.BindMode == "zerocopy" && o.XDPMode == "generic" {
		p.add("io.bind_mode", "\"zerocopy\" needs the driver's native XDP, but io.xdp_mode is \"generic\": set xdp_mode to \"native\" or \"auto\", or bind_mode to \"copy\"")
	}
	if sys == nil || o.Interface == "" || !validIfName(o.Interface) {
		return
	}
	n, exists, err := sys.Queues(o.Interface)
	switch {
	case err != nil:
		p.addv("io.interface", o.Interface, "cannot read its queues: %v", err)
	case !exists:
		p.addv("io.interface", o.Interface, "no such interface (ip link shows the names)")
	default:
		for i, q := range o.Queues {
			if q >= n {
				p.addv(fmt.Sprintf("io.queues[%d]", i), q, "interface %s has %d queues (see /sys/class/net/%s/queues)", o.Interface, n, o.Interface)
			}
		}
	}
}

func (o *IO) checkPcap(p *problems) {
	if o.Input == "" {
		p.add("io.input", "empty: port \"pcap\" needs the capture file to read")
	} else if st, err := os.Stat(o.Input); err != nil {
		p.addv("io.input", o.Input, "cannot read it: %v", err)
	} else if !st.Mode().IsRegular() {
		p.addv("io.input", o.Input, "not a regular file: want a pcap capture")
	}
	if o.Output != "" {
		if st, err := os.Stat(filepath.Dir(o.Output)); err != nil || !st.IsDir() {
			p.addv("io.output", o.Output, "its directory does not exist: create it or choose another path")
		} else if o.Output == o.Input {
			p.addv("io.output", o.Output, "is io.input: the capture would be overwritten while read")
		}
	}
	if len(o.Cores) > 1 {
		p.add("io.cores", "%d cores: port \"pcap\" replays one capture on one worker, list one core", len(o.Cores))
	}
}

// validIfName mirrors the kernel's dev_valid_name: 1..15 bytes, not "." or
// "..", no '/', ':' or white space. It also keeps the name safe to join
// into a /sys path.
func validIfName(s string) bool {
	if s == "" || len(s) > 15 || s == "." || s == ".." {
		return false
	}
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c == '/' || c == ':' || c <= ' ' || c == 0x7f:
			return false
		}
	}
	return true
}
