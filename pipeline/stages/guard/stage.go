package guard

import (
	"net/netip"
	"time"

	"sipedge/pipeline"
	"sipedge/pipeline/internal/spsc"
)

// Reason is why the guard dropped, rejected or banned: the label of its
// metrics. The pipeline counts every guard drop as pipeline.DropPolicy.
type Reason uint8

// Reasons.
const (
	ReasonNone Reason = iota
	// ReasonOversize: larger than MaxMessageSize.
	ReasonOversize
	// ReasonNotSIP: the first bytes are neither a method and a space nor
	// "SIP/2.0 ".
	ReasonNotSIP
	// ReasonKeepalive: a CRLF keepalive, absorbed.
	ReasonKeepalive
	// ReasonTooManyHeaders, ReasonTooManyVias: over MaxHeaders, MaxVias.
	ReasonTooManyHeaders
	ReasonTooManyVias
	// ReasonBanned: the source is banned (by any reason below).
	ReasonBanned
	// ReasonScanner: a User-Agent, From or To signature matched.
	ReasonScanner
	// ReasonRateAll, ReasonRateInvite, ReasonRateRegister: over a limit.
	ReasonRateAll
	ReasonRateInvite
	ReasonRateRegister
	// ReasonOverload: a new INVITE or REGISTER shed while the worker is
	// overloaded.
	ReasonOverload
	// ReasonAuth: too many authentication failures.
	ReasonAuth
	// ReasonOperator: banned by the operator.
	ReasonOperator
	// ReasonRateBackend: a backend (address and port) over its own limit.
	ReasonRateBackend
	numReasons
)

var reasonNames = [numReasons]string{
	"none", "oversize", "not-sip", "keepalive", "too-many-headers",
	"too-many-vias", "banned", "scanner", "rate-all", "rate-invite",
	"rate-register", "overload", "auth-failures", "operator", "rate-backend",
}

func (r Reason) String() string {
	if r < numReasons {
		return reasonNames[r]
	}
	return "invalid"
}

// Def declares the stage: its own drop reasons are Reason's (without
// "none"), counted once, by the worker's chain, under the stage (and as
// "policy" in sipedge_dropped_total).
var Def = pipeline.StageDef{
	Name:        "guard",
	Doc:         "before parsing: size and shape, per-source rate limits, scanner signatures, bans, overload shedding (503)",
	Section:     "[guard]",
	Drops:       reasonNames[1:],
	DropsMetric: "sipedge_guard_dropped_total",
	DropsHelp:   "Messages the guard dropped, by reason.",
	Counters: []pipeline.CounterDef{
		{Name: "sipedge_guard_passed_total", Help: "Messages the guard passed on, by whether the source is allow-listed.", Label: "allowlisted", Values: []string{"false", "true"}},
		{Name: "sipedge_guard_rejected_total", Help: "Requests the guard answered 503 with Retry-After, by reason.", Label: "reason", Values: reasonNames[1:]},
		{Name: "sipedge_guard_bans_total", Help: "Bans the workers issued, by reason.", Label: "reason", Values: reasonNames[1:]},
		{Name: "sipedge_guard_ban_ring_full_total", Help: "Ban requests lost because a worker's ring to the ban goroutine was full (the worker still enforces them)."},
		{Name: "sipedge_guard_ban_table_full_total", Help: "Bans a worker could not store: its ban table window was full of operator bans."},
		{Name: "sipedge_guard_source_evictions_total", Help: "Tracked sources replaced by new ones (full probe window)."},
		{Name: "sipedge_guard_auth_failures_total", Help: "Authentication failures reported by the auth stage."},
		{Name: "sipedge_guard_full_batches_total", Help: "Receive batches at or above the overload fill."},
		{Name: "sipedge_guard_overloaded_workers", Help: "Workers shedding new INVITEs and REGISTERs now.", Gauge: true},
		{Name: "sipedge_guard_bans_spared_total", Help: "Bans not issued because the source may never be banned: allow-listed, a backend's address or a trusted network ([auth] trusted)."},
		{Name: "sipedge_guard_shed_spared_total", Help: "New INVITEs and REGISTERs an overloaded worker let through because their source is within its limits while heavier sources are being shed."},
	},
}

// Per-core counter slots, in the order of Def.Counters.
const (
	cPassed = iota
	cAllowed
	cRejectBase
	cBanBase         = cRejectBase + int(numReasons) - 1
	cBanRingFull     = cBanBase + int(numReasons) - 1
	cBanTableFull    = cBanRingFull + 1
	cEvictions       = cBanTableFull + 1
	cAuthFailures    = cEvictions + 1
	cOverloadBatches = cAuthFailures + 1
	cOverloaded      = cOverloadBatches + 1
	cBansSpared      = cOverloaded + 1
	cShedSpared      = cBansSpared + 1
	numCounters      = cShedSpared + 1
)

// quiet ends an over-limit episode: a source not rejected for this long
// starts a new one, so only sustained excess leads to a ban.
const quiet = int64(time.Second)

// banReq travels from a worker to the ban goroutine.
type banReq struct {
	addr   netip.Addr
	reason Reason
	until  int64
}

// Command kinds from the operator to a worker.
const (
	cmdBan = iota + 1
	cmdUnban
)

type command struct {
	op     uint8
	reason Reason
	key    addrKey
	until  int64
}

// Stage is one worker's guard: it implements pipeline.Stage and
// pipeline.BatchStarter, and AuthFailed for the auth stage. Everything in
// it belongs to the worker's goroutine except the published counters, the
// ban slots (atomic) and the two rings.
type Stage struct {
	g      *Guard
	id     int
	worker int // pipeline.Env.Worker
	tab    *table
	bans   *banTable
	allow  *allowSnap
	trust  *trustSnap
	cnt    pipeline.Counters   // Def.Counters
	drops  pipeline.Counters   // Def.Drops, counted by the worker's chain
	out    *spsc.Ring[banReq]  // to the ban goroutine
	in     *spsc.Ring[command] // from the operator
	sh     shape

	fullRun    int
	overloaded bool
	// heavyRx counts this batch's messages from heavy sources (over a
	// limit or heavier than their share); shedAll says the last batch
	// had too few of them to blame, so shedding takes every new request.
	heavyRx int
	shedAll bool
}

// Stage returns the stage of worker i (pipeline.Env.Worker), nil when
// there is none: the same worker a WorkerSink names.
func (g *Guard) Stage(i int) *Stage {
	for _, s := range g.stageList() {
		if s.worker == i {
			return s
		}
	}
	return nil
}

// Def implements pipeline.StageMaker.
func (g *Guard) Def() *pipeline.StageDef { return &Def }

// NewStage implements pipeline.StageMaker: the guard stage of one more
// worker. The chain file puts it first, before the parser (sanity).
func (g *Guard) NewStage(env *pipeline.Env) (pipeline.Stage, error) {
	return g.newStage(env), nil
}

func (g *Guard) newStage(env *pipeline.Env) *Stage {
	g.mu.Lock()
	defer g.mu.Unlock()
	old := g.stageList()
	s := &Stage{
		g:      g,
		id:     len(old),
		worker: env.Worker,
		tab:    newTable(g.cfg.TableSize, int64(g.cfg.IdleAfter)),
		bans:   newBanTable(g.cfg.MaxBans),
		allow:  g.allow.Load(),
		trust:  g.trust.Load(),
		cnt:    env.Counters,
		drops:  env.Drops,
		out:    spsc.New[banReq](g.cfg.RingSize),
		in:     spsc.New[command](g.cfg.RingSize),
	}
	// Operator bans already in force reach the new worker too.
	now := g.now()
	for a, r := range g.registry {
		if r.reason == ReasonOperator && r.until > now {
			s.bans.put(g.sourceKey(a), r.until, ReasonOperator, now)
		}
	}
	list := append(append([]*Stage(nil), old...), s)
	g.stages.Store(&list)
	return s
}

// A changed BatchStarter signature must fail the build, not silently stop
// the per-batch work (overload judgement, operator commands, counters).
var _ pipeline.BatchStarter = (*Stage)(nil)

// StartBatch implements pipeline.BatchStarter: judge the last batch's
// fill, load the allow-list snapshot, apply operator commands.
func (s *Stage) StartBatch(now int64, lastRx int) {
	if lastRx >= s.g.fullN {
		s.fullRun++
		s.cnt.Inc(cOverloadBatches)
	} else {
		s.fullRun = 0
	}
	if ov := s.fullRun >= s.g.cfg.OverloadBatches; ov != s.overloaded {
		s.overloaded = ov
		s.cnt.Set(cOverloaded, b2u(ov))
	}
	// Fair shedding: while heavy sources make up a quarter or more of
	// the load, only they are shed.
	s.shedAll = s.heavyRx*4 < lastRx
	s.heavyRx = 0
	s.allow = s.g.allow.Load()
	s.trust = s.g.trust.Load()
	var c command
	for s.in.Pop(&c) {
		switch c.op {
		case cmdBan:
			if !s.bans.put(c.key, c.until, c.reason, now) {
				s.cnt.Inc(cBanTableFull)
			}
		case cmdUnban:
			s.bans.remove(c.key)
		}
	}
	s.cnt.Set(cEvictions, s.tab.evictions)
}

func b2u(b bool) uint64 {
	if b {
		return 1
	}
	return 0
}

func (s *Stage) allowed(a netip.Addr) bool {
	for _, p := range s.allow.prefixes {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// drop drops for reason r: the worker's chain counts it, once.
func (s *Stage) drop(c *pipeline.Ctx, r Reason) pipeline.Verdict {
	return c.DropOwn(int(r) - 1)
}

// Process implements pipeline.Stage.
func (s *Stage) Process(c *pipeline.Ctx) pipeline.Verdict {
	b := c.Buf
	g := s.g
	if len(b) > g.cfg.MaxMessageSize || c.Truncated {
		return s.oversize(c)
	}
	now := c.Now
	src := c.Src.Addr().Unmap()
	allowed := s.allowed(src)
	k := s.g.sourceKey(src)
	if !allowed {
		if bs := s.bans.check(k, now); bs != nil {
			bs.dropped.Add(1)
			s.heavyRx++ // a banned flood still fills the batches: blame it, not the others
			return s.drop(c, ReasonBanned)
		}
	}
	sh := &s.sh
	sh.startLine(b)
	switch sh.kind {
	case kindNotSIP:
		return s.drop(c, ReasonNotSIP)
	case kindKeepalive:
		return s.drop(c, ReasonKeepalive)
	}
	sh.headerLines(b, g.cfg.MaxHeaders)
	if sh.headers > g.cfg.MaxHeaders {
		return s.drop(c, ReasonTooManyHeaders)
	}
	if sh.vias > g.cfg.MaxVias {
		return s.drop(c, ReasonTooManyVias)
	}
	if allowed {
		s.cnt.Inc(cAllowed)
		return pipeline.Continue
	}
	// Display names and From/To are whatever the sender writes: a match
	// drops, never bans (a caller could get its own carrier banned).
	if g.ftPat.match(sh.from) || g.ftPat.match(sh.to) {
		return s.drop(c, ReasonScanner)
	}
	e := s.tab.get(k, now)
	if e.hits != ^uint32(0) {
		e.hits++
	}
	e.last = now
	if s.trust.isBackend(netip.AddrPortFrom(src, c.Src.Port())) {
		if !g.lim[limBackend].allow(&e.tat[limBackend], now) {
			return s.drop(c, ReasonRateBackend)
		}
		s.cnt.Inc(cPassed)
		return pipeline.Continue
	}
	if g.uaPat.match(sh.ua) {
		// Only repeated matches ban: one forged datagram must not.
		if e.uaMatches++; int(e.uaMatches) >= g.cfg.ScannerMatches {
			e.uaMatches = 0
			s.ban(src, k, ReasonScanner, now)
		}
		return s.drop(c, ReasonScanner)
	}
	if !g.lim[limAll].allow(&e.tat[limAll], now) {
		return s.overLimit(c, e, src, ReasonRateAll)
	}
	if sh.kind != kindRequest {
		s.cnt.Inc(cPassed)
		return pipeline.Continue
	}
	switch sh.method {
	case methodINVITE:
		if !g.lim[limInvite].allow(&e.tat[limInvite], now) {
			return s.overLimit(c, e, src, ReasonRateInvite)
		}
	case methodREGISTER:
		if !g.lim[limRegister].allow(&e.tat[limRegister], now) {
			return s.overLimit(c, e, src, ReasonRateRegister)
		}
	}
	if s.overloaded && (sh.method == methodINVITE || sh.method == methodREGISTER) && !containsFold(sh.to, tagParam) {
		heavy := s.heavy(e, now)
		if heavy {
			s.heavyRx++
		}
		if heavy || s.shedAll {
			return s.reject(c, ReasonOverload)
		}
		s.cnt.Inc(cShedSpared)
	} else if s.overloaded && s.heavy(e, now) {
		s.heavyRx++
	}
	s.cnt.Inc(cPassed)
	return pipeline.Continue
}

// overLimit handles a message over one of its source's limits: a source
// that has been over for BanAfter is banned, the rest get OverLimit.
func (s *Stage) overLimit(c *pipeline.Ctx, e *entry, src netip.Addr, r Reason) pipeline.Verdict {
	now := c.Now
	s.heavyRx++
	if e.lastReject == 0 || now-e.lastReject > quiet {
		e.overSince = now
	}
	e.lastReject = now
	if now-e.overSince >= int64(s.g.cfg.BanAfter) {
		s.ban(src, e.key, r, now)
		return s.drop(c, r)
	}
	if s.g.cfg.OverLimit == Silent || s.sh.kind != kindRequest || s.sh.method == methodACK {
		return s.drop(c, r)
	}
	return s.reject(c, r)
}

// reject answers 503 with Retry-After. The guard runs before the parser,
// so it parses here: only the messages it answers pay for it.
func (s *Stage) reject(c *pipeline.Ctx, r Reason) pipeline.Verdict {
	if c.Msg == nil {
		return s.drop(c, r) // not in a worker: nothing to build the answer from
	}
	if !c.Parsed {
		if err := c.Parse(); err != nil {
			return s.drop(c, r)
		}
	}
	v := c.Respond(503, "Service Unavailable", s.g.retryExtra)
	if v == pipeline.Respond {
		s.cnt.Inc(cRejectBase + int(r) - 1)
		return v
	}
	return s.drop(c, r) // no answer possible: a drop for r after all
}

// ban enforces a ban in this worker at once and hands it to the ban
// goroutine (registry, XDP map) without blocking.
func (s *Stage) ban(src netip.Addr, k addrKey, r Reason, now int64) {
	if s.unbannable(src) {
		s.cnt.Inc(cBansSpared)
		return
	}
	until := now + int64(s.g.cfg.BanTTL)
	if !s.bans.put(k, until, r, now) {
		s.cnt.Inc(cBanTableFull)
	}
	s.cnt.Inc(cBanBase + int(r) - 1)
	req := banReq{addr: src, reason: r, until: until}
	if !s.out.Push(&req) {
		s.cnt.Inc(cBanRingFull)
		return
	}
	select {
	case s.g.wake <- struct{}{}:
	default:
	}
}

// WorkerSink is what the auth stage of one worker reports failures to: the
// guard stage of the same worker, made later in the same NewWorker (the
// two are made independently, in chain order, so the sink finds its stage
// on first use). It is used only on that worker's goroutine.
type WorkerSink struct {
	g      *Guard
	worker int
	s      *Stage
}

// WorkerSink returns the failure sink of worker (pipeline.Env.Worker).
func (g *Guard) WorkerSink(worker int) *WorkerSink { return &WorkerSink{g: g, worker: worker} }

// AuthFailed hands the failure to the worker's guard stage; before that
// stage exists (a test without a guard stage) it is ignored.
func (w *WorkerSink) AuthFailed(src netip.Addr, now int64) {
	if w.s == nil {
		if w.s = w.g.Stage(w.worker); w.s == nil {
			return
		}
	}
	w.s.AuthFailed(src, now)
}

// AuthFailed records a failed authentication from src (the auth stage of
// the same worker calls it); AuthFailures of them within AuthWindow ban
// the source. Allow-listed sources are counted, never banned.
func (s *Stage) AuthFailed(src netip.Addr, now int64) {
	src = src.Unmap()
	if !src.IsValid() {
		return
	}
	s.cnt.Inc(cAuthFailures)
	if s.allowed(src) {
		return
	}
	k := s.g.sourceKey(src)
	e := s.tab.get(k, now)
	if e.hits == 0 {
		e.hits = 1
		e.last = now
	}
	if e.authFails == 0 || now-e.authStart > int64(s.g.cfg.AuthWindow) {
		e.authStart, e.authFails = now, 0
	}
	e.authFails++
	if int(e.authFails) >= s.g.cfg.AuthFailures {
		e.authFails = 0
		s.ban(src, k, ReasonAuth, now)
	}
}

// Overloaded reports whether the worker is shedding new requests (as of
// its last batch). Safe from any goroutine.
func (s *Stage) Overloaded() bool { return s.cnt.Load(cOverloaded) != 0 }
