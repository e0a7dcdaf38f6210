package tune

import (
	"bytes"
	"strings"
	"testing"

	"sipedge/afxdp/vethtest"
)

// TestTuneVeth runs tune for real on the host end of a veth pair with four
// receive queues, for [io] with two: veth has channels (rx/tx, no
// combined), GRO, per-interface NAPI knobs, and no IRQs, rings or RSS. The
// plan must say so, Tune must set what veth has, and a second run must
// change nothing. Only the test's own veth is changed.
func TestTuneVeth(t *testing.T) {
	vethtest.Require(t)
	pair := vethtest.New(t, vethtest.Options{HostRxQueues: 4, HostTxQueues: 4, IPv4Only: true})
	ifn := pair.Host
	if err := Live().SetGRO(ifn, true); err != nil { // as a distribution might leave it
		t.Fatalf("turning GRO on for the test: %v", err)
	}
	h := Host{Root: "/", Ethtool: Live()} // not the unit: another test may install one meanwhile
	io := afxdpIO(ifn, 0, 1)
	p := Make(h, io)
	var buf bytes.Buffer
	p.Write(&buf)
	t.Logf("plan on %s:\n%s", ifn, buf.String())
	checkPlan(t, p, []want{
		{"XDP support of " + ifn, OK, ""},
		{"channels of " + ifn, Change, "ethtool -L " + ifn + " rx 2"},
		{"IRQ affinity of " + ifn, OK, ""},
		{"RSS hash of udp4 on " + ifn, OK, ""},
		{"ring sizes of " + ifn, OK, ""},
		{"GRO of " + ifn, Change, "ethtool -K " + ifn + " gro off"},
		{"LRO of " + ifn, OK, ""},
		{"/sys/class/net/" + ifn + "/napi_defer_hard_irqs", Change, ""},
		{"/sys/class/net/" + ifn + "/gro_flush_timeout", Change, ""},
	})
	if it := item(t, p, "XDP support of "+ifn); !strings.Contains(it.Is, "driver veth: native XDP, copy-mode") {
		t.Errorf("veth XDP support read as %q", it.Is)
	}
	if it := item(t, p, "ring sizes of "+ifn); it.Is != "not supported by this driver" {
		t.Errorf("veth rings read as %q, want not supported", it.Is)
	}
	n, after, err := Tune(h, io)
	if err != nil || n != 4 {
		t.Fatalf("Tune: %d changes, %v; want 4 (channels, GRO, two NAPI knobs)", n, err)
	}
	for _, it := range after.Items {
		if it.State == Change {
			t.Errorf("after Tune %s still differs: is %s, should %s", it.Name, it.Is, it.Should)
		}
	}
	c, err := Live().Channels(ifn)
	if err != nil || c.Rx != 2 {
		t.Errorf("veth channels after Tune: %+v, %v; want rx 2", c, err)
	}
	if v, _ := h.read("/sys/class/net/" + ifn + "/napi_defer_hard_irqs"); v != deferHardIRQs {
		t.Errorf("napi_defer_hard_irqs %q after Tune, want %s", v, deferHardIRQs)
	}
	if n, _, err := Tune(h, io); n != 0 || err != nil {
		t.Errorf("second Tune: %d changes, %v; want none", n, err)
	}
}
