package tune

import (
	"fmt"
	"os"
	"regexp"
	"strconv"
	"strings"

	"sipedge/appliance/config"
)

// nic adds the items of io.interface: driver and XDP support, channels,
// IRQ affinity, RSS hash fields, rings, offloads, NUMA locality.
func (p *Plan) nic(h Host, io config.IO) {
	ifn := io.Interface
	eth := h.Ethtool
	driver, err := eth.Driver(ifn)
	if err != nil {
		p.unknown("driver of "+ifn, err, "readable (is "+ifn+" an interface of this namespace?)")
		return
	}
	p.xdpSupport(ifn, driver, io)
	p.channels(h, ifn, len(io.Queues))
	p.irqs(h, ifn, io)
	if len(io.Queues) > 1 {
		p.rss(h, ifn)
	}
	p.rings(h, ifn, io)
	p.offloads(h, ifn)
	p.locality(h, ifn, io.Cores)
}

// xdpDrivers is what in-tree drivers support (Documentation/networking/
// af_xdp.rst and the drivers' ndo_xsk_wakeup): "zerocopy" drivers have
// native XDP and zero-copy AF_XDP, "native" ones native XDP with copy-mode
// AF_XDP. Anything else gets generic (skb) XDP only.
var xdpDrivers = map[string]string{
	"ixgbe": "zerocopy", "i40e": "zerocopy", "ice": "zerocopy", "mlx5_core": "zerocopy", "igc": "zerocopy",
	"stmmac": "zerocopy", "idpf": "zerocopy",
	"veth": "native", "virtio_net": "native", "ena": "native", "bnxt_en": "native", "mlx4_en": "native",
	"nfp": "native", "qede": "native", "tun": "native", "igb": "native", "ixgbevf": "native", "sfc": "native",
	"hv_netvsc": "native", "thunder_nicvf": "native", "mvneta": "native", "mvpp2": "native",
}

func (p *Plan) xdpSupport(ifn, driver string, io config.IO) {
	support := xdpDrivers[driver]
	is := "driver " + driver + ": "
	switch support {
	case "zerocopy":
		is += "native XDP, zero-copy AF_XDP"
	case "native":
		is += "native XDP, copy-mode AF_XDP"
	default:
		is += "generic (skb) XDP only, copy-mode AF_XDP"
	}
	it := Item{Name: "XDP support of " + ifn, Is: is, State: OK, Should: "what io.xdp_mode and io.bind_mode ask"}
	switch {
	case io.XDPMode == "native" && support == "":
		it.State, it.Should = Manual, `io.xdp_mode = "auto" or "generic"`
		it.Command = `set io.xdp_mode = "auto" in the configuration`
		it.Why = "the driver has no native XDP: attaching would fail"
	case io.BindMode == "zerocopy" && support != "zerocopy":
		it.State, it.Should = Manual, `io.bind_mode = "auto" or "copy"`
		it.Command = `set io.bind_mode = "auto" in the configuration`
		it.Why = "the driver has no zero-copy AF_XDP: binding would fail"
	}
	p.add(it)
}

// channels: RSS must spread SIP over exactly the served queues. A queue
// without a worker would get its share of the datagrams and pass them to
// the kernel, where nothing listens on the SIP port.
func (p *Plan) channels(h Host, ifn string, want int) {
	name := "channels of " + ifn
	c, err := h.Ethtool.Channels(ifn)
	if err != nil {
		p.unknown(name, err, strconv.Itoa(want)+" receive queues")
		return
	}
	combined := c.MaxCombined > 0
	is, have := fmt.Sprintf("rx %d tx %d combined %d", c.Rx, c.Tx, c.Combined), int(c.Combined+c.Rx)
	it := Item{Name: name, Is: is, Should: fmt.Sprintf("%d receive queues (one per worker, io.queues)", want), State: OK,
		Why: "RSS would hand datagrams to queues no worker serves"}
	if have == want {
		p.add(it)
		return
	}
	next := c
	if combined {
		if uint32(want) > c.MaxCombined {
			it.State, it.Command = Manual, fmt.Sprintf("list at most %d queues in io.queues (the driver's maximum)", c.MaxCombined)
			p.add(it)
			return
		}
		next.Combined, next.Rx = uint32(want), 0
		it.Command = fmt.Sprintf("ethtool -L %s combined %d", ifn, want)
	} else {
		if uint32(want) > c.MaxRx {
			it.State, it.Command = Manual, fmt.Sprintf("list at most %d queues in io.queues (the driver's maximum)", c.MaxRx)
			p.add(it)
			return
		}
		next.Rx = uint32(want)
		it.Command = fmt.Sprintf("ethtool -L %s rx %d", ifn, want)
	}
	it.State, it.reshapes = Change, true
	it.apply = func() error { return h.Ethtool.SetChannels(ifn, next) }
	p.add(it)
}

// queueIRQ finds the queue number in an interrupt's name: ixgbe and ice
// "eth0-TxRx-3", i40e "i40e-eth0-TxRx-3", mlx5 "mlx5_comp3@pci:0000:3b:00.0",
// virtio "virtio0-input.3".
var queueIRQ = regexp.MustCompile(`(?i)(?:txrx-|_comp|input\.)(\d+)(?:@|$)`)

// irqs pins each served queue's interrupt to its worker's core, so the
// NAPI poll that fills the AF_XDP ring runs where the worker reads it.
func (p *Plan) irqs(h Host, ifn string, io config.IO) {
	ents, err := os.ReadDir(h.path("/sys/class/net/" + ifn + "/device/msi_irqs"))
	if err != nil {
		p.add(Item{Name: "IRQ affinity of " + ifn, Is: "no MSI interrupts (a virtual device: its queues run in the sender's context)",
			Should: "nothing to pin", State: OK})
		return
	}
	own := map[string]bool{}
	for _, e := range ents {
		own[e.Name()] = true
	}
	names, err := interrupts(h)
	if err != nil {
		p.unknown("IRQ affinity of "+ifn, err, "each queue's IRQ on its worker's core")
		return
	}
	byQueue := map[int]string{}
	for irq, name := range names {
		if !own[irq] {
			continue
		}
		if m := queueIRQ.FindStringSubmatch(name); m != nil {
			q, _ := strconv.Atoi(m[1])
			byQueue[q] = irq
		}
	}
	for i, q := range io.Queues {
		core := strconv.Itoa(io.Cores[i])
		irq, ok := byQueue[q]
		if !ok {
			p.add(Item{Name: fmt.Sprintf("IRQ of %s queue %d", ifn, q), Is: "not found in /proc/interrupts",
				Should: "an IRQ on core " + core, State: Unknown})
			continue
		}
		file := "/proc/irq/" + irq + "/smp_affinity_list"
		cur, err := h.read(file)
		name := fmt.Sprintf("IRQ %s (%s queue %d, %s)", irq, ifn, q, names[irq])
		if err != nil {
			p.unknown(name, err, "core "+core)
			continue
		}
		it := Item{Name: name, Is: "CPUs " + cur, Should: "CPU " + core + " (io.cores[" + strconv.Itoa(i) + "])", State: OK,
			Why:     "the queue's NAPI poll should run on the core of the worker that reads it",
			Command: fmt.Sprintf("echo %s > %s", core, file)}
		if cur != core {
			it.State = Change
			it.apply = func() error { return h.write(file, core) }
		}
		p.add(it)
	}
}

// interrupts maps IRQ numbers to their names (the last field of each line
// of /proc/interrupts).
func interrupts(h Host) (map[string]string, error) {
	b, err := os.ReadFile(h.path("/proc/interrupts"))
	if err != nil {
		return nil, err
	}
	out := map[string]string{}
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.Fields(line)
		if len(f) < 3 || !strings.HasSuffix(f[0], ":") {
			continue
		}
		irq := strings.TrimSuffix(f[0], ":")
		if _, err := strconv.Atoi(irq); err != nil {
			continue
		}
		out[irq] = f[len(f)-1]
	}
	return out, nil
}

// hashString writes Hash* fields the way ethtool -n does ("sdfn").
func hashString(v uint64) string {
	var b strings.Builder
	for _, f := range []struct {
		bit uint64
		c   byte
	}{{HashIPSrc, 's'}, {HashIPDst, 'd'}, {HashL4Src, 'f'}, {HashL4Dst, 'n'}} {
		if v&f.bit != 0 {
			b.WriteByte(f.c)
		}
	}
	if b.Len() == 0 {
		return "none"
	}
	return b.String()
}

// rss: with several queues, UDP must hash on addresses and ports, so that
// many callers behind one address (a NAT, an SBC) spread over the workers;
// each 5-tuple still lands on one queue.
func (p *Plan) rss(h Host, ifn string) {
	for _, f := range []struct {
		flow uint32
		name string
	}{{HashUDP4, "udp4"}, {HashUDP6, "udp6"}} {
		name := "RSS hash of " + f.name + " on " + ifn
		cur, err := h.Ethtool.RxFlowHash(ifn, f.flow)
		if err != nil {
			p.unknown(name, err, "sdfn")
			continue
		}
		it := Item{Name: name, Is: hashString(cur), Should: "sdfn (addresses and ports)", State: OK,
			Why:     "hashing on addresses alone puts every caller behind one address on one worker",
			Command: fmt.Sprintf("ethtool -N %s rx-flow-hash %s sdfn", ifn, f.name)}
		if cur&hashWanted != hashWanted {
			flow := f.flow
			it.State = Change
			it.apply = func() error { return h.Ethtool.SetRxFlowHash(ifn, flow, hashWanted) }
		}
		p.add(it)
	}
}

// rings: the NIC's descriptor rings hold a burst while the worker is busy;
// smaller than the AF_XDP rings they drop what the worker could have taken.
func (p *Plan) rings(h Host, ifn string, io config.IO) {
	name := "ring sizes of " + ifn
	r, err := h.Ethtool.Rings(ifn)
	if err != nil {
		p.unknown(name, err, fmt.Sprintf("rx %d tx %d", io.RxRing, io.TxRing))
		return
	}
	want := Rings{Rx: min(uint32(io.RxRing), r.RxMax), Tx: min(uint32(io.TxRing), r.TxMax)}
	it := Item{Name: name, Is: fmt.Sprintf("rx %d tx %d (max %d/%d)", r.Rx, r.Tx, r.RxMax, r.TxMax),
		Should: fmt.Sprintf("at least rx %d tx %d (io.rx_ring and io.tx_ring, within the maximum)", want.Rx, want.Tx), State: OK,
		Why: "a NIC ring smaller than the AF_XDP ring drops bursts the worker would have taken"}
	if r.Rx < want.Rx || r.Tx < want.Tx {
		next := Rings{Rx: max(r.Rx, want.Rx), Tx: max(r.Tx, want.Tx)}
		it.State = Change
		it.Command = fmt.Sprintf("ethtool -G %s rx %d tx %d", ifn, next.Rx, next.Tx)
		it.apply = func() error { return h.Ethtool.SetRings(ifn, next) }
	}
	p.add(it)
}

// offloads: LRO and XDP exclude each other (the kernel turns LRO off when
// a program attaches, and an operator may turn it back on); GRO merges
// UDP datagrams into super-packets that generic XDP and the slow path see.
func (p *Plan) offloads(h Host, ifn string) {
	for _, o := range []struct {
		name string
		get  func(string) (bool, error)
		set  func(string, bool) error
		why  string
	}{
		{"gro", h.Ethtool.GRO, h.Ethtool.SetGRO, "GRO merges SIP datagrams that generic XDP and the slow path then see as one"},
		{"lro", h.Ethtool.LRO, h.Ethtool.SetLRO, "LRO and XDP exclude each other"},
	} {
		name := strings.ToUpper(o.name) + " of " + ifn
		on, err := o.get(ifn)
		if err != nil {
			p.unknown(name, err, "off")
			continue
		}
		it := Item{Name: name, Is: onOff(on), Should: "off", State: OK, Why: o.why,
			Command: fmt.Sprintf("ethtool -K %s %s off", ifn, o.name)}
		if on {
			set := o.set
			it.State = Change
			it.apply = func() error { return set(ifn, false) }
		}
		p.add(it)
	}
}

func onOff(b bool) string {
	if b {
		return "on"
	}
	return "off"
}

// locality: worker cores on the NIC's NUMA node read its DMA'd frames
// from local memory.
func (p *Plan) locality(h Host, ifn string, cores []int) {
	list, err := h.read("/sys/class/net/" + ifn + "/device/local_cpulist")
	if err != nil {
		return // virtual devices have no NUMA node
	}
	local, err := parseCPUList(list)
	if err != nil {
		p.unknown("NUMA locality of "+ifn, err, "io.cores on the NIC's node")
		return
	}
	var far []string
	for _, c := range cores {
		if !local[c] {
			far = append(far, strconv.Itoa(c))
		}
	}
	it := Item{Name: "NUMA locality of io.cores to " + ifn, Is: "all local", Should: "io.cores within CPUs " + list, State: OK}
	if len(far) > 0 {
		it.Is = "CPUs " + strings.Join(far, ",") + " are on another node"
		it.State = Manual
		it.Command = "choose io.cores from CPUs " + list
		it.Why = "a worker on another node reads every frame across the interconnect"
	}
	p.add(it)
}

// parseCPUList reads the kernel's CPU list format ("0-3,8,10-11"),
// optionally led by isolcpus flags ("managed_irq,domain,2-3").
func parseCPUList(s string) (map[int]bool, error) {
	out := map[int]bool{}
	for _, part := range strings.Split(strings.TrimSpace(s), ",") {
		if part == "" || part == "managed_irq" || part == "domain" || part == "nohz" {
			continue
		}
		lo, hi, isRange := strings.Cut(part, "-")
		a, err := strconv.Atoi(lo)
		if err != nil {
			return nil, fmt.Errorf("CPU list %q: %q is not a CPU", s, part)
		}
		b := a
		if isRange {
			if b, err = strconv.Atoi(hi); err != nil || b < a {
				return nil, fmt.Errorf("CPU list %q: %q is not a range", s, part)
			}
		}
		for c := a; c <= b; c++ {
			out[c] = true
		}
	}
	return out, nil
}
