package replay

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"runtime"
	"sort"
	"strings"
	"sync"
	"time"

	"sipedge"
	"sipedge/appliance"
	"sipedge/appliance/config"
	"sipedge/pipeline"
	"sipedge/pipeline/memport"
	"sipedge/pipeline/port"
	"sipedge/tools/sipgen"
)

// warmupMessages is how many messages each worker runs before measuring:
// enough batches for every lazily sized buffer and branch predictor to
// settle, few enough to cost nothing next to a replay.
const warmupMessages = 4096

// sampleEvery is the worker's stage timing rate: one message in 64 is
// timed, which keeps the clock reads near 1 ns per message on average.
// Replays too short to give every stage many samples time every other
// message (the worker's lowest rate; they are checks, not measurements).
const sampleEvery = 64

func sampleRate(messages uint64) int {
	if messages < 1000*sampleEvery {
		return 2
	}
	return sampleEvery
}

// loaded is the capture's SIP datagrams in memory, once.
type loaded struct {
	arena []byte
	recs  []loadedRec
	// self is the destination most datagrams went to: the proxy the
	// capture was taken at, which the replayed pipeline answers as.
	self     netip.AddrPort
	maxBytes int
	bytes    uint64
}

type loadedRec struct {
	off, n   int
	src, dst netip.AddrPort
}

// load reads the inputs once (whatever o.Loop says: the loops are run from
// memory) and multiplies the source counters by o.Loop, so the summary
// reads the same in every mode: what was replayed, all loops.
func load(o *Options, s *Summary) (*loaded, error) {
	one := *o
	one.Loop = 1
	src, err := newSource(&one, s)
	if err != nil {
		return nil, err
	}
	defer src.close()
	l := &loaded{}
	dsts := map[netip.AddrPort]int{}
	var d Datagram
	for {
		err := src.next(&d)
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, err
		}
		l.recs = append(l.recs, loadedRec{off: len(l.arena), n: len(d.Payload), src: d.Src, dst: d.Dst})
		l.arena = append(l.arena, d.Payload...)
		l.maxBytes = max(l.maxBytes, len(d.Payload))
		l.bytes += uint64(len(d.Payload))
		dsts[d.Dst]++
	}
	if len(l.recs) == 0 {
		return nil, fmt.Errorf("no SIP datagram in %v: nothing to run through the pipeline (is it SIP over UDP? add its ports with --sip-ports)", o.Inputs)
	}
	best := 0
	for a, n := range dsts {
		if n > best || n == best && a.Compare(l.self) < 0 {
			l.self, best = a, n
		}
	}
	l.self = netip.AddrPortFrom(l.self.Addr().Unmap(), l.self.Port())
	k := uint64(o.Loop)
	s.Records *= k
	s.Skipped *= k
	s.Reassembled *= k
	s.FragmentsLost *= k
	s.UDP *= k
	s.NonSIP *= k
	s.SIP *= k
	s.Unparsed *= k
	s.Rewritten *= k
	for m := range s.Requests {
		s.Requests[m] *= k
	}
	for c := range s.Responses {
		s.Responses[c] *= k
	}
	return l, nil
}

// shardOf picks the worker for a source address, as the NIC's RSS (or
// SO_REUSEPORT) would: every datagram of one source lands on one worker.
func shardOf(src netip.AddrPort, n int) int {
	a := src.Addr().As16()
	h := uint64(14695981039346656037)
	for _, b := range a {
		h = (h ^ uint64(b)) * 1099511628211
	}
	h = (h ^ uint64(src.Port()>>8)) * 1099511628211
	h = (h ^ uint64(src.Port()&0xff)) * 1099511628211
	return int(h % uint64(n))
}

// loadConfig reads the appliance configuration (--config, or the embedded
// default) and applies --secret. An empty secret in the file would be
// random, and no capture made beforehand could carry branches keyed by it:
// sipgen's default secret is used instead, and said so.
func loadConfig(o *Options, rep *PipelineReport) (*config.Config, error) {
	data, source := sipedge.DefaultConfig, "embedded config.toml"
	var cfg *config.Config
	var err error
	if o.Config != "" {
		cfg, _, err = config.Load(o.Config)
	} else {
		cfg, _, err = config.Parse(data, source)
	}
	if err != nil {
		return nil, fmt.Errorf("--config: %w", err)
	}
	switch {
	case o.Secret != "":
		cfg.Node.Secret, cfg.Node.SecretGenerated = o.Secret, false
	case cfg.Node.SecretGenerated:
		cfg.Node.Secret, cfg.Node.SecretGenerated = sipgen.DefaultSecret, false
		rep.Notes = append(rep.Notes, "node.secret is empty in the configuration: using sipgen's default secret (give --secret to match the capture's)")
	}
	if err := cfg.Validate(nil); err != nil {
		return nil, fmt.Errorf("--config: %w", err)
	}
	return cfg, nil
}

// countedPort is a memport cycling its datagrams that ends (io.EOF) after
// left of them: --loop passes over the worker's share, exactly.
type countedPort struct {
	*memport.Port
	left uint64
}

func (c *countedPort) Receive(rx []port.Packet) (int, error) {
	if c.left == 0 {
		return 0, io.EOF
	}
	if uint64(len(rx)) > c.left {
		rx = rx[:c.left]
	}
	n, err := c.Port.Receive(rx)
	c.left -= uint64(n)
	return n, err
}

func discard(*port.Packet) {}

// pipeWorker is one worker of a pipeline replay and what it measured.
type pipeWorker struct {
	w       *pipeline.Worker
	port    *countedPort
	n       int // datagrams in its share
	bytes   uint64
	warm    pipeline.Stats
	final   pipeline.Stats
	elapsed time.Duration
	err     error
}

// runPipeline replays through the appliance's own pipeline in-process, on
// o.Workers workers (or one per [io] core of the configuration): the
// datagrams are loaded once, split by source address, and each worker, on
// its own pinned thread, cycles through its share o.Loop times from an
// in-memory port whose output is discarded. It fills s.Pipeline.
func runPipeline(o *Options, s *Summary) error {
	rep := &PipelineReport{NsPerStage: map[string]float64{}, Verdicts: map[string]uint64{}}
	s.Pipeline = rep
	cfg, err := loadConfig(o, rep)
	if err != nil {
		return err
	}
	l, err := load(o, s)
	if err != nil {
		return err
	}
	n := o.Workers
	cores := make([]int, 0, max(n, len(cfg.IO.Cores)))
	ncpu := runtime.NumCPU()
	if n == 0 {
		n = len(cfg.IO.Cores)
		for _, c := range cfg.IO.Cores {
			if c >= ncpu {
				return fmt.Errorf("--config: io.cores lists CPU %d, this machine has %d: give --workers N to pin to CPUs 0..N-1 instead", c, ncpu)
			}
			cores = append(cores, c)
		}
	} else {
		for i := 0; i < n; i++ {
			cores = append(cores, i%ncpu)
		}
	}
	if n < 1 || n > 1024 {
		return fmt.Errorf("--workers %d: want 1 to 1024", n)
	}
	// The daemon's own chain and modules, as the configuration enables
	// them.
	liftGuardLimits(cfg)
	node, err := appliance.OpenNode(&appliance.ModuleEnv{Cfg: cfg, Workers: n, Self: l.self}) // no prober: every backend up
	if err != nil {
		return err
	}
	defer node.Close()
	bg, stopBG := context.WithCancel(context.Background())
	var bgWG sync.WaitGroup
	defer func() { stopBG(); bgWG.Wait() }()
	if err := node.Start(bg, func(f func()) { bgWG.Add(1); go func() { defer bgWG.Done(); f() }() }); err != nil {
		return err
	}
	makers, err := node.Makers()
	if err != nil {
		return err
	}
	var names []string
	for _, m := range makers {
		names = append(names, m.Def().Name)
	}
	rep.Notes = append(rep.Notes, fmt.Sprintf("the pipeline answers as %v, the capture's main destination", l.self),
		"stages, as the configuration enables them: "+strings.Join(names, ", ")+" (the guard's rate limits and overload shedding lifted: a replay at full speed is a flood to them)")

	shares := make([][]memport.Datagram, n)
	for _, r := range l.recs {
		i := shardOf(r.src, n)
		shares[i] = append(shares[i], memport.Datagram{Payload: l.arena[r.off : r.off+r.n : r.off+r.n], Src: r.src, Dst: r.dst})
	}
	// Frames hold a received datagram or a built one, which grows by a
	// Via, a Record-Route and a few parameters.
	frameSize := min(65536, max(4096, l.maxBytes+2048))
	workers := make([]*pipeWorker, n)
	for i := range workers {
		pw := &pipeWorker{n: len(shares[i])}
		workers[i] = pw
		if pw.n == 0 {
			continue // no source hashed here: an idle core
		}
		for _, d := range shares[i] {
			pw.bytes += uint64(len(d.Payload))
		}
		mp := memport.New(4*cfg.IO.Batch+16, frameSize)
		mp.In, mp.Cycle, mp.Sink = shares[i], true, discard
		pw.port = &countedPort{Port: mp}
		pw.w, err = node.NewWorker(pw.port, pipeline.Config{ID: i, Core: cores[i], SampleEvery: sampleRate(uint64(pw.n) * uint64(o.Loop))})
		if err != nil {
			return err
		}
		// Warm up outside the measurement (and outside the counts).
		pw.port.left = uint64(min(pw.n, warmupMessages))
		for {
			if _, err := pw.w.Poll(); err != nil {
				if errors.Is(err, io.EOF) {
					break
				}
				return err
			}
		}
		pw.warm = pw.w.Stats()
		pw.port.left = uint64(pw.n) * uint64(o.Loop)
	}

	total := uint64(len(l.recs)) * uint64(o.Loop)
	prog := newProgress(o, nil, s)
	prog.frac = func() float64 { return float64(s.Sent) / float64(total) }
	prog.loop = func() int { return min(o.Loop, 1+int(s.Sent/uint64(len(l.recs)))) }
	done := make(chan struct{})
	var wg sync.WaitGroup
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	start := time.Now()
	for _, pw := range workers {
		if pw.w == nil {
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			t0 := time.Now()
			pw.err = pw.w.Run(context.Background())
			pw.elapsed = time.Since(t0)
		}()
	}
	go func() { wg.Wait(); close(done) }()
	tick := time.NewTicker(o.Every)
wait:
	for {
		select {
		case <-done:
			break wait
		case <-tick.C:
			if o.Progress == nil {
				continue
			}
			s.Sent = 0
			for _, pw := range workers {
				if pw.w != nil {
					st := pw.w.Stats()
					s.Sent += st.Rx - pw.warm.Rx
				}
			}
			prog.tick(false)
		}
	}
	tick.Stop()
	elapsed := time.Since(start)
	runtime.ReadMemStats(&after)

	rep.Workers = n
	s.Sent, s.Bytes = 0, 0
	var stageNs, stageSamples = map[string]uint64{}, map[string]uint64{}
	var busyNs, rx uint64
	var firstErr error
	for i, pw := range workers {
		if pw.w == nil {
			rep.MessagesPerCore = append(rep.MessagesPerCore, 0)
			continue
		}
		if pw.err != nil && firstErr == nil {
			firstErr = pw.err
		}
		st := pw.w.Stats()
		d := statsDelta(&st, &pw.warm)
		pw.final = d
		rate := 0.0
		if pw.elapsed > 0 {
			rate = float64(d.Rx) / pw.elapsed.Seconds()
		}
		rep.MessagesPerCore = append(rep.MessagesPerCore, rate)
		s.Sent += d.Rx
		s.Bytes += pw.bytes * uint64(o.Loop)
		busyNs += d.BusyNs
		rx += d.Rx
		for _, ss := range d.Stages {
			if len(rep.stageOrder) < len(d.Stages) {
				rep.stageOrder = append(rep.stageOrder, ss.Name)
			}
			stageNs[ss.Name] += ss.SampledNs
			stageSamples[ss.Name] += ss.Samples
			rep.Verdicts["forwarded"] += ss.Verdicts[pipeline.Forward]
			rep.Verdicts["responded"] += ss.Verdicts[pipeline.Respond]
			rep.Verdicts["parked"] += ss.Verdicts[pipeline.Park]
		}
		for r, c := range d.Drops {
			if c > 0 {
				rep.Verdicts["dropped:"+pipeline.DropReason(r).String()] += c
			}
		}
		if d.TxUnsent > 0 {
			s.addError(fmt.Sprintf("worker %d: %d built messages had no destination", i, d.TxUnsent))
		}
	}
	if rep.Verdicts["parked"] == 0 {
		delete(rep.Verdicts, "parked")
	}
	for name, ns := range stageNs {
		if c := stageSamples[name]; c > 0 {
			rep.NsPerStage[name] = float64(ns) / float64(c)
		}
	}
	if rx > 0 {
		rep.NsPerStage["total"] = float64(busyNs) / float64(rx)
		rep.AllocsPerMessage = float64(after.Mallocs-before.Mallocs) / float64(rx)
	}
	rep.stageOrder = append(rep.stageOrder, "total")
	s.finish(elapsed)
	prog.tick(true)
	if s.Sent != total && firstErr == nil {
		firstErr = fmt.Errorf("pipeline: %d of %d messages ran through the workers", s.Sent, total)
	}
	return firstErr
}

// statsDelta is a - b for the counters a replay reports.
func statsDelta(a, b *pipeline.Stats) pipeline.Stats {
	d := pipeline.Stats{Rx: a.Rx - b.Rx, Tx: a.Tx - b.Tx, TxUnsent: a.TxUnsent - b.TxUnsent,
		BusyNs: a.BusyNs - b.BusyNs, Stages: make([]pipeline.StageStats, len(a.Stages))}
	for r := range d.Drops {
		d.Drops[r] = a.Drops[r] - b.Drops[r]
	}
	for i := range a.Stages {
		x, y := &a.Stages[i], &b.Stages[i]
		z := &d.Stages[i]
		z.Name, z.In = x.Name, x.In-y.In
		for v := range z.Verdicts {
			z.Verdicts[v] = x.Verdicts[v] - y.Verdicts[v]
		}
		z.SampledNs, z.Samples = x.SampledNs-y.SampledNs, x.Samples-y.Samples
	}
	return d
}

// sortedStages lists the per-stage timings in pipeline order, then any
// other key, then total.
func (r *PipelineReport) sortedStages() []string {
	seen := map[string]bool{}
	var out []string
	for _, k := range r.stageOrder {
		if _, ok := r.NsPerStage[k]; ok && !seen[k] {
			out = append(out, k)
			seen[k] = true
		}
	}
	var rest []string
	for k := range r.NsPerStage {
		if !seen[k] {
			rest = append(rest, k)
		}
	}
	sort.Strings(rest)
	return append(out, rest...)
}

// liftGuardLimits lifts the guard's rate limits and overload shedding in
// cfg. They count per second of wall time, which a replay at full speed
// compresses into a flood from every source, and every batch of a replay
// is full: lifted, every message takes the guard's whole path and passes,
// as real traffic within its limits does.
func liftGuardLimits(cfg *config.Config) {
	if !cfg.Guard.Enabled {
		return
	}
	g := &cfg.Guard
	g.Rate, g.Burst = 1e9, 1<<20
	g.InviteRate, g.InviteBurst = 1e9, 1<<20
	g.RegisterRate, g.RegisterBurst = 1e9, 1<<20
	g.OverloadBatches = 1 << 30
}
