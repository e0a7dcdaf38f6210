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
	"sipedge/pipeline/port"
	"sipedge/pipeline/port/pcapport"
	"sipedge/pipeline/port/socketport"
	"sipedge/pipeline/port/xdpport"
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
	// live is cfg for the admin server's goroutines, which must not take
	// mu (a reload can hold it while it resolves backends).
	live atomic.Pointer[config.Config]

	// node is every module ([dispatcher], [guard], [auth], ...): the
	// stages the workers run, and what runs beside them.
	node    *Node
	workers []*pipeline.Worker
	ports   []port.Port
	group   *xdpport.Group
	neigh   *neigh.Table
	pcapOut *os.File

	// sockBans is the socket port's ban filter (nil without CAP_BPF).
	sockBans *afxdp.SocketBans

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
	d.live.Store(cfg)
	if d.log == nil {
		d.log = slog.New(slog.DiscardHandler)
	}
	built := false
	defer func() {
		if !built {
			d.closeAll() // whatever was opened before the failure
		}
	}()
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
	env := &ModuleEnv{Cfg: cfg, Log: d.log, Workers: len(d.ports), Self: netip.AddrPortFrom(sentBy, listen.Port()),
		Probe: cfg.IO.Port != "pcap", Wake: d.wakeWorkers}
	if d.group != nil {
		env.Banner = d.group.Program() // bans also dropped by the XDP program
	} else if d.sockBans != nil {
		env.Banner = d.sockBans // bans also dropped by the sockets' filter
	}
	if d.node, err = OpenNode(env); err != nil {
		return nil, err
	}
	for i, p := range d.ports {
		w, err := d.node.NewWorker(p, workerConfig(cfg, i))
		if err != nil {
			return nil, err
		}
		d.workers = append(d.workers, w)
	}
	if n, raised := ensureProcs(len(d.workers)); raised {
		d.log.Info("GOMAXPROCS raised so that every worker has a P of its own and one is left", "gomaxprocs", n, "workers", len(d.workers))
	}
	if cfg.Admin.Listen != "" {
		ln, err := net.Listen("tcp", cfg.Admin.Listen)
		if err != nil {
			return nil, fmt.Errorf("appliance: admin.listen %s: %w (choose a free address, or \"\" to disable the admin server)", cfg.Admin.Listen, err)
		}
		d.adminLn = ln
		d.admin = &http.Server{Handler: newAdminGate(d.adminHandler(cfg.Admin.Pprof), &cfg.Admin), ReadHeaderTimeout: 5 * time.Second,
			ReadTimeout: cfg.Admin.ReadTimeout.Std(), WriteTimeout: cfg.Admin.WriteTimeout.Std(), IdleTimeout: 2 * time.Minute,
			MaxHeaderBytes: 16 << 10}
	}
	built = true
	return d, nil
}

// workerConfig is worker i's pipeline.Config from [io]: core and wait mode.
func workerConfig(cfg *config.Config, i int) pipeline.Config {
	mode, _ := pipeline.ParseWaitMode(cfg.IO.Wait) // checked by config.Validate
	return pipeline.Config{
		ID: i, Core: cfg.IO.Cores[i],
		Wait: mode, Spin: cfg.IO.Spin.Std(), BatchDelay: cfg.IO.BatchDelay.Std(),
		MaxSleep: cfg.IO.PollInterval.Std(),
		// A parked message is copied whole: as large as any served.
		ParkSlotSize: max(4096, cfg.Guard.MaxMessageSize),
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
	filter := d.openSocketBans(cfg)
	for i := range cfg.IO.Cores {
		p, err := socketport.Open(socketport.Config{
			Listen:     listen,
			MaxMessage: cfg.Guard.MaxMessageSize, // buffers sized from it
			Steer:      len(cfg.IO.Cores),        // one source, one worker
			Buffers:    max(1024, 4*cfg.IO.Batch),
			Batch:      cfg.IO.Batch,
			RecvBuffer: 4 << 20, // absorbs a burst while a worker is descheduled
			Filter:     filter,
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
		MaxMessage: cfg.Guard.MaxMessageSize, // large buffers: SIP above a frame
		// An IPv6 ban covers the prefix the guard counts as one source.
		IPv6BanPrefix: cfg.Guard.IPv6SourcePrefix,
	}
	if self.Is4() {
		xc.Addr4 = self
	} else {
		xc.Addr6 = self
	}
	if xc.ForeignSources, err = foreignSources(cfg, ifi.Index); err != nil {
		return self, err
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
func (d *Daemon) Backends() *pipeline.Backends { return d.node.Backends() }

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
	cfg := d.live.Load() // a SIGHUP may swap d.cfg while Run starts
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
		d.log.Info("admin listening", "addr", d.adminLn.Addr().String(), "pprof", cfg.Admin.Pprof)
	}
	if d.neigh != nil {
		for _, b := range d.node.Backends().Load().Backends {
			d.neigh.Want(b.Addr.Addr())
		}
		d.neigh.Start()
	}
	if err := d.node.Start(bg, waitGroupGo(&bgWG)); err != nil {
		cancelBG()
		bgWG.Wait()
		d.closeAll()
		return err
	}

	errc := make(chan error, len(d.workers))
	for i, w := range d.workers {
		d.log.Info("worker started", "worker", i, "core", cfg.IO.Cores[i], "port", w.Port().Name(),
			"wait", cfg.IO.Wait, "spin", cfg.IO.Spin.Std().String(), "batch_delay", cfg.IO.BatchDelay.Std().String())
		d.running.Add(1)
		go func() {
			err := w.Run(ctx)
			d.running.Add(-1)
			errc <- err
		}()
	}
	sdCtx, stopSD := context.WithCancel(ctx) // readiness and watchdog (sdnotify.go)
	bgWG.Add(1)
	go func() { defer bgWG.Done(); d.superviseSystemd(sdCtx) }()
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
	stopSD()
	for _, w := range d.workers {
		w.Stop()
	}
	d.logFrames()
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
	if d.sockBans != nil {
		d.sockBans.Close()
		d.sockBans = nil
	}
	d.node.Close() // after the workers: auth stops their helpers
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

// Reload applies cfg (already checked) without stopping: each module
// applies what it can change live (the backend list with health carried
// for unchanged addresses, the probe settings, the guard's allow-list, the
// users file), and the log level changes. Settings that need new ports or
// a new stage are reported and keep their running values until a restart.
func (d *Daemon) Reload(cfg *config.Config) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	defer d.wakeWorkers()
	// Refuse the whole reload if the backend list does not resolve, before
	// anything is applied.
	specs, err := backendSpecs(cfg)
	if err != nil {
		d.reloadNo.Add(1)
		return err
	}
	if _, err := pipeline.NewBackends(specs); err != nil {
		d.reloadNo.Add(1)
		return fmt.Errorf("appliance: %w", err)
	}
	old := d.cfg
	if d.level != nil {
		d.level.Set(parseLevel(cfg.Log.Level))
	}
	restart := append(restartOnly(old, cfg), d.node.Reload(old, cfg)...)
	for _, what := range restart {
		d.log.Warn("reload: setting changed but takes effect only at restart", "setting", what)
	}
	// Keep what runs: the sections that were not applied stay as they were.
	next := *old
	next.Dispatcher.Backends = cfg.Dispatcher.Backends
	next.Dispatcher.Probe = cfg.Dispatcher.Probe
	next.Dispatcher.DNS = cfg.Dispatcher.DNS
	next.Drain.Idle, next.Drain.Timeout, next.Drain.OnSigterm = cfg.Drain.Idle, cfg.Drain.Timeout, cfg.Drain.OnSigterm
	next.Log.Level = cfg.Log.Level
	next.Guard.Allow, next.Guard.AllowBackends = cfg.Guard.Allow, cfg.Guard.AllowBackends
	d.cfg = &next
	d.live.Store(&next) // what the admin server reads, without d.mu
	d.node.Env.Cfg = &next
	d.reloadForeignSources(&next)
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

// restartOnly lists the daemon's own settings ([io], [admin], [log]) that
// differ between old and cfg and that Reload cannot apply; each module
// lists its own (Module.Reload).
func restartOnly(old, cfg *config.Config) []string {
	var out []string
	a, b := old.IO, cfg.IO
	if a.Port != b.Port || a.Listen != b.Listen || a.Interface != b.Interface || !slices.Equal(a.Queues, b.Queues) ||
		!slices.Equal(a.Cores, b.Cores) || a.Batch != b.Batch || a.FrameSize != b.FrameSize || a.FrameCount != b.FrameCount ||
		a.RxRing != b.RxRing || a.TxRing != b.TxRing || a.FillRing != b.FillRing || a.CompRing != b.CompRing ||
		a.XDPMode != b.XDPMode || a.BindMode != b.BindMode || a.PollInterval != b.PollInterval ||
		a.Wait != b.Wait || a.Spin != b.Spin || a.BatchDelay != b.BatchDelay || a.BusyPoll != b.BusyPoll ||
		a.Input != b.Input || a.Output != b.Output || a.Loop != b.Loop {
		out = append(out, "[io]")
	}
	if !old.Admin.Same(&cfg.Admin) {
		out = append(out, "[admin]")
	}
	if old.Log.Format != cfg.Log.Format {
		out = append(out, "log.format")
	}
	return out
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
