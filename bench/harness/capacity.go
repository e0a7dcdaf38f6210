package harness

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"sipedge/afxdp/vethtest"
	"sipedge/pipeline/port/capture"
)

// CapacityOptions shape the open-loop capacity part: a sipgen capture of
// calls with the backends' responses, replayed by sipreplay at fixed
// rising rates into the appliance, whose every destination is a socket
// bound and never read.
type CapacityOptions struct {
	Proxies []string  // appliance variants (appliance-PORT[-WAIT])
	Rates   []float64 // offered calls/s, rising
	Calls   int       // calls in each capture
	Callers int       // caller addresses (and users) in the capture
	// StopLossPct ends a variant's sweep after a rate losing this much.
	StopLossPct float64
	// ProxyCore runs the appliance, LoadCore sipreplay.
	ProxyCore, LoadCore int
	ApplianceIO         [][2]string

	Appliance, Sipgen, Sipreplay string
	Dir                          string
	Log                          func(format string, a ...any)
}

// CapacityMaxLossPct is the loss under which a rate counts as carried.
const CapacityMaxLossPct = 0.1

// CapacityPart is the capacity runs of every variant.
type CapacityPart struct {
	Calls   int           `json:"calls_per_capture"`
	Callers int           `json:"callers"`
	Notes   []string      `json:"notes,omitempty"`
	Runs    []CapacityRun `json:"runs"`
	Error   string        `json:"error,omitempty"`
}

// CapacityRun is one appliance variant's sweep.
type CapacityRun struct {
	Proxy       string `json:"proxy"`
	Port        string `json:"port"`
	Wait        string `json:"wait,omitempty"`
	Description string `json:"description"`
	// DatagramsPerCall is the capture's datagrams over its calls.
	DatagramsPerCall float64         `json:"datagrams_per_call"`
	Points           []CapacityPoint `json:"points"`
	// MaxCPS is the highest achieved calls/s with under 0.1% loss.
	MaxCPS     float64 `json:"max_cps_under_0.1pct_loss"`
	LimitFound bool    `json:"limit_found"`
	Skipped    string  `json:"skipped,omitempty"`
	Error      string  `json:"error,omitempty"`
}

// CapacityPoint is one replay at one rate.
type CapacityPoint struct {
	OfferedCPS float64 `json:"offered_cps"`
	// Sent is the datagrams sipreplay sent, over ReplaySeconds;
	// AchievedCPS is that in calls/s. Below 95% of the offered rate the
	// replayer, not the appliance, was the limit (ReplayerLimited).
	Sent            uint64  `json:"sent"`
	ReplaySeconds   float64 `json:"replay_seconds"`
	AchievedCPS     float64 `json:"achieved_cps"`
	ReplayerLimited bool    `json:"replayer_limited,omitempty"`
	// The appliance's /metrics counters over the replay.
	Received    uint64            `json:"received"`
	Forwarded   uint64            `json:"forwarded"`
	Responded   uint64            `json:"responded"`
	Transmitted uint64            `json:"transmitted"`
	Drops       map[string]uint64 `json:"drops,omitempty"`
	// NotReceived is Sent - Received: lost before the appliance read
	// them (socket buffer or AF_XDP ring full, veth drops).
	NotReceived int64 `json:"not_received"`
	// Lost is Sent - Forwarded: every datagram of the capture is one the
	// appliance forwards when nothing is lost (requests to a backend,
	// responses to a caller), so whatever was not forwarded was lost,
	// before the appliance (NotReceived) or in it (dropped, or answered
	// itself, as an overload 503 is).
	Lost    int64   `json:"lost"`
	LossPct float64 `json:"loss_pct"`
	// CPUPct is the appliance's schedstat time over the replay in % of
	// one core, NsPerForwarded the same per forwarded message.
	CPUPct           float64 `json:"cpu_pct"`
	NsPerForwarded   float64 `json:"cpu_ns_per_forwarded"`
	SwitchesPer1000  float64 `json:"switches_per_1000_forwarded"`
	ApplianceSeconds float64 `json:"window_seconds"`
	Note             string  `json:"note,omitempty"`
}

// RunCapacity runs every variant of o.Proxies at every rate.
func RunCapacity(ctx context.Context, g *Group, o CapacityOptions) *CapacityPart {
	cp := &CapacityPart{Calls: o.Calls, Callers: o.Callers}
	cp.Notes = append(cp.Notes,
		fmt.Sprintf("A sipgen capture of %d calls (INVITE, 100, 180, 200 with SDP, ACK, BYE, 200; no CANCEL) with the backends' responses keyed by the appliance's [node] secret, callers spread over %d source addresses, replayed open loop by sipreplay at a fixed datagram rate (offered calls/s times the capture's datagrams per call), pinned to CPU %d; the appliance is pinned to CPU %d (io.cores and taskset).", o.Calls, o.Callers, o.LoadCore, o.ProxyCore),
		"Every destination (both backends, every caller) is a UDP socket bound and never read: the kernel drops when it fills, and no ICMP unreachable comes back. Probes every hour; guard allow-list holding every source.",
		"Loss = datagrams sipreplay sent - datagrams the appliance forwarded (sipedge_forwarded_total), over sent: every datagram of the capture is forwarded when nothing is lost, so this counts what never reached the appliance (not received: socket buffer, AF_XDP ring or veth full), what it dropped and what it answered itself (an overload 503). The appliance's counters are read before the replay and once they stop moving after it.",
		"CPU per forwarded message is the appliance's schedstat time (all threads) from just before the replay to the last /metrics sample that still saw datagrams arrive, over the messages forwarded; in busy mode it includes the spinning between bursts.",
		fmt.Sprintf("A rate is carried with under %.1f%% loss; calls/s is the achieved rate (sipreplay's sent datagrams over its run time, per call), so a replayer that falls behind does not inflate it.", CapacityMaxLossPct),
	)
	var vs []Variant
	for _, p := range o.Proxies {
		v, err := ParseVariant(p)
		if err != nil || !v.Appliance() {
			cp.Runs = append(cp.Runs, CapacityRun{Proxy: p, Error: fmt.Sprintf("harness: capacity runs appliance variants only, not %q", p)})
			continue
		}
		vs = append(vs, v)
	}
	for _, port := range []string{"socket", "afxdp"} {
		var these []Variant
		for _, v := range vs {
			if v.Port == port {
				these = append(these, v)
			}
		}
		if len(these) == 0 || ctx.Err() != nil {
			continue
		}
		cp.Runs = append(cp.Runs, capacityPort(ctx, g, o, port, these)...)
	}
	return cp
}

// capTopo is one port's capacity set-up, shared by its variants.
type capTopo struct {
	t        topo
	capture  string
	dpc      float64
	allow    []string
	into     string   // sipreplay --into
	prefix   []string // runs sipreplay where it belongs
	sinks    []*net.UDPConn
	describe string
	// respFrom is where the capture's backend responses come from: a
	// backend for the socket port (sipreplay sends them all from its one
	// socket anyway); for afxdp a port next to the backends, since
	// sipreplay's slow path binds the capture's ports in the namespace
	// where the backends' sinks are.
	respFrom netip.AddrPort
}

func (c *capTopo) close() {
	for _, s := range c.sinks {
		s.Close()
	}
	os.Remove(c.capture)
}

func capacityPort(ctx context.Context, g *Group, o CapacityOptions, port string, vs []Variant) []CapacityRun {
	fail := func(err error) []CapacityRun {
		var out []CapacityRun
		for _, v := range vs {
			out = append(out, CapacityRun{Proxy: v.Name, Port: v.Port, Wait: v.Wait, Error: err.Error()})
		}
		return out
	}
	dir := filepath.Join(o.Dir, "capacity-"+port)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fail(err)
	}
	c := &capTopo{}
	defer c.close()
	var n *vethtest.Pair
	var err error
	if port == "socket" {
		err = capSocketTopo(o, c)
	} else {
		n, err = newPair()
		if err == nil {
			defer n.Close()
			err = capAFXDPTopo(o, n, c)
		}
	}
	if err != nil {
		return fail(err)
	}
	c.capture = filepath.Join(dir, fmt.Sprintf("calls-%d.pcap", o.Calls))
	o.Log("capacity %s: sipgen, %d calls with the backends' responses -> %s", port, o.Calls, c.capture)
	args := []string{"-calls", strconv.Itoa(o.Calls), "-registers", "0", "-options", "0", "-cancel-percent", "0",
		"-responses", "-callers", strconv.Itoa(o.Callers), "-client", c.t.uacIP.String(), "-client-port", strconv.Itoa(int(callerPort(c))),
		"-proxy", c.t.proxy.String(), "-backend", c.respFrom.String(),
		"-secret", benchSecret, "-hold", "1s", "-cps", "10000", "-o", c.capture}
	if out, err := execOutput(o.Sipgen, args...); err != nil {
		return fail(fmt.Errorf("harness: sipgen %s: %v: %s", strings.Join(args, " "), err, out))
	}
	if c.dpc, err = datagramsPerCall(c.capture, o.Calls); err != nil {
		return fail(err)
	}
	var out []CapacityRun
	for _, v := range vs {
		if ctx.Err() != nil {
			break
		}
		out = append(out, capacityVariant(ctx, g, o, dir, c, v))
	}
	return out
}

// callerPort is the UDP port every caller of the capture uses: the port
// its sinks are bound on.
func callerPort(c *capTopo) uint16 {
	for _, s := range c.sinks {
		a := s.LocalAddr().(*net.UDPAddr).AddrPort()
		if a.Addr() == c.t.uacIP {
			return a.Port()
		}
	}
	return 5060
}

// capSocketTopo: the appliance on 127.0.0.1, backends on 127.0.0.3,
// callers from 127.0.1.1 up; sipreplay sends every datagram from one
// socket on 127.0.0.1 (not a backend address, so requests are taken for
// callers' as the capture means them).
func capSocketTopo(o CapacityOptions, c *capTopo) error {
	lo := netip.MustParseAddr("127.0.0.1")
	p, err := freeUDPPort(lo)
	if err != nil {
		return err
	}
	c.t.proxy = netip.AddrPortFrom(lo, uint16(p))
	c.t.pingFromIP = netip.MustParseAddr("127.0.0.2")
	c.t.uasIP = netip.MustParseAddr("127.0.0.3")
	c.t.uacIP = netip.MustParseAddr("127.0.1.1")
	if o.Callers > 250 {
		return fmt.Errorf("harness: capacity callers %d: at most 250 on 127.0.1.0/24", o.Callers)
	}
	for i := range c.t.uasPorts {
		s, err := listenUDP(nil, netip.AddrPortFrom(c.t.uasIP, 0))
		if err != nil {
			return err
		}
		c.sinks = append(c.sinks, s)
		c.t.uasPorts[i] = s.LocalAddr().(*net.UDPAddr).Port
	}
	// one port free on every caller address
	var lastErr error
	for try := 0; try < 8; try++ {
		cp, err := freeUDPPort(c.t.uacIP)
		if err != nil {
			return err
		}
		var got []*net.UDPConn
		ip := c.t.uacIP
		for i := 0; i < o.Callers; i++ {
			s, err := listenUDP(nil, netip.AddrPortFrom(ip, uint16(cp)))
			if err != nil {
				lastErr = err
				break
			}
			got = append(got, s)
			ip = ip.Next()
		}
		if len(got) == o.Callers {
			c.sinks = append(c.sinks, got...)
			break
		}
		for _, s := range got {
			s.Close()
		}
	}
	if callerPort(c) == 5060 && lastErr != nil {
		return fmt.Errorf("harness: binding the callers' sinks on 127.0.1.x: %w", lastErr)
	}
	c.respFrom = netip.AddrPortFrom(c.t.uasIP, uint16(c.t.uasPorts[0]))
	c.allow = []string{"127.0.0.0/8"}
	c.into = "udp:" + c.t.proxy.String()
	c.describe = fmt.Sprintf("io.port=socket on %s; sipreplay --into %s from one socket; callers %s-%s", c.t.proxy, c.into, c.t.uacIP, lastCaller(c.t.uacIP, o.Callers))
	return nil
}

func lastCaller(first netip.Addr, n int) netip.Addr {
	a := first
	for i := 1; i < n; i++ {
		a = a.Next()
	}
	return a
}

// capAFXDPTopo: the appliance on the host end of a veth pair, AF_XDP queue
// 0; sipreplay in the namespace sends through AF_XDP on the peer end. The
// callers live in a /24 of 100.64.0.0/10 routed on the host through the
// namespace's UAC address, so the appliance's replies go back over the
// veth (where sipreplay's XDP program takes the SIP ports and nothing
// answers); the backends are sockets in the namespace.
func capAFXDPTopo(o CapacityOptions, n *vethtest.Pair, c *capTopo) error {
	if o.Callers > 250 {
		return fmt.Errorf("harness: capacity callers %d: at most 250 in one /24", o.Callers)
	}
	// The callers' /24 is numbered after the pair's subnet in
	// 10.213.0.0/16, so two runs at once never route the same one.
	a := n.Subnet4.Addr().As4()
	idx := (int(a[2])<<8 | int(a[3])) >> (32 - n.Subnet4.Bits())
	callers := netip.PrefixFrom(netip.AddrFrom4([4]byte{100, byte(64 + idx>>8), byte(idx), 0}), 24)
	if err := n.Route(callers, uacOf(n)); err != nil {
		return fmt.Errorf("harness: routing the callers: %w", err)
	}
	for _, ip := range []netip.Addr{uacOf(n), uasOf(n)} {
		if err := n.Resolve(ip, 3*time.Second); err != nil {
			return err
		}
	}
	c.t.pair, c.t.appIface = n, n.Host
	port, err := freeWildcardUDPPort()
	if err != nil {
		return err
	}
	c.t.proxy = netip.AddrPortFrom(n.HostV4, port)
	c.t.pingFromIP, c.t.uasIP = uacOf(n), uasOf(n)
	c.t.uacIP = callers.Addr().Next()
	c.t.uasPorts = [2]int{5080, 5081}
	for _, p := range c.t.uasPorts {
		s, err := n.Listen(netip.AddrPortFrom(uasOf(n), uint16(p)))
		if err != nil {
			return err
		}
		c.sinks = append(c.sinks, s)
	}
	c.respFrom = netip.AddrPortFrom(uasOf(n), 5079)
	c.allow = []string{n.Subnet4.String(), callers.String()}
	c.into = "afxdp:" + n.Peer
	c.prefix = n.Argv()
	c.describe = fmt.Sprintf("io.port=afxdp on veth %s queue 0; sipreplay --into %s in netns %s; callers %s-%s routed through %s", n.Host, c.into, n.NS, c.t.uacIP, lastCaller(c.t.uacIP, o.Callers), uacOf(n))
	return nil
}

// datagramsPerCall counts the capture's UDP datagrams over its calls.
func datagramsPerCall(path string, calls int) (float64, error) {
	r, err := capture.Open(path)
	if err != nil {
		return 0, err
	}
	defer r.Close()
	var d capture.Datagram
	n := 0
	for {
		err := r.Next(&d)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return 0, err
		}
		n++
	}
	if n == 0 || calls == 0 {
		return 0, fmt.Errorf("harness: %s holds no datagrams", path)
	}
	return float64(n) / float64(calls), nil
}

func capacityVariant(ctx context.Context, g *Group, o CapacityOptions, dir string, c *capTopo, v Variant) (run CapacityRun) {
	run = CapacityRun{Proxy: v.Name, Port: v.Port, DatagramsPerCall: c.dpc}
	vdir := filepath.Join(dir, v.Name)
	if err := os.MkdirAll(vdir, 0o755); err != nil {
		run.Error = err.Error()
		return
	}
	t := c.t
	eo := E2EOptions{ProxyCore: o.ProxyCore, Appliance: o.Appliance, ApplianceIO: o.ApplianceIO}
	ar, err := startAppliance(g, eo, vdir, &t, v, &appExtra{allow: c.allow, probeInterval: "1h", probeTimeout: "1s", noBackendWait: true})
	if err != nil {
		run.Skipped, run.Error = skipOrError(err)
		return
	}
	defer ar.p.Stop(syscall.SIGTERM, 5*time.Second)
	run.Wait = ar.wait
	run.Description = fmt.Sprintf("sipedge appliance, %s, io.cores=[%d], taskset -c %d; %s", c.describe, o.ProxyCore, o.ProxyCore, ar.waitNote)
	for _, rate := range o.Rates {
		if ctx.Err() != nil {
			run.Error = "interrupted"
			break
		}
		if ar.p.Exited() {
			run.Error = fmt.Sprintf("the appliance exited during the run:\n%s", ar.p.Tail(1500))
			break
		}
		o.Log("capacity %s: %.0f calls/s (%.0f datagrams/s), %d calls", v.Name, rate, rate*c.dpc, o.Calls)
		pt, err := capacityPoint(ctx, g, o, vdir, c, t, ar.p, rate)
		if err != nil {
			run.Error = err.Error()
			break
		}
		o.Log("capacity %s: %.0f calls/s offered, %.0f achieved: sent %d, received %d, forwarded %d, loss %.3f%%, appliance CPU %.0f%%, %.0f ns per forwarded message%s",
			v.Name, rate, pt.AchievedCPS, pt.Sent, pt.Received, pt.Forwarded, pt.LossPct, pt.CPUPct, pt.NsPerForwarded, noteSuffix(pt.Note))
		run.Points = append(run.Points, pt)
		if o.StopLossPct > 0 && pt.LossPct >= o.StopLossPct {
			o.Log("capacity %s: %.1f%% lost at %.0f calls/s: higher rates skipped", v.Name, pt.LossPct, rate)
			break
		}
	}
	run.MaxCPS, run.LimitFound = capacityMax(run.Points)
	return run
}

func noteSuffix(n string) string {
	if n == "" {
		return ""
	}
	return " (" + n + ")"
}

// capacityMax is the highest achieved rate with under 0.1% loss, and
// whether a rate above it lost more.
func capacityMax(ps []CapacityPoint) (best float64, limit bool) {
	for _, p := range ps {
		if p.LossPct < CapacityMaxLossPct && p.AchievedCPS > best {
			best = p.AchievedCPS
		}
	}
	for _, p := range ps {
		if p.LossPct >= CapacityMaxLossPct && p.AchievedCPS >= best {
			limit = true
		}
	}
	return best, limit
}

// counters is what the capacity part reads of /metrics.
type counters struct {
	rx, tx, fwd, resp float64
	drops             map[string]float64
}

func readCounters(admin string) (counters, error) {
	ms, err := fetchMetrics(admin)
	if err != nil {
		return counters{}, fmt.Errorf("harness: appliance /metrics: %w", err)
	}
	var c counters
	var ok [3]bool
	c.rx, ok[0] = sumMetric(ms, "sipedge_received_total")
	c.tx, _ = sumMetric(ms, "sipedge_transmitted_total")
	c.fwd, ok[1] = sumMetric(ms, "sipedge_forwarded_total")
	c.resp, ok[2] = sumMetric(ms, "sipedge_responded_total")
	if !ok[0] || !ok[1] || !ok[2] {
		return c, errors.New("harness: appliance /metrics lacks sipedge_received_total, sipedge_forwarded_total or sipedge_responded_total")
	}
	c.drops = map[string]float64{}
	for _, m := range ms {
		switch {
		case m.name == "sipedge_dropped_total":
			c.drops[m.labels["reason"]] += m.value
		case m.name == "sipedge_transmit_unsent_total", m.name == "sipedge_port_errors_total",
			m.name == "sipedge_socket_unsent_total", m.name == "sipedge_socket_no_buffer_total",
			m.name == "sipedge_afxdp_tx_drops_total", m.name == "sipedge_afxdp_slow_path_total":
			c.drops[strings.TrimSuffix(strings.TrimPrefix(m.name, "sipedge_"), "_total")] += m.value
		}
	}
	return c, nil
}

func capacityPoint(ctx context.Context, g *Group, o CapacityOptions, dir string, c *capTopo, t topo, app *Proc, rate float64) (CapacityPoint, error) {
	pt := CapacityPoint{OfferedCPS: rate}
	tag := strconv.FormatFloat(rate, 'f', 0, 64)
	js := filepath.Join(dir, "replay-"+tag+".json")
	os.Remove(js)
	m0, err := readCounters(t.applianceAdmin)
	if err != nil {
		return pt, err
	}
	u0, err := ReadUsage(app.Pid(), false)
	if err != nil {
		return pt, err
	}
	t0 := time.Now()
	argv := append(append([]string{}, c.prefix...), "taskset", "-c", strconv.Itoa(o.LoadCore), o.Sipreplay,
		"--into", c.into, "--rate", strconv.FormatFloat(rate*c.dpc, 'f', 0, 64), "--quiet", "--json", js, c.capture)
	p, err := g.Start(dir, "sipreplay-"+tag, argv...)
	if err != nil {
		return pt, err
	}
	bound := time.Duration(float64(o.Calls)/rate*3*float64(time.Second)) + 30*time.Second
	select {
	case <-p.Done():
	case <-time.After(bound):
		p.Stop(syscall.SIGKILL, 0)
		return pt, fmt.Errorf("harness: sipreplay did not finish within %v:\n%s", bound, p.Tail(1000))
	case <-ctx.Done():
		p.Stop(syscall.SIGKILL, 0)
		return pt, ctx.Err()
	}
	// wait for the appliance to drain: until received stops moving
	last, err := readCounters(t.applianceAdmin)
	if err != nil {
		return pt, err
	}
	lastU, _ := ReadUsage(app.Pid(), false)
	lastAt := time.Now()
	for i := 0; i < 50; i++ {
		time.Sleep(100 * time.Millisecond)
		m, err := readCounters(t.applianceAdmin)
		if err != nil {
			return pt, err
		}
		if m.rx == last.rx && m.fwd == last.fwd {
			break
		}
		last = m
		lastU, _ = ReadUsage(app.Pid(), false)
		lastAt = time.Now()
	}
	b, err := os.ReadFile(js)
	if err != nil {
		return pt, fmt.Errorf("harness: sipreplay wrote no summary (%v):\n%s", err, p.Tail(1500))
	}
	var s struct {
		Sent       uint64   `json:"sent"`
		SendErrors uint64   `json:"send_errors"`
		Seconds    float64  `json:"seconds"`
		Errors     []string `json:"errors"`
	}
	if err := json.Unmarshal(b, &s); err != nil {
		return pt, fmt.Errorf("harness: sipreplay summary %s: %w", js, err)
	}
	if s.Sent == 0 {
		return pt, fmt.Errorf("harness: sipreplay sent nothing: %v\n%s", s.Errors, p.Tail(1500))
	}
	pt.Sent, pt.ReplaySeconds = s.Sent, s.Seconds
	if s.Seconds > 0 {
		pt.AchievedCPS = float64(s.Sent) / c.dpc / s.Seconds
	}
	pt.ReplayerLimited = pt.AchievedCPS < 0.95*rate
	if pt.ReplayerLimited {
		pt.Note = joinNote(pt.Note, fmt.Sprintf("sipreplay reached %.0f calls/s of %.0f asked", pt.AchievedCPS, rate))
	}
	if s.SendErrors > 0 {
		pt.Note = joinNote(pt.Note, fmt.Sprintf("%d send errors in sipreplay", s.SendErrors))
	}
	d := func(a, b float64) uint64 { return uint64(max(0, a-b)) }
	pt.Received, pt.Forwarded, pt.Responded, pt.Transmitted = d(last.rx, m0.rx), d(last.fwd, m0.fwd), d(last.resp, m0.resp), d(last.tx, m0.tx)
	for k, v := range last.drops {
		if n := d(v, m0.drops[k]); n > 0 {
			if pt.Drops == nil {
				pt.Drops = map[string]uint64{}
			}
			pt.Drops[k] = n
		}
	}
	pt.NotReceived = int64(pt.Sent) - int64(pt.Received)
	pt.Lost = int64(pt.Sent) - int64(pt.Forwarded)
	pt.LossPct = 100 * float64(max(0, pt.Lost)) / float64(pt.Sent)
	du := lastU.Sub(u0)
	pt.ApplianceSeconds = lastAt.Sub(t0).Seconds()
	if pt.ApplianceSeconds > 0 {
		pt.CPUPct = 100 * float64(du.CPUNs) / 1e9 / pt.ApplianceSeconds
	}
	if pt.Forwarded > 0 {
		pt.NsPerForwarded = float64(du.CPUNs) / float64(pt.Forwarded)
		pt.SwitchesPer1000 = 1000 * float64(du.Voluntary+du.Involuntary) / float64(pt.Forwarded)
	}
	return pt, nil
}
