package tune

import (
	"bytes"
	"strings"
	"testing"

	"sipedge/appliance/config"
)

// afxdpIO is [io] for afxdp on ifn: queues 0..n-1 on cores.
func afxdpIO(ifn string, cores ...int) config.IO {
	io := config.IO{Port: "afxdp", Interface: ifn, Cores: cores, RxRing: 2048, TxRing: 2048,
		XDPMode: "auto", BindMode: "auto", Wait: "adaptive", BusyPoll: "auto"}
	for i := range cores {
		io.Queues = append(io.Queues, i)
	}
	return io
}

// item finds the plan's item whose name starts with prefix.
func item(t *testing.T, p *Plan, prefix string) Item {
	t.Helper()
	for _, it := range p.Items {
		if strings.HasPrefix(it.Name, prefix) {
			return it
		}
	}
	var buf bytes.Buffer
	p.Write(&buf)
	t.Fatalf("no item %q in the plan:\n%s", prefix, buf.String())
	return Item{}
}

type want struct {
	prefix  string
	state   State
	command string // a substring of the command; "" to skip
}

func checkPlan(t *testing.T, p *Plan, wants []want) {
	t.Helper()
	for _, w := range wants {
		it := item(t, p, w.prefix)
		if it.State != w.state || !strings.Contains(it.Command, w.command) {
			t.Errorf("%s: state %s, command %q; want %s and a command with %q (is %q, should %q)",
				it.Name, it.State, it.Command, w.state, w.command, it.Is, it.Should)
		}
	}
}

// readFile reads a file of a fixture's root.
func readFile(t *testing.T, h Host, p string) string {
	t.Helper()
	s, err := h.read(p)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// applyTwice tunes, checks that the plan then has only the items Apply
// cannot change, and that a second Tune changes nothing.
func applyTwice(t *testing.T, h Host, io config.IO, r *recorded) *Plan {
	t.Helper()
	p := Make(h, io)
	changes := 0
	for _, it := range p.Items {
		if it.State == Change {
			changes++
		}
	}
	n, after, err := Tune(h, io)
	if err != nil || n != changes {
		t.Fatalf("Tune: %d changed, %v; want %d and no error", n, err, changes)
	}
	for _, it := range after.Items {
		if it.State == Change {
			t.Errorf("after Apply %s still differs: is %s, should %s", it.Name, it.Is, it.Should)
		}
	}
	sets := r.sets
	if n, _, err := Tune(h, io); n != 0 || err != nil || r.sets != sets {
		t.Errorf("second Tune changed %d (ethtool sets %d), %v: want nothing", n, r.sets-sets, err)
	}
	return after
}

// ixgbe as Debian leaves it: 16 channels, IRQs one per CPU, rings 512,
// UDP hashed on addresses only, GRO and LRO on; the box isolates 2-3.
func TestPlanIXGBE(t *testing.T) {
	h, r := fixture(t, "ixgbe")
	io := afxdpIO("eth0", 2, 3)
	p := Make(h, io)
	checkPlan(t, p, []want{
		{"XDP support of eth0", OK, ""},
		{"channels of eth0", Change, "ethtool -L eth0 combined 2"},
		{"IRQ 90 (eth0 queue 0, eth0-TxRx-0)", Change, "echo 2 > /proc/irq/90/smp_affinity_list"},
		{"IRQ 91 (eth0 queue 1, eth0-TxRx-1)", Change, "echo 3 > /proc/irq/91/smp_affinity_list"},
		{"RSS hash of udp4 on eth0", Change, "ethtool -N eth0 rx-flow-hash udp4 sdfn"},
		{"RSS hash of udp6 on eth0", Change, "ethtool -N eth0 rx-flow-hash udp6 sdfn"},
		{"ring sizes of eth0", Change, "ethtool -G eth0 rx 2048 tx 2048"},
		{"GRO of eth0", Change, "ethtool -K eth0 gro off"},
		{"LRO of eth0", Change, "ethtool -K eth0 lro off"},
		{"NUMA locality", OK, ""},
		{"/sys/class/net/eth0/napi_defer_hard_irqs", Change, "echo 2 > /sys/class/net/eth0/napi_defer_hard_irqs"},
		{"/sys/class/net/eth0/gro_flush_timeout", Change, "echo 200000 >"},
		{"boot parameter isolcpus", OK, ""},
		{"boot parameter nohz_full", OK, ""},
		{"irqbalance", OK, ""},
		{"CPUAffinity of sipedge.service", Change, "CPUAffinity=2 3"},
	})
	if got := item(t, p, "RSS hash of udp4").Is; got != "sd" {
		t.Errorf("udp4 hash read as %q, want sd", got)
	}
	after := applyTwice(t, h, io, r)
	if after.Differs() != 0 {
		var buf bytes.Buffer
		after.Write(&buf)
		t.Errorf("a box that isolates its worker cores should be fully tuned after Apply:\n%s", buf.String())
	}
	if got := readFile(t, h, dropIn); got != "[Service]\nCPUAffinity=\nCPUAffinity=2 3" {
		t.Errorf("drop-in after Apply: %q", got)
	}
	if got := readFile(t, h, "/proc/irq/91/smp_affinity_list"); got != "3" {
		t.Errorf("IRQ 91 affinity %q after Apply, want 3", got)
	}
	if r.Channels_.Combined != 2 || r.Rxfh["udp4"] != hashWanted || r.Rings_.Rx != 2048 || r.Gro || r.Lro {
		t.Errorf("ethtool state after Apply: %+v %+v %v gro %v lro %v", r.Channels_, r.Rings_, r.Rxfh, r.Gro, r.Lro)
	}
	if p.Items[1].reshapes != true || p.Items[1].Name != "channels of eth0" {
		t.Errorf("the channel change does not stop Apply, so the IRQ items would act on renumbered IRQs")
	}
	if got := readFile(t, h, "/proc/irq/92/smp_affinity_list"); got != "2" {
		t.Errorf("queue 2's IRQ (not served) was changed to %q", got)
	}
}

// i40e: UDP already hashed on ports, LRO not supported, no isolation: the
// boot parameters stay to do by hand and Apply does not touch them.
func TestPlanI40E(t *testing.T) {
	h, r := fixture(t, "i40e")
	io := afxdpIO("ens1f0", 1, 2, 3, 4)
	p := Make(h, io)
	checkPlan(t, p, []want{
		{"channels of ens1f0", Change, "ethtool -L ens1f0 combined 4"},
		{"IRQ 121 (ens1f0 queue 0, i40e-ens1f0-TxRx-0)", Change, "echo 1 > /proc/irq/121/smp_affinity_list"},
		{"IRQ 124 (ens1f0 queue 3, i40e-ens1f0-TxRx-3)", Change, "echo 4 > /proc/irq/124/smp_affinity_list"},
		{"RSS hash of udp4 on ens1f0", OK, ""},
		{"LRO of ens1f0", OK, ""},
		{"boot parameter isolcpus", Manual, "isolcpus=managed_irq,domain,1,2,3,4 nohz_full=1,2,3,4"},
		{"boot parameter nohz_full", Manual, ""},
		// the unit says 0, its drop-in resets that and lists 1 2 and 3-4
		{"CPUAffinity of sipedge.service", OK, ""},
	})
	if it := item(t, p, "LRO of ens1f0"); it.Is != "not supported by this driver" {
		t.Errorf("LRO: is %q, want not supported", it.Is)
	}
	for _, it := range p.Items {
		if strings.Contains(it.Name, "misc") {
			t.Errorf("the misc IRQ was taken for a queue: %s", it.Name)
		}
	}
	after := applyTwice(t, h, io, r)
	if after.Differs() != 2 {
		t.Errorf("after Apply %d items differ, want the 2 boot parameters", after.Differs())
	}
}

// mlx5: completion IRQs named after the PCI device, irqbalance running, a
// core on the far NUMA node, one queue (no RSS items), block wait.
func TestPlanMLX5(t *testing.T) {
	h, r := fixture(t, "mlx5")
	io := afxdpIO("enp94s0f0np0", 14)
	io.Wait, io.BindMode = "block", "zerocopy"
	p := Make(h, io)
	checkPlan(t, p, []want{
		{"XDP support of enp94s0f0np0", OK, ""},
		{"channels of enp94s0f0np0", Change, "ethtool -L enp94s0f0np0 combined 1"},
		{"IRQ 141 (enp94s0f0np0 queue 0, mlx5_comp0@pci:0000:5e:00.0)", Change, "echo 14 > /proc/irq/141/smp_affinity_list"},
		{"ring sizes of enp94s0f0np0", Change, "rx 2048 tx 2048"},
		{"NUMA locality of io.cores to enp94s0f0np0", Manual, "choose io.cores from CPUs 0-11"},
		// block: no deferral, so the IRQ wakes the sleeping worker at once
		{"/sys/class/net/enp94s0f0np0/napi_defer_hard_irqs", OK, ""},
		{"/sys/class/net/enp94s0f0np0/gro_flush_timeout", OK, ""},
		{"irqbalance", Manual, "systemctl disable --now irqbalance"},
		{"boot parameter nohz_full", Manual, ""},
	})
	for _, it := range p.Items {
		if strings.HasPrefix(it.Name, "RSS") || strings.Contains(it.Name, "async") {
			t.Errorf("unexpected item %q with one queue", it.Name)
		}
	}
	applyTwice(t, h, io, r)
}

// The driver's XDP support against io.xdp_mode and io.bind_mode.
func TestPlanXDPSupport(t *testing.T) {
	h, r := fixture(t, "i40e")
	io := afxdpIO("ens1f0", 0)
	r.Driver_ = "e1000e"
	io.XDPMode = "native"
	checkPlan(t, Make(h, io), []want{{"XDP support of ens1f0", Manual, `io.xdp_mode = "auto"`}})
	r.Driver_ = "virtio_net"
	io.XDPMode, io.BindMode = "auto", "zerocopy"
	checkPlan(t, Make(h, io), []want{{"XDP support of ens1f0", Manual, `io.bind_mode = "auto"`}})
	r.Driver_ = "ixgbe"
	checkPlan(t, Make(h, io), []want{{"XDP support of ens1f0", OK, ""}})
}

// More queues than the driver has: a Manual item, and Apply does not try.
func TestPlanTooManyQueues(t *testing.T) {
	h, r := fixture(t, "ixgbe")
	r.Channels_.MaxCombined = 4
	checkPlan(t, Make(h, afxdpIO("eth0", 0, 1, 2, 3, 4)), []want{{"channels of eth0", Manual, "at most 4 queues"}})
}

// The socket port: no NIC items; busy wants busy_read, the sleeping modes
// want busy_poll at 0.
func TestPlanSocket(t *testing.T) {
	h, r := fixture(t, "ixgbe")
	io := config.IO{Port: "socket", Cores: []int{2}, Wait: "busy"}
	p := Make(h, io)
	checkPlan(t, p, []want{{"net.core.busy_read", Change, "sysctl -w net.core.busy_read=50"}})
	for _, it := range p.Items {
		if strings.Contains(it.Name, "eth0") || it.Name == "irqbalance" {
			t.Errorf("socket port plan has NIC item %q", it.Name)
		}
	}
	applyTwice(t, h, io, r)
	if got := readFile(t, h, "/proc/sys/net/core/busy_read"); got != "50" {
		t.Errorf("busy_read %q after Apply, want 50", got)
	}
	io.Wait = "adaptive"
	checkPlan(t, Make(h, io), []want{{"net.core.busy_poll", OK, ""}})
	io.Cores = []int{0}
	if it := item(t, Make(h, io), "boot parameter isolcpus"); it.State != Manual || !strings.Contains(it.Why, "CPU 0") {
		t.Errorf("isolating CPU 0 is not warned against: %s, %q", it.State, it.Why)
	}
}

// An interface the host does not have: one Unknown item, no panic.
func TestPlanMissingInterface(t *testing.T) {
	h := Host{Root: t.TempDir(), Ethtool: Live()}
	p := Make(h, afxdpIO("nosuchif17", 0))
	if it := item(t, p, "driver of nosuchif17"); it.State != Unknown {
		t.Errorf("missing interface: %s %q, want unknown", it.State, it.Is)
	}
	if w := p.Warnings(); len(w) == 0 || !strings.Contains(w[0], "nosuchif17") {
		t.Errorf("warnings %q: want the interface named", w)
	}
}

func TestQueueIRQNames(t *testing.T) {
	for name, q := range map[string]string{
		"eth0-TxRx-3": "3", "i40e-ens1f0-TxRx-12": "12", "ice-eth2-TxRx-0": "0",
		"mlx5_comp7@pci:0000:5e:00.0": "7", "virtio0-input.1": "1",
	} {
		m := queueIRQ.FindStringSubmatch(name)
		if m == nil || m[1] != q {
			t.Errorf("%s: %v, want queue %s", name, m, q)
		}
	}
	for _, name := range []string{"eth0", "i40e-0000:3b:00.0:misc", "mlx5_async0@pci:0000:5e:00.0", "virtio0-config"} {
		if m := queueIRQ.FindStringSubmatch(name); m != nil {
			t.Errorf("%s taken for queue %s", name, m[1])
		}
	}
}

func TestParseCPUList(t *testing.T) {
	got, err := parseCPUList("managed_irq,domain,2-4,8")
	if err != nil || len(got) != 4 || !got[2] || !got[4] || !got[8] || got[5] {
		t.Errorf("parseCPUList: %v, %v", got, err)
	}
	for _, bad := range []string{"a-b", "4-2", "x"} {
		if _, err := parseCPUList(bad); err == nil {
			t.Errorf("parseCPUList(%q) accepted", bad)
		}
	}
	if hashString(HashIPSrc|HashIPDst) != "sd" || hashString(hashWanted) != "sdfn" || hashString(0) != "none" {
		t.Error("hashString does not write ethtool's letters")
	}
}
