package appliance

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"net"
	"net/http"
	"net/netip"
	"os"
	"runtime"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"sipedge/afxdp"
	"sipedge/afxdp/neigh"
	"sipedge/appliance/config"
	"sipedge/pipeline"
	"sipedge/pipeline/stages/auth"
	"sipedge/pipeline/stages/auth/redisstore"
	"sipedge/pipeline/stages/guard"
	"sipedge/pipeline/port"
	"sipedge/pipeline/port/pcapport"
	"sipedge/pipeline/port/socketport"
	"sipedge/pipeline/port/xdpport"
	"sipedge/sipcore"
)

// Options are what the daemon needs besides its configuration.
type Options struct {
	// Logger receives one line per event that matters; nil discards.
	Logger *slog.Logger
	// Level, when set, is the logger's level: reloads change it.
	Level *slog.LevelVar
	// Version is reported by /metrics (sipedge_build_info).
	Version string
}

// Daemon is one running appliance: its workers and ports, the backend set
// and its prober, and the admin HTTP server. New opens everything, Run
// runs it until its context ends, Reload applies a new configuration.
type Daemon struct {
	log     *slog.Logger
	level   *slog.LevelVar
	version string
	mode    string
	started time.Time

	mu  sync.Mutex // guards cfg and the prober during reloads
	cfg *config.Config

	key      sipcore.Key
	backends *pipeline.Backends
	proxy    *pipeline.Proxy
	workers  []*pipeline.Worker
	ports    []port.Port
	group    *xdpport.Group
	neigh    *neigh.Table
	pcapOut  *os.File

	specs []pipeline.BackendSpec // as configured, for the allow-list on reload

	// guard and auth are nil when their section is disabled; users and
	// redis are auth's store.
	guard *guard.Guard
	auth  *auth.Auth
	users *auth.FileStore
	redis *redisstore.Store

	proberCancel context.CancelFunc
	proberDone   chan struct{}
	proberCfg    pipeline.ProbeConfig

	admin    *http.Server
	adminLn  net.Listener
	running  atomic.Int32
	reloadOK atomic.Uint64
	reloadNo atomic.Uint64
	ran      atomic.Bool
}

// New builds the daemon for cfg, which must have passed config.Check: it
// opens the ports (and attaches the XDP program in afxdp mode), the admin
// listener and the prober socket. Nothing runs until Run. On error
// everything opened is closed again.
func New(cfg *config.Config, opts Options) (*Daemon, error) {
	d := &Daemon{log: opts.Logger, level: opts.Level, version: opts.Version, cfg: cfg, mode: cfg.IO.Port}
	if d.log == nil {
		d.log = slog.New(slog.DiscardHandler)
	}
	built := false
	defer func() {
		if !built {
			d.closeAll() // whatever was opened before the failure
		}
	}()
	var err error
	d.key = sipcore.NewKey([]byte(cfg.Node.Secret))
	specs, err := backendSpecs(cfg)
	if err != nil {
		return nil, err
	}
	d.specs = specs
	if d.backends, err = pipeline.NewBackends(specs); err != nil {
		return nil, fmt.Errorf("appliance: %w", err)
	}
	listen, err := netip.ParseAddrPort(cfg.IO.Listen)
	if cfg.IO.Port != "pcap" && err != nil {
		return nil, fmt.Errorf("appliance: io.listen %q: %v (want ip:port)", cfg.IO.Listen, err)
	}
	if cfg.IO.Port == "pcap" && !listen.IsValid() {
		listen = netip.MustParseAddrPort("127.0.0.1:5060")
	}
	var sentBy netip.Addr
	switch cfg.IO.Port {
	case "socket":
		sentBy, err = d.openSockets(cfg, listen)
	case "afxdp":
		sentBy, err = d.openAFXDP(cfg, listen)
	case "pcap":
		sentBy, err = d.openPcap(cfg, listen)
	default:
		err = fmt.Errorf("appliance: io.port %q: want socket, afxdp or pcap", cfg.IO.Port)
	}
	if err != nil {
		return nil, err
	}
	self := netip.AddrPortFrom(sentBy, listen.Port())
	if d.proxy, err = NewProxy(cfg, &d.key, d.backends, self); err != nil {
		return nil, err
	}
	extras := make([]Extra, len(d.ports))
	var sinks []auth.FailureSink
	if cfg.Guard.Enabled {
		var banner guard.Banner
		if d.group != nil {
			banner = d.group.Program() // bans also dropped by the XDP program
		}
		if d.guard, err = guard.New(guardConfig(cfg, specs, banner)); err != nil {
			return nil, fmt.Errorf("appliance: [guard]: %w", err)
		}
		for i := range extras {
			st := d.guard.NewStage()
			extras[i].Guard = st
			sinks = append(sinks, st)
		}
	}
	if cfg.Auth.Enabled {
		if err := d.openAuth(cfg, len(d.ports), sinks); err != nil {
			return nil, err
		}
	}
	for i, p := range d.ports {
		wc := workerConfig(cfg, i)
		if d.auth != nil {
			if extras[i].Auth, err = d.auth.Stages(i, 0); err != nil {
				return nil, fmt.Errorf("appliance: worker %d: %w", i, err)
			}
			wc.Helpers = []pipeline.Helper{d.auth.Helper(i)} // index 0, as given to Stages
			if cfg.Auth.Fallback == "drop" {
				wc.Fallback = pipeline.FallbackDrop
			}
			wc.RetryAfter = int(cfg.Auth.RetryAfter.Std() / time.Second)
		}
		w, err := NewWorker(cfg, &d.key, d.proxy, p, wc, extras[i])
		if err != nil {
			return nil, err
		}
		d.workers = append(d.workers, w)
	}
	if n, raised := ensureProcs(len(d.workers)); raised {
		d.log.Info("GOMAXPROCS raised so that every worker has a P of its own and one is left", "gomaxprocs", n, "workers", len(d.workers))
	}
	d.proberCfg = probeConfig(cfg)
	if cfg.Admin.Listen != "" {
		ln, err := net.Listen("tcp", cfg.Admin.Listen)
		if err != nil {
			return nil, fmt.Errorf("appliance: admin.listen %s: %w (choose a free address, or \"\" to disable the admin server)", cfg.Admin.Listen, err)
		}
		d.adminLn = ln
		d.admin = &http.Server{Handler: d.adminHandler(cfg.Admin.Pprof), ReadHeaderTimeout: 5 * time.Second}
	}
	built = true
	return d, nil
}

// backendSpecs resolves [dispatcher] backends once, off the hot path (host
// names are looked up here, never per packet).
func backendSpecs(cfg *config.Config) ([]pipeline.BackendSpec, error) {
	specs := make([]pipeline.BackendSpec, 0, len(cfg.Dispatcher.Backends))
	for i, b := range cfg.Dispatcher.Backends {
		ap, err := netip.ParseAddrPort(b.Address)
		if err != nil {
			ua, rerr := net.ResolveUDPAddr("udp", b.Address)
			if rerr != nil {
				return nil, fmt.Errorf("appliance: dispatcher.backends[%d].address %q: %v (use an IP:port, or a host name that resolves)", i, b.Address, rerr)
			}
			ap = ua.AddrPort()
		}
		specs = append(specs, pipeline.BackendSpec{Addr: netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port()), Weight: float64(b.Weight)})
	}
	return specs, nil
}

// workerConfig is worker i's pipeline.Config from [io]: core and wait mode.
func workerConfig(cfg *config.Config, i int) pipeline.Config {
	mode, _ := pipeline.ParseWaitMode(cfg.IO.Wait) // checked by config.Validate
	return pipeline.Config{
		ID: i, Core: cfg.IO.Cores[i],
		Wait: mode, Spin: cfg.IO.Spin.Std(), BatchDelay: cfg.IO.BatchDelay.Std(),
		MaxSleep: cfg.IO.PollInterval.Std(),
	}
}

// ensureProcs leaves a P (GOMAXPROCS) for every worker plus one for the
// helpers, prober and admin server. A worker holds its P while it runs and
// takes an idle one back when it wakes from a sleep in the kernel; with
// fewer Ps than that a wake-up would wait for another thread to hand one
// over, which is the thread switch the wait design avoids. An explicit
// GOMAXPROCS in the environment is left alone.
func ensureProcs(workers int) (int, bool) {
	cur := runtime.GOMAXPROCS(0)
	if os.Getenv("GOMAXPROCS") != "" || cur >= workers+1 {
		return cur, false
	}
	runtime.GOMAXPROCS(workers + 1)
	return workers + 1, true
}

func probeConfig(cfg *config.Config) pipeline.ProbeConfig {
	p := cfg.Dispatcher.Probe
	return pipeline.ProbeConfig{Interval: p.Interval.Std(), Timeout: p.Timeout.Std(), DownAfter: p.DownAfter, UpAfter: p.UpAfter}
}

// selfAddr is the address backends send responses to: the listen address,
// or when that is unspecified the first node address of its family.
func selfAddr(cfg *config.Config, listen netip.Addr) (netip.Addr, error) {
	if !listen.IsUnspecified() {
		return listen.Unmap(), nil
	}
	for _, a := range cfg.Node.Addresses {
		if ip, err := netip.ParseAddr(a); err == nil && ip.Is4() == listen.Is4() && !ip.IsUnspecified() {
			return ip.Unmap(), nil
		}
	}
	return netip.Addr{}, fmt.Errorf("appliance: io.listen %s is unspecified and node.addresses lists no IP of that family: list this node's address first in node.addresses, so backends know where to send responses", cfg.IO.Listen)
}

func (d *Daemon) openSockets(cfg *config.Config, listen netip.AddrPort) (netip.Addr, error) {
	self, err := selfAddr(cfg, listen.Addr())
	if err != nil {
		return self, err
	}
	for i := range cfg.IO.Cores {
		p, err := socketport.Open(socketport.Config{
			Listen:     listen,
			Buffers:    max(1024, 4*cfg.IO.Batch),
			Batch:      cfg.IO.Batch,
			RecvBuffer: 4 << 20, // absorbs a burst while a worker is descheduled
		})
		if err != nil {
			return self, fmt.Errorf("appliance: worker %d: %w (is another process on io.listen %s?)", i, err, listen)
		}
		d.ports = append(d.ports, p)
		if listen.Port() == 0 { // every worker must share the one the kernel chose
			listen = p.LocalAddr()
		}
	}
	return self, nil
}

func (d *Daemon) openAFXDP(cfg *config.Config, listen netip.AddrPort) (netip.Addr, error) {
	io := cfg.IO
	// xdpport opens queues 0..n-1; the configuration lists them in any order.
	qs := slices.Clone(io.Queues)
	slices.Sort(qs)
	for i, q := range qs {
		if q != i {
			return netip.Addr{}, fmt.Errorf("appliance: io.queues %v: afxdp serves queues 0 to n-1 together; list every queue from 0 (e.g. [0, 1]) or shrink the NIC's queues with ethtool -L", io.Queues)
		}
	}
	ifi, err := net.InterfaceByName(io.Interface)
	if err != nil {
		return netip.Addr{}, fmt.Errorf("appliance: io.interface %q: %w", io.Interface, err)
	}
	self := listen.Addr().Unmap()
	if self.IsUnspecified() {
		self = interfaceAddr(ifi, self.Is4())
		if !self.IsValid() {
			return self, fmt.Errorf("appliance: io.listen %s is unspecified and %s has no global address of that family: give io.listen the interface's address", io.Listen, io.Interface)
		}
	}
	xm, err := afxdp.ParseXDPMode(io.XDPMode)
	if err != nil {
		return self, fmt.Errorf("appliance: io.xdp_mode: %w", err)
	}
	bm, err := afxdp.ParseBindMode(io.BindMode)
	if err != nil {
		return self, fmt.Errorf("appliance: io.bind_mode: %w", err)
	}
	if d.neigh, err = neigh.New(neigh.Config{}); err != nil {
		return self, fmt.Errorf("appliance: neighbour table: %w", err)
	}
	xc := xdpport.Config{
		Ports:    []uint16{listen.Port()},
		XDPMode:  xm,
		BindMode: bm,
		Socket: afxdp.Config{
			FrameSize: uint32(io.FrameSize), FrameCount: uint32(io.FrameCount),
			FillRingSize: uint32(io.FillRing), CompRingSize: uint32(io.CompRing),
			RxRingSize: uint32(io.RxRing), TxRingSize: uint32(io.TxRing),
			NeedWakeup: true,
		},
		Batch:      io.Batch,
		BusyPoll:   io.BusyPoll == "on" || (io.BusyPoll == "auto" && io.Wait != "block"),
		Neighbours: d.neigh,
	}
	if self.Is4() {
		xc.Addr4 = self
	} else {
		xc.Addr6 = self
	}
	if d.group, err = xdpport.Open(io.Interface, len(qs), xc); err != nil {
		return self, fmt.Errorf("appliance: afxdp on %s: %w", io.Interface, err)
	}
	gp := d.group.Ports()
	for _, q := range io.Queues { // worker i serves io.queues[i] on io.cores[i]
		d.ports = append(d.ports, gp[q])
	}
	return self, nil
}

func interfaceAddr(ifi *net.Interface, v4 bool) netip.Addr {
	addrs, _ := ifi.Addrs()
	for _, a := range addrs {
		ipn, ok := a.(*net.IPNet)
		if !ok {
			continue
		}
		ip, ok := netip.AddrFromSlice(ipn.IP)
		if ok && ip.Unmap().Is4() == v4 && ip.IsGlobalUnicast() {
			return ip.Unmap()
		}
	}
	return netip.Addr{}
}

func (d *Daemon) openPcap(cfg *config.Config, listen netip.AddrPort) (netip.Addr, error) {
	pc := pcapport.Config{Input: cfg.IO.Input, Local: listen}
	if cfg.IO.Loop {
		pc.Loop = math.MaxInt32
	}
	if cfg.IO.Output != "" {
		f, err := os.Create(cfg.IO.Output)
		if err != nil {
			return netip.Addr{}, fmt.Errorf("appliance: io.output: %w", err)
		}
		d.pcapOut, pc.Output = f, f
	}
	p, err := pcapport.Open(pc)
	if err != nil {
		return netip.Addr{}, fmt.Errorf("appliance: io.input %s: %w", cfg.IO.Input, err)
	}
	d.ports = append(d.ports, p)
	return listen.Addr().Unmap(), nil
}

// Backends is the live backend set (tests and the admin API read it).
func (d *Daemon) Backends() *pipeline.Backends { return d.backends }

// Workers are the daemon's pipeline workers, one per port.
func (d *Daemon) Workers() []*pipeline.Worker { return d.workers }

// AdminAddr is the admin listener's address, invalid when disabled.
func (d *Daemon) AdminAddr() netip.AddrPort {
	if d.adminLn == nil {
		return netip.AddrPort{}
	}
	return d.adminLn.Addr().(*net.TCPAddr).AddrPort()
}

// Run starts the workers, the prober, the neighbour table and the admin
// server, and returns when ctx ends (nil), every worker has finished (a
// pcap capture replayed: nil), or a worker fails (its error). Before
// returning it stops everything: workers first (each transmits what it
// built), then the ports (detaching the XDP program), then the rest.
func (d *Daemon) Run(ctx context.Context) error {
	if !d.ran.CompareAndSwap(false, true) {
		return errors.New("appliance: Run called twice")
	}
	d.started = time.Now()
	bg, cancelBG := context.WithCancel(context.Background())
	var bgWG sync.WaitGroup
	if d.admin != nil {
		bgWG.Add(1)
		go func() {
			defer bgWG.Done()
			if err := d.admin.Serve(d.adminLn); err != nil && !errors.Is(err, http.ErrServerClosed) {
				d.log.Error("admin server stopped", "err", err)
			}
		}()
		d.log.Info("admin listening", "addr", d.adminLn.Addr().String(), "pprof", d.cfg.Admin.Pprof)
	}
	if d.neigh != nil {
		for _, b := range d.backends.Load().Backends {
			d.neigh.Want(b.Addr.Addr())
		}
		d.neigh.Start()
	}
	if d.mode != "pcap" { // offline replays route to every backend as configured
		d.mu.Lock()
		err := d.startProberLocked(d.proberCfg)
		d.mu.Unlock()
		if err != nil {
			cancelBG()
			d.closeAll()
			return err
		}
	} else {
		d.log.Info("pcap mode: backends are not probed, all count as up")
	}
	bgWG.Add(1)
	go func() { defer bgWG.Done(); d.watchBackends(bg) }()
	if d.guard != nil {
		bgWG.Add(1)
		go func() { defer bgWG.Done(); d.guard.Run(bg) }()
	}

	errc := make(chan error, len(d.workers))
	for i, w := range d.workers {
		d.log.Info("worker started", "worker", i, "core", d.cfg.IO.Cores[i], "port", w.Port().Name(),
			"wait", d.cfg.IO.Wait, "spin", d.cfg.IO.Spin.Std().String(), "batch_delay", d.cfg.IO.BatchDelay.Std().String())
		d.running.Add(1)
		go func() {
			err := w.Run(ctx)
			d.running.Add(-1)
			errc <- err
		}()
	}
	var runErr error
	finished := 0
wait:
	for finished < len(d.workers) {
		select {
		case <-ctx.Done():
			break wait
		case err := <-errc:
			finished++
			if err != nil {
				runErr = err
				d.log.Error("worker failed", "err", err)
				break wait
			}
		}
	}
	t0 := time.Now()
	for _, w := range d.workers {
		w.Stop()
	}
	d.logFrames()
	d.mu.Lock()
	d.stopProberLocked()
	d.mu.Unlock()
	if d.admin != nil {
		sctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
		d.admin.Shutdown(sctx)
		cancel()
	}
	cancelBG()
	bgWG.Wait()
	d.adminLn = nil // closed by Shutdown
	d.closeAll()
	var rx, tx uint64
	for _, w := range d.workers {
		s := w.Stats()
		rx += s.Rx
		tx += s.Tx
	}
	d.log.Info("stopped", "took", time.Since(t0).Round(time.Millisecond).String(), "received", rx, "transmitted", tx)
	return runErr
}

// logFrames reports UMEM frames still held after the workers stopped: any
// is a leak (the worker owns its port until then, so reading is safe).
func (d *Daemon) logFrames() {
	if d.group == nil {
		return
	}
	for _, p := range d.group.Ports() {
		free, kernel, total := p.Frames()
		lvl := slog.LevelInfo
		if free+kernel != total {
			lvl = slog.LevelError
		}
		d.log.Log(context.Background(), lvl, "afxdp frames at stop", "queue", p.Queue(), "free", free, "kernel", kernel, "total", total, "leaked", total-free-kernel)
	}
}

// closeAll releases what New opened; safe on a partly built daemon.
// wakeWorkers makes sleeping workers run a loop iteration now, so that
// their stages' per-batch hooks see an operator's change (ban, allow,
// reload) at once rather than at their next datagram or poll_interval.
func (d *Daemon) wakeWorkers() {
	for _, w := range d.workers {
		w.Wake()
	}
}

func (d *Daemon) closeAll() {
	defer func() {
		for _, w := range d.workers {
			w.Close()
		}
	}()
	if d.group != nil {
		if err := d.group.Close(); err != nil {
			d.log.Error("closing afxdp (XDP program detach)", "err", err)
		} else {
			d.log.Info("XDP program detached", "interface", d.cfg.IO.Interface)
		}
		d.group = nil
	} else {
		for _, p := range d.ports {
			p.Close()
		}
	}
	d.ports = nil
	if d.auth != nil {
		d.auth.Close() // after the workers: it stops their helpers
	}
	if d.redis != nil {
		d.redis.Close()
		d.redis = nil
	}
	if d.neigh != nil {
		d.neigh.Stop()
		d.neigh = nil
	}
	if d.pcapOut != nil {
		d.pcapOut.Close()
		d.pcapOut = nil
	}
	if d.adminLn != nil {
		d.adminLn.Close()
		d.adminLn = nil
	}
}

func (d *Daemon) startProberLocked(pc pipeline.ProbeConfig) error {
	pr, err := pipeline.NewProber(d.backends, pc)
	if err != nil {
		return fmt.Errorf("appliance: %w", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := pr.Run(ctx); err != nil {
			d.log.Error("prober stopped", "err", err)
		}
	}()
	d.proberCancel, d.proberDone, d.proberCfg = cancel, done, pc
	return nil
}

func (d *Daemon) stopProberLocked() {
	if d.proberCancel != nil {
		d.proberCancel()
		<-d.proberDone
		d.proberCancel, d.proberDone = nil, nil
	}
}

// watchBackends logs every backend going up or down and every change of
// the list, waiting on the snapshot's Changed channel (no polling).
func (d *Daemon) watchBackends(ctx context.Context) {
	prev := d.backends.Load()
	for {
		select {
		case <-ctx.Done():
			return
		case <-prev.Changed():
		}
		cur := d.backends.Load()
		was := map[netip.AddrPort]bool{}
		for _, b := range prev.Backends {
			was[b.Addr] = b.Up
		}
		for _, b := range cur.Backends {
			if up, ok := was[b.Addr]; ok && up != b.Up {
				if b.Up {
					d.log.Info("backend up", "backend", b.Addr.String())
				} else {
					d.log.Warn("backend down", "backend", b.Addr.String())
				}
			}
		}
		prev = cur
	}
}

// Reload applies cfg (already checked) without stopping: the backend list
// (health carried for unchanged addresses), the probe settings and the log
// level. Settings that need new ports or a new proxy are reported and
// keep their running values until a restart.
func (d *Daemon) Reload(cfg *config.Config) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	defer d.wakeWorkers()
	specs, err := backendSpecs(cfg)
	if err != nil {
		d.reloadNo.Add(1)
		return err
	}
	old := d.cfg
	if err := d.backends.Replace(specs); err != nil {
		d.reloadNo.Add(1)
		return fmt.Errorf("appliance: %w", err)
	}
	if pc := probeConfig(cfg); pc != d.proberCfg {
		if d.proberCancel != nil {
			d.stopProberLocked()
			if err := d.startProberLocked(pc); err != nil {
				d.log.Error("reload: new probe settings refused, probing stopped", "err", err)
			}
		} else {
			d.proberCfg = pc
		}
	}
	if d.level != nil {
		d.level.Set(parseLevel(cfg.Log.Level))
	}
	d.reloadSecurityLocked(old, cfg, d.specs, specs)
	d.specs = specs
	for _, what := range restartOnly(old, cfg) {
		d.log.Warn("reload: setting changed but takes effect only at restart", "setting", what)
	}
	// Keep what runs: the sections that were not applied stay as they were.
	next := *old
	next.Dispatcher.Backends = cfg.Dispatcher.Backends
	next.Dispatcher.Probe = cfg.Dispatcher.Probe
	next.Log.Level = cfg.Log.Level
	next.Guard.Allow, next.Guard.AllowBackends = cfg.Guard.Allow, cfg.Guard.AllowBackends
	d.cfg = &next
	d.reloadOK.Add(1)
	addrs := make([]string, len(specs))
	for i, s := range specs {
		addrs[i] = s.Addr.String() + "*" + strconv.FormatFloat(s.Weight, 'g', -1, 64)
	}
	d.log.Info("reload ok", "backends", addrs)
	return nil
}

// RefuseReload counts a reload refused before it reached Reload (the file
// did not parse or validate), for /metrics.
func (d *Daemon) RefuseReload() { d.reloadNo.Add(1) }

// restartOnly lists the settings that differ between old and cfg and that
// Reload cannot apply.
func restartOnly(old, cfg *config.Config) []string {
	var out []string
	if old.Node.Name != cfg.Node.Name || !slices.Equal(old.Node.Addresses, cfg.Node.Addresses) ||
		(old.Node.Secret != cfg.Node.Secret && !(old.Node.SecretGenerated && cfg.Node.SecretGenerated)) {
		out = append(out, "[node]")
	}
	a, b := old.IO, cfg.IO
	if a.Port != b.Port || a.Listen != b.Listen || a.Interface != b.Interface || !slices.Equal(a.Queues, b.Queues) ||
		!slices.Equal(a.Cores, b.Cores) || a.Batch != b.Batch || a.FrameSize != b.FrameSize || a.FrameCount != b.FrameCount ||
		a.RxRing != b.RxRing || a.TxRing != b.TxRing || a.FillRing != b.FillRing || a.CompRing != b.CompRing ||
		a.XDPMode != b.XDPMode || a.BindMode != b.BindMode || a.PollInterval != b.PollInterval ||
		a.Wait != b.Wait || a.Spin != b.Spin || a.BatchDelay != b.BatchDelay || a.BusyPoll != b.BusyPoll ||
		a.Input != b.Input || a.Output != b.Output || a.Loop != b.Loop {
		out = append(out, "[io]")
	}
	if old.Admin != cfg.Admin {
		out = append(out, "[admin]")
	}
	if old.Dispatcher.Hashing != cfg.Dispatcher.Hashing || old.Dispatcher.RecordRoute != cfg.Dispatcher.RecordRoute ||
		old.Dispatcher.RetryAfter != cfg.Dispatcher.RetryAfter {
		out = append(out, "dispatcher.hashing, record_route, retry_after")
	}
	if old.Log.Format != cfg.Log.Format {
		out = append(out, "log.format")
	}
	return append(out, securityRestartOnly(old, cfg)...)
}

func parseLevel(s string) slog.Level {
	switch s {
	case "debug":
		return slog.LevelDebug
	case "warn":
		return slog.LevelWarn
	case "error":
		return slog.LevelError
	}
	return slog.LevelInfo
}

// NewLogger builds the logger [log] asks for, writing to w, with its level
// in a LevelVar so reloads can change it.
func NewLogger(w interface{ Write([]byte) (int, error) }, lc config.Log) (*slog.Logger, *slog.LevelVar) {
	lv := new(slog.LevelVar)
	lv.Set(parseLevel(lc.Level))
	ho := &slog.HandlerOptions{Level: lv}
	if lc.Format == "json" {
		return slog.New(slog.NewJSONHandler(w, ho)), lv
	}
	return slog.New(slog.NewTextHandler(w, ho)), lv
}
